package relay

import (
	"context"
	"crypto/ed25519"
	crand "crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flynn/noise"

	"github.com/sealnet/sealnet/internal/clock"
	"github.com/sealnet/sealnet/internal/keystore"
	"github.com/sealnet/sealnet/internal/loopwatch"
	"github.com/sealnet/sealnet/internal/metrics"
	"github.com/sealnet/sealnet/internal/torctl"
	"github.com/sealnet/sealnet/mixnet"
	"github.com/sealnet/sealnet/mixnet/directory"
	"github.com/sealnet/sealnet/mixnet/directory/client"
	"github.com/sealnet/sealnet/mixnet/link"
	"github.com/sealnet/sealnet/mixnet/mix"
)

// Options are the parts of a node that tests and embedders replace.
type Options struct {
	// Logger; nil logs nothing.
	Logger *slog.Logger
	// Clock is the node's time: the epoch, key expiry, mixing delays, the
	// cover and directory schedules, loop round trips. Nil is
	// clock.System(). Network deadlines and CPU timings stay on real time.
	Clock clock.Clock
	// Listener, if set, is used instead of listening on Config.Listen.
	Listener net.Listener
	// Dial opens outgoing TCP connections; nil is net.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Deliverer receives final-hop packets (providers); nil counts them.
	Deliverer Deliverer
	// ClientLinks, if set, serves client and user links (a provider's
	// mailbox service) instead of reading them as packet sources. It must
	// return when ctx is done.
	ClientLinks func(ctx context.Context, c *link.Conn)
}

// Deliverer takes the packets that end at this node. Deliver is called on
// a worker goroutine and must not block for long.
type Deliverer interface {
	Deliver(res *mixnet.Result) error
}

// Node is one relay: a mix or a provider.
type Node struct {
	cfg      Config
	opts     Options
	log      *slog.Logger
	clock    clock.Clock
	geo      mixnet.Geometry
	identity ed25519.PrivateKey
	id       mixnet.NodeID
	linkKey  noise.DHKey
	loopID   mixnet.RecipientID
	keys     *epochKeys
	dir      *client.Client
	reg      *metrics.Registry
	m        *nodeMetrics
	links    *link.Stats
	input    chan []byte
	mixer    *mix.Mixer[*outPacket]
	gate     *durability
	release  *releaser
	peers    *peers
	loops    *loopwatch.Watcher
	loopHops atomic.Int64 // the mixes a loop crossed last and their mean delay (expectLoopHops); -1 before the first
	// onion is the provider's onion service address ("" for none); the
	// key is loaded in New so that descriptors carry the address.
	onion    string
	onionKey ed25519.PrivateKey

	closeOnce sync.Once // close, at the end of Run or on New's failure

	rngMu sync.Mutex
	rng   *rand.Rand // cover and mixing randomness, seeded from crypto/rand

	idxMu sync.Mutex
	idx   map[*directory.SignedDocument]map[mixnet.NodeID]*directory.Descriptor

	// netParams are the parameters of the document in force (see
	// refreshParams); the workers read them for every packet.
	netParams atomic.Pointer[directory.Parameters]
}

// outPacket is a packet waiting in the mixer for its next hop.
type outPacket struct {
	next  mixnet.NodeID
	pkt   []byte
	seq   uint64         // durability sequence of its replay tag
	final *mixnet.Result // a packet that ends here (a provider's final hop), or nil
}

// New prepares a node: it loads or creates its keys and opens its replay
// journals. It starts nothing; Run does, and Run closes them when it ends.
// On failure New leaves nothing open.
func New(cfg Config, opts Options) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, opts: opts, log: opts.Logger, clock: clock.Or(opts.Clock), geo: mixnet.DefaultGeometry(),
		idx: make(map[*directory.SignedDocument]map[mixnet.NodeID]*directory.Descriptor)}
	if n.log == nil {
		n.log = slog.New(slog.DiscardHandler)
	}
	if n.opts.Dial == nil && cfg.OutboundAddress != "" {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(cfg.OutboundAddress)}}
		n.opts.Dial = d.DialContext
	}
	n.log = n.log.With("node", cfg.Name)
	keyDir := filepath.Join(cfg.DataDir, "keys")
	var created bool
	var err error
	if n.identity, created, err = keystore.Identity(keyDir); err != nil {
		return nil, err
	}
	if created {
		n.log.Info("created identity key", "public_key", hex.EncodeToString(n.identity.Public().(ed25519.PublicKey)))
	}
	if n.linkKey, _, err = keystore.Link(keyDir); err != nil {
		return nil, err
	}
	if cfg.Tor.Onion {
		if n.onionKey, _, err = keystore.Onion(keyDir); err != nil {
			return nil, err
		}
		n.onion = net.JoinHostPort(directory.OnionHost(n.onionKey.Public().(ed25519.PublicKey)), strconv.Itoa(cfg.Tor.Port))
	}
	pub := n.identity.Public().(ed25519.PublicKey)
	n.id = mixnet.NodeID(sha256.Sum256(pub))
	n.loopID = mixnet.RecipientID(sha256.Sum256(append([]byte("sealnet loop recipient "), pub...)))

	var seed [32]byte
	if _, err := crand.Read(seed[:]); err != nil {
		return nil, err
	}
	n.rng = rand.New(rand.NewChaCha8(seed))

	d := cfg.Directory
	auths := make([]client.Authority, len(d.Authorities))
	for i, a := range d.Authorities {
		k, _ := hex.DecodeString(a.Key)
		auths[i] = client.Authority{URL: a.URL, Key: ed25519.PublicKey(k)}
	}
	n.dir, err = client.New(client.Config{
		Authorities: auths, Threshold: d.Threshold,
		CacheDir: filepath.Join(cfg.DataDir, "directory"), Logger: n.log,
	})
	if err != nil {
		return nil, err
	}

	n.keys = newEpochKeys(cfg.DataDir, n.geo, cfg.Limits.ReplayCapacity, d.EpochPeriod.D(), d.EpochGrace.D())
	e := n.epoch()
	if err := n.keys.ensure(e, e+1, e+2); err != nil {
		return nil, errors.Join(err, n.close())
	}
	n.keys.retire(n.now())

	n.reg = metrics.NewRegistry()
	n.links = new(link.Stats)
	n.input = make(chan []byte, cfg.Limits.InputQueue)
	n.gate = newDurability(n.keys.sync)
	n.release = newReleaser(cfg.Mixing.Capacity)
	n.peers = newPeers(n)
	if n.loops, err = newLoopWatcher(cfg.Cover); err != nil {
		return nil, errors.Join(err, n.close())
	}
	n.loopHops.Store(-1)
	n.m = newNodeMetrics(n)
	n.mixRNG()
	n.refreshParams()
	return n, nil
}

// params returns the network parameters in force: those of the document
// for the current epoch, else of the newest older one held, else of any
// held; DefaultParameters before the first document. directoryLoop
// refreshes them every poll, so a new epoch's parameters apply from the
// first poll after it starts.
func (n *Node) params() directory.Parameters { return *n.netParams.Load() }

// Params returns the network's parameters in force at this node: those of
// the current epoch's document, or the defaults before it has one.
func (n *Node) Params() directory.Parameters { return n.params() }

// refreshParams sets the parameters in force from the documents held,
// and logs them when they change.
func (n *Node) refreshParams() {
	p, from := directory.DefaultParameters(), "defaults (no document yet)"
	e := n.epoch()
	if sd, ok := n.dir.Document(e); ok {
		p, from = sd.Doc.Params(), "current document"
	} else if sd, ok := n.dir.Document(e - 1); ok {
		p, from = sd.Doc.Params(), "previous epoch's document"
	} else if sd := n.dir.Latest(); sd != nil {
		p, from = sd.Doc.Params(), "newest document held"
	}
	if old := n.netParams.Load(); old != nil && *old == p {
		return
	}
	n.netParams.Store(&p)
	n.log.Info("network parameters in force", "from", from, "epoch", e, "mean_delay", p.MeanDelay, "max_delay", p.MaxDelay,
		"relay_loop_rate", p.RelayLoopRate)
}

// mixRNG creates the mixer; its strategy gets its own generator from the
// node's.
func (n *Node) mixRNG() {
	var seed [32]byte
	crand.Read(seed[:])
	s, err := mix.New[*outPacket](n.cfg.mixConfig(), rand.New(rand.NewChaCha8(seed)))
	if err != nil {
		panic(err) // Validate checked the mixing config
	}
	n.mixer = mix.NewMixer(s, n.clock, n.forward)
}

// ID returns the node's ID (SHA-256 of its identity key).
func (n *Node) ID() mixnet.NodeID { return n.id }

// Geometry returns the packet geometry the node uses.
func (n *Node) Geometry() mixnet.Geometry { return n.geo }

// Identity returns the node's identity key (for a provider's sender
// certificates).
func (n *Node) Identity() ed25519.PrivateKey { return n.identity }

// LinkDH returns the X25519 shared secret of the node's link key and peer
// (for a provider: a key it shares with each of its users, derived by the
// mailbox). The link's private key does not leave the node.
func (n *Node) LinkDH(peer [32]byte) ([]byte, error) {
	return noise.DH25519.DH(n.linkKey.Private, peer[:])
}

// Send hands a packet this node made (a SURB reply, cover) to the link of
// the node with ID next. It fails if next is unknown or its queue is full.
func (n *Node) Send(next mixnet.NodeID, pkt []byte) error {
	if len(pkt) != n.geo.PacketSize() {
		return fmt.Errorf("relay: packet of %d bytes", len(pkt))
	}
	out, err := n.peers.get(next)
	if err != nil {
		n.m.dropped("unknown_next_hop").Inc()
		return err
	}
	if err := out.Send(pkt); err != nil {
		n.m.dropped("output_queue_full").Inc()
		return err
	}
	n.m.out.Inc()
	return nil
}

// Ready reports whether the node holds the document of the current epoch,
// and so knows where to forward.
func (n *Node) Ready() bool {
	_, ok := n.dir.Document(n.epoch())
	return ok
}

// Metrics returns the node's metric registry.
func (n *Node) Metrics() *metrics.Registry { return n.reg }

// now is the node's clock's time.
func (n *Node) now() time.Time { return n.clock.Now() }

func (n *Node) epoch() uint64 { return epochAt(n.now(), n.cfg.Directory.EpochPeriod.D()) }

func (n *Node) float() float64 {
	n.rngMu.Lock()
	defer n.rngMu.Unlock()
	return n.rng.Float64()
}

func (n *Node) expDuration(mean time.Duration) time.Duration {
	if mean <= 0 {
		return 0
	}
	n.rngMu.Lock()
	defer n.rngMu.Unlock()
	return min(time.Duration(n.rng.ExpFloat64()*float64(mean)), mixnet.MaxDelay)
}

// Run runs the node until ctx is done or one of its servers fails, then
// shuts down in order: stop taking packets, stop the workers, hand nothing
// further to the mixer, drop (and count) what the mixer holds, stop the
// links, sync and close the replay journals. Every goroutine it starts has
// ended when it returns.
//
// Run returns nil when ctx ends it. If the link listener's accept loop, the
// onion listener or the metrics server stops on its own, Run stops the
// whole node (the directory loop with it, so the node no longer publishes
// itself) and returns that error, wrapping it. On every path, early
// failures included, it closes what it or New opened: listeners, tor, the
// directory client and the replay journals. A Node runs once.
func (n *Node) Run(ctx context.Context) (err error) {
	defer func() { err = errors.Join(err, n.close()) }()
	ln := n.opts.Listener
	if ln == nil {
		if ln, err = net.Listen("tcp", n.cfg.Listen); err != nil {
			return fmt.Errorf("relay: listen: %w", err)
		}
	}
	defer ln.Close() // Serve closes it too; a second Close is harmless
	var mln net.Listener
	if n.cfg.Metrics != "" {
		if mln, err = net.Listen("tcp", n.cfg.Metrics); err != nil {
			return fmt.Errorf("relay: metrics listener: %w", err)
		}
		defer mln.Close()
	}
	var onion *torctl.Onion
	if n.onion != "" {
		t, o, err := n.startOnion(ctx)
		if err != nil {
			return err
		}
		defer t.Close()
		onion = o
	}
	n.selfBenchmark()
	n.log.Info("relay starting", "role", n.cfg.Role, "layer", n.cfg.Layer, "domain", n.cfg.Domain,
		"listen", ln.Addr().String(), "strategy", n.cfg.Mixing.Strategy, "epoch", n.epoch(), "workers", n.cfg.Limits.Workers)
	for _, k := range n.cfg.networkKeys() {
		n.log.Warn("configuration key ignored: the network's published parameter is used instead; remove the key",
			"key", k.key, "parameter", k.param)
	}

	// front owns the input side: the directory, epoch and cover loops and
	// the servers. The first of them to fail ends ctx for all of them.
	front := newOwner(ctx)
	ctx = front.ctx
	defer front.cancel()

	// Output side first, so that nothing the input side produces is lost.
	var back sync.WaitGroup
	backCtx, backCancel := context.WithCancel(context.Background())
	back.Go(func() { n.gate.run(backCtx, n.cfg.Limits.ReplaySync.D()) })
	var releaseDone sync.WaitGroup
	releaseDone.Go(func() { n.runReleaser(n.release) })
	mixCtx, mixCancel := context.WithCancel(context.Background())
	var mixDone sync.WaitGroup
	mixDone.Go(func() { n.mixer.Run(mixCtx) })

	front.loop(func() { n.directoryLoop(ctx) })
	front.loop(func() { n.epochLoop(ctx) })
	front.loop(func() { n.coverLoop(ctx) })
	if mln != nil {
		front.serve("metrics server", func() error { return metrics.Serve(ctx, mln, n.reg) })
	}
	listener := &link.Listener{
		Config:          n.linkConfig(),
		Kinds:           n.acceptedKinds(),
		Authorize:       n.authorize,
		MaxConns:        n.cfg.Limits.MaxConns,
		MaxConnsPerPeer: n.cfg.Limits.MaxConnsPerPeer,
		Handle:          n.route,
		Logger:          n.log,
	}
	front.serve("link listener", func() error { return listener.Serve(ctx, ln) })
	if onion != nil {
		front.serve("onion listener", func() error { return n.onionListener().Serve(ctx, onion) })
	}
	var workers sync.WaitGroup
	for range n.cfg.Limits.Workers {
		workers.Go(func() { n.worker(ctx) })
	}

	<-ctx.Done()
	runErr := front.err()
	if runErr != nil {
		n.log.Error("relay stopping: a server failed", "err", runErr)
	} else {
		n.log.Info("relay shutting down")
	}
	front.wait()
	workers.Wait()
	mixCancel()
	mixDone.Wait()
	n.release.close()
	releaseDone.Wait()
	if held := n.mixer.Drain(); len(held) > 0 {
		n.m.dropped("shutdown").Add(uint64(len(held)))
		n.log.Info("dropped packets still held for mixing", "count", len(held))
	}
	for range len(n.input) {
		<-n.input
		n.m.dropped("shutdown").Inc()
	}
	n.peers.closeAll()
	backCancel()
	back.Wait()
	n.log.Info("relay stopped")
	return runErr
}

// close releases what New opened: the directory client and the replay
// journals (synced first). It runs once, at the end of Run, whichever way
// Run ends; New calls it on its own failures.
func (n *Node) close() error {
	var err error
	n.closeOnce.Do(func() {
		if n.dir != nil {
			n.dir.Close()
		}
		if n.keys != nil {
			err = n.keys.close()
		}
	})
	return err
}

// owner runs a group of goroutines under one context: the first one to
// fail cancels it for all, and its error is the group's. A goroutine that
// ends after the context did has not failed, whatever it returns.
type owner struct {
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	first  error
}

func newOwner(parent context.Context) *owner {
	ctx, cancel := context.WithCancel(parent)
	return &owner{ctx: ctx, cancel: cancel}
}

// serve runs f, a server that returns only when the context ends or it
// fails; any return before the context ends is a failure of the group.
func (o *owner) serve(name string, f func() error) {
	o.wg.Go(func() {
		err := f()
		o.mu.Lock()
		defer o.mu.Unlock()
		if o.ctx.Err() != nil {
			return
		}
		if err == nil {
			err = errors.New("returned")
		}
		o.first = fmt.Errorf("relay: %s: %w", name, err)
		o.cancel()
	})
}

// loop runs f, a loop that cannot fail and returns when the context ends.
func (o *owner) loop(f func()) { o.wg.Go(f) }

// err returns the first failure, or nil if none (yet).
func (o *owner) err() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.first
}

// wait waits for every goroutine of the group.
func (o *owner) wait() { o.wg.Wait() }

func (n *Node) linkConfig() link.Config {
	return link.Config{Geometry: n.geo, Static: n.linkKey, Stats: n.links}
}

// acceptedKinds: every node takes peer links; entry mixes (layer 1) take
// client links (packets into the network); a provider with a mailbox
// service takes client and user links for it.
func (n *Node) acceptedKinds() []link.Kind {
	switch {
	case n.opts.ClientLinks != nil:
		return []link.Kind{link.KindPeer, link.KindClient, link.KindUser}
	case n.cfg.Layer == 1:
		return []link.Kind{link.KindPeer, link.KindClient}
	}
	return []link.Kind{link.KindPeer}
}

// startOnion starts (or attaches to) tor and publishes the link
// listener as an onion service, each step bounded by its timeout.
func (n *Node) startOnion(ctx context.Context) (*torctl.Tor, *torctl.Onion, error) {
	tc := n.cfg.Tor
	n.log.Info("starting tor for the onion service", "mode", tc.Mode, "address", n.onion)
	t, err := torctl.Open(ctx, tc.torctl(), n.log)
	if err != nil {
		return nil, nil, fmt.Errorf("relay: tor: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, tc.PublishTimeout.D())
	defer cancel()
	o, err := t.Listen(pctx, n.onionKey, tc.Port)
	if err != nil {
		t.Close()
		return nil, nil, fmt.Errorf("relay: onion service: %w", err)
	}
	return t, o, nil
}

// onionListener serves links that arrive through the onion service:
// client and user links only (relays use the direct address). Every one
// comes from tor on loopback, so the per-IP cap would be one cap for all
// Tor users; only the total cap applies.
func (n *Node) onionListener() *link.Listener {
	return &link.Listener{
		Config:          n.linkConfig(),
		Kinds:           []link.Kind{link.KindClient, link.KindUser},
		Authorize:       n.authorize,
		MaxConns:        n.cfg.Limits.MaxConns,
		MaxConnsPerPeer: n.cfg.Limits.MaxConns,
		Handle:          n.route,
		Logger:          n.log,
	}
}

// route hands a link to the mailbox service or to the packet pipeline.
func (n *Node) route(ctx context.Context, c *link.Conn) {
	if c.Kind() != link.KindPeer && n.opts.ClientLinks != nil {
		n.opts.ClientLinks(ctx, c)
		return
	}
	n.handleLink(ctx, c)
}

// authorize admits a peer link only from a link key in a document this
// node holds (previous, current or next epoch).
func (n *Node) authorize(kind link.Kind, static [32]byte, _ net.Addr) error {
	if kind != link.KindPeer {
		return nil // clients are anonymous; users are checked by the mailbox service
	}
	e := n.epoch()
	for _, x := range []uint64{e - 1, e, e + 1} {
		sd, ok := n.dir.Document(x)
		if !ok {
			continue
		}
		for _, d := range n.index(sd) {
			if d.LinkKey == static {
				return nil
			}
		}
	}
	return link.ErrUnauthorized
}

// handleLink reads packets from one link into the input queue. A full
// queue drops the packet (counted): overload never grows memory.
func (n *Node) handleLink(ctx context.Context, c *link.Conn) {
	for {
		p, err := c.ReadPacket()
		if err != nil {
			return
		}
		n.m.in.Inc()
		if len(n.input) == cap(n.input) {
			// Full: drop before copying, so a flood makes no garbage.
			n.m.dropped("input_queue_full").Inc()
			continue
		}
		buf := make([]byte, len(p))
		copy(buf, p)
		select {
		case n.input <- buf:
		default:
			n.m.dropped("input_queue_full").Inc()
		}
	}
}

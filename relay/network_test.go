package relay_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sealnet/sealnet/internal/clock"
	"github.com/sealnet/sealnet/internal/testbed/testnet"
	"github.com/sealnet/sealnet/mixnet"
	"github.com/sealnet/sealnet/mixnet/directory"
	"github.com/sealnet/sealnet/mixnet/link"
	"github.com/sealnet/sealnet/relay"
)

var geo = mixnet.DefaultGeometry()

// wire records, per accepted connection, every byte the dialer sent: what
// a link observer at this node sees arrive.
type wire struct {
	mu    sync.Mutex
	conns []*recConn
}

type recListener struct {
	net.Listener
	w *wire
}

func (l recListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	rc := &recConn{Conn: c}
	l.w.mu.Lock()
	l.w.conns = append(l.w.conns, rc)
	l.w.mu.Unlock()
	return rc, nil
}

type recConn struct {
	net.Conn
	mu  sync.Mutex
	buf bytes.Buffer
}

func (c *recConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	c.buf.Write(p[:n])
	c.mu.Unlock()
	return n, err
}

// checkFrames parses each recorded stream as a link observer would: one
// kind byte and a length-prefixed handshake message, then nothing but
// records of exactly 2 + FrameSize bytes announcing FrameSize.
func (w *wire) checkFrames(t *testing.T) (links, frames int) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	rec := 2 + link.FrameSize(geo)
	for i, c := range w.conns {
		c.mu.Lock()
		b := bytes.Clone(c.buf.Bytes())
		c.mu.Unlock()
		if len(b) < 3 {
			continue // closed before a handshake (a refused or idle connection)
		}
		hs := 1 + 2 + int(binary.BigEndian.Uint16(b[1:]))
		if len(b) < hs {
			continue
		}
		b = b[hs:]
		links++
		for len(b) >= 2 {
			if n := int(binary.BigEndian.Uint16(b)); n != link.FrameSize(geo) {
				t.Fatalf("connection %d: a record announces %d bytes, want %d", i, n, link.FrameSize(geo))
			}
			if len(b) < rec {
				break // the last frame is still arriving
			}
			b = b[rec:]
			frames++
		}
	}
	return links, frames
}

// deliveries records what providers deliver.
type deliveries struct {
	mu    sync.Mutex
	got   map[uint32][]string      // message index -> providers that delivered it
	at    map[uint32]time.Time     // message index -> when it was first delivered
	delay map[uint32]time.Duration // message index -> the delay its final hop asked for
	n     int
	now   func() time.Time // the network's clock: when at is stamped
}

type deliverer struct {
	name string
	d    *deliveries
}

func (d deliverer) Deliver(res *mixnet.Result) error {
	if !bytes.HasPrefix(res.Payload, []byte("sealnet-test")) {
		return nil
	}
	i := binary.BigEndian.Uint32(res.Payload[12:])
	d.d.mu.Lock()
	d.d.got[i] = append(d.d.got[i], d.name)
	if _, ok := d.d.at[i]; !ok {
		d.d.at[i], d.d.delay[i] = d.d.now(), res.Delay
	}
	d.d.n++
	d.d.mu.Unlock()
	return nil
}

func (d *deliveries) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.n
}

func message(i uint32) []byte {
	return binary.BigEndian.AppendUint32([]byte("sealnet-test"), i)
}

type network struct {
	nw   *testnet.Network
	p    *testnet.InProcess
	doc  *directory.SignedDocument
	wire *wire
	del  *deliveries
}

func startNetwork(t *testing.T, spec testnet.Spec, mod func(name string, cfg *relay.Config)) *network {
	t.Helper()
	return startNetworkOpts(t, spec, mod, nil, false)
}

func startNetworkSkip(t *testing.T, spec testnet.Spec, mod func(name string, cfg *relay.Config), skip map[string]bool) *network {
	t.Helper()
	return startNetworkOpts(t, spec, mod, skip, false)
}

// startNetworkOpts starts an in-process network; with record, every link's
// incoming bytes are kept for checkFrames.
func startNetworkOpts(t *testing.T, spec testnet.Spec, mod func(name string, cfg *relay.Config), skip map[string]bool, record bool) *network {
	t.Helper()
	var wrap func(*network, string, net.Listener) net.Listener
	if record {
		wrap = func(n *network, _ string, ln net.Listener) net.Listener { return recListener{ln, n.wire} }
	}
	return startNetworkListen(t, spec, mod, skip, wrap)
}

// startNetworkListen starts an in-process network whose node listeners
// wrap, if not nil, may replace.
func startNetworkListen(t *testing.T, spec testnet.Spec, mod func(name string, cfg *relay.Config), skip map[string]bool,
	wrap func(n *network, name string, ln net.Listener) net.Listener) *network {
	t.Helper()
	return startNetworkWith(t, spec, netOptions{mod: mod, skip: skip, wrap: wrap})
}

// netOptions are how a test's in-process network differs from the
// default one.
type netOptions struct {
	mod   func(name string, cfg *relay.Config) // changes a relay's configuration
	skip  map[string]bool                      // nodes and authorities not started
	wrap  func(n *network, name string, ln net.Listener) net.Listener
	clock clock.Clock // the authorities' and relays' clock; nil: clock.System()
}

func startNetworkWith(t *testing.T, spec testnet.Spec, o netOptions) *network {
	t.Helper()
	mod, skip, wrap := o.mod, o.skip, o.wrap
	nw, err := testnet.Create(t.TempDir(), spec)
	if err != nil {
		t.Fatal(err)
	}
	n := &network{nw: nw, wire: &wire{}, del: &deliveries{got: make(map[uint32][]string), at: make(map[uint32]time.Time), delay: make(map[uint32]time.Duration),
		now: clock.Or(o.clock).Now}}
	var listen func(string, net.Listener) net.Listener
	if wrap != nil {
		listen = func(name string, ln net.Listener) net.Listener { return wrap(n, name, ln) }
	}
	n.p, err = testnet.StartInProcess(nw, testnet.InProcessOptions{
		Listener:  listen,
		Deliverer: func(name string) relay.Deliverer { return deliverer{name, n.del} },
		Skip:      skip,
		Clock:     o.clock,
		Relay: func(name string, cfg *relay.Config) {
			cfg.Directory.Poll.UnmarshalText([]byte("200ms"))
			if mod != nil {
				mod(name, cfg)
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := n.p.Stop(); err != nil {
			t.Errorf("network stopped with: %v", err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if n.doc, err = n.p.WaitDocument(ctx); err != nil {
		t.Fatal(err)
	}
	n.waitReady(t)
	return n
}

// waitReady waits until every running node holds the current document.
func (n *network) waitReady(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for _, node := range n.nw.Nodes {
		r := n.p.Nodes[node.Name]
		for r != nil && !r.Ready() {
			if time.Now().After(deadline) {
				t.Fatalf("%s never got the document", node.Name)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

func (n *network) provider(t *testing.T, i int) *directory.Descriptor {
	t.Helper()
	return n.doc.Doc.Providers[i%len(n.doc.Doc.Providers)]
}

// metric reads one sample from a node's Prometheus exposition.
func metric(t *testing.T, node *relay.Node, series string) float64 {
	t.Helper()
	var b strings.Builder
	node.Metrics().WriteTo(&b)
	for _, line := range strings.Split(b.String(), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			var f float64
			fmt.Sscan(v, &f)
			return f
		}
	}
	t.Fatalf("no series %s", series)
	return 0
}

func waitFor(t *testing.T, what string, d time.Duration, cond func() bool, onFail ...func(*testing.T)) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			for _, f := range onFail {
				f(t)
			}
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// dump logs every node's nonzero packet counters, to show where packets
// went when a test fails.
func (n *network) dump(t *testing.T) {
	for name, node := range n.p.Nodes {
		var b strings.Builder
		node.Metrics().WriteTo(&b)
		var keep []string
		for _, line := range strings.Split(b.String(), "\n") {
			if strings.HasPrefix(line, "sealnet_packets") || strings.HasPrefix(line, "sealnet_link_handshakes") || strings.HasPrefix(line, "sealnet_mix_queue") {
				if !strings.HasSuffix(line, " 0") {
					keep = append(keep, line)
				}
			}
		}
		t.Logf("%s: %s", name, strings.Join(keep, "; "))
	}
	t.Logf("delivered: %d", n.del.count())
}

// TestNetworkDeliversEveryPacket: 1,000 packets cross a 3-layer network
// (3 x 2 mixes, 2 providers) on loopback with real TCP and Noise links:
// none lost, none duplicated, and every frame on every link the same size.
func TestNetworkDeliversEveryPacket(t *testing.T) {
	n := startNetworkOpts(t, testnet.Spec{EpochPeriod: time.Hour}, nil, nil, true)
	inj := testnet.NewInjector(n.doc.Doc)
	defer inj.Close()
	ctx := context.Background()
	const count = 1000
	for i := range uint32(count) {
		dest := n.provider(t, int(i))
		entry, pkt, err := inj.Packet(dest, mixnet.RecipientID{1, byte(i)}, message(i), 5*time.Millisecond) // the zero recipient is drop cover
		if err != nil {
			t.Fatal(err)
		}
		if len(pkt) != geo.PacketSize() {
			t.Fatalf("packet of %d bytes", len(pkt))
		}
		if err := inj.Send(ctx, entry, pkt); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "1000 deliveries", 60*time.Second, func() bool { return n.del.count() >= count }, n.dump)
	time.Sleep(200 * time.Millisecond) // a duplicate would arrive about now
	n.del.mu.Lock()
	for i := range uint32(count) {
		got := n.del.got[i]
		if len(got) != 1 {
			t.Fatalf("message %d delivered %d times", i, len(got))
		}
		if want := n.provider(t, int(i)).Name; got[0] != want {
			t.Fatalf("message %d delivered by %s, want %s", i, got[0], want)
		}
	}
	if n.del.n != count {
		t.Fatalf("%d deliveries for %d messages", n.del.n, count)
	}
	n.del.mu.Unlock()
	links, frames := n.wire.checkFrames(t)
	t.Logf("%d links carried %d frames, all of %d bytes", links, frames, 2+link.FrameSize(geo))
	if frames < 4*count {
		t.Fatalf("only %d frames recorded for %d packets over 4 links each", frames, count)
	}
	for name, node := range n.p.Nodes {
		for _, reason := range []string{"header_invalid", "replay", "unknown_next_hop", "input_queue_full", "output_queue_full"} {
			if v := metric(t, node, `sealnet_packets_dropped_total{reason="`+reason+`"}`); v != 0 {
				t.Errorf("%s dropped %v packets for %s", name, v, reason)
			}
		}
	}
}

// TestUnknownLinkKeyRefused: a node whose link key is in no directory
// document cannot open a peer link to a relay.
func TestUnknownLinkKeyRefused(t *testing.T) {
	n := startNetwork(t, testnet.Spec{EpochPeriod: time.Hour, Layers: 1, Width: 1, Providers: 1}, nil)
	target := n.doc.Doc.Layers[0][0]
	stranger, err := link.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := net.Dial("tcp", target.Address)
	if err != nil {
		t.Fatal(err)
	}
	_, err = link.Client(context.Background(), nc, link.Config{Geometry: geo, Static: stranger}, link.KindPeer, target.LinkKey)
	if !errors.Is(err, link.ErrUnauthorized) {
		t.Fatalf("got %v, want ErrUnauthorized", err)
	}
}

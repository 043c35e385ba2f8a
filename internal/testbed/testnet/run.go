package testnet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/sealnet/sealnet/internal/clock"
	"github.com/sealnet/sealnet/internal/testbed/tornet"
	"github.com/sealnet/sealnet/mailbox"
	"github.com/sealnet/sealnet/mixnet/directory"
	"github.com/sealnet/sealnet/mixnet/directory/authority"
	"github.com/sealnet/sealnet/relay"
)

// InProcess runs a network inside this process (for tests): the same
// daemons as the subprocesses, with real TCP listeners and Noise links.
type InProcess struct {
	Net         *Network
	Authorities []*authority.Server
	Nodes       map[string]*relay.Node
	Providers   map[string]*mailbox.Provider
	stops       map[string]func() error
	opts        InProcessOptions
	cancel      context.CancelFunc
	wg          sync.WaitGroup
	mu          sync.Mutex
	errs        []error
}

// InProcessOptions customise an in-process network.
type InProcessOptions struct {
	Logger *slog.Logger
	// Listener, if set, may wrap each node's listener (to observe links).
	Listener func(name string, ln net.Listener) net.Listener
	// Deliverer, if set, runs providers as plain relays with this
	// deliverer (relay-level tests); otherwise providers run with their
	// mailboxes.
	Deliverer func(name string) relay.Deliverer
	// Relay, if set, may change each relay's configuration.
	Relay func(name string, cfg *relay.Config)
	// Mailbox, if set, may change each provider's mailbox settings.
	Mailbox func(name string, s *mailbox.Settings)
	// Skip names nodes and authorities not to start.
	Skip map[string]bool
	// Clock, if set, is the clock of the authorities, the relays and the
	// providers' mailbox services (a RunningClock); nil is clock.System().
	Clock clock.Clock
}

// StartInProcess starts the network's authorities and nodes.
func StartInProcess(nw *Network, opts InProcessOptions) (*InProcess, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &InProcess{Net: nw, Nodes: make(map[string]*relay.Node), Providers: make(map[string]*mailbox.Provider),
		stops: make(map[string]func() error), opts: opts, cancel: cancel}
	fail := func(err error) (*InProcess, error) {
		p.Stop()
		return nil, err
	}
	for _, a := range nw.Authorities {
		if opts.Skip[a.Name] {
			continue
		}
		cfg, err := nw.AuthorityConfig(a)
		if err != nil {
			return fail(err)
		}
		s, err := authority.New(*cfg, authority.Options{Logger: log.With("authority", a.Name), Clock: opts.Clock})
		if err != nil {
			return fail(err)
		}
		ln, err := net.Listen("tcp", cfg.Listen)
		if err != nil {
			return fail(err)
		}
		p.Authorities = append(p.Authorities, s)
		actx, acancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		p.stops[a.Name] = func() error {
			acancel()
			return <-done
		}
		p.wg.Go(func() {
			err := s.Run(actx, ln)
			p.record(err)
			done <- err
		})
	}
	for _, n := range nw.Nodes {
		if opts.Skip[n.Name] {
			continue
		}
		if err := p.StartNode(n.Name); err != nil {
			return fail(err)
		}
	}
	return p, nil
}

// StartNode starts (or restarts, after StopNode) the named node.
func (p *InProcess) StartNode(name string) error {
	var n Node
	for _, x := range p.Net.Nodes {
		if x.Name == name {
			n = x
		}
	}
	if n.Name == "" {
		return fmt.Errorf("testnet: no node %q", name)
	}
	opts := p.opts
	cfg, err := p.Net.RelayConfig(n)
	if err != nil {
		return err
	}
	if opts.Relay != nil {
		opts.Relay(n.Name, cfg)
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return err
	}
	if opts.Listener != nil {
		ln = opts.Listener(n.Name, ln)
	}
	var run func(context.Context) error
	var node *relay.Node
	if n.Role == "provider" && opts.Deliverer == nil {
		mc, err := p.Net.MailboxConfig(n)
		if err != nil {
			ln.Close()
			return err
		}
		mc.Config = *cfg
		if opts.Mailbox != nil {
			opts.Mailbox(n.Name, &mc.Mailbox)
		}
		prov, err := mailbox.NewProvider(*mc, mailbox.Options{Logger: opts.Logger, Clock: opts.Clock, Relay: func(ro *relay.Options) { ro.Listener = ln }})
		if err != nil {
			ln.Close()
			return err
		}
		p.mu.Lock()
		p.Providers[n.Name] = prov
		p.mu.Unlock()
		node, run = prov.Node, prov.Run
	} else {
		ro := relay.Options{Logger: opts.Logger, Listener: ln, Clock: opts.Clock}
		if opts.Deliverer != nil {
			ro.Deliverer = opts.Deliverer(n.Name)
		}
		node, err = relay.New(*cfg, ro)
		if err != nil {
			ln.Close()
			return err
		}
		run = node.Run
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	p.mu.Lock()
	p.Nodes[n.Name] = node
	p.stops[n.Name] = func() error {
		cancel()
		return <-done
	}
	p.mu.Unlock()
	p.wg.Go(func() {
		err := run(ctx)
		p.record(err)
		done <- err
	})
	return nil
}

// Node returns the named relay or provider node as last started (nil if
// it never was); safe while nodes stop and start.
func (p *InProcess) Node(name string) *relay.Node {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.Nodes[name]
}

// StopNode stops the named node or authority and waits for it.
func (p *InProcess) StopNode(name string) error {
	p.mu.Lock()
	stop := p.stops[name]
	delete(p.stops, name)
	p.mu.Unlock()
	if stop == nil {
		return fmt.Errorf("testnet: node %q is not running", name)
	}
	err := stop()
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

func (p *InProcess) record(err error) {
	if err != nil && !errors.Is(err, context.Canceled) {
		p.mu.Lock()
		p.errs = append(p.errs, err)
		p.mu.Unlock()
	}
}

// Stop stops everything and waits for every goroutine.
func (p *InProcess) Stop() error {
	p.mu.Lock()
	stops := p.stops
	p.stops = map[string]func() error{}
	p.mu.Unlock()
	for _, stop := range stops {
		stop()
	}
	p.cancel()
	p.wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	return errors.Join(p.errs...)
}

// WaitDocument polls the authorities until a document for the current
// epoch verifies, or ctx ends.
func (nw *Network) WaitDocument(ctx context.Context) (*directory.SignedDocument, error) {
	return nw.waitDocument(ctx, clock.System())
}

// WaitDocument is Network.WaitDocument for the epoch current by the
// network's clock (InProcessOptions.Clock).
func (p *InProcess) WaitDocument(ctx context.Context) (*directory.SignedDocument, error) {
	return p.Net.waitDocument(ctx, clock.Or(p.opts.Clock))
}

func (nw *Network) waitDocument(ctx context.Context, c clock.Clock) (*directory.SignedDocument, error) {
	dc, err := nw.DirClient("")
	if err != nil {
		return nil, err
	}
	defer dc.Close()
	for {
		e := directory.EpochAt(c.Now(), nw.Spec.EpochPeriod)
		sd, err := dc.Fetch(ctx, e)
		if err == nil {
			return sd, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("testnet: no document for epoch %d: %w (last error: %v)", e, ctx.Err(), err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Up runs the network as subprocesses of exe (the sealnet binary): one per
// authority and node, each logging to logs/NAME.log. It waits for the
// first document, writes it to directory/, prints a summary to w, and
// runs until ctx ends; then it stops every process (SIGTERM, then SIGKILL
// after 10 s) and waits for them.
func Up(ctx context.Context, nw *Network, exe string, w io.Writer) error {
	logDir := nw.Path("logs")
	if err := os.MkdirAll(logDir, 0o700); err != nil {
		return err
	}
	type proc struct {
		name string
		cmd  *exec.Cmd
		done chan struct{} // closed when the process has exited
		err  error         // its exit status, valid once done is closed
	}
	exited := make(chan *proc, 64)
	var procs []*proc
	start := func(name string, args ...string) error {
		f, err := os.OpenFile(filepath.Join(logDir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return err
		}
		cmd := exec.Command(exe, args...)
		cmd.Stdout, cmd.Stderr = f, f
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // our SIGINT is ours to forward
		if err := cmd.Start(); err != nil {
			f.Close()
			return fmt.Errorf("start %s: %w", name, err)
		}
		p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
		go func() {
			p.err = cmd.Wait()
			f.Close()
			close(p.done)
			select {
			case exited <- p:
			default:
			}
		}()
		procs = append(procs, p)
		return nil
	}
	stopAll := func() {
		for _, p := range procs {
			p.cmd.Process.Signal(syscall.SIGTERM)
		}
		deadline := time.After(10 * time.Second)
		for _, p := range procs {
			select {
			case <-p.done:
			case <-deadline:
				p.cmd.Process.Kill()
				<-p.done
			}
		}
	}
	if nw.Spec.Tor {
		fmt.Fprintf(w, "testnet: starting a private Tor network on loopback in %s\n", nw.Path(TorDir))
		tn, err := tornet.Start(ctx, tornet.Options{Dir: nw.Path(TorDir)})
		if err != nil {
			return err
		}
		defer tn.Close()
		flags := fmt.Sprintf("--tor attach --tor-control %s --tor-socks %s", tn.ControlAddr, tn.SocksAddr)
		if err := os.WriteFile(nw.Path(filepath.Join(TorDir, "attach-flags")), []byte(flags+"\n"), 0o644); err != nil {
			return err
		}
		fmt.Fprintf(w, "testnet: Tor network bootstrapped in %v; clients use it with:\n  %s\n  (also in %s)\n",
			tn.Bootstrap.Round(time.Millisecond), flags, nw.Path(filepath.Join(TorDir, "attach-flags")))
	}
	for _, a := range nw.Authorities {
		if err := start(a.Name, "dirauth", "--config", nw.Path(a.Config)); err != nil {
			stopAll()
			return err
		}
	}
	for _, n := range nw.Nodes {
		cmd := "relay"
		if n.Role == "provider" {
			cmd = "mailbox"
		}
		if err := start(n.Name, cmd, "--config", nw.Path(n.Config)); err != nil {
			stopAll()
			return err
		}
	}
	fmt.Fprintf(w, "testnet: started %d authorities and %d nodes on loopback; logs in %s\n", len(nw.Authorities), len(nw.Nodes), logDir)

	wait := 2*nw.Spec.EpochPeriod/4 + 90*time.Second
	if nw.Spec.Tor {
		wait += 2 * time.Minute // providers publish their onion services first
	}
	wctx, cancel := context.WithTimeout(ctx, wait)
	sd, err := nw.WaitDocument(wctx)
	cancel()
	if err != nil {
		stopAll()
		return fmt.Errorf("%w; see the logs in %s", err, logDir)
	}
	b, err := sd.Marshal()
	if err == nil {
		path := nw.Path(filepath.Join("directory", "document-"+strconv.FormatUint(sd.Doc.Epoch, 10)+".bin"))
		if err = os.MkdirAll(filepath.Dir(path), 0o755); err == nil {
			err = os.WriteFile(path, b, 0o644)
		}
	}
	if err != nil {
		stopAll()
		return err
	}
	fmt.Fprintf(w, "testnet: network document for epoch %d is signed and published (directory/)\n", sd.Doc.Epoch)
	pr := sd.Doc.Params()
	fmt.Fprintf(w, "testnet: network parameters: mean delay %v per hop (at most %v), clients %g packets/s, fetch every %v, provider hold %v, relay loops %g/s\n",
		pr.MeanDelay, pr.MaxDelay, pr.ClientRate, pr.FetchInterval, pr.ProviderHold, pr.RelayLoopRate)
	for _, a := range nw.Authorities {
		fmt.Fprintf(w, "  %-12s %s  sealnet dirauth --config %s\n", a.Name, a.URL, nw.Path(a.Config))
	}
	for _, n := range nw.Nodes {
		cmd := "relay"
		if n.Role == "provider" {
			cmd = "mailbox"
		}
		fmt.Fprintf(w, "  %-12s %s  sealnet %s --config %s\n", n.Name, n.Address, cmd, nw.Path(n.Config))
		for _, d := range sd.Doc.Providers {
			if d.Name == n.Name && d.Onion != "" {
				fmt.Fprintf(w, "  %-12s %s  (onion service)\n", "", d.Onion)
			}
		}
	}
	fmt.Fprintln(w, "testnet: running; press Ctrl-C to stop")

	select {
	case <-ctx.Done():
	case p := <-exited:
		stopAll()
		return fmt.Errorf("testnet: %s exited on its own (%v); see %s", p.name, p.err, filepath.Join(logDir, p.name+".log"))
	}
	stopAll()
	fmt.Fprintln(w, "testnet: stopped")
	return nil
}

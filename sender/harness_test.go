package sender_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/sealnet/sealnet/internal/testbed/testnet"
	"github.com/sealnet/sealnet/mailbox"
	"github.com/sealnet/sealnet/mixnet/directory"
	"github.com/sealnet/sealnet/relay"
	"github.com/sealnet/sealnet/sender"
)

var (
	pass    = []byte("correct horse battery staple")
	fastKDF = sender.KDFParams{Time: 1, Memory: 8 << 10, Threads: 1}
)

// testSettings keep few prekeys; fetch --wait is short.
func testSettings() sender.Settings {
	s := sender.DefaultSettings()
	s.FetchWait = time.Second
	s.OneTimePrekeys, s.PQPrekeys = 5, 3
	return s
}

// testParams are the test networks' parameters: they send quickly so that
// tests finish in seconds; the retransmission logic is the same as with
// the defaults. Every packet brings a reply and a fetch takes at most a
// page of them, so fetching is as fast as sending (the directory requires
// it).
func testParams() directory.Parameters {
	p := directory.DefaultParameters()
	p.ClientRate, p.FetchInterval = 10, 100*time.Millisecond
	p.MeanDelay, p.ProviderHold = 5*time.Millisecond, 50*time.Millisecond
	p.AckTimeout, p.RetryJitter = 3*time.Second, 500*time.Millisecond
	return p
}

// network is an in-process testnet whose providers run their mailboxes.
type network struct {
	nw *testnet.Network
	p  *testnet.InProcess
}

// startNetwork starts an in-process testnet; started hooks run before it
// waits for the first document (to start nodes of the test's own).
func startNetwork(t *testing.T, o testnet.InProcessOptions, started ...func(*testnet.Network)) *network {
	t.Helper()
	nw, err := testnet.Create(t.TempDir(), testnet.Spec{Parameters: testParams()})
	if err != nil {
		t.Fatal(err)
	}
	return startCreated(t, nw, o, 60*time.Second, started...)
}

// startCreated starts a created network and waits up to wait for its
// document and for every node to hold it.
func startCreated(t *testing.T, nw *testnet.Network, o testnet.InProcessOptions, wait time.Duration, started ...func(*testnet.Network)) *network {
	t.Helper()
	relayMod := o.Relay
	o.Relay = func(name string, c *relay.Config) {
		c.Directory.Poll.UnmarshalText([]byte("200ms"))
		if relayMod != nil {
			relayMod(name, c)
		}
	}
	mbMod := o.Mailbox
	o.Mailbox = func(name string, s *mailbox.Settings) {
		if mbMod != nil {
			mbMod(name, s)
		}
	}
	if o.Logger == nil && testing.Verbose() {
		o.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	p, err := testnet.StartInProcess(nw, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Stop(); err != nil {
			t.Errorf("network stopped with: %v", err)
		}
	})
	for _, f := range started {
		f(nw)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if _, err := nw.WaitDocument(ctx); err != nil {
		t.Fatal(err)
	}
	for _, n := range nw.Nodes {
		if o.Skip[n.Name] {
			continue
		}
		for node := p.Nodes[n.Name]; !node.Ready(); time.Sleep(20 * time.Millisecond) {
			if ctx.Err() != nil {
				t.Fatalf("%s never got the document", n.Name)
			}
		}
	}
	return &network{nw: nw, p: p}
}

func (n *network) initOptions(addr string) sender.InitOptions {
	var auths []sender.AuthorityState
	for _, a := range n.nw.Authorities {
		auths = append(auths, sender.AuthorityState{URL: a.URL, Key: a.Key})
	}
	s := testSettings()
	return sender.InitOptions{Address: addr, Authorities: auths, Threshold: n.nw.Spec.Threshold,
		EpochPeriod: n.nw.Spec.EpochPeriod, Settings: &s, KDF: &fastKDF}
}

// user is a client running its Poisson stream in the background.
type user struct {
	t      *testing.T
	dir    string
	c      *sender.Client
	cancel context.CancelFunc
	done   chan struct{}

	mu     sync.Mutex
	events []sender.Event
}

// newUser creates, registers and starts a client for addr.
// mod changes the network's parameters as this one client uses them (a
// test's deviant client).
func (n *network) newUser(t *testing.T, addr string, o sender.Options, mod ...func(*directory.Parameters)) *user {
	t.Helper()
	u := n.initUser(t, addr)
	if len(mod) > 0 {
		o.Params = func(p *directory.Parameters) {
			for _, m := range mod {
				m(p)
			}
		}
	}
	u.open(o)
	u.register()
	u.start()
	return u
}

// initUser creates the identity of a user without opening it.
func (n *network) initUser(t *testing.T, addr string) *user {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "home")
	io := n.initOptions(addr)
	if err := sender.Init(dir, pass, io); err != nil {
		t.Fatal(err)
	}
	return &user{t: t, dir: dir}
}

func (u *user) register() {
	u.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := u.c.Register(ctx); err != nil {
		u.t.Fatalf("register %s: %v", u.c.Address(), err)
	}
}

func (u *user) open(o sender.Options) {
	u.t.Helper()
	if o.Logger == nil && testing.Verbose() {
		o.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})).With("user", filepath.Base(filepath.Dir(u.dir)))
	}
	c, err := sender.Open(u.dir, pass, o)
	if err != nil {
		u.t.Fatal(err)
	}
	u.c = c
}

// start runs the client until stop (registered as a cleanup).
func (u *user) start() {
	ctx, cancel := context.WithCancel(context.Background())
	u.cancel, u.done = cancel, make(chan struct{})
	evs := u.c.Events()
	go func() {
		defer close(u.done)
		runDone := make(chan struct{})
		go func() {
			defer close(runDone)
			u.c.Run(ctx, nil)
		}()
		for {
			select {
			case e := <-evs:
				u.mu.Lock()
				u.events = append(u.events, e)
				u.mu.Unlock()
			case <-runDone:
				return
			}
		}
	}()
	u.t.Cleanup(u.stop)
}

// stop ends Run and closes the client; it can be called more than once.
func (u *user) stop() {
	if u.cancel == nil {
		return
	}
	u.cancel()
	<-u.done
	u.cancel = nil
	u.c.Close()
}

// waitEvent waits for an event matching ok, for at most d.
func (u *user) waitEvent(d time.Duration, ok func(sender.Event) bool) (sender.Event, bool) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		u.mu.Lock()
		for _, e := range u.events {
			if ok(e) {
				u.mu.Unlock()
				return e, true
			}
		}
		u.mu.Unlock()
		time.Sleep(50 * time.Millisecond)
	}
	return sender.Event{}, false
}

// received returns the messages received so far.
func (u *user) received() []*sender.Message {
	u.mu.Lock()
	defer u.mu.Unlock()
	var out []*sender.Message
	for _, e := range u.events {
		if e.Kind == sender.EventReceived {
			out = append(out, e.Message)
		}
	}
	return out
}

func (u *user) send(to, body string) string {
	u.t.Helper()
	id, err := u.c.Queue(to, []byte(body), sender.RouteMix)
	if err != nil {
		u.t.Fatalf("queue: %v", err)
	}
	return id
}

// waitOutcome waits for the delivered or failed event of message id.
func (u *user) waitOutcome(id string, d time.Duration) sender.Event {
	u.t.Helper()
	e, ok := u.waitEvent(d, func(e sender.Event) bool {
		return e.ID == id && (e.Kind == sender.EventDelivered || e.Kind == sender.EventFailed)
	})
	if !ok {
		u.t.Fatalf("no outcome for message %s within %v; outbox: %+v", id, d, u.c.Outbox())
	}
	return e
}

func (u *user) waitMessage(body string, d time.Duration) *sender.Message {
	u.t.Helper()
	e, ok := u.waitEvent(d, func(e sender.Event) bool { return e.Kind == sender.EventReceived && e.Message.Body == body })
	if !ok {
		u.t.Fatalf("message %q not received within %v", body, d)
	}
	return e.Message
}

package sender_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sealnet/sealnet/internal/testbed/testnet"
	"github.com/sealnet/sealnet/internal/testbed/tornet"
	"github.com/sealnet/sealnet/internal/torctl"
	"github.com/sealnet/sealnet/relay"
	"github.com/sealnet/sealnet/sender"
)

// needTor skips when there is no tor binary, unless SEALNET_REQUIRE_TOR=1
// (CI sets it), where a missing tor is a failure.
func needTor(t *testing.T) {
	t.Helper()
	if _, err := torctl.FindBinary(""); err != nil {
		if os.Getenv("SEALNET_REQUIRE_TOR") == "1" {
			t.Fatalf("SEALNET_REQUIRE_TOR=1 but: %v", err)
		}
		t.Skipf("no tor binary (%v); CI installs it and sets SEALNET_REQUIRE_TOR=1", err)
	}
}

// report appends a line to $SEALNET_TOR_REPORT (CI prints it: go test
// hides a passing test's output).
func report(t *testing.T, line string) {
	t.Log(line)
	if p := os.Getenv("SEALNET_TOR_REPORT"); p != "" {
		f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			t.Errorf("report: %v", err)
			return
		}
		fmt.Fprintln(f, line)
		f.Close()
	}
}

// countingConn counts the bytes of one connection.
type countingConn struct {
	net.Conn
	mu      *sync.Mutex
	w, r    int
	onClose func(w, r int)
	closed  bool
}

func (c *countingConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.mu.Lock()
	c.w += n
	c.mu.Unlock()
	return n, err
}

func (c *countingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.mu.Lock()
	c.r += n
	c.mu.Unlock()
	return n, err
}

func (c *countingConn) Close() error {
	c.mu.Lock()
	if !c.closed {
		c.closed = true
		c.onClose(c.w, c.r)
	}
	c.mu.Unlock()
	return c.Conn.Close()
}

// TestTorPath runs a private Tor network on loopback beside the mix
// network; providers publish onion services on it. Alice, on Tor, sends to
// Bob straight to his provider's onion service (keys fetched there too),
// and Bob, on Tor, fetches from his provider's onion service. Then Alice
// sends through the mix network with her entry link over Tor. Then Bob's
// provider goes away: Alice's message stays queued with a clear reason,
// and is delivered once the provider (same onion address) is back.
func TestTorPath(t *testing.T) {
	needTor(t)
	if testing.Short() {
		t.Skip("starts a private Tor network (~30 s)")
	}
	t.Parallel() // mostly waits for tor; runs beside TestLoopAlarm, which mostly waits too
	nw, err := testnet.Create(t.TempDir(), testnet.Spec{Tor: true, Providers: 2, Parameters: testParams()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	began := time.Now()
	tn, err := tornet.Start(ctx, tornet.Options{Dir: nw.Path(testnet.TorDir)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tn.Close() })
	t.Logf("private Tor network: client bootstrapped in %v", tn.Bootstrap.Round(time.Millisecond))

	shorten := func(name string, c *relay.Config) {
		c.Tor.BootstrapTimeout.UnmarshalText([]byte("90s"))
		c.Tor.PublishTimeout.UnmarshalText([]byte("90s"))
	}
	n := startCreated(t, nw, testnet.InProcessOptions{Relay: shorten}, 3*time.Minute)
	t.Logf("mix network up with onion services after %v", time.Since(began).Round(time.Millisecond))
	doc, err := nw.WaitDocument(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range doc.Doc.Providers {
		if p.Onion == "" {
			t.Fatalf("provider %s has no onion address in the directory", p.Name)
		}
	}

	// Both users use the network's client tor (attach mode).
	tr, err := torctl.Open(ctx, torctl.Config{Mode: torctl.ModeAttach, Control: tn.ControlAddr, Socks: tn.SocksAddr, Bootstrap: time.Minute}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	// A fresh onion service takes a while to be found (descriptor
	// upload, then the client's lookup); wait until each answers.
	for _, p := range doc.Doc.Providers {
		t2 := time.Now()
		for i := 0; ; i++ {
			dctx, dcancel := context.WithTimeout(ctx, 30*time.Second)
			c, err := tr.Dial(dctx, "tcp", p.Onion)
			dcancel()
			if err == nil {
				c.Close()
				break
			}
			if i == 10 || ctx.Err() != nil {
				t.Fatalf("onion service of %s unreachable: %v", p.Name, err)
			}
			time.Sleep(time.Second)
		}
		t.Logf("%s's onion service answered after %v", p.Name, time.Since(t2).Round(time.Millisecond))
	}
	var mu sync.Mutex
	type size struct{ w, r int }
	var onionConns []size
	var bobsProvider string
	for _, p := range doc.Doc.Providers {
		if p.Domain == "b" {
			bobsProvider = p.Onion
		}
	}
	// Count the connections to Bob's provider (Alice's own provider's
	// user link goes through the same dialer).
	onionDial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := tr.Dial(ctx, network, addr)
		if err != nil || addr != bobsProvider {
			return c, err
		}
		return &countingConn{Conn: c, mu: &mu, onClose: func(w, r int) { onionConns = append(onionConns, size{w, r}) }}, nil
	}
	torOpts := sender.Options{Dial: tr.Dial, ProviderDial: tr.Dial, DirectoryDial: tr.Dial, ProviderOnion: true, OnionDial: tr.Dial}
	aliceOpts := torOpts
	aliceOpts.OnionDial = onionDial
	alice := n.newUser(t, "alice@a", aliceOpts)
	bob := n.newUser(t, "bob@b", torOpts)

	// (a) + (c): deliver to the onion service, fetch over Tor.
	t0 := time.Now()
	id, err := alice.c.Queue("bob@b", []byte("over the onion"), sender.RouteOnion)
	if err != nil {
		t.Fatal(err)
	}
	if e := alice.waitOutcome(id, 2*time.Minute); e.Kind != sender.EventDelivered {
		t.Fatalf("onion route: %s: %s", e.Kind, e.Text)
	}
	acked := time.Since(t0)
	m := bob.waitMessage("over the onion", 2*time.Minute)
	onionLatency := time.Since(t0)
	if m.From != "alice@a" || !m.Verified {
		t.Fatalf("bob got %+v", m)
	}
	mu.Lock()
	sizes := slices.Clone(onionConns)
	mu.Unlock()
	if len(sizes) < 2 {
		t.Fatalf("%d onion connections recorded, want a bundle request and a delivery", len(sizes))
	}
	for _, s := range sizes[1:] {
		if s != sizes[0] {
			t.Fatalf("onion connections differ in size: %v (a request or answer is not constant-size)", sizes)
		}
	}

	// (b): through the mix network, entering over Tor.
	t1 := time.Now()
	id = alice.send("bob@b", "through the mixes")
	if e := alice.waitOutcome(id, 2*time.Minute); e.Kind != sender.EventDelivered {
		t.Fatalf("mix route over Tor: %s: %s", e.Kind, e.Text)
	}
	bob.waitMessage("through the mixes", 2*time.Minute)
	mixLatency := time.Since(t1)
	t.Logf("onion route: acknowledged in %v, read by the recipient over Tor in %v; each connection %d bytes up, %d down (%d connections)",
		acked.Round(time.Millisecond), onionLatency.Round(time.Millisecond), sizes[0].w, sizes[0].r, len(sizes))
	t.Logf("mix route (entry over Tor): read by the recipient in %v", mixLatency.Round(time.Millisecond))
	report(t, fmt.Sprintf("tor: private network bootstrapped in %v; onion route %v, mix route entering over Tor %v (queue to read, one run)",
		tn.Bootstrap.Round(time.Millisecond), onionLatency.Round(time.Millisecond), mixLatency.Round(time.Millisecond)))

	// Unreachable onion service: nothing lost.
	if err := n.p.StopNode("provider-b"); err != nil {
		t.Fatal(err)
	}
	id, err = alice.c.Queue("bob@b", []byte("while you were away"), sender.RouteOnion)
	if err != nil {
		t.Fatal(err)
	}
	var detail string
	for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline) && detail == ""; time.Sleep(200 * time.Millisecond) {
		for _, o := range alice.c.Outbox() {
			if o.Route == sender.RouteOnion && strings.Contains(o.Detail, "not delivered yet") {
				detail = o.Detail
			}
		}
	}
	if detail == "" {
		t.Fatalf("no failed attempt recorded; outbox: %+v", alice.c.Outbox())
	}
	if !strings.Contains(detail, ".onion") {
		t.Fatalf("the reason does not name the onion service: %q", detail)
	}
	t.Logf("while the provider is down: %q", detail)
	if _, ok := alice.waitEvent(10*time.Millisecond, func(e sender.Event) bool { return e.ID == id }); ok {
		t.Fatal("the message was settled while the provider was down")
	}
	if err := n.p.StartNode("provider-b"); err != nil {
		t.Fatal(err)
	}
	if e := alice.waitOutcome(id, 3*time.Minute); e.Kind != sender.EventDelivered {
		t.Fatalf("after the provider came back: %s: %s", e.Kind, e.Text)
	}
	bob.waitMessage("while you were away", 2*time.Minute)
}

// TestOnionRouteNeedsTor: asking for the onion route without a way to
// reach onion services is refused at once, and nothing is queued.
func TestOnionRouteNeedsTor(t *testing.T) {
	n := startNetwork(t, testnet.InProcessOptions{})
	alice := n.newUser(t, "alice@a", sender.Options{})
	if _, err := alice.c.Queue("bob@b", []byte("x"), sender.RouteOnion); !errors.Is(err, sender.ErrNoTor) {
		t.Fatalf("Queue(onion) without Tor = %v, want ErrNoTor", err)
	}
	if len(alice.c.Outbox()) != 0 {
		t.Fatal("a refused message was queued")
	}
}

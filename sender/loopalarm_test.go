package sender_test

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sealnet/sealnet/internal/testbed/testnet"
	"github.com/sealnet/sealnet/sender"
)

// TestCoverReturns checks sender.CoverReturns against the client: every
// cover packet it sends brings a reply back into its mailbox (the
// simulator's client.cover = "returns"). Over an undisturbed run nearly
// every cover packet sent more than a round trip ago is back.
func TestCoverReturns(t *testing.T) {
	var covers atomic.Int64
	n := startNetwork(t, testnet.InProcessOptions{})
	alice := n.newUser(t, "alice@a", sender.Options{Filter: func(kind string, _ []byte) bool {
		if kind == "cover" {
			covers.Add(1)
		}
		return true
	}})
	time.Sleep(6 * time.Second)
	sent := covers.Load()
	time.Sleep(3 * time.Second) // a round trip (testParams: about a second) and more
	back := alice.c.Stats().LoopsBack
	t.Logf("cover packets sent in 6 s: %d; replies back 3 s later: %d", sent, back)
	if !sender.CoverReturns {
		if back != 0 {
			t.Fatalf("!CoverReturns, but %d cover replies came back", back)
		}
		return
	}
	if sent < 20 || float64(back) < 0.9*float64(sent) {
		t.Fatalf("CoverReturns, but %d cover packets brought %d replies back", sent, back)
	}
}

// TestLoopAlarm: a client whose cover stops coming back (here its entry
// link drops every cover packet, as an adversary blocking it would drop
// everything) tells its user within a bounded time, and says so again
// when the cover comes back; the control, the same client undisturbed,
// says nothing.
func TestLoopAlarm(t *testing.T) {
	t.Parallel() // a minute of waiting for the alarm; runs beside TestTorPath
	var drop atomic.Bool
	n := startNetwork(t, testnet.InProcessOptions{})
	alice := n.newUser(t, "alice@a", sender.Options{Filter: func(kind string, _ []byte) bool {
		return kind != "cover" || !drop.Load()
	}})
	alarm := func(e sender.Event) bool { return e.Kind == sender.EventWarning && e.ID == "" }
	if e, ok := alice.waitEvent(12*time.Second, alarm); ok {
		t.Fatalf("undisturbed, the loop alarm went off: %s", e.Text)
	}
	drop.Store(true)
	start := time.Now()
	e, ok := alice.waitEvent(40*time.Second, alarm)
	if !ok {
		t.Fatal("no loop alarm 40 s after the cover stopped coming back")
	}
	t.Logf("alarm %v after the drops began: %s", time.Since(start).Round(100*time.Millisecond), e.Text)
	if !strings.Contains(e.Text, "did not come back") {
		t.Errorf("the alarm does not say what happened: %q", e.Text)
	}
	drop.Store(false)
	start = time.Now()
	if e, ok := alice.waitEvent(60*time.Second, func(e sender.Event) bool { return e.Kind == sender.EventNotice }); !ok {
		t.Error("the alarm did not clear within 60 s of the cover coming back")
	} else {
		t.Logf("cleared %v after the drops ended: %s", time.Since(start).Round(100*time.Millisecond), e.Text)
	}
}

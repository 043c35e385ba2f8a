package sender_test

import (
	"fmt"
	"math"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sealnet/sealnet/internal/testbed/testnet"
	"github.com/sealnet/sealnet/mailbox"
	"github.com/sealnet/sealnet/mixnet/directory"
	"github.com/sealnet/sealnet/sender"
)

const rateLimited = `sealnet_mailbox_rejected_total{reason="rate_limited"}`

// TestBurstToNewContactDelivered is issue 16 item 12, as a new user met
// it: a burst of first-contact messages, more than the recipient's
// provider takes from strangers at once (unsolicited_per_minute, here 60:
// a burst of 60 deliveries and one a second after; a first-contact
// message is two fragments, two deliveries). The provider refuses the rest
// "rate limited, retry after 1 s"; the sender tries them again when it
// said, in its Poisson stream, without counting the refusals as attempts
// (max_attempts is 1 here, so that a refusal counted as one ends the
// message at once, as five did for the user). Every message ends
// delivered, and Bob is shown each once. Before the fix the refused ones
// ended "NOT delivered … (last answer: the recipient's provider is busy:
// rate limited)".
func TestBurstToNewContactDelivered(t *testing.T) {
	const burst, n = 60, 33
	net := startNetwork(t, testnet.InProcessOptions{Mailbox: func(name string, s *mailbox.Settings) {
		s.UnsolicitedPerMinute = burst
	}})
	var emitted atomic.Int64 // every packet Alice sends, real or cover
	const rate = 20
	alice := net.newUser(t, "alice@a", sender.Options{Filter: func(string, []byte) bool { emitted.Add(1); return true }},
		func(p *directory.Parameters) { p.ClientRate, p.MaxAttempts = rate, 1 })
	bob := net.newUser(t, "bob@b", sender.Options{})
	start, before := time.Now(), emitted.Load()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = alice.send("bob@b", fmt.Sprintf("message %d of the burst", i))
	}
	var failed []string
	for _, id := range ids {
		if e := alice.waitOutcome(id, 60*time.Second); e.Kind != sender.EventDelivered {
			failed = append(failed, e.Text)
		}
	}
	took := time.Since(start)
	sent := emitted.Load() - before
	refused := nodeCounter(t, net, rateLimited)
	t.Logf("%d messages to a new contact: all settled in %v; the provider refused %d deliveries for now; Alice sent %d packets (λ·t = %.0f)",
		n, took.Round(time.Millisecond), refused, sent, rate*took.Seconds())
	// The retries took slots of the Poisson stream: no more packets than
	// it carries (six standard deviations above λ·t).
	if mean := rate * took.Seconds(); float64(sent) > mean+6*math.Sqrt(mean)+1 {
		t.Errorf("Alice sent %d packets in %v, more than her stream of %d a second carries", sent, took, rate)
	}
	if len(failed) > 0 {
		t.Fatalf("%d of %d messages NOT delivered, e.g. %q", len(failed), n, failed[0])
	}
	if refused == 0 {
		t.Fatalf("the provider refused nothing: the burst did not reach its limit, the test shows nothing")
	}
	for i := range n {
		bob.waitMessage(fmt.Sprintf("message %d of the burst", i), 30*time.Second)
	}
}

// TestRefusedUntilExpired: a message the recipient's provider keeps
// refusing for now (unsolicited_per_minute 2: the first message's two
// fragments take the minute's allowance, the next one is refused, retry
// after half a minute) is tried until its TTL (5 s here) and then
// reported NOT delivered as expired, with the provider's last answer;
// the one before it was delivered.
func TestRefusedUntilExpired(t *testing.T) {
	net := startNetwork(t, testnet.InProcessOptions{Mailbox: func(name string, s *mailbox.Settings) {
		s.UnsolicitedPerMinute = 2
	}})
	const ttl = 5 * time.Second
	alice := net.newUser(t, "alice@a", sender.Options{MessageTTL: ttl})
	net.newUser(t, "bob@b", sender.Options{})
	first := alice.send("bob@b", "the first of the minute")
	if e := alice.waitOutcome(first, 30*time.Second); e.Kind != sender.EventDelivered {
		t.Fatalf("first message: %s (%s)", e.Kind, e.Text)
	}
	start := time.Now()
	second := alice.send("bob@b", "one too many")
	e := alice.waitOutcome(second, 30*time.Second)
	t.Logf("second message: %s after %v more: %q", e.Kind, time.Since(start).Round(time.Millisecond), e.Text)
	if e.Kind != sender.EventFailed || !strings.Contains(e.Text, "expired") || !strings.Contains(e.Text, "rate limited") {
		t.Fatalf("second message: %s %q; want NOT delivered, expired, with the last answer (rate limited)", e.Kind, e.Text)
	}
	if nodeCounter(t, net, rateLimited) == 0 {
		t.Fatal("the provider refused nothing")
	}
}

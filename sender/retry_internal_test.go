package sender

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sealnet/sealnet/internal/clock"
	"github.com/sealnet/sealnet/mailbox/proto"
)

// offlineClient is a registered client with no network: its outbox is
// driven by hand, on the clock it returns.
func offlineClient(t *testing.T) (*Client, func(time.Duration)) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "home")
	err := Init(dir, []byte("pass"), InitOptions{Address: "alice@a", Threshold: 1,
		Authorities: []AuthorityState{{URL: "http://127.0.0.1:9", Key: strings.Repeat("00", 32)}},
		KDF:         &KDFParams{Time: 1, Memory: 8 << 10, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	clk := clock.NewManual(time.Unix(2_000_000_000, 0))
	c, err := Open(dir, []byte("pass"), Options{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.st.Registered = true
	return c, clk.Advance
}

// sending puts a one-fragment message in the outbox, transmitted once
// through SURB "s1".
func (c *Client) sendingLocked() (*Outgoing, *OutFragment) {
	now := c.now()
	f := &OutFragment{EnvelopeID: make([]byte, 16), Blob: []byte("fragment"), Attempts: 1, SURB: "s1",
		NextAt: now.Add(c.net().AckTimeout)}
	o := &Outgoing{ID: make([]byte, 16), To: "bob@b", Created: now, Status: StatusSending, Fragments: []*OutFragment{f}}
	c.st.Outbox = append(c.st.Outbox, o)
	return o, f
}

// outcome is the delivered or failed event emitted so far, if any.
func outcome(c *Client) (Event, bool) {
	for {
		select {
		case e := <-c.events:
			if e.Kind == EventDelivered || e.Kind == EventFailed {
				return e, true
			}
		default:
			return Event{}, false
		}
	}
}

// TestPermanentRefusalEndsAtOnce: a refusal that is final (bad request,
// unauthorized) ends the message NOT delivered at once, with the
// provider's answer, though attempts remain. No provider of this version
// answers a well-formed delivery so, which is why this is driven here and
// not through a network.
func TestPermanentRefusalEndsAtOnce(t *testing.T) {
	for _, code := range []proto.StatusCode{proto.StatusBadRequest, proto.StatusUnauthorized} {
		c, _ := offlineClient(t)
		c.mu.Lock()
		o, _ := c.sendingLocked()
		c.ackLocked(o, 0, "s1", &proto.Status{Code: code, Detail: "envelope too large"})
		c.mu.Unlock()
		c.maintain()
		e, ok := outcome(c)
		if !ok || e.Kind != EventFailed || !strings.Contains(e.Text, "refused it: "+code.String()) || !strings.Contains(e.Text, "envelope too large") {
			t.Fatalf("%v: outcome %v %+v; want NOT delivered at once with the answer", code, ok, e)
		}
	}
}

// TestRefusalsAreNotAttempts: transient refusals do not use up
// MaxAttempts (5): one after another until the TTL (17 in 24 h), they
// leave the message waiting, each retry at least what the provider asked
// and at least doubling; the TTL then ends it as expired, once no
// transmission awaits an answer. Silence still ends it after MaxAttempts
// unanswered transmissions.
func TestRefusalsAreNotAttempts(t *testing.T) {
	c, advance := offlineClient(t)
	c.mu.Lock()
	o, f := c.sendingLocked()
	c.mu.Unlock()
	waited := time.Duration(0)
	for k := 1; k <= 20; k++ {
		c.mu.Lock()
		c.ackLocked(o, 0, f.SURB, &proto.Status{Code: proto.StatusRateLimited, RetryAfter: 2 * time.Second})
		wait := f.NextAt.Sub(c.now())
		floor := max(2*time.Second, refusalBase<<(k-1))
		if !f.Later || f.Refused != k || wait < min(floor, MessageTTL) || wait > min(floor, MessageTTL)+c.net().RetryJitter {
			c.mu.Unlock()
			t.Fatalf("refusal %d: later %v, refused %d, next in %v; want %v plus jitter", k, f.Later, f.Refused, wait, floor)
		}
		c.mu.Unlock()
		c.maintain()
		if e, ok := outcome(c); ok {
			t.Fatalf("refusal %d ended the message: %+v", k, e)
		}
		if waited+wait >= MessageTTL {
			break
		}
		advance(wait)
		waited += wait
		c.mu.Lock()
		f.Attempts++ // what fragmentPacketLocked does when it goes again
		f.SURB, f.Later, f.NextAt = "s"+string(rune('a'+k)), false, c.now().Add(c.net().AckTimeout)
		c.mu.Unlock()
	}
	advance(MessageTTL)
	c.maintain()
	e, ok := outcome(c)
	if !ok || e.Kind != EventFailed || !strings.Contains(e.Text, "expired") || !strings.Contains(e.Text, "rate limited") {
		t.Fatalf("after the TTL: %v %+v; want expired with the last answer", ok, e)
	}

	// Silence: MaxAttempts unanswered transmissions end it, refusals aside.
	c2, advance2 := offlineClient(t)
	c2.mu.Lock()
	_, g := c2.sendingLocked()
	g.Refused, g.Attempts = 3, 3+c2.net().MaxAttempts
	c2.mu.Unlock()
	advance2(c2.net().AckTimeout)
	c2.maintain()
	if e, ok := outcome(c2); !ok || e.Kind != EventFailed || !strings.Contains(e.Text, "after 5 attempts") {
		t.Fatalf("after 5 unanswered transmissions: %v %+v", ok, e)
	}
	if got := MaxRefusedTransmissions(MessageTTL); got != 16 {
		t.Fatalf("MaxRefusedTransmissions(24h) = %d, want 16", got)
	}
}

// TestOutboxBounded: the outbox takes at most MaxOutbox messages and
// MaxOutboxBytes; beyond, Queue says so at once (ErrOutboxFull).
func TestOutboxBounded(t *testing.T) {
	c, _ := offlineClient(t)
	c.mu.Lock()
	for range MaxOutbox - 1 {
		c.st.Outbox = append(c.st.Outbox, &Outgoing{ID: make([]byte, 16), To: "bob@b", Status: StatusBundle, Body: []byte("x")})
	}
	c.mu.Unlock()
	if _, err := c.Queue("bob@b", []byte("the last one that fits"), RouteMix); err != nil {
		t.Fatalf("message %d: %v", MaxOutbox, err)
	}
	if _, err := c.Queue("bob@b", []byte("one too many"), RouteMix); !errors.Is(err, ErrOutboxFull) {
		t.Fatalf("message %d: %v, want ErrOutboxFull", MaxOutbox+1, err)
	}
	c2, _ := offlineClient(t)
	c2.mu.Lock()
	c2.st.Outbox = append(c2.st.Outbox, &Outgoing{ID: make([]byte, 16), To: "bob@b", Status: StatusBundle, Body: make([]byte, MaxOutboxBytes-10)})
	c2.mu.Unlock()
	if _, err := c2.Queue("bob@b", make([]byte, 100), RouteMix); !errors.Is(err, ErrOutboxFull) {
		t.Fatalf("over %d bytes: %v, want ErrOutboxFull", MaxOutboxBytes, err)
	}
}

package sender

import (
	"errors"
	"fmt"
	"time"

	"github.com/sealnet/sealnet/mailbox/proto"
)

// Deliver or alert (docs/client.md §5). A message is retried until it is
// acknowledged, and reported "not delivered" only when it cannot arrive:
//
//   - a permanent refusal by the recipient's provider (bad request,
//     unauthorized, …): at once, with the provider's answer;
//   - silence: MaxAttempts transmissions of one fragment (or bundle
//     request) that nothing answered, the bound an adversary that
//     withholds acknowledgements meets (docs/sim.md §3.8);
//   - its TTL (MessageTTL, counted from when it was queued) passed with
//     no transmission still awaiting an answer: "expired".
//
// A transient refusal (proto.StatusCode.Transient: rate limited, quota
// full, unavailable) is an answer, not silence: it does not count against
// MaxAttempts. The fragment goes again after what the provider asked
// (Status.RetryAfter), and at least refusalBase·2^(k−1) after its k-th
// refusal, plus the network's RetryJitter; the retry takes a slot of the
// Poisson stream like any packet, so it adds no packet to the stream and
// no burst. The doubling bounds what a provider that keeps refusing can
// make a sender transmit within the TTL: at most
// ⌊log2(MessageTTL/refusalBase + 1)⌋ retransmissions after refusals (16
// for 24 h, MaxRefusedTransmissions), so at most MaxAttempts + 16
// transmissions of one fragment in all.

// MessageTTL is how long the client keeps trying to deliver a message
// (Options.MessageTTL changes it). It is the lifetime of the SURB keys an
// acknowledgement needs (newSURBLocked): an answer after it could not be
// opened anyway.
const MessageTTL = 24 * time.Hour

// refusalBase is the least wait after a fragment's first transient
// refusal; the k-th waits at least refusalBase·2^(k−1).
const refusalBase = time.Second

// MaxRefusedTransmissions is the most retransmissions of one fragment
// that transient refusals can bring about within ttl: the waits at least
// double from refusalBase, so the k-th retransmission after a refusal
// leaves no earlier than refusalBase·(2^k − 1) after the first refusal. The simulator's
// adversary.refuse_acks model uses it (docs/sim.md §3.8).
func MaxRefusedTransmissions(ttl time.Duration) int {
	k := 0
	for total := time.Duration(0); k < 62; k++ {
		total += refusalBase << k
		if total > ttl {
			break
		}
	}
	return k
}

// Outbox bounds: messages waiting to be delivered, and the bytes they
// hold (bodies before sealing, fragments after), so that a user who
// writes faster than the network takes the messages is told at once
// instead of the state growing without end.
const (
	MaxOutbox      = 256
	MaxOutboxBytes = 8 << 20
)

// ErrOutboxFull: the outbox holds MaxOutbox messages or MaxOutboxBytes;
// try again when some are delivered.
var ErrOutboxFull = errors.New("sender: the outbox is full; try again once some messages are delivered")

// ttl is the message TTL in force.
func (c *Client) ttl() time.Duration {
	if c.opts.MessageTTL > 0 {
		return c.opts.MessageTTL
	}
	return MessageTTL
}

// outboxFullLocked reports whether a message of n bytes does not fit.
func (c *Client) outboxFullLocked(n int) bool {
	msgs, bytes := 0, n
	for _, o := range c.st.Outbox {
		if o.Reported {
			continue
		}
		msgs++
		bytes += len(o.Body)
		for _, f := range o.Fragments {
			bytes += len(f.Blob)
		}
	}
	return msgs >= MaxOutbox || bytes > MaxOutboxBytes
}

// refusalWait is the wait after the k-th (k ≥ 1) transient refusal of one
// fragment or bundle request: what the provider asked (a provider of an
// older version says nothing: then AckTimeout, the pace of before), at
// least refusalBase·2^(k−1), at most the TTL, plus jitter.
func (c *Client) refusalWait(s Settings, k int, st *proto.Status) time.Duration {
	after := st.RetryAfter
	if after <= 0 {
		after = s.AckTimeout
	}
	floor := refusalBase << min(max(k-1, 0), 40)
	return min(max(after, floor), c.ttl()) + c.jitter(s.RetryJitter)
}

// refusedLocked records a transient refusal of one transmission of o (a
// fragment's or a bundle request's counters): counted as answered, and
// sent again after refusalWait. latest says the refusal answers the last
// transmission; an earlier one's refusal leaves the later one's timer
// running.
func (c *Client) refusedLocked(o *Outgoing, st *proto.Status, refused *int, next *time.Time, later *bool, latest bool) {
	*refused++
	at := c.now().Add(c.refusalWait(c.netSettings(c.st.Settings), *refused, st))
	if latest {
		*next, *later = at, true
	} else if at.After(*next) {
		*next = at
	}
	o.Detail = "the recipient's provider said later: " + st.Code.String()
}

// refusalText is the reason shown for a permanent refusal.
func refusalText(st *proto.Status) string {
	why := "the recipient's provider refused it: " + st.Code.String()
	if st.Detail != "" {
		why += " (" + st.Detail + ")"
	}
	return why
}

// expiredText is the reason shown for a message whose TTL passed.
func (c *Client) expiredText(o *Outgoing) string {
	why := fmt.Sprintf("expired: not acknowledged within %v", c.ttl())
	if o.Detail != "" {
		why += " (last answer: " + o.Detail + ")"
	}
	return why
}

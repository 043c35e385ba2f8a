package mailbox

import (
	"testing"
	"time"

	"github.com/sealnet/sealnet/mailbox/proto"
)

// TestRetryAfterFromLimiter: a refusal by a rate limit says when the
// bucket holds a token again, from the bucket alone (on the wire:
// proto.TestRetryAfterOnTheWire).
func TestRetryAfterFromLimiter(t *testing.T) {
	l := newLimiter(10)
	t0 := time.Unix(1_000_000, 0)
	mb := proto.MailboxOf("bob@a")
	for i := range 10 {
		if ok, _ := l.allowWait("unsolicited", mb, 10, time.Minute, t0); !ok {
			t.Fatalf("take %d of a burst of 10 refused", i+1)
		}
	}
	for _, c := range []struct {
		at   time.Duration
		want time.Duration
	}{{0, 6 * time.Second}, {2 * time.Second, 4 * time.Second}, {5500 * time.Millisecond, 500 * time.Millisecond}} {
		ok, wait := l.allowWait("unsolicited", mb, 10, time.Minute, t0.Add(c.at))
		if ok || (wait-c.want).Abs() > time.Millisecond {
			t.Fatalf("at +%v: allowed %v, retry after %v; want refused, %v", c.at, ok, wait, c.want)
		}
	}
	if ok, _ := l.allowWait("unsolicited", mb, 10, time.Minute, t0.Add(6*time.Second)); !ok {
		t.Fatal("refused when the retry-after said a token would be back")
	}
	if ok, wait := l.allowWait("unsolicited", mb, 0, time.Minute, t0); ok || wait != time.Minute {
		t.Fatalf("a limit of 0: %v, %v", ok, wait)
	}
}

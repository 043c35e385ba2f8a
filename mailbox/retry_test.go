package mailbox

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

// TestRetryAfterFromLimiter: a refusal by a rate limit says when the
// bucket holds a token again, from the bucket alone; on the wire it is
// whole seconds, rounded up, and a status without one keeps the old
// encoding (type 0x81), so what older clients parse is unchanged.
func TestRetryAfterFromLimiter(t *testing.T) {
	l := newLimiter(10)
	t0 := time.Unix(1_000_000, 0)
	mb := MailboxOf("bob@a")
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

	st := &Status{Code: StatusRateLimited, RetryAfter: 500 * time.Millisecond}
	b := Marshal(st)
	got, err := Unmarshal(b)
	if err != nil || b[0] != typeStatusRetry || got.(*Status).RetryAfter != time.Second {
		t.Fatalf("500 ms on the wire: % x -> %+v, %v; want type 0x84 and 1 s", b[:3], got, err)
	}
	if b := Marshal(&Status{Code: StatusRateLimited}); b[0] != typeStatus {
		t.Fatalf("a status without retry-after encodes as type 0x%02x", b[0])
	}
	zero := bytes.Clone(b)
	zero[18], zero[19] = 0, 0 // retry after 0 s under type 0x84
	if _, err := Unmarshal(zero); !errors.Is(err, ErrMalformed) {
		t.Fatalf("retry after 0 s accepted: %v", err)
	}
}

// TestTransientCodes: the refusals that mean "later" and those that are
// final.
func TestTransientCodes(t *testing.T) {
	for c := range statusMax {
		want := c == StatusQuotaFull || c == StatusRateLimited || c == StatusUnavailable
		if c.Transient() != want {
			t.Errorf("%v: transient %v", c, c.Transient())
		}
	}
}

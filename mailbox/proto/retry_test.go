package proto

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

// TestRetryAfterOnTheWire: a retry-after is whole seconds on the wire,
// rounded up, and a status without one keeps the old encoding (type
// 0x81), so what older clients parse is unchanged.
func TestRetryAfterOnTheWire(t *testing.T) {
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

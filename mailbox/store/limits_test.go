package store

import (
	"testing"
	"time"
)

// TestLimitsDefaults: the zero Limits are the documented defaults
// (docs/mailbox.md §8), and those are within their own ranges.
func TestLimitsDefaults(t *testing.T) {
	want := Limits{TTL: 30 * 24 * time.Hour, MaxEnvelopes: 10_000, MaxBytes: 64 << 20, BatchSize: 256, GCInterval: 10 * time.Minute, MaxPhantoms: 1_000_000}
	if got := (Limits{}).WithDefaults(); got != want || DefaultLimits() != want {
		t.Fatalf("defaults %+v, want %+v", got, want)
	}
	if err := want.Check(nil); err != nil {
		t.Fatal(err)
	}
	set := Limits{TTL: time.Hour, MaxEnvelopes: 1, MaxBytes: 2048, BatchSize: 1, GCInterval: time.Millisecond, MaxPhantoms: 1}
	if got := set.WithDefaults(); got != set {
		t.Fatalf("set limits changed: %+v", got)
	}
}

// TestLimitsCheck: every limit out of its range is refused, named.
func TestLimitsCheck(t *testing.T) {
	for _, c := range []struct {
		mod  func(*Limits)
		want string
	}{
		{func(l *Limits) { l.TTL = time.Hour - 1 }, "TTL 59m59.999999999s is under an hour"},
		{func(l *Limits) { l.TTL = MaxTTL + 1 }, "TTL 87600h0m0.000000001s is over 10 years"},
		{func(l *Limits) { l.MaxEnvelopes = 0 }, "MaxEnvelopes and MaxBytes must hold at least one envelope"},
		{func(l *Limits) { l.MaxBytes = 2047 }, "MaxEnvelopes and MaxBytes must hold at least one envelope"},
		{func(l *Limits) { l.BatchSize = MaxBatchSize + 1 }, "BatchSize 4097 is outside 1..4096"},
		{func(l *Limits) { l.BatchSize = 0 }, "BatchSize 0 is outside 1..4096"},
		{func(l *Limits) { l.GCInterval = -time.Second }, "GCInterval -1s is not positive"},
		{func(l *Limits) { l.MaxPhantoms = -1 }, "MaxPhantoms -1 is not positive"},
	} {
		l := DefaultLimits()
		c.mod(&l)
		if err := l.Check(nil); err == nil || err.Error() != c.want {
			t.Errorf("got %v, want %q", err, c.want)
		}
	}
}

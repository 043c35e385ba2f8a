package directory

import (
	"math"
	"testing"
	"time"
)

func TestEpochBoundaries(t *testing.T) {
	periods := []time.Duration{time.Second, 1500 * time.Millisecond, 20 * time.Minute, time.Hour, MaxPeriod, 7 * time.Nanosecond}
	epochs := []uint64{0, 1, 2, 3, 1_416_666, 1 << 32, 1 << 40}
	for _, p := range periods {
		for _, e := range epochs {
			start := EpochStart(e, p)
			if start.Location() != time.UTC {
				t.Fatalf("EpochStart(%d, %v) is not UTC", e, p)
			}
			if start.Year() > 200_000 {
				continue // saturated; checked below
			}
			if got := EpochAt(start, p); got != e {
				t.Fatalf("period %v: EpochAt(EpochStart(%d)) = %d", p, e, got)
			}
			if got := EpochAt(start.Add(p-1), p); got != e {
				t.Fatalf("period %v: last instant of epoch %d is in %d", p, e, got)
			}
			if got := EpochAt(start.Add(p), p); got != e+1 {
				t.Fatalf("period %v: first instant after epoch %d is in %d", p, e, got)
			}
			if e > 0 {
				if got := EpochAt(start.Add(-1), p); got != e-1 {
					t.Fatalf("period %v: instant before epoch %d is in %d", p, e, got)
				}
			}
			if d := EpochStart(e+1, p).Sub(start); d != p {
				t.Fatalf("period %v: epoch %d lasts %v", p, e, d)
			}
		}
	}
}

func TestEpochKnownValues(t *testing.T) {
	cases := []struct {
		t      time.Time
		period time.Duration
		want   uint64
	}{
		{time.Unix(0, 0), time.Hour, 0},
		{time.Unix(3599, 999_999_999), time.Hour, 0},
		{time.Unix(3600, 0), time.Hour, 1},
		{time.Unix(1_700_000_000, 0), 20 * time.Minute, 1_700_000_000 / 1200},
		{time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), 24 * time.Hour, 20454},
		// The time zone of t does not matter.
		{time.Date(2026, 1, 1, 1, 0, 0, 0, time.FixedZone("CET", 3600)), 24 * time.Hour, 20454},
		// Before the genesis: epoch 0.
		{time.Unix(-1, 0), time.Hour, 0},
		{time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC), time.Second, 0},
		// Beyond uint64 epochs: saturates.
		{time.Unix(maxUnix, 0), time.Nanosecond, math.MaxUint64},
	}
	for _, c := range cases {
		if got := EpochAt(c.t, c.period); got != c.want {
			t.Errorf("EpochAt(%v, %v) = %d, want %d", c.t, c.period, got, c.want)
		}
	}
	if got := EpochStart(20454, 24*time.Hour); !got.Equal(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("EpochStart(20454, 24h) = %v", got)
	}
}

func TestEpochStartSaturates(t *testing.T) {
	last := EpochStart(math.MaxUint64, MaxPeriod)
	if last.Unix() != maxUnix || !last.After(EpochStart(1<<40, MaxPeriod)) {
		t.Fatalf("EpochStart(max) = %v (unix %d)", last, last.Unix())
	}
	// 2^64-1 ns after 1970 is representable: not saturated.
	if got := EpochStart(math.MaxUint64, time.Nanosecond); !got.Equal(time.Unix(18446744073, 709551615)) {
		t.Fatalf("EpochStart(max, 1ns) = %v", got)
	}
}

func TestEpochPanicsOnBadPeriod(t *testing.T) {
	for _, f := range []func(){
		func() { EpochAt(time.Now(), 0) },
		func() { EpochAt(time.Now(), -time.Second) },
		func() { EpochStart(1, 0) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Fatal("no panic")
				}
			}()
			f()
		}()
	}
}

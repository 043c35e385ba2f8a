package mix

import (
	"testing"
	"time"
)

// The benchmarks run each strategy in steady state on a virtual clock that
// advances 1 µs per operation (one Add, then one Release), with a packet
// ([]byte) as the value, as in a relay. Every item added also leaves, so
// ns/op is the cost per packet through the strategy.

const benchStep = time.Microsecond

func benchStrategy(b *testing.B, cfg Config, delay func(i int) time.Duration) {
	s, err := New[[]byte](cfg, detRand(1))
	if err != nil {
		b.Fatal(err)
	}
	pkt := make([]byte, 2577)
	now := t0
	var buf [][]byte
	i := 0
	op := func() {
		now = now.Add(benchStep)
		if err := s.Add(now, Item[[]byte]{Value: pkt, Arrived: now, Delay: delay(i)}); err != nil {
			b.Fatal(err)
		}
		buf = s.Release(now, buf[:0])
		i++
	}
	for range 100_000 { // reach the steady state: slices grown, pool full
		op()
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		op()
	}
}

// BenchmarkPoissonAddRelease: exponential delays with mean 1 ms, so about
// 1,000 items are held.
func BenchmarkPoissonAddRelease(b *testing.B) {
	rng := detRand(2)
	delays := make([]time.Duration, 4096)
	for i := range delays {
		delays[i] = time.Duration(rng.ExpFloat64() * float64(time.Millisecond))
	}
	benchStrategy(b, Config{Kind: Poisson, Capacity: 1 << 16, MaxDelay: 10 * time.Millisecond},
		func(i int) time.Duration { return delays[i%len(delays)] })
}

// BenchmarkThresholdAddRelease: batches of 64.
func BenchmarkThresholdAddRelease(b *testing.B) {
	benchStrategy(b, Config{Kind: Threshold, Capacity: 64, N: 64},
		func(int) time.Duration { return 0 })
}

// BenchmarkTimedPoolAddRelease: a tick every millisecond, so about 1,000
// arrivals per tick, keeping 100.
func BenchmarkTimedPoolAddRelease(b *testing.B) {
	benchStrategy(b, Config{Kind: TimedPool, Capacity: 4096, Interval: time.Millisecond, Keep: 100},
		func(int) time.Duration { return 0 })
}

// TestPoissonNoAllocs holds the package to its claim that Poisson does not
// allocate per Add in steady state (nor do the others).
func TestPoissonNoAllocs(t *testing.T) {
	for _, cfg := range []Config{
		{Kind: Poisson, Capacity: 1 << 12, MaxDelay: time.Millisecond},
		{Kind: Threshold, Capacity: 16, N: 16},
		{Kind: TimedPool, Capacity: 4096, Interval: time.Millisecond, Keep: 10},
	} {
		s := mustNew(t, cfg, 1)
		now := t0
		var buf []int
		i := 0
		op := func() {
			now = now.Add(benchStep)
			d := time.Duration(i*7919%1000) * time.Microsecond // periodic: a true steady state
			if err := s.Add(now, Item[int]{Value: i, Arrived: now, Delay: d}); err != nil {
				t.Fatal(err)
			}
			buf = s.Release(now, buf[:0])
			i++
		}
		for range 10_000 {
			op()
		}
		if a := testing.AllocsPerRun(10_000, op); a != 0 {
			t.Errorf("%s: %.3f allocations per Add+Release in steady state", cfg.Kind, a)
		}
	}
}

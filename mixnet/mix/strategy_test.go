package mix

import (
	"errors"
	"slices"
	"testing"
	"time"
)

// kinds has one small configuration of every strategy.
var kinds = []Config{
	{Kind: Poisson, Capacity: 5, MaxDelay: time.Second},
	{Kind: Threshold, Capacity: 5, N: 3},
	{Kind: TimedPool, Capacity: 5, Interval: time.Second, Keep: 1},
}

func TestFullAndDrain(t *testing.T) {
	for _, cfg := range kinds {
		t.Run(string(cfg.Kind), func(t *testing.T) {
			s := mustNew(t, cfg, 1)
			var in []int
			for i := range cfg.Capacity {
				mustAdd(t, s, t0, Item[int]{Value: i, Arrived: t0, Delay: time.Duration(i) * time.Millisecond})
				in = append(in, i)
			}
			err := s.Add(t0, Item[int]{Value: 99, Arrived: t0})
			if !errors.Is(err, ErrFull) {
				t.Fatalf("Add at capacity: got %v, want ErrFull", err)
			}
			if s.Len() != cfg.Capacity {
				t.Fatalf("Len %d after a refused Add, want %d", s.Len(), cfg.Capacity)
			}
			got := s.Drain([]int{-1})
			if got[0] != -1 || !isPermutation(got[1:], in) {
				t.Fatalf("Drain returned %v, want -1 then %v in any order", got, in)
			}
			if s.Len() != 0 {
				t.Fatalf("Len %d after Drain", s.Len())
			}
			if next, ok := s.Next(); ok {
				t.Fatalf("Next = %v after Drain", next)
			}
			if got := s.Release(t0.Add(time.Hour), nil); len(got) != 0 {
				t.Fatalf("Release after Drain returned %v", got)
			}
			if got := s.Drain(nil); len(got) != 0 {
				t.Fatalf("second Drain returned %v", got)
			}
			// Room again: the strategy works after a Drain.
			for i := range cfg.Capacity {
				mustAdd(t, s, t0.Add(time.Hour), Item[int]{Value: i, Arrived: t0.Add(time.Hour)})
			}
			if err := s.Add(t0, Item[int]{}); !errors.Is(err, ErrFull) {
				t.Fatalf("Add at capacity after Drain: got %v, want ErrFull", err)
			}
			if got := s.Release(t0.Add(2*time.Hour), nil); len(got) == 0 {
				t.Fatal("nothing released after refilling")
			}
			if err := s.Add(t0.Add(2*time.Hour), Item[int]{Arrived: t0.Add(2 * time.Hour)}); err != nil {
				t.Fatalf("Add after a release freed room: %v", err)
			}
		})
	}
}

// TestDrainOrder pins down the documented order of drained items.
func TestDrainOrder(t *testing.T) {
	s := mustNew(t, Config{Kind: Poisson, Capacity: 10, MaxDelay: time.Second}, 1)
	for i, d := range []int{5, 1, 4, 2, 3} {
		mustAdd(t, s, t0, Item[int]{Value: i, Arrived: t0, Delay: time.Duration(d)})
	}
	if got, want := s.Drain(nil), []int{1, 3, 4, 2, 0}; !sameInts(got, want) {
		t.Fatalf("Poisson drained %v, want due order %v", got, want)
	}
	s = mustNew(t, Config{Kind: Threshold, Capacity: 10, N: 4}, 1)
	for i := range 6 {
		mustAdd(t, s, t0, Item[int]{Value: i})
	}
	if got, want := s.Drain(nil), []int{0, 1, 2, 3, 4, 5}; !sameInts(got, want) {
		t.Fatalf("Threshold drained %v, want arrival order %v", got, want)
	}
}

// script drives s with a fixed pseudo-random workload and records every
// release as (step, value) pairs.
func script(tb testing.TB, s Strategy[int]) [][2]int {
	tb.Helper()
	in := detRand(100) // the workload, independent of the strategy's rng
	now := t0
	var out [][2]int
	var buf []int
	v := 0
	for step := range 3000 {
		now = now.Add(time.Duration(in.IntN(50)) * time.Millisecond)
		if in.IntN(3) > 0 {
			err := s.Add(now, Item[int]{Value: v, Arrived: now, Delay: time.Duration(in.IntN(400)) * time.Millisecond})
			if err != nil && !errors.Is(err, ErrFull) {
				tb.Fatal(err)
			}
			v++
		}
		buf = s.Release(now, buf[:0])
		for _, x := range buf {
			out = append(out, [2]int{step, x})
		}
	}
	for _, x := range s.Drain(nil) {
		out = append(out, [2]int{-1, x})
	}
	return out
}

func TestDeterminism(t *testing.T) {
	for _, cfg := range []Config{
		{Kind: Poisson, Capacity: 20, MaxDelay: 300 * time.Millisecond},
		{Kind: Threshold, Capacity: 20, N: 8},
		{Kind: TimedPool, Capacity: 20, Interval: 200 * time.Millisecond, Keep: 4},
	} {
		t.Run(string(cfg.Kind), func(t *testing.T) {
			a := script(t, mustNew(t, cfg, 5))
			b := script(t, mustNew(t, cfg, 5))
			if len(a) < 1000 {
				t.Fatalf("only %d items came out; the workload is too light", len(a))
			}
			if !slices.Equal(a, b) {
				t.Fatal("same seed and inputs gave different outputs")
			}
			c := script(t, mustNew(t, cfg, 6))
			if cfg.Kind != Poisson && slices.Equal(a, c) {
				t.Fatal("another seed gave the same outputs: rng is not used")
			}
			if cfg.Kind == Poisson && !slices.Equal(a, c) {
				t.Fatal("Poisson output depends on the seed, but it makes no random choice")
			}
		})
	}
}

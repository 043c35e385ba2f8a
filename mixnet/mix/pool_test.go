package mix

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func wantNext(tb testing.TB, s Strategy[int], want time.Time) {
	tb.Helper()
	if got, ok := s.Next(); !ok || !got.Equal(want) {
		tb.Fatalf("Next = %v, %v; want %v", got, ok, want)
	}
}

func wantNoNext(tb testing.TB, s Strategy[int]) {
	tb.Helper()
	if got, ok := s.Next(); ok {
		tb.Fatalf("Next = %v with Len %d; want none", got, s.Len())
	}
}

func TestTimedPoolTicks(t *testing.T) {
	const iv = 10 * time.Second
	start := t0 // ticks at t0 + k·10s
	s := mustNew(t, Config{Kind: TimedPool, Capacity: 20, Interval: iv, Keep: 2, Start: start}, 1)
	at := func(d time.Duration) time.Time { return start.Add(d) }
	v := 0
	add := func(now time.Time, k int) {
		for range k {
			mustAdd(t, s, now, Item[int]{Value: v})
			v++
		}
	}

	add(at(1*time.Second), 2)
	wantNoNext(t, s) // Len == Keep
	if got := s.Release(at(time.Hour), nil); len(got) != 0 {
		t.Fatalf("released %v with Len == Keep", got)
	}
	// The Release above processed the tick at t0+1h: the next is t0+1h+10s.
	add(at(time.Hour+2*time.Second), 1)
	tick := at(time.Hour + iv)
	wantNext(t, s, tick)
	if got := s.Release(tick.Add(-1), nil); len(got) != 0 {
		t.Fatalf("released %v before the tick", got)
	}
	got := s.Release(tick, nil)
	if len(got) != 1 || s.Len() != 2 {
		t.Fatalf("at the tick released %v, Len %d; want 1 out, 2 kept", got, s.Len())
	}
	wantNoNext(t, s)
	if got := s.Release(tick, nil); len(got) != 0 {
		t.Fatalf("the same tick processed twice: %v", got)
	}

	// All but Keep leave at each tick.
	add(tick.Add(time.Second), 5)
	wantNext(t, s, tick.Add(iv))
	got = s.Release(tick.Add(iv), nil)
	if len(got) != 5 || s.Len() != 2 {
		t.Fatalf("released %d, Len %d; want 5 out, 2 kept", len(got), s.Len())
	}

	// Missed ticks collapse into one flush at the latest of them.
	tick = tick.Add(iv)
	add(tick.Add(time.Second), 4) // Len 6
	wantNext(t, s, tick.Add(iv))
	got = s.Release(tick.Add(3*iv+iv/2), nil) // ticks +1, +2, +3 missed
	if len(got) != 4 || s.Len() != 2 {
		t.Fatalf("after missed ticks released %d, Len %d; want 4 out once, 2 kept", len(got), s.Len())
	}
	tick = tick.Add(3 * iv)
	add(tick.Add(iv/2+1), 1)
	wantNext(t, s, tick.Add(iv)) // the tick after the one processed, not after now
	if got := s.Release(tick.Add(iv-1), nil); len(got) != 0 {
		t.Fatalf("released %v between ticks", got)
	}

	// A pool that held no more than Keep treats the ticks it slept through
	// as processed: a new item waits for the next tick on the grid rather
	// than leaving at once.
	s.Release(tick.Add(iv), nil) // Len 2 again
	quiet := tick.Add(7*iv + 3*time.Second)
	add(quiet, 1)
	wantNext(t, s, tick.Add(8*iv))
}

// TestTimedPoolGrid checks tick arithmetic at far origins: the zero time
// (more than 292 years away, beyond a time.Duration) and an origin after
// now.
func TestTimedPoolGrid(t *testing.T) {
	const iv = 7*time.Second + 3 // divides nothing in sight
	s := mustNew(t, Config{Kind: TimedPool, Capacity: 4, Interval: iv}, 1)
	mustAdd(t, s, t0, Item[int]{Value: 1})
	next, ok := s.Next()
	if !ok {
		t.Fatal("no tick pending")
	}
	if d := next.Sub(t0); d <= 0 || d > iv {
		t.Fatalf("next tick %v is %v after now, want within (0, %v]", next, d, iv)
	}
	// next - zero time must be a multiple of iv; compute it in big steps.
	zero := time.Time{}
	sec := next.Unix() - zero.Unix() // seconds since year 1
	ns := uint64(next.Nanosecond())
	// (sec·1e9 + ns) mod iv, without overflow: iv < 2^33, sec < 2^36.
	rem := (uint64(sec)%uint64(iv)*(1e9%uint64(iv)) + ns) % uint64(iv)
	if rem != 0 {
		t.Fatalf("tick %v is %d ns off the grid from the zero time", next, rem)
	}

	// An origin in the future: ticks extend backwards from it.
	start := t0.Add(1000*time.Second + 3*time.Second)
	s = mustNew(t, Config{Kind: TimedPool, Capacity: 4, Interval: 10 * time.Second, Start: start}, 1)
	mustAdd(t, s, t0, Item[int]{Value: 1})
	wantNext(t, s, t0.Add(3*time.Second))
}

// TestTimedPoolUniform checks that the kept items are a uniform choice
// (15 pairs of 6, 14 df) and that the output order is uniform (position of
// the first-added of 4 items, 3 df).
func TestTimedPoolUniform(t *testing.T) {
	const rounds = 15_000
	const iv = time.Second
	s := mustNew(t, Config{Kind: TimedPool, Capacity: 6, Interval: iv, Keep: 2}, 21)
	in := []int{0, 1, 2, 3, 4, 5}
	pairs := make([]int, 15)
	now := t0.Truncate(iv)
	for range rounds {
		for _, v := range in {
			mustAdd(t, s, now.Add(1), Item[int]{Value: v})
		}
		now = now.Add(iv)
		out := s.Release(now, nil)
		kept := s.Drain(nil)
		if len(out) != 4 || len(kept) != 2 || !isPermutation(append(out, kept...), in) {
			t.Fatalf("out %v, kept %v: not a split of %v", out, kept, in)
		}
		slices.Sort(kept)
		pairs[pairIndex(kept[0], kept[1], len(in))]++
	}
	if x := chiSquare(pairs); x > chi2df14 {
		t.Errorf("kept pairs %v: chi-square %.2f > %.2f (14 df, p=0.001)", pairs, x, chi2df14)
	}

	s = mustNew(t, Config{Kind: TimedPool, Capacity: 4, Interval: iv, Keep: 0}, 22)
	now = t0.Truncate(iv)
	order := func(_ *rand.Rand, in []int) []int {
		for _, v := range in {
			mustAdd(t, s, now.Add(1), Item[int]{Value: v})
		}
		now = now.Add(iv)
		return s.Release(now, nil)
	}
	counts := firstPositions(t, order, nil, 20_000)
	if x := chiSquare(counts); x > chi2df3 {
		t.Errorf("first-added item's position %v: chi-square %.2f > %.2f (3 df, p=0.001)", counts, x, chi2df3)
	}
}

// pairIndex numbers the pairs a < b of 0..n-1 consecutively.
func pairIndex(a, b, n int) int {
	idx := 0
	for i := range a {
		idx += n - 1 - i
	}
	return idx + b - a - 1
}

// TestPairIndexCheckBites: a pool that always kept the last-added items
// would fail the pair statistic.
func TestPairIndexCheckBites(t *testing.T) {
	seen := map[int]bool{}
	for a := range 6 {
		for b := a + 1; b < 6; b++ {
			i := pairIndex(a, b, 6)
			if i < 0 || i >= 15 || seen[i] {
				t.Fatalf("pairIndex(%d, %d) = %d: out of range or repeated", a, b, i)
			}
			seen[i] = true
		}
	}
	pairs := make([]int, 15)
	pairs[pairIndex(4, 5, 6)] = 15_000
	if x := chiSquare(pairs); x <= chi2df14 {
		t.Fatalf("keep-the-newest passed: chi-square %.2f", x)
	}
}

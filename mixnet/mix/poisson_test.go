package mix

import (
	"slices"
	"testing"
	"time"
)

func TestPoissonReleasesAtDueTime(t *testing.T) {
	const maxDelay = 100 * time.Millisecond
	s := mustNew(t, Config{Kind: Poisson, Capacity: 100, MaxDelay: maxDelay}, 1)
	ms := time.Millisecond
	items := []struct {
		arrived time.Duration // after t0
		delay   time.Duration
		due     time.Duration // after t0: the expected release time
	}{
		{0, 30 * ms, 30 * ms},
		{5 * ms, 10 * ms, 15 * ms},
		{0, 500 * ms, maxDelay},                       // capped
		{10 * ms, -5 * ms, 10 * ms},                   // negative counts as 0
		{20 * ms, 10 * ms, 30 * ms},                   // ties with item 0, arrived later
		{1 * ms, time.Hour, 1*ms + maxDelay},          // capped; ties with item 10
		{2 * ms, 28 * ms, 30 * ms},                    // a third tie
		{0, maxDelay, maxDelay},                       // exactly the cap
		{3 * ms, 1, 3*ms + 1},                         // one nanosecond
		{40 * ms, 0, 40 * ms},                         // zero delay
		{99 * ms, 2 * ms, 101 * ms},                   // not capped: due after t0+MaxDelay because it arrived late
		{50 * ms, maxDelay, 150 * ms},                 // a late arrival at the cap
		{60 * ms, 40 * ms, 100 * ms},                  // ties with the capped items
		{7 * ms, 3 * ms / 2, 8500 * time.Microsecond}, // sub-millisecond
		{8 * ms, ms / 2, 8500 * time.Microsecond},     // ties with the one before
		{30 * ms, -time.Hour, 30 * ms},                // very negative
	}
	// Add them in index order, with Add's now deliberately unrelated: the
	// due time depends on Arrived and Delay only.
	for i, it := range items {
		mustAdd(t, s, t0.Add(time.Hour), Item[int]{Value: i, Arrived: t0.Add(it.arrived), Delay: it.delay})
	}
	if s.Len() != len(items) {
		t.Fatalf("Len %d, want %d", s.Len(), len(items))
	}

	// Expected: grouped by due time, each group in arrival (index) order.
	byDue := map[time.Duration][]int{}
	var dues []time.Duration
	for i, it := range items {
		if byDue[it.due] == nil {
			dues = append(dues, it.due)
		}
		byDue[it.due] = append(byDue[it.due], i)
	}
	slices.Sort(dues)
	for _, d := range dues {
		due := t0.Add(d)
		next, ok := s.Next()
		if !ok || !next.Equal(due) {
			t.Fatalf("Next = %v, %v; want %v", next, ok, due)
		}
		if got := s.Release(due.Add(-1), nil); len(got) != 0 {
			t.Fatalf("released %v one nanosecond before %v", got, d)
		}
		got := s.Release(due, nil)
		if !sameInts(got, byDue[d]) {
			t.Fatalf("at t0+%v released %v, want %v", d, got, byDue[d])
		}
	}
	if _, ok := s.Next(); ok || s.Len() != 0 {
		t.Fatalf("after all releases: Len %d, Next pending %v", s.Len(), ok)
	}
}

// TestPoissonTiesArrivalOrder adds many items with one due time, through a
// heap large enough that an order kept by accident would not survive.
func TestPoissonTiesArrivalOrder(t *testing.T) {
	s := mustNew(t, Config{Kind: Poisson, Capacity: 1000, MaxDelay: time.Second}, 1)
	rng := detRand(2)
	var tied []int
	for i := range 1000 {
		if i%3 == 0 {
			// Arrivals spread out, all due at t0+500ms.
			d := time.Duration(rng.IntN(500)) * time.Millisecond
			mustAdd(t, s, t0, Item[int]{Value: i, Arrived: t0.Add(d), Delay: 500*time.Millisecond - d})
			tied = append(tied, i)
			continue
		}
		mustAdd(t, s, t0, Item[int]{Value: i, Arrived: t0, Delay: time.Duration(rng.IntN(1000)) * time.Millisecond})
	}
	s.Release(t0.Add(500*time.Millisecond-1), nil)
	got := s.Release(t0.Add(500*time.Millisecond), nil)
	// Items not in tied may also be due at exactly 500 ms; keep only tied.
	got = slices.DeleteFunc(got, func(v int) bool { return v%3 != 0 })
	if !sameInts(got, tied) {
		t.Fatalf("tied items left in order %v, want %v", got, tied)
	}
}

// TestPoissonRandomOrder checks the heap against a sort, over random
// delays and release times.
func TestPoissonRandomOrder(t *testing.T) {
	const maxDelay = 50 * time.Millisecond
	s := mustNew(t, Config{Kind: Poisson, Capacity: 10_000, MaxDelay: maxDelay}, 1)
	rng := detRand(3)
	type ref struct {
		due time.Time
		v   int
	}
	var want []ref
	now := t0
	var got []int
	var wantOrder []int
	for i := range 5000 {
		now = now.Add(time.Duration(rng.IntN(20)) * time.Microsecond)
		delay := time.Duration(rng.Int64N(int64(2*maxDelay))) - maxDelay/4
		mustAdd(t, s, now, Item[int]{Value: i, Arrived: now, Delay: delay})
		want = append(want, ref{now.Add(min(max(delay, 0), maxDelay)), i})
		if rng.IntN(10) == 0 {
			got = s.Release(now, got)
		}
	}
	got = s.Release(now.Add(maxDelay), got)
	slices.SortStableFunc(want, func(a, b ref) int { return a.due.Compare(b.due) })
	for _, r := range want {
		wantOrder = append(wantOrder, r.v)
	}
	if !sameInts(got, wantOrder) {
		t.Fatal("release order differs from (due time, arrival) order")
	}
}

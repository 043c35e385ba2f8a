package mix

import (
	"math/rand/v2"
	"testing"
	"time"
)

func TestThresholdBatch(t *testing.T) {
	const n = 5
	s := mustNew(t, Config{Kind: Threshold, Capacity: n, N: n}, 1)
	var in []int
	for i := range n - 1 {
		mustAdd(t, s, t0.Add(time.Duration(i)*time.Second), Item[int]{Value: i})
		in = append(in, i)
	}
	if _, ok := s.Next(); ok {
		t.Fatal("Next pending with N-1 items")
	}
	if got := s.Release(t0.Add(1000*time.Hour), nil); len(got) != 0 {
		t.Fatalf("released %v with N-1 items", got)
	}
	last := t0.Add(time.Minute)
	mustAdd(t, s, last, Item[int]{Value: n - 1})
	in = append(in, n-1)
	if next, ok := s.Next(); !ok || !next.Equal(last) {
		t.Fatalf("Next = %v, %v; want the completing Add's time %v", next, ok, last)
	}
	if got := s.Release(last.Add(-1), nil); len(got) != 0 {
		t.Fatalf("released %v before the batch was due", got)
	}
	got := s.Release(last, []int{-1})
	if got[0] != -1 || !isPermutation(got[1:], in) {
		t.Fatalf("released %v, want -1 then a permutation of %v", got, in)
	}
	if s.Len() != 0 {
		t.Fatalf("Len %d after the batch left", s.Len())
	}
	if _, ok := s.Next(); ok {
		t.Fatal("Next pending after the batch left")
	}
}

// TestThresholdBacklog: with Capacity > N, items that arrive while a
// completed batch waits start the next batch, and batches leave in order.
func TestThresholdBacklog(t *testing.T) {
	s := mustNew(t, Config{Kind: Threshold, Capacity: 10, N: 4}, 1)
	for i := range 9 {
		mustAdd(t, s, t0.Add(time.Duration(i)*time.Second), Item[int]{Value: i})
	}
	// Batch 0..3 is due at t0+3s, batch 4..7 at t0+7s; item 8 waits.
	if next, _ := s.Next(); !next.Equal(t0.Add(3 * time.Second)) {
		t.Fatalf("Next = %v, want t0+3s", next)
	}
	got := s.Release(t0.Add(5*time.Second), nil)
	if !isPermutation(got, []int{0, 1, 2, 3}) {
		t.Fatalf("first release %v, want the first batch", got)
	}
	if next, _ := s.Next(); !next.Equal(t0.Add(7 * time.Second)) {
		t.Fatalf("Next = %v, want t0+7s", next)
	}
	mustAdd(t, s, t0.Add(9*time.Second), Item[int]{Value: 9})
	mustAdd(t, s, t0.Add(10*time.Second), Item[int]{Value: 10})
	mustAdd(t, s, t0.Add(11*time.Second), Item[int]{Value: 11}) // completes 8..11
	got = s.Release(t0.Add(11*time.Second), nil)
	if len(got) != 8 || !isPermutation(got[:4], []int{4, 5, 6, 7}) || !isPermutation(got[4:], []int{8, 9, 10, 11}) {
		t.Fatalf("second release %v, want batch 4..7 then batch 8..11", got)
	}
	if s.Len() != 0 {
		t.Fatalf("Len %d", s.Len())
	}

	// A clock that goes backwards does not reorder batches.
	for i := range 8 {
		now := t0.Add(time.Hour)
		if i >= 4 {
			now = t0
		}
		mustAdd(t, s, now, Item[int]{Value: i})
	}
	if next, _ := s.Next(); !next.Equal(t0.Add(time.Hour)) {
		t.Fatalf("Next = %v, want t0+1h", next)
	}
	if got := s.Release(t0.Add(time.Minute), nil); len(got) != 0 {
		t.Fatalf("second batch overtook the first: %v", got)
	}
	got = s.Release(t0.Add(time.Hour), nil)
	if len(got) != 8 || !isPermutation(got[:4], []int{0, 1, 2, 3}) || !isPermutation(got[4:], []int{4, 5, 6, 7}) {
		t.Fatalf("release %v, want batch 0..3 then batch 4..7", got)
	}
}

// batchStrategy is the measurement under test: it adds n items, releases
// them, and returns their output order.
type batchStrategy func(rng *rand.Rand, in []int) []int

func thresholdOrder(tb testing.TB, n int, seed uint64) batchStrategy {
	s := mustNew(tb, Config{Kind: Threshold, Capacity: n, N: n}, seed)
	now := t0
	return func(_ *rand.Rand, in []int) []int {
		for _, v := range in {
			now = now.Add(time.Millisecond)
			mustAdd(tb, s, now, Item[int]{Value: v})
		}
		return s.Release(now, nil)
	}
}

// firstPositions counts, over batches of 4, where the first-added item
// leaves.
func firstPositions(tb testing.TB, order batchStrategy, rng *rand.Rand, batches int) []int {
	tb.Helper()
	counts := make([]int, 4)
	in := []int{0, 1, 2, 3}
	for range batches {
		out := order(rng, in)
		if !isPermutation(out, in) {
			tb.Fatalf("batch %v is not a permutation of %v", out, in)
		}
		for pos, v := range out {
			if v == 0 {
				counts[pos]++
			}
		}
	}
	return counts
}

// permutations counts, over batches of 4, how often each of the 24 output
// orders occurs.
func permutations(tb testing.TB, order batchStrategy, rng *rand.Rand, batches int) []int {
	tb.Helper()
	counts := make([]int, 24)
	in := []int{0, 1, 2, 3}
	for range batches {
		out := order(rng, in)
		if !isPermutation(out, in) {
			tb.Fatalf("batch %v is not a permutation of %v", out, in)
		}
		counts[permIndex(out)]++
	}
	return counts
}

// permIndex is the Lehmer code of a permutation of 0..3, in [0, 24).
func permIndex(p []int) int {
	idx := 0
	for i := range p {
		smaller := 0
		for _, q := range p[i+1:] {
			if q < p[i] {
				smaller++
			}
		}
		idx = idx*(len(p)-i) + smaller
	}
	return idx
}

func TestThresholdUniform(t *testing.T) {
	const batches = 20_000
	counts := firstPositions(t, thresholdOrder(t, 4, 11), nil, batches)
	if x := chiSquare(counts); x > chi2df3 {
		t.Errorf("first-added item's position %v: chi-square %.2f > %.2f (3 df, p=0.001)", counts, x, chi2df3)
	}
	perms := permutations(t, thresholdOrder(t, 4, 12), nil, batches)
	if x := chiSquare(perms); x > chi2df23 {
		t.Errorf("output orders %v: chi-square %.2f > %.2f (23 df, p=0.001)", perms, x, chi2df23)
	}
}

// TestUniformityCheckBites runs the same statistics on orders that are not
// uniform, to show that TestThresholdUniform could fail.
func TestUniformityCheckBites(t *testing.T) {
	const batches = 20_000
	rng := detRand(13)
	inOrder := func(_ *rand.Rand, in []int) []int { return append([]int(nil), in...) }
	if x := chiSquare(firstPositions(t, inOrder, rng, batches)); x <= chi2df3 {
		t.Errorf("arrival order passed the position test: chi-square %.2f", x)
	}
	// The classic broken shuffle swaps each place with any place: its n^n
	// equally likely runs cannot spread evenly over the n! orders.
	naive := func(rng *rand.Rand, in []int) []int {
		out := append([]int(nil), in...)
		for i := range out {
			j := rng.IntN(len(out))
			out[i], out[j] = out[j], out[i]
		}
		return out
	}
	if x := chiSquare(permutations(t, naive, rng, batches)); x <= chi2df23 {
		t.Errorf("naive shuffle passed the permutation test: chi-square %.2f", x)
	}
}

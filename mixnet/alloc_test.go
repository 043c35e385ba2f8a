package mixnet

import "testing"

// TestUnwrapAllocations holds the allocation figure docs/benchmarks.md
// gives for one unwrap. The race detector changes allocation counts, so
// make test runs the tests named *Alloc* once more without it.
func TestUnwrapAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under the race detector; make test checks them in a run without it")
	}
	g := DefaultGeometry()
	nodes := newTestNodes(t, g, 3, 3)
	const runs = 200
	pkts := make([][]byte, runs+1) // AllocsPerRun makes one warm-up call
	rng := detRand(2)
	for i := range pkts {
		pkts[i] = mustPacket(t, rng, g, nodes, nil)
	}
	rc, err := NewReplayCache(1, 1<<16)
	if err != nil {
		t.Fatal(err)
	}
	work := make([]byte, g.PacketSize())
	i := 0
	allocs := testing.AllocsPerRun(runs, func() {
		copy(work, pkts[i])
		i++
		if _, err := nodes[0].key.Unwrap(work, rc); err != nil {
			t.Fatal(err)
		}
	})
	const limit = 8
	if allocs > limit {
		t.Fatalf("%.1f allocations per unwrap, docs/benchmarks.md says at most %d", allocs, limit)
	}
}

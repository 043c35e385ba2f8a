package mix

import (
	"math/rand/v2"
	"time"
)

// threshold is the batch mix. Items are held in arrival order and cut into
// consecutive batches of n: items 0..n-1 are the first batch, n..2n-1 the
// second, and so on. When an Add completes a batch, the batch is due at
// that Add's now (or at the previous batch's due time, if a caller's
// clock went backwards, so that batches leave in order). With Capacity >
// N, items that arrive while a completed batch waits for Release start the
// next batch; they never join the waiting one.
type threshold[T any] struct {
	capacity int
	n        int
	rng      *rand.Rand
	items    []T         // held, in arrival order
	due      []time.Time // due time of each completed batch, oldest first
}

func newThreshold[T any](cfg Config, rng *rand.Rand) *threshold[T] {
	return &threshold[T]{capacity: cfg.Capacity, n: cfg.N, rng: rng}
}

func (t *threshold[T]) Add(now time.Time, it Item[T]) error {
	if len(t.items) >= t.capacity {
		return ErrFull
	}
	t.items = append(t.items, it.Value)
	if len(t.items)%t.n == 0 {
		if k := len(t.due); k > 0 && t.due[k-1].After(now) {
			now = t.due[k-1]
		}
		t.due = append(t.due, now)
	}
	return nil
}

// Release appends every completed batch due at or before now, oldest batch
// first, each in a uniformly random order of its own.
func (t *threshold[T]) Release(now time.Time, dst []T) []T {
	b := 0
	for b < len(t.due) && !t.due[b].After(now) {
		b++
	}
	if b == 0 {
		return dst
	}
	for i := range b {
		start := len(dst)
		dst = append(dst, t.items[i*t.n:(i+1)*t.n]...)
		shuffle(t.rng, dst[start:])
	}
	t.items = shiftOut(t.items, b*t.n)
	t.due = shiftOut(t.due, b)
	return dst
}

func (t *threshold[T]) Next() (time.Time, bool) {
	if len(t.due) == 0 {
		return time.Time{}, false
	}
	return t.due[0], true
}

func (t *threshold[T]) Len() int { return len(t.items) }

// Drain returns the held items in arrival order.
func (t *threshold[T]) Drain(dst []T) []T {
	dst = append(dst, t.items...)
	t.items = shiftOut(t.items, len(t.items))
	t.due = shiftOut(t.due, len(t.due))
	return dst
}

// shiftOut removes the first k elements of s in place, zeroing the vacated
// tail so that the backing array keeps nothing alive, and returns the
// shortened slice (same backing array: no allocation).
func shiftOut[E any](s []E, k int) []E {
	n := copy(s, s[k:])
	clear(s[n:])
	return s[:n]
}

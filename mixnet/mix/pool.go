package mix

import (
	"math/rand/v2"
	"time"
)

// timedPool is the timed pool mix. Ticks are at start + k·interval for
// every integer k. The pool remembers the last tick it processed:
//
//   - Release(now) processes the latest tick at or before now, once. If the
//     caller missed several ticks, they collapse into that one flush: all
//     but keep items leave once, not once per missed tick.
//   - A tick at which the pool held no more than keep items would have sent
//     nothing, so Add counts every tick up to its now as processed while
//     Len() <= keep. An item that arrives at a quiet pool therefore waits
//     for the next tick on the grid instead of leaving at once because of
//     ticks that passed before it came.
//   - Next is the tick after the last processed one, and only while
//     Len() > keep.
type timedPool[T any] struct {
	capacity int
	keep     int
	interval time.Duration
	start    time.Time
	rng      *rand.Rand
	items    []T
	last     time.Time // the last tick processed
	haveLast bool
}

func newTimedPool[T any](cfg Config, rng *rand.Rand) *timedPool[T] {
	return &timedPool[T]{
		capacity: cfg.Capacity,
		keep:     cfg.Keep,
		interval: cfg.Interval,
		start:    cfg.Start,
		rng:      rng,
	}
}

// tickAtOrBefore returns the latest start + k·interval at or before now.
// It works from each time's phase within the interval (Truncate rounds
// down to a multiple of the interval since the zero time, without
// overflow), because now.Sub(start) saturates once the two are more than
// 292 years apart, as they are when start is the zero time.
func (p *timedPool[T]) tickAtOrBefore(now time.Time) time.Time {
	phase := now.Sub(now.Truncate(p.interval)) - p.start.Sub(p.start.Truncate(p.interval))
	if phase < 0 {
		phase += p.interval
	}
	return now.Add(-phase)
}

// advance marks the latest tick at or before now as processed, and reports
// whether that is a tick not processed before.
func (p *timedPool[T]) advance(now time.Time) bool {
	tick := p.tickAtOrBefore(now)
	if p.haveLast && !tick.After(p.last) {
		return false
	}
	p.last, p.haveLast = tick, true
	return true
}

func (p *timedPool[T]) Add(now time.Time, it Item[T]) error {
	if len(p.items) >= p.capacity {
		return ErrFull
	}
	if len(p.items) <= p.keep {
		p.advance(now)
	}
	p.items = append(p.items, it.Value)
	return nil
}

// Release processes the latest tick at or before now, if it has not been
// processed: a uniformly random choice of all but keep of the held items
// leaves, in uniformly random order.
func (p *timedPool[T]) Release(now time.Time, dst []T) []T {
	if !p.advance(now) || len(p.items) <= p.keep {
		return dst
	}
	// A partial Fisher–Yates shuffle: after step i, items[:i+1] is a
	// uniformly random ordered choice from all items, so items[:out] is the
	// output in random order and items[out:] the uniformly chosen kept set.
	out := len(p.items) - p.keep
	for i := range out {
		j := i + p.rng.IntN(len(p.items)-i)
		p.items[i], p.items[j] = p.items[j], p.items[i]
	}
	dst = append(dst, p.items[:out]...)
	p.items = shiftOut(p.items, out)
	return dst
}

func (p *timedPool[T]) Next() (time.Time, bool) {
	if len(p.items) <= p.keep || !p.haveLast {
		return time.Time{}, false
	}
	return p.last.Add(p.interval), true
}

func (p *timedPool[T]) Len() int { return len(p.items) }

// Drain returns the held items in the order the pool holds them.
func (p *timedPool[T]) Drain(dst []T) []T {
	dst = append(dst, p.items...)
	p.items = shiftOut(p.items, len(p.items))
	return dst
}

package mix

import (
	"context"
	"errors"
	"sync"
	"time"

	sysclock "github.com/sealnet/sealnet/internal/clock"
)

// errRunning is returned by a second concurrent call of Run.
var errRunning = errors.New("mix: Mixer.Run is already running")

// Mixer runs a Strategy against a Clock. Add, Len and Drain are safe for
// concurrent use; Run releases the items when they are due, on the one
// goroutine that calls it. A Mixer starts no goroutine of its own.
type Mixer[T any] struct {
	clock Clock
	out   func(batch []T)
	wake  chan struct{} // capacity 1: a pending "look again" for Run

	mu      sync.Mutex
	s       Strategy[T]
	armed   time.Time // the due time Run's timer is set for
	armedOK bool      // whether Run has a timer set
	running bool
}

// NewMixer returns a Mixer that holds items in s and hands each non-empty
// batch of released items to out, in sending order. The batch slice is
// reused once out returns: out must copy what it keeps. A nil clock means
// clock.System(). The Mixer owns s from now on: the caller must not use s
// directly.
func NewMixer[T any](s Strategy[T], clock Clock, out func(batch []T)) *Mixer[T] {
	if clock == nil {
		clock = sysclock.System()
	}
	return &Mixer[T]{s: s, clock: clock, out: out, wake: make(chan struct{}, 1)}
}

// Add hands it to the strategy at the clock's current time. It stamps
// nothing: the caller sets it.Arrived. It returns ErrFull from the
// strategy, and wakes Run when the item makes something due earlier than
// the timer Run is waiting on.
func (m *Mixer[T]) Add(it Item[T]) error {
	m.mu.Lock()
	err := m.s.Add(m.clock.Now(), it)
	wake := false
	if err == nil {
		next, ok := m.s.Next()
		wake = ok && (!m.armedOK || next.Before(m.armed))
	}
	m.mu.Unlock()
	if wake {
		select {
		case m.wake <- struct{}{}:
		default: // a wake-up is already pending
		}
	}
	return err
}

// Len is the number of items held.
func (m *Mixer[T]) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.s.Len()
}

// Drain removes and returns every item held (shutdown). The items have not
// been mixed; see the package documentation.
func (m *Mixer[T]) Drain() []T {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.s.Drain(nil)
}

// Run releases items when they are due, calling out (never while holding
// the lock) with each non-empty batch, until ctx is done; then it returns
// ctx.Err(). Items still held stay in the strategy; the owner may Drain
// them. Run must not be called again before it has returned.
func (m *Mixer[T]) Run(ctx context.Context) error {
	m.mu.Lock()
	if m.running {
		m.mu.Unlock()
		return errRunning
	}
	m.running = true
	m.mu.Unlock()

	var (
		timer Timer // created on first need, then reused
		batch []T
	)
	stopTimer := func() {
		if timer != nil && !timer.Stop() {
			select {
			case <-timer.C():
			default:
			}
		}
	}
	defer func() {
		stopTimer()
		m.mu.Lock()
		m.running, m.armedOK = false, false
		m.mu.Unlock()
	}()

	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		m.mu.Lock()
		now := m.clock.Now()
		batch = m.s.Release(now, batch[:0])
		next, ok := m.s.Next()
		m.armed, m.armedOK = next, ok
		m.mu.Unlock()

		if len(batch) > 0 {
			m.out(batch)
			clear(batch) // keep no references to items that left
			continue     // out took time: look again before sleeping
		}

		var fire <-chan time.Time
		if ok {
			d := next.Sub(now)
			if d <= 0 {
				continue
			}
			if timer == nil {
				timer = m.clock.NewTimer(d)
			} else {
				stopTimer()
				timer.Reset(d)
			}
			fire = timer.C()
		} else {
			stopTimer()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-m.wake:
		case <-fire: // nil, never ready, when no timer is set
		}
	}
}

package clock

import (
	"sync"
	"time"
)

// Manual is a Clock that moves only when Set or Advance is called; its
// timers fire, in deadline order, when the clock reaches them. It is for
// tests that cannot run inside a testing/synctest bubble (real sockets,
// child processes) and for replaying a schedule at chosen instants.
type Manual struct {
	mu      sync.Mutex
	now     time.Time
	timers  []*manualTimer
	changed chan struct{} // closed and replaced whenever a timer changes
}

type manualTimer struct {
	c     *Manual
	ch    chan time.Time
	when  time.Time
	armed bool
}

// NewManual returns a Manual clock reading now.
func NewManual(now time.Time) *Manual {
	return &Manual{now: now, changed: make(chan struct{})}
}

// Now returns the clock's current time.
func (c *Manual) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// NewTimer returns a timer that fires when the clock has moved d on.
func (c *Manual) NewTimer(d time.Duration) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &manualTimer{c: c, ch: make(chan time.Time, 1)}
	c.timers = append(c.timers, t)
	c.armLocked(t, d)
	return t
}

// Advance moves the clock forward by d, firing the timers it passes.
func (c *Manual) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	c.fireDueLocked()
}

// Set moves the clock to t, forward or back, and fires the timers due
// by then. Moving back is how a test shows code that must not trust a
// clock to run forward.
func (c *Manual) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
	c.fireDueLocked()
}

// Armed returns the deadlines of the timers still pending, and a channel
// closed at the next change to any timer, so a test can wait for the code
// under test to arm one without sleeping.
func (c *Manual) Armed() (deadlines []time.Time, changed <-chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, t := range c.timers {
		if t.armed {
			deadlines = append(deadlines, t.when)
		}
	}
	return deadlines, c.changed
}

func (c *Manual) fireDueLocked() {
	for {
		var first *manualTimer
		for _, t := range c.timers {
			if t.armed && !t.when.After(c.now) && (first == nil || t.when.Before(first.when)) {
				first = t
			}
		}
		if first == nil {
			return
		}
		c.fireLocked(first)
	}
}

// armLocked sets t to fire d from now; a timer due now fires at once, as a
// time.Timer with d <= 0 does.
func (c *Manual) armLocked(t *manualTimer, d time.Duration) {
	t.when, t.armed = c.now.Add(d), true
	if d <= 0 {
		c.fireLocked(t)
	}
	c.notifyLocked()
}

func (c *Manual) fireLocked(t *manualTimer) {
	t.armed = false
	select {
	case t.ch <- c.now:
	default:
	}
}

func (c *Manual) notifyLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

func (t *manualTimer) C() <-chan time.Time { return t.ch }

func (t *manualTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := t.armed
	t.armed = false
	t.c.notifyLocked()
	return was
}

func (t *manualTimer) Reset(d time.Duration) {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	t.c.armLocked(t, d)
}

package mix

import (
	"sync"
	"testing"
	"time"
)

// fakeClock is a Clock that moves only when Advance is called. Advance
// fires, in deadline order, every armed timer whose deadline it reaches.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	timers  []*fakeTimer
	changed chan struct{} // closed and replaced whenever a timer changes
}

type fakeTimer struct {
	c     *fakeClock
	ch    chan time.Time
	when  time.Time
	armed bool
}

func newFakeClock(now time.Time) *fakeClock {
	return &fakeClock{now: now, changed: make(chan struct{})}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) NewTimer(d time.Duration) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: c, ch: make(chan time.Time, 1)}
	c.timers = append(c.timers, t)
	c.armLocked(t, d)
	return t
}

// armLocked sets t to fire d from now; a timer due now fires at once, as a
// time.Timer with d <= 0 does.
func (c *fakeClock) armLocked(t *fakeTimer, d time.Duration) {
	t.when, t.armed = c.now.Add(d), true
	if d <= 0 {
		c.fireLocked(t)
	}
	c.notifyLocked()
}

func (c *fakeClock) fireLocked(t *fakeTimer) {
	t.armed = false
	select {
	case t.ch <- c.now:
	default:
	}
}

func (c *fakeClock) notifyLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// Advance moves the clock forward by d, firing the timers it passes.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	for {
		var first *fakeTimer
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

// AdvanceTo moves the clock to t (which must not be in the past).
func (c *fakeClock) AdvanceTo(tb testing.TB, t time.Time) {
	tb.Helper()
	d := t.Sub(c.Now())
	if d < 0 {
		tb.Fatalf("AdvanceTo %v: clock is already at %v", t, c.Now())
	}
	c.Advance(d)
}

// waitArmed waits until some timer is armed for exactly when, and fails the
// test if none is within 2 s (real time).
func (c *fakeClock) waitArmed(tb testing.TB, when time.Time) {
	tb.Helper()
	deadline := time.After(2 * time.Second)
	for {
		c.mu.Lock()
		changed := c.changed
		var armed []time.Time
		for _, t := range c.timers {
			if t.armed {
				if t.when.Equal(when) {
					c.mu.Unlock()
					return
				}
				armed = append(armed, t.when)
			}
		}
		c.mu.Unlock()
		select {
		case <-changed:
		case <-deadline:
			tb.Fatalf("no timer armed for %v; armed: %v", when, armed)
		}
	}
}

// armedCount is the number of armed timers.
func (c *fakeClock) armedCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, t := range c.timers {
		if t.armed {
			n++
		}
	}
	return n
}

func (t *fakeTimer) C() <-chan time.Time { return t.ch }

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := t.armed
	t.armed = false
	t.c.notifyLocked()
	return was
}

func (t *fakeTimer) Reset(d time.Duration) {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	t.c.armLocked(t, d)
}

// TestFakeClock checks the test clock itself, since the Mixer tests rely on
// it: timers fire at their deadline, not before, and Stop prevents firing.
func TestFakeClock(t *testing.T) {
	c := newFakeClock(time.Unix(100, 0))
	a := c.NewTimer(10 * time.Millisecond)
	b := c.NewTimer(20 * time.Millisecond)
	c.Advance(10*time.Millisecond - 1)
	select {
	case <-a.C():
		t.Fatal("timer fired before its deadline")
	default:
	}
	c.Advance(1)
	select {
	case got := <-a.C():
		if want := time.Unix(100, 0).Add(10 * time.Millisecond); !got.Equal(want) {
			t.Fatalf("fired with %v, want %v", got, want)
		}
	default:
		t.Fatal("timer did not fire at its deadline")
	}
	if !b.Stop() {
		t.Fatal("Stop of a pending timer returned false")
	}
	if b.Stop() {
		t.Fatal("second Stop returned true")
	}
	c.Advance(time.Second)
	select {
	case <-b.C():
		t.Fatal("stopped timer fired")
	default:
	}
	if n := c.armedCount(); n != 0 {
		t.Fatalf("%d timers armed, want 0", n)
	}
}

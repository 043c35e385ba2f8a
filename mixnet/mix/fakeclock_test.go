package mix

import (
	"testing"
	"time"

	"github.com/sealnet/sealnet/internal/clock"
)

// fakeClock is the module's manual clock with the waits the Mixer tests
// need.
type fakeClock struct{ *clock.Manual }

func newFakeClock(now time.Time) fakeClock { return fakeClock{clock.NewManual(now)} }

// AdvanceTo moves the clock to t (which must not be in the past).
func (c fakeClock) AdvanceTo(tb testing.TB, t time.Time) {
	tb.Helper()
	if d := t.Sub(c.Now()); d < 0 {
		tb.Fatalf("AdvanceTo %v: clock is already at %v", t, c.Now())
	}
	c.Set(t)
}

// waitArmed waits until some timer is armed for exactly when, and fails the
// test if none is within 2 s (real time).
func (c fakeClock) waitArmed(tb testing.TB, when time.Time) {
	tb.Helper()
	deadline := time.After(2 * time.Second)
	for {
		armed, changed := c.Armed()
		for _, a := range armed {
			if a.Equal(when) {
				return
			}
		}
		select {
		case <-changed:
		case <-deadline:
			tb.Fatalf("no timer armed for %v; armed: %v", when, armed)
		}
	}
}

// armedCount is the number of armed timers.
func (c fakeClock) armedCount() int {
	armed, _ := c.Armed()
	return len(armed)
}

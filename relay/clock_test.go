package relay_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/sealnet/sealnet/internal/clock"
	"github.com/sealnet/sealnet/mixnet/directory"
)

// testClock is the clock of a network a test moves: a clock.Manual
// that runs at the pace of real time while the network works on its own
// (the authorities' schedule and the relays' directory polls are paced on
// it), and that the test moves forward in jumps (Set) or stops (hold) at
// will. It starts a second into an epoch of the given period.
type testClock struct {
	*clock.Manual
	running atomic.Bool
}

func newTestClock(t *testing.T, period time.Duration) *testClock {
	e := directory.EpochAt(time.Now(), period)
	c := &testClock{Manual: clock.NewManual(directory.EpochStart(e, period).Add(time.Second))}
	c.running.Store(true)
	const step = 10 * time.Millisecond
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(step)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				if c.running.Load() {
					c.Advance(step)
				}
			}
		}
	}()
	// Registered before the network's cleanup, so it runs after it: the
	// network stops on a running clock.
	t.Cleanup(func() {
		close(done)
		<-stopped
	})
	return c
}

// hold stops the clock where it is; Set and Advance still move it.
func (c *testClock) hold() { c.running.Store(false) }

// waitArmed waits until n timers on the clock are armed for at: the code
// under test has taken in what it is to hold until then.
func (c *testClock) waitArmed(t *testing.T, what string, at time.Time, n int) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		armed, changed := c.Armed()
		k := 0
		for _, d := range armed {
			if d.Equal(at) {
				k++
			}
		}
		if k >= n {
			return
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("timed out waiting for %s (a timer for %v; armed: %v)", what, at, armed)
		}
	}
}

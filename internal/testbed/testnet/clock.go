package testnet

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/sealnet/sealnet/internal/clock"
)

// RunningClock is a clock for an in-process network (InProcessOptions.Clock)
// that a test moves: a clock.Manual that runs at the pace of real time
// while the network works on its own (the authorities' schedule and the
// relays' directory polls are paced on their clock), and that the test
// moves forward in jumps (Set, Advance) or stops (Hold). So an epoch
// boundary or a deadline is a jump, not a sleep, and a window (a grace
// period, a hold) lasts as long as the test needs.
//
// A real network cannot run inside a testing/synctest bubble (its links
// are real sockets), hence this clock.
type RunningClock struct {
	*clock.Manual
	running atomic.Bool
	done    chan struct{}
	stopped chan struct{}
}

// runningStep is how often, and by how much, a running clock moves.
const runningStep = 10 * time.Millisecond

// NewRunningClock returns a running clock reading start. Stop ends its
// goroutine.
func NewRunningClock(start time.Time) *RunningClock {
	c := &RunningClock{Manual: clock.NewManual(start), done: make(chan struct{}), stopped: make(chan struct{})}
	c.running.Store(true)
	go func() {
		defer close(c.stopped)
		tick := time.NewTicker(runningStep)
		defer tick.Stop()
		for {
			select {
			case <-c.done:
				return
			case <-tick.C:
				if c.running.Load() {
					c.Advance(runningStep)
				}
			}
		}
	}()
	return c
}

// Hold stops the clock where it is; Set and Advance still move it.
func (c *RunningClock) Hold() { c.running.Store(false) }

// Stop ends the clock's goroutine and waits for it; the clock then moves
// only by Set and Advance.
func (c *RunningClock) Stop() {
	close(c.done)
	<-c.stopped
}

// WaitArmed waits until n timers on the clock are armed for at (the code
// under test has taken in what it is to hold until then), or ctx ends.
func (c *RunningClock) WaitArmed(ctx context.Context, at time.Time, n int) error {
	for {
		armed, changed := c.Armed()
		k := 0
		for _, d := range armed {
			if d.Equal(at) {
				k++
			}
		}
		if k >= n {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("testnet: %d of %d timers armed for %v: %w (armed: %v)", k, n, at, ctx.Err(), armed)
		}
	}
}

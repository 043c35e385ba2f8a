package relay_test

import (
	"context"
	"testing"
	"time"

	"github.com/sealnet/sealnet/internal/testbed/testnet"
	"github.com/sealnet/sealnet/mixnet/directory"
)

// newTestClock returns a clock for a network the test moves
// (testnet.RunningClock), a second into an epoch of the given period.
// Create it before the network: its cleanup then runs after the
// network's, which stops on a running clock.
func newTestClock(t *testing.T, period time.Duration) *testnet.RunningClock {
	e := directory.EpochAt(time.Now(), period)
	c := testnet.NewRunningClock(directory.EpochStart(e, period).Add(time.Second))
	t.Cleanup(c.Stop)
	return c
}

// waitArmed waits until n timers on c are armed for at.
func waitArmed(t *testing.T, c *testnet.RunningClock, what string, at time.Time, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.WaitArmed(ctx, at, n); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

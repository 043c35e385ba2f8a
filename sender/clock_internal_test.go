package sender

import (
	"context"
	"encoding/hex"
	"log/slog"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sealnet/sealnet/internal/clock"
)

// warnings is a slog handler that sends on its channel at every warning.
type warnings chan struct{}

func (h warnings) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (h warnings) Handle(context.Context, slog.Record) error {
	h <- struct{}{}
	return nil
}
func (h warnings) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h warnings) WithGroup(string) slog.Handler      { return h }

// TestDirectLoopRunsOnTheClientsClock: the onion route's delivery loop
// looks for due work every directEvery of Options.Clock, not of the
// system clock: once at start, then each time the clock passes another
// directEvery, and not in between; it stops with its context. The clock
// is a clock.Manual: the loop's one look over the network (for a
// directory, refused at once) keeps it out of a synctest bubble.
func TestDirectLoopRunsOnTheClientsClock(t *testing.T) {
	c, _ := offlineClient(t)
	clk := c.clock.(*clock.Manual)
	// Each look finds an onion message and no directory (the authority
	// of offlineClient is unreachable), and warns: the test sees looks.
	looked := make(warnings, 16)
	c.log = slog.New(looked)
	c.mu.Lock()
	o, _ := c.sendingLocked()
	o.Route = RouteOnion
	c.mu.Unlock()
	look := func(when string) {
		t.Helper()
		select {
		case <-looked:
		case <-time.After(10 * time.Second): // a broken loop, not a slow one
			t.Fatalf("no look %s", when)
		}
	}
	armed := func(want time.Time) {
		t.Helper()
		if d, _ := clk.Armed(); len(d) != 1 || !d[0].Equal(want) {
			t.Fatalf("timers armed at %v; want one at %v", d, want)
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); c.directLoop(ctx) }()
	start := clk.Now()
	look("at start")
	for i := 1; i <= 4; i++ {
		// The timer is re-armed before the look, so it is set by now.
		armed(start.Add(time.Duration(i) * directEvery))
		clk.Advance(directEvery / 2) // not due: the loop stays put
		armed(start.Add(time.Duration(i) * directEvery))
		clk.Advance(directEvery / 2)
		look("after " + clk.Now().Sub(start).String() + " of the client's clock")
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("directLoop did not stop with its context")
	}
	if n := len(looked); n != 0 {
		t.Fatalf("%d looks more than one per %v", n, directEvery)
	}
}

// TestWaitOutcomeFollowsTheHistory: WaitOutcome (what `send --wait`
// runs beside a daemon) returns once the history records the message's
// outcome, one poll later at most, and not for a message still queued;
// it stops with its context. It runs in a synctest bubble: the polls
// are fake time, the test takes none.
func TestWaitOutcomeFollowsTheHistory(t *testing.T) {
	c, _ := offlineClient(t)
	id := make([]byte, 16)
	id[0] = 7
	hexID := hex.EncodeToString(id)
	record := func(s Status) {
		c.mu.Lock()
		defer c.mu.Unlock()
		if err := c.appendHistoryLocked(&Message{ID: hexID, From: "alice@a", To: "bob@b", Outgoing: true, Status: s}); err != nil {
			t.Fatal(err)
		}
	}
	record(StatusQueued)
	dir, pass := c.v.dir, []byte("pass")
	synctest.Test(t, func(t *testing.T) {
		type result struct {
			m   *Message
			err error
		}
		got := make(chan result, 1)
		began := time.Now()
		go func() {
			m, err := waitOutcome(context.Background(), clock.System(), dir, pass, hexID)
			got <- result{m, err}
		}()
		time.Sleep(10 * outcomePoll)
		synctest.Wait()
		select {
		case r := <-got:
			t.Fatalf("returned %+v, %v while the message is only queued", r.m, r.err)
		default:
		}
		record(StatusDelivered)
		recorded := time.Now()
		r := <-got
		if r.err != nil || r.m == nil || r.m.ID != hexID || r.m.Status != StatusDelivered {
			t.Fatalf("waitOutcome = %+v, %v; want the delivered message", r.m, r.err)
		}
		if d := time.Since(recorded); d > outcomePoll {
			t.Errorf("returned %v after the outcome was recorded; want within a poll (%v)", d, outcomePoll)
		}
		t.Logf("returned %v after it began", time.Since(began))

		// Cancelled: it stops, with the context's error.
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			m, err := waitOutcome(ctx, clock.System(), dir, pass, "00")
			got <- result{m, err}
		}()
		time.Sleep(outcomePoll)
		cancel()
		if r := <-got; r.err != context.Canceled {
			t.Fatalf("cancelled waitOutcome = %+v, %v; want context.Canceled", r.m, r.err)
		}
	})
}

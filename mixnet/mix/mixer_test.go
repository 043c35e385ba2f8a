package mix

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/sealnet/sealnet/internal/clock"
)

// The Mixer tests run inside a testing/synctest bubble: time there moves
// only when every goroutine of the bubble is blocked, straight to the
// next timer, so a release happens at exactly its due time and
// synctest.Wait replaces any polling for Run to settle.

// released is one call of a Mixer's out function.
type released struct {
	at    time.Time
	batch []int
}

// runMixer starts m.Run on a goroutine and returns a function that cancels
// it and checks that it returned ctx.Err(). The function also runs at
// cleanup, so that a test that fails early leaves no Run behind.
func runMixer[T any](tb testing.TB, m *Mixer[T]) (stop func()) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if !errors.Is(err, context.Canceled) {
					tb.Errorf("Run returned %v, want context.Canceled", err)
				}
			case <-time.After(2 * time.Second):
				tb.Error("Run did not return within 2 s of cancel")
			}
		})
	}
	tb.Cleanup(stop)
	return stop
}

// newRecorder returns an out function that sends each batch, stamped with
// the clock's time, on the returned channel.
func newRecorder(c Clock) (func([]int), chan released) {
	ch := make(chan released, 100)
	return func(b []int) {
		ch <- released{c.Now(), append([]int(nil), b...)}
	}, ch
}

// expect checks that the next release, once Run has settled, is batch at
// at.
func expect(tb testing.TB, ch chan released, at time.Time, batch ...int) {
	tb.Helper()
	synctest.Wait()
	select {
	case r := <-ch:
		if !r.at.Equal(at) || !sameInts(r.batch, batch) {
			tb.Fatalf("released %v at %v; want %v at %v", r.batch, r.at, batch, at)
		}
	default:
		tb.Fatalf("nothing released; want %v at %v", batch, at)
	}
}

// expectNothing checks that Run, once settled, has released nothing.
func expectNothing(tb testing.TB, ch chan released) {
	tb.Helper()
	synctest.Wait()
	select {
	case r := <-ch:
		tb.Fatalf("unexpected release of %v at %v", r.batch, r.at)
	default:
	}
}

// armed waits for Run to settle and returns the due time its timer is set
// for, and whether it has one set.
func armed[T any](m *Mixer[T]) (time.Time, bool) {
	synctest.Wait()
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.armed, m.armedOK
}

// expectArmed checks that Run, once settled, waits on a timer for exactly
// when.
func expectArmed[T any](tb testing.TB, m *Mixer[T], when time.Time) {
	tb.Helper()
	if at, ok := armed(m); !ok || !at.Equal(when) {
		tb.Fatalf("timer armed for %v (set: %v), want %v", at, ok, when)
	}
}

// expectManualArmed checks that the manual clock has exactly one timer
// pending, for when.
func expectManualArmed(tb testing.TB, c *clock.Manual, when time.Time) {
	tb.Helper()
	synctest.Wait()
	if a, _ := c.Armed(); len(a) != 1 || !a[0].Equal(when) {
		tb.Fatalf("timers armed for %v, want one for %v", a, when)
	}
}

// TestMixerPoissonManualClock runs the Mixer on a manual clock, whose
// timers the test can count: Run re-arms one timer as items come and go,
// and leaves none armed when it returns.
func TestMixerPoissonManualClock(t *testing.T) {
	defer goleak.VerifyNone(t)
	synctest.Test(t, func(t *testing.T) {
		c := clock.NewManual(t0)
		out, ch := newRecorder(c)
		m := NewMixer(mustNew(t, Config{Kind: Poisson, Capacity: 10, MaxDelay: time.Second}, 1), c, out)
		ms := time.Millisecond
		for i, d := range []time.Duration{30 * ms, 10 * ms, 20 * ms, 20 * ms} {
			if err := m.Add(Item[int]{Value: i, Arrived: t0, Delay: d}); err != nil {
				t.Fatal(err)
			}
		}
		stop := runMixer(t, m)

		expectManualArmed(t, c, t0.Add(10*ms))
		c.Set(t0.Add(10*ms - 1))
		expectNothing(t, ch)
		c.Set(t0.Add(10 * ms))
		expect(t, ch, t0.Add(10*ms), 1)

		expectManualArmed(t, c, t0.Add(20*ms))
		c.Set(t0.Add(20 * ms))
		expect(t, ch, t0.Add(20*ms), 2, 3)

		// An item due before the armed timer wakes Run, which re-arms.
		expectManualArmed(t, c, t0.Add(30*ms))
		if err := m.Add(Item[int]{Value: 4, Arrived: c.Now(), Delay: 5 * ms}); err != nil {
			t.Fatal(err)
		}
		expectManualArmed(t, c, t0.Add(25*ms))
		c.Set(t0.Add(25 * ms))
		expect(t, ch, t0.Add(25*ms), 4)

		// An item due later does not disturb the armed timer.
		if err := m.Add(Item[int]{Value: 5, Arrived: c.Now(), Delay: 100 * ms}); err != nil {
			t.Fatal(err)
		}
		expectManualArmed(t, c, t0.Add(30*ms))
		c.Set(t0.Add(30 * ms))
		expect(t, ch, t0.Add(30*ms), 0)
		expectManualArmed(t, c, t0.Add(125*ms))
		// Time jumps past the due time: released at the first look after.
		c.Set(t0.Add(200 * ms))
		expect(t, ch, t0.Add(200*ms), 5)

		// With nothing held, Run waits on no timer, and an Add wakes it.
		if a, _ := c.Armed(); len(a) != 0 {
			t.Fatalf("timers armed for %v with nothing held", a)
		}
		if err := m.Add(Item[int]{Value: 6, Arrived: c.Now(), Delay: ms}); err != nil {
			t.Fatal(err)
		}
		expectManualArmed(t, c, t0.Add(201*ms))
		// Cancel with an item held and a timer armed: the item stays.
		stop()
		if m.Len() != 1 {
			t.Fatalf("Len %d after Run returned, want 1", m.Len())
		}
		if got := m.Drain(); !sameInts(got, []int{6}) {
			t.Fatalf("Drain returned %v", got)
		}
		if a, _ := c.Armed(); len(a) != 0 {
			t.Fatalf("%d timers left armed after Run returned", len(a))
		}
		expectNothing(t, ch)
	})
}

// TestMixerPoisson is the same schedule on the System clock.
func TestMixerPoisson(t *testing.T) {
	defer goleak.VerifyNone(t)
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		out, ch := newRecorder(clock.System())
		m := NewMixer(mustNew(t, Config{Kind: Poisson, Capacity: 10, MaxDelay: time.Second}, 1), nil, out)
		ms := time.Millisecond
		for i, d := range []time.Duration{30 * ms, 10 * ms, 20 * ms, 20 * ms} {
			if err := m.Add(Item[int]{Value: i, Arrived: start, Delay: d}); err != nil {
				t.Fatal(err)
			}
		}
		runMixer(t, m)

		expectArmed(t, m, start.Add(10*ms))
		time.Sleep(10*ms - 1)
		expectNothing(t, ch)
		time.Sleep(1)
		expect(t, ch, start.Add(10*ms), 1)

		expectArmed(t, m, start.Add(20*ms))
		time.Sleep(10 * ms)
		expect(t, ch, start.Add(20*ms), 2, 3)

		// An item due before the armed timer wakes Run, which re-arms.
		expectArmed(t, m, start.Add(30*ms))
		if err := m.Add(Item[int]{Value: 4, Arrived: time.Now(), Delay: 5 * ms}); err != nil {
			t.Fatal(err)
		}
		expectArmed(t, m, start.Add(25*ms))
		time.Sleep(5 * ms)
		expect(t, ch, start.Add(25*ms), 4)

		// An item due later does not disturb the armed timer.
		if err := m.Add(Item[int]{Value: 5, Arrived: time.Now(), Delay: 100 * ms}); err != nil {
			t.Fatal(err)
		}
		expectArmed(t, m, start.Add(30*ms))
		time.Sleep(5 * ms)
		expect(t, ch, start.Add(30*ms), 0)
		expectArmed(t, m, start.Add(125*ms))
		time.Sleep(95 * ms)
		expect(t, ch, start.Add(125*ms), 5)
		if _, ok := armed(m); ok {
			t.Fatal("a timer is armed with nothing held")
		}
	})
}

// TestMixerThreshold: the Add that completes a batch wakes Run, which had
// no timer, and the batch leaves at once.
func TestMixerThreshold(t *testing.T) {
	defer goleak.VerifyNone(t)
	synctest.Test(t, func(t *testing.T) {
		out, ch := newRecorder(clock.System())
		m := NewMixer(mustNew(t, Config{Kind: Threshold, Capacity: 3, N: 3}, 1), nil, out)
		runMixer(t, m)
		for round := range 3 {
			for i := range 3 {
				if err := m.Add(Item[int]{Value: 3*round + i}); err != nil {
					t.Fatal(err)
				}
				if i < 2 {
					expectNothing(t, ch)
				}
			}
			synctest.Wait()
			select {
			case r := <-ch:
				if !isPermutation(r.batch, []int{3 * round, 3*round + 1, 3*round + 2}) || !r.at.Equal(time.Now()) {
					t.Fatalf("round %d: released %v at %v", round, r.batch, r.at)
				}
			default:
				t.Fatalf("round %d: the full batch was not released", round)
			}
			if _, ok := armed(m); ok {
				t.Fatal("a timer armed for a threshold mix")
			}
			time.Sleep(time.Second)
		}
	})
}

// TestMixerTimedPool: releases happen on the ticks.
func TestMixerTimedPool(t *testing.T) {
	defer goleak.VerifyNone(t)
	synctest.Test(t, func(t *testing.T) {
		out, ch := newRecorder(clock.System())
		const iv = time.Second
		now := time.Now()
		start := now.Add(-300 * time.Millisecond) // ticks at now + 0.7s + k·1s
		m := NewMixer(mustNew(t, Config{Kind: TimedPool, Capacity: 10, Interval: iv, Keep: 1, Start: start}, 1), nil, out)
		for i := range 4 {
			if err := m.Add(Item[int]{Value: i}); err != nil {
				t.Fatal(err)
			}
		}
		runMixer(t, m)
		tick := now.Add(700 * time.Millisecond)
		expectArmed(t, m, tick)
		time.Sleep(700 * time.Millisecond)
		synctest.Wait()
		select {
		case r := <-ch:
			if len(r.batch) != 3 || !r.at.Equal(tick) {
				t.Fatalf("released %v at %v; want 3 items at %v", r.batch, r.at, tick)
			}
		default:
			t.Fatal("nothing released at the tick")
		}
		if _, ok := armed(m); ok { // Len == Keep: no timer
			t.Fatal("a timer is armed with only Keep items held")
		}
		if m.Len() != 1 {
			t.Fatalf("Len %d, want Keep = 1", m.Len())
		}
	})
}

// TestMixerOutUnlocked: out may call back into the Mixer (a relay may, for
// loopback traffic); it would deadlock if Run held the lock.
func TestMixerOutUnlocked(t *testing.T) {
	defer goleak.VerifyNone(t)
	synctest.Test(t, func(t *testing.T) {
		lens := make(chan int, 10)
		var m *Mixer[int]
		m = NewMixer(mustNew(t, Config{Kind: Threshold, Capacity: 4, N: 2}, 1), nil, func(b []int) {
			lens <- m.Len()
			if b[0] < 100 {
				_ = m.Add(Item[int]{Value: 100})
			}
		})
		runMixer(t, m)
		for i := range 2 {
			if err := m.Add(Item[int]{Value: i}); err != nil {
				t.Fatal(err)
			}
		}
		synctest.Wait()
		select {
		case n := <-lens:
			if n != 0 {
				t.Fatalf("Len in out = %d, want 0", n)
			}
		default:
			t.Fatal("out was not called, or deadlocked")
		}
		if n := m.Len(); n != 1 {
			t.Fatalf("Len %d after out added one, want 1", n)
		}
	})
}

func TestMixerAddConcurrent(t *testing.T) {
	defer goleak.VerifyNone(t)
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var got []int
		m := NewMixer(mustNew(t, Config{Kind: Poisson, Capacity: 1000, MaxDelay: time.Second}, 1), nil, func(b []int) {
			mu.Lock()
			got = append(got, b...)
			mu.Unlock()
		})
		runMixer(t, m)
		// No time passes while the Adds run (the bubble is not idle), so
		// no item leaves and frees room before all are counted.
		var wg sync.WaitGroup
		errs := make(chan error, 2000)
		now := time.Now()
		for g := range 4 {
			wg.Go(func() {
				for i := range 300 {
					errs <- m.Add(Item[int]{Value: g*1000 + i, Arrived: now, Delay: time.Duration(1+i%7) * time.Millisecond})
				}
			})
		}
		wg.Wait()
		close(errs)
		nFull := 0
		for err := range errs {
			switch {
			case err == nil:
			case errors.Is(err, ErrFull):
				nFull++
			default:
				t.Fatal(err)
			}
		}
		if nFull != 200 {
			t.Fatalf("%d Adds refused, want 1200 - capacity 1000 = 200", nFull)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		mu.Lock()
		defer mu.Unlock()
		if len(got) != 1000 {
			t.Fatalf("%d items released, want 1000", len(got))
		}
	})
}

func TestMixerRunTwice(t *testing.T) {
	defer goleak.VerifyNone(t)
	synctest.Test(t, func(t *testing.T) {
		m := NewMixer(mustNew(t, Config{Kind: Poisson, Capacity: 1, MaxDelay: 1}, 1), nil, func([]int) {})
		stop := runMixer(t, m)
		synctest.Wait()
		m.mu.Lock()
		running := m.running
		m.mu.Unlock()
		if !running {
			t.Fatal("Run is not running")
		}
		if err := m.Run(context.Background()); err == nil {
			t.Fatal("a second concurrent Run was accepted")
		}
		stop()
		// After Run returned it may run again; a done context stops it at once.
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := m.Run(ctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("Run with a done context returned %v", err)
		}
	})
}

// TestMixerSystemClock runs a Poisson mix on real time (outside a bubble)
// with short delays: the System clock's timers, as in a relay.
func TestMixerSystemClock(t *testing.T) {
	defer goleak.VerifyNone(t)
	type rec struct {
		v  int
		at time.Time
	}
	ch := make(chan rec, 10)
	m := NewMixer(mustNew(t, Config{Kind: Poisson, Capacity: 10, MaxDelay: time.Second}, 1), nil, func(b []int) {
		now := time.Now()
		for _, v := range b {
			ch <- rec{v, now}
		}
	})
	stop := runMixer(t, m)
	defer stop()
	start := time.Now()
	delays := []time.Duration{60 * time.Millisecond, 20 * time.Millisecond, 40 * time.Millisecond}
	for i, d := range delays {
		if err := m.Add(Item[int]{Value: i, Arrived: start, Delay: d}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.After(2 * time.Second)
	for _, want := range []int{1, 2, 0} {
		select {
		case r := <-ch:
			if r.v != want {
				t.Fatalf("item %d left, want %d", r.v, want)
			}
			if due := start.Add(delays[r.v]); r.at.Before(due) {
				t.Fatalf("item %d left at +%v, before its delay %v", r.v, r.at.Sub(start), delays[r.v])
			}
		case <-deadline:
			t.Fatal("items not released within 2 s")
		}
	}
}

package mix

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// released is one call of a Mixer's out function.
type released struct {
	at    time.Time
	batch []int
}

// runMixer starts m.Run on a goroutine and returns a function that cancels
// it and checks that it returned ctx.Err(). The function also runs at
// cleanup, so that a test that fails early leaves no Run behind to upset
// the leak checks of the tests after it.
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
func newRecorder(clock Clock) (func([]int), chan released) {
	ch := make(chan released, 100)
	return func(b []int) {
		ch <- released{clock.Now(), append([]int(nil), b...)}
	}, ch
}

func expect(tb testing.TB, ch chan released, at time.Time, batch ...int) {
	tb.Helper()
	select {
	case r := <-ch:
		if !r.at.Equal(at) || !sameInts(r.batch, batch) {
			tb.Fatalf("released %v at %v; want %v at %v", r.batch, r.at, batch, at)
		}
	case <-time.After(2 * time.Second):
		tb.Fatalf("nothing released; want %v at %v", batch, at)
	}
}

func expectNothing(tb testing.TB, ch chan released) {
	tb.Helper()
	select {
	case r := <-ch:
		tb.Fatalf("unexpected release of %v at %v", r.batch, r.at)
	case <-time.After(20 * time.Millisecond):
	}
}

func TestMixerPoissonFakeClock(t *testing.T) {
	defer goleak.VerifyNone(t)
	clock := newFakeClock(t0)
	out, ch := newRecorder(clock)
	m := NewMixer(mustNew(t, Config{Kind: Poisson, Capacity: 10, MaxDelay: time.Second}, 1), clock, out)
	ms := time.Millisecond
	for i, d := range []time.Duration{30 * ms, 10 * ms, 20 * ms, 20 * ms} {
		if err := m.Add(Item[int]{Value: i, Arrived: t0, Delay: d}); err != nil {
			t.Fatal(err)
		}
	}
	stop := runMixer(t, m)

	clock.waitArmed(t, t0.Add(10*ms))
	clock.AdvanceTo(t, t0.Add(10*ms-1))
	expectNothing(t, ch)
	clock.AdvanceTo(t, t0.Add(10*ms))
	expect(t, ch, t0.Add(10*ms), 1)

	clock.waitArmed(t, t0.Add(20*ms))
	clock.AdvanceTo(t, t0.Add(20*ms))
	expect(t, ch, t0.Add(20*ms), 2, 3)

	// An item due before the armed timer wakes Run, which re-arms.
	clock.waitArmed(t, t0.Add(30*ms))
	if err := m.Add(Item[int]{Value: 4, Arrived: clock.Now(), Delay: 5 * ms}); err != nil {
		t.Fatal(err)
	}
	clock.waitArmed(t, t0.Add(25*ms))
	clock.AdvanceTo(t, t0.Add(25*ms))
	expect(t, ch, t0.Add(25*ms), 4)

	// An item due later does not disturb the armed timer.
	if err := m.Add(Item[int]{Value: 5, Arrived: clock.Now(), Delay: 100 * ms}); err != nil {
		t.Fatal(err)
	}
	clock.waitArmed(t, t0.Add(30*ms))
	clock.AdvanceTo(t, t0.Add(30*ms))
	expect(t, ch, t0.Add(30*ms), 0)
	clock.waitArmed(t, t0.Add(125*ms))
	// Time jumps past the due time: released at the first look after.
	clock.AdvanceTo(t, t0.Add(200*ms))
	expect(t, ch, t0.Add(200*ms), 5)

	// With nothing held, Run waits on no timer, and an Add wakes it.
	if err := m.Add(Item[int]{Value: 6, Arrived: clock.Now(), Delay: ms}); err != nil {
		t.Fatal(err)
	}
	clock.waitArmed(t, t0.Add(201*ms))
	// Cancel with an item held and a timer armed: the item stays.
	stop()
	if m.Len() != 1 {
		t.Fatalf("Len %d after Run returned, want 1", m.Len())
	}
	if got := m.Drain(); !sameInts(got, []int{6}) {
		t.Fatalf("Drain returned %v", got)
	}
	if n := clock.armedCount(); n != 0 {
		t.Fatalf("%d timers left armed after Run returned", n)
	}
	expectNothing(t, ch)
}

// waitFor polls cond for up to 2 s.
func waitFor(tb testing.TB, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatal("condition not reached within 2 s")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestMixerThreshold: the Add that completes a batch wakes Run, which had
// no timer, and the batch leaves at once.
func TestMixerThreshold(t *testing.T) {
	defer goleak.VerifyNone(t)
	clock := newFakeClock(t0)
	out, ch := newRecorder(clock)
	m := NewMixer(mustNew(t, Config{Kind: Threshold, Capacity: 3, N: 3}, 1), clock, out)
	stop := runMixer(t, m)
	defer stop()
	for round := range 3 {
		for i := range 3 {
			if err := m.Add(Item[int]{Value: 3*round + i}); err != nil {
				t.Fatal(err)
			}
			if i < 2 {
				expectNothing(t, ch)
			}
		}
		select {
		case r := <-ch:
			if !isPermutation(r.batch, []int{3 * round, 3*round + 1, 3*round + 2}) || !r.at.Equal(clock.Now()) {
				t.Fatalf("round %d: released %v at %v", round, r.batch, r.at)
			}
		case <-time.After(2 * time.Second):
			t.Fatalf("round %d: the full batch was not released", round)
		}
		clock.Advance(time.Second)
	}
	if n := clock.armedCount(); n != 0 {
		t.Fatalf("%d timers armed for a threshold mix", n)
	}
}

// TestMixerTimedPool: releases happen on the ticks of the fake clock.
func TestMixerTimedPool(t *testing.T) {
	defer goleak.VerifyNone(t)
	clock := newFakeClock(t0)
	out, ch := newRecorder(clock)
	const iv = time.Second
	start := t0.Add(-300 * time.Millisecond) // ticks at t0 + 0.7s + k·1s
	m := NewMixer(mustNew(t, Config{Kind: TimedPool, Capacity: 10, Interval: iv, Keep: 1, Start: start}, 1), clock, out)
	// Items first, then Run: a wake-up still pending when the test
	// advances the clock would make Run re-arm its timer from a "now"
	// read before the advance, past the tick (a race of the fake clock,
	// microseconds with a real one).
	for i := range 4 {
		if err := m.Add(Item[int]{Value: i}); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-m.wake:
	default:
	}
	stop := runMixer(t, m)
	defer stop()
	tick := t0.Add(700 * time.Millisecond)
	clock.waitArmed(t, tick)
	clock.AdvanceTo(t, tick)
	select {
	case r := <-ch:
		if len(r.batch) != 3 || !r.at.Equal(tick) {
			t.Fatalf("released %v at %v; want 3 items at %v", r.batch, r.at, tick)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("nothing released at the tick")
	}
	waitFor(t, func() bool { return clock.armedCount() == 0 }) // Len == Keep: no timer
	if m.Len() != 1 {
		t.Fatalf("Len %d, want Keep = 1", m.Len())
	}
}

// TestMixerOutUnlocked: out may call back into the Mixer (a relay may, for
// loopback traffic); it would deadlock if Run held the lock.
func TestMixerOutUnlocked(t *testing.T) {
	defer goleak.VerifyNone(t)
	clock := newFakeClock(t0)
	lens := make(chan int, 10)
	var m *Mixer[int]
	m = NewMixer(mustNew(t, Config{Kind: Threshold, Capacity: 4, N: 2}, 1), clock, func(b []int) {
		lens <- m.Len()
		if b[0] < 100 {
			_ = m.Add(Item[int]{Value: 100})
		}
	})
	stop := runMixer(t, m)
	defer stop()
	for i := range 2 {
		if err := m.Add(Item[int]{Value: i}); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case n := <-lens:
		if n != 0 {
			t.Fatalf("Len in out = %d, want 0", n)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("out was not called, or deadlocked")
	}
	waitFor(t, func() bool { return m.Len() == 1 })
}

func TestMixerAddConcurrent(t *testing.T) {
	defer goleak.VerifyNone(t)
	clock := newFakeClock(t0)
	var mu sync.Mutex
	var got []int
	m := NewMixer(mustNew(t, Config{Kind: Poisson, Capacity: 1000, MaxDelay: time.Second}, 1), clock, func(b []int) {
		mu.Lock()
		got = append(got, b...)
		mu.Unlock()
	})
	stop := runMixer(t, m)
	defer stop()
	var wg sync.WaitGroup
	errs := make(chan error, 2000)
	for g := range 4 {
		wg.Go(func() {
			for i := range 300 {
				errs <- m.Add(Item[int]{Value: g*1000 + i, Arrived: t0, Delay: time.Duration(1+i%7) * time.Millisecond})
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
	clock.Advance(time.Second)
	waitFor(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == 1000
	})
}

func TestMixerRunTwice(t *testing.T) {
	defer goleak.VerifyNone(t)
	m := NewMixer(mustNew(t, Config{Kind: Poisson, Capacity: 1, MaxDelay: 1}, 1), newFakeClock(t0), func([]int) {})
	stop := runMixer(t, m)
	waitFor(t, func() bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		return m.running
	})
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
}

// TestMixerSystemClock runs a Poisson mix on real time with short delays.
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

package clock

import (
	"testing"
	"time"
)

// TestManual checks the test clock itself, since tests across the module
// rely on it: timers fire at their deadline, not before, in deadline
// order, and Stop prevents firing.
func TestManual(t *testing.T) {
	c := NewManual(time.Unix(100, 0))
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
	if armed, _ := c.Armed(); len(armed) != 0 {
		t.Fatalf("%d timers armed, want 0", len(armed))
	}
}

// TestManualSetBack: moving the clock back fires nothing and later
// timers count from the new time.
func TestManualSetBack(t *testing.T) {
	t0 := time.Unix(1000, 0)
	c := NewManual(t0)
	tm := c.NewTimer(time.Second)
	c.Set(t0.Add(-time.Hour))
	select {
	case <-tm.C():
		t.Fatal("timer fired when the clock moved back")
	default:
	}
	if !c.Now().Equal(t0.Add(-time.Hour)) {
		t.Fatalf("Now = %v after Set", c.Now())
	}
	c.Set(t0.Add(time.Second))
	select {
	case <-tm.C():
	default:
		t.Fatal("timer did not fire once the clock reached its deadline")
	}
}

// TestOrSystem: a nil Clock means the system clock.
func TestOrSystem(t *testing.T) {
	m := NewManual(time.Unix(5, 0))
	if Or(m) != Clock(m) {
		t.Fatal("Or replaced a non-nil clock")
	}
	before := time.Now()
	if got := Or(nil).Now(); got.Before(before) {
		t.Fatalf("Or(nil).Now() = %v, before %v", got, before)
	}
}

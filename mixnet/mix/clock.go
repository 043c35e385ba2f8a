package mix

import "time"

// Clock is the time source a Mixer runs on. Tests and the simulator
// replace the system clock with one they advance themselves.
type Clock interface {
	Now() time.Time
	// NewTimer returns a timer that sends the time on C once d has passed.
	NewTimer(d time.Duration) Timer
}

// Timer is a one-shot timer, like time.Timer.
//
// Stop prevents the timer from firing and reports whether it was still
// pending; Reset re-arms it to fire d from now. After Stop returns false the
// Mixer empties C without blocking before it calls Reset, so an
// implementation may deliver on a buffered channel.
type Timer interface {
	C() <-chan time.Time
	Stop() bool
	Reset(d time.Duration)
}

// SystemClock returns the Clock of package time.
func SystemClock() Clock { return systemClock{} }

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) NewTimer(d time.Duration) Timer { return systemTimer{time.NewTimer(d)} }

type systemTimer struct{ t *time.Timer }

func (s systemTimer) C() <-chan time.Time { return s.t.C }
func (s systemTimer) Stop() bool          { return s.t.Stop() }
func (s systemTimer) Reset(d time.Duration) {
	s.t.Reset(d)
}

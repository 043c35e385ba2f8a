// Package clock is the one time source of sealnet's daemons and client.
//
// Code that decides by time (epochs, mixing delays, expiry, retries,
// cover schedules) takes a Clock instead of calling package time, so
// that a test or the simulator can run it on a clock it moves itself.
// Production code passes System (or nil, which every option struct in
// the module reads as System). Tests whose subject is in-process use
// testing/synctest with the System clock; tests that cross real sockets
// or processes, where a synctest bubble cannot hold them, use Manual.
package clock

import "time"

// Clock tells the time and makes timers.
type Clock interface {
	Now() time.Time
	// NewTimer returns a timer that sends the time on C once d has passed.
	NewTimer(d time.Duration) Timer
}

// Timer is a one-shot timer, like time.Timer.
//
// Stop prevents the timer from firing and reports whether it was still
// pending; Reset re-arms it to fire d from now. After Stop returns false a
// caller empties C without blocking before it calls Reset, so an
// implementation may deliver on a buffered channel.
type Timer interface {
	C() <-chan time.Time
	Stop() bool
	Reset(d time.Duration)
}

// System returns the Clock of package time.
func System() Clock { return system{} }

// Or returns c, or System if c is nil: what an option struct's zero
// value means.
func Or(c Clock) Clock {
	if c == nil {
		return System()
	}
	return c
}

type system struct{}

func (system) Now() time.Time { return time.Now() }

func (system) NewTimer(d time.Duration) Timer { return systemTimer{time.NewTimer(d)} }

type systemTimer struct{ t *time.Timer }

func (s systemTimer) C() <-chan time.Time   { return s.t.C }
func (s systemTimer) Stop() bool            { return s.t.Stop() }
func (s systemTimer) Reset(d time.Duration) { s.t.Reset(d) }

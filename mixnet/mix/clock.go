package mix

import "github.com/sealnet/sealnet/internal/clock"

// Clock is the time source a Mixer runs on: the module's one clock
// (internal/clock), named here so that users of this package can
// implement it. The simulator drives strategies without one.
type Clock = clock.Clock

// Timer is a one-shot timer made by a Clock, like time.Timer.
type Timer = clock.Timer

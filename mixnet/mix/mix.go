package mix

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// Sentinel errors. Callers branch on them with errors.Is; the errors
// returned may wrap them with detail.
var (
	// ErrFull: the strategy holds its capacity; the caller drops the packet
	// and counts it.
	ErrFull = errors.New("mix: full")
	// ErrConfig: a Config fails validation, or New was given no random
	// source. The wrapping error names the field.
	ErrConfig = errors.New("mix: invalid config")
)

// Item is one packet handed to a strategy.
type Item[T any] struct {
	Value   T
	Arrived time.Time     // when the packet arrived (the caller's clock)
	Delay   time.Duration // the delay the sender asked for (used by Poisson only)
}

// Strategy holds items and decides when each leaves and in what order.
// Implementations never read the clock and never start goroutines; they
// are not safe for concurrent use (Mixer adds the locking).
type Strategy[T any] interface {
	// Add hands an item to the strategy at time now. It returns ErrFull,
	// and holds nothing new, when Len() == capacity.
	Add(now time.Time, it Item[T]) error
	// Release appends to dst every item due at or before now, in sending
	// order, removes them, and returns the extended slice.
	Release(now time.Time, dst []T) []T
	// Next reports the earliest time at which Release would return
	// something; false if nothing is pending (no timer is needed).
	Next() (time.Time, bool)
	// Len is the number of items held.
	Len() int
	// Drain appends everything held to dst and removes it (shutdown). The
	// drained items have not been mixed.
	Drain(dst []T) []T
}

// Kind names a strategy.
type Kind string

// The strategies; the package documentation says what each one gives.
const (
	// Poisson is the continuous-time mix (Loopix): each item leaves at
	// Arrived + min(max(Delay, 0), MaxDelay); equal due times leave in
	// arrival order. Add's now is not used.
	Poisson Kind = "poisson"
	// Threshold is the batch mix: when N items are held, all leave at once
	// in uniformly random order. The batch is due at the now of the Add
	// that completed it. With Capacity > N, items added while a completed
	// batch waits for Release start the next batch (they never join the
	// waiting one), and batches leave oldest first. Arrived and Delay are
	// not used.
	Threshold Kind = "threshold"
	// TimedPool is the timed pool mix: every Interval (ticks at Start +
	// k·Interval for every integer k), all but Keep items leave, the Keep
	// kept ones chosen uniformly at random; output in random order.
	// Release(now) processes the latest tick at or before now, once:
	// ticks the caller missed collapse into one flush, not one per tick.
	// Ticks at which the pool held Keep items or fewer would have sent
	// nothing, and Add counts them as processed, so an item that arrives at
	// a quiet pool waits for the next tick on the grid rather than leaving
	// at once. Next is the tick after the last processed one, and only
	// while Len() > Keep. Arrived and Delay are not used.
	TimedPool Kind = "timed-pool"
)

// Config selects and sizes a strategy. Fields that do not apply to Kind are
// ignored.
type Config struct {
	Kind     Kind
	Capacity int           // most items held; > 0
	MaxDelay time.Duration // Poisson: cap on the sender's delay; > 0
	N        int           // Threshold: batch size; 1 <= N <= Capacity
	Interval time.Duration // TimedPool: > 0
	Keep     int           // TimedPool: 0 <= Keep < Capacity
	Start    time.Time     // TimedPool: tick origin (the zero time is fine)
}

// Validate reports the first field of c that is out of range, in an error
// that wraps ErrConfig.
func (c Config) Validate() error {
	switch c.Kind {
	case Poisson, Threshold, TimedPool:
	default:
		return fmt.Errorf("%w: Kind %q is not one of %q, %q, %q", ErrConfig, string(c.Kind), Poisson, Threshold, TimedPool)
	}
	if c.Capacity <= 0 {
		return fmt.Errorf("%w: Capacity is %d, must be > 0", ErrConfig, c.Capacity)
	}
	switch c.Kind {
	case Poisson:
		if c.MaxDelay <= 0 {
			return fmt.Errorf("%w: MaxDelay is %v, must be > 0 for %s", ErrConfig, c.MaxDelay, c.Kind)
		}
	case Threshold:
		if c.N < 1 || c.N > c.Capacity {
			return fmt.Errorf("%w: N is %d, must be in [1, Capacity=%d] for %s", ErrConfig, c.N, c.Capacity, c.Kind)
		}
	case TimedPool:
		if c.Interval <= 0 {
			return fmt.Errorf("%w: Interval is %v, must be > 0 for %s", ErrConfig, c.Interval, c.Kind)
		}
		if c.Keep < 0 || c.Keep >= c.Capacity {
			return fmt.Errorf("%w: Keep is %d, must be in [0, Capacity=%d) for %s", ErrConfig, c.Keep, c.Capacity, c.Kind)
		}
	}
	return nil
}

// New returns the strategy for cfg. rng supplies all randomness (shuffles,
// pool choice) so that simulations are reproducible; relays pass a
// *rand.Rand over a ChaCha8 seeded from crypto/rand. The strategy uses rng
// on every call that makes a random choice, so rng must not be used
// concurrently elsewhere. rng is required for every kind, even Poisson,
// which makes no random choice, so that changing Kind cannot break a caller.
func New[T any](cfg Config, rng *rand.Rand) (Strategy[T], error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if rng == nil {
		return nil, fmt.Errorf("%w: rng is nil", ErrConfig)
	}
	switch cfg.Kind {
	case Poisson:
		return newPoisson[T](cfg), nil
	case Threshold:
		return newThreshold[T](cfg, rng), nil
	default: // TimedPool; Validate admits nothing else
		return newTimedPool[T](cfg, rng), nil
	}
}

// shuffle puts s in a uniformly random order (Fisher–Yates).
func shuffle[T any](rng *rand.Rand, s []T) {
	for i := len(s) - 1; i > 0; i-- {
		j := rng.IntN(i + 1)
		s[i], s[j] = s[j], s[i]
	}
}

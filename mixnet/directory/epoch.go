package directory

import (
	"math"
	"math/bits"
	"time"
)

// Epochs count from the Unix epoch: epoch e covers [e·period, (e+1)·period)
// after 1970-01-01 00:00:00 UTC. Every node and client computes them from
// its own clock; the document's Period fixes the length.

const nsPerSecond = uint64(time.Second)

// maxUnix is the largest Unix time in seconds that time.Time represents
// (it counts int64 seconds from 0001-01-01).
const maxUnix = math.MaxInt64 - (1969*365+1969/4-1969/100+1969/400)*86400

// EpochAt returns the epoch that t falls in. Times before the Unix epoch
// are in epoch 0. It panics if period is not positive.
func EpochAt(t time.Time, period time.Duration) uint64 {
	if period <= 0 {
		panic("directory: EpochAt with a non-positive period")
	}
	sec, nsec := t.Unix(), int64(t.Nanosecond())
	if sec < 0 {
		return 0
	}
	// t in nanoseconds as 128 bits, divided by period.
	hi, lo := bits.Mul64(uint64(sec), nsPerSecond)
	lo, carry := bits.Add64(lo, uint64(nsec), 0)
	hi += carry
	p := uint64(period)
	if hi >= p {
		return math.MaxUint64 // beyond any representable epoch
	}
	q, _ := bits.Div64(hi, lo, p)
	return q
}

// EpochStart returns the first instant of epoch e, in UTC. Epochs that
// would start beyond the range of time.Time saturate at its maximum. It
// panics if period is not positive.
func EpochStart(e uint64, period time.Duration) time.Time {
	if period <= 0 {
		panic("directory: EpochStart with a non-positive period")
	}
	hi, lo := bits.Mul64(e, uint64(period))
	if hi >= nsPerSecond {
		return time.Unix(maxUnix, 0).UTC()
	}
	sec, nsec := bits.Div64(hi, lo, nsPerSecond)
	if sec > maxUnix {
		return time.Unix(maxUnix, 0).UTC()
	}
	return time.Unix(int64(sec), int64(nsec)).UTC()
}

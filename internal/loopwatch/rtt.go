package loopwatch

import (
	"math"
	"time"
)

// ExpectedRTT returns the q-quantile of the round trip of a loop that
// crosses hops Poisson mixes, each holding it for an exponential delay of
// mean meanDelay, and is held a further fixed time hold (link latency,
// processing, a provider's hold, the wait for a fetch): the q-quantile of
// an Erlang(hops, meanDelay) distribution, plus hold. For the delay test,
// q is 1 − SlowShare (0.95 by default).
//
// hops ≤ 0 or meanDelay ≤ 0 give hold; q ≤ 0 gives hold, q ≥ 1 the
// longest duration.
func ExpectedRTT(hops int, meanDelay, hold time.Duration, q float64) time.Duration {
	switch {
	case q >= 1:
		return math.MaxInt64
	case hops <= 0 || meanDelay <= 0 || q <= 0:
		return hold
	}
	y := erlangQuantile(hops, q)
	d := y * float64(meanDelay)
	if d >= float64(math.MaxInt64-max(hold, 0)) {
		return math.MaxInt64
	}
	return time.Duration(d) + hold
}

// erlangQuantile returns y with P(Y ≤ y) = q for Y ~ Erlang(k, 1) (a sum
// of k unit exponentials), by bisection on its distribution function
// 1 − e^(−y) Σ_{i<k} y^i/i!.
func erlangQuantile(k int, q float64) float64 {
	cdf := func(y float64) float64 {
		// The terms e^(−y) y^i/i! in logarithms, so that neither factor
		// overflows or underflows alone.
		var s float64
		lt, ly := -y, math.Log(y)
		for i := range k {
			s += math.Exp(lt)
			lt += ly - math.Log(float64(i+1))
		}
		return 1 - s
	}
	lo, hi := 0.0, float64(k)
	for cdf(hi) < q {
		hi *= 2
	}
	for range 200 {
		mid := (lo + hi) / 2
		if cdf(mid) < q {
			lo = mid
		} else {
			hi = mid
		}
		if hi-lo <= 1e-12*hi {
			break
		}
	}
	return hi
}

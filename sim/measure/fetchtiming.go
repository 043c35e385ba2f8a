package measure

import (
	"math"
	"slices"
	"time"

	"github.com/sealnet/sealnet/internal/testbed/load"
)

// Fetch timing on the wire: how long after a fetch request the provider's
// answer starts, for answers that handed the user something real (its
// mail, or the acknowledgement of one of its messages: the client showed
// it within 200 ms, ground truth) against the others. With long polls the
// provider answers the moment mail lands and an empty fetch after the
// whole wait, so the two differ by seconds; with constant-rate pulls every
// answer comes mailbox/proto.PullAnswerDelay after its request, whatever the
// page holds. The test is the two-sample Kolmogorov–Smirnov statistic D
// with its asymptotic p-value.

// FetchTiming is that comparison on one capture.
type FetchTiming struct {
	Answers     int     `json:"answers"`
	Real        int     `json:"real"`
	RealMedian  float64 `json:"real_median_s"`
	OtherMedian float64 `json:"other_median_s"`
	D           float64 `json:"ks_d"`
	P           float64 `json:"ks_p"`
}

func fetchTimingTest(answers []answer, truth *load.Truth, at func(time.Time) int64) FetchTiming {
	real := realTimes(truth, at)
	var x [2][]float64
	for _, a := range answers {
		ts := real[a.u]
		// The page arrives within milliseconds of the answer's start; the
		// client shows what it held once it has opened and saved it.
		isReal := realWithin(ts, a.t, 0, 200*time.Millisecond)
		x[b2i(isReal)] = append(x[b2i(isReal)], float64(a.latency)/1e9)
	}
	f := FetchTiming{Answers: len(answers), Real: len(x[1]), RealMedian: median(x[1]), OtherMedian: median(x[0]), P: math.NaN()}
	if len(x[0]) > 0 && len(x[1]) > 0 {
		f.D, f.P = ks(x[0], x[1])
	}
	return f
}

// ks is the two-sample Kolmogorov–Smirnov statistic and its asymptotic
// p-value (the Kolmogorov distribution at √(nm/(n+m))·D, with Stephens'
// small-sample correction).
func ks(a, b []float64) (d, p float64) {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		x := min(a[i], b[j])
		for i < len(a) && a[i] <= x {
			i++
		}
		for j < len(b) && b[j] <= x {
			j++
		}
		d = max(d, math.Abs(float64(i)/float64(len(a))-float64(j)/float64(len(b))))
	}
	n := float64(len(a)) * float64(len(b)) / float64(len(a)+len(b))
	lam := (math.Sqrt(n) + 0.12 + 0.11/math.Sqrt(n)) * d
	p = 0
	for k := 1; k <= 100; k++ {
		term := 2 * math.Pow(-1, float64(k-1)) * math.Exp(-2*float64(k*k)*lam*lam)
		p += term
		if math.Abs(term) < 1e-12 {
			break
		}
	}
	return d, min(max(p, 0), 1)
}

package stats

import "math"

// Z975 is the 0.975 quantile of the standard normal distribution: the z
// of every two-sided 95 % interval the tests, the simulator and the
// measurement report give.
const Z975 = 1.959963984540054

// Wilson is the 95 % Wilson score interval of k successes in n trials.
func Wilson(k, n float64) (lo, hi float64) {
	if n <= 0 {
		return math.NaN(), math.NaN()
	}
	const z = Z975
	p := k / n
	d := 1 + z*z/n
	c := (p + z*z/(2*n)) / d
	h := z * math.Sqrt(p*(1-p)/n+z*z/(4*n*n)) / d
	return max(0, c-h), min(1, c+h)
}

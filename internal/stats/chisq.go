// Package stats holds the small statistical tools shared by the packet
// layer's and the mailbox's statistical tests (ChiSquare), the simulator's
// comparison and sweep reports, and the measurement report (Wilson, Z975).
package stats

import "math"

// ChiSquare returns Pearson's statistic for observed counts against a
// uniform expectation over all len(counts) categories.
func ChiSquare[T ~int | ~int64 | ~uint64](counts []T) float64 {
	var total T
	for _, c := range counts {
		total += c
	}
	if total == 0 || len(counts) == 0 {
		return 0
	}
	e := float64(total) / float64(len(counts))
	var x float64
	for _, c := range counts {
		d := float64(c) - e
		x += d * d / e
	}
	return x
}

// NormalQuantile returns z such that P(Z > z) = alpha for a standard
// normal Z.
func NormalQuantile(alpha float64) float64 {
	return math.Sqrt2 * math.Erfinv(1-2*alpha)
}

// ChiSquareCritical returns the value a chi-square variable with df degrees
// of freedom exceeds with probability alpha, by the Wilson–Hilferty
// approximation (accurate to well under 1% for df >= 15 and the alphas
// tests use).
func ChiSquareCritical(df int, alpha float64) float64 {
	k := float64(df)
	a := 2 / (9 * k)
	v := 1 - a + NormalQuantile(alpha)*math.Sqrt(a)
	return k * v * v * v
}

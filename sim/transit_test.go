package sim

import (
	"math"
	"testing"
)

// TestTransitPDF: the tabulated transit density integrates to 1 and has
// the mean of its parts.
func TestTransitPDF(t *testing.T) {
	for _, c := range []struct {
		k        int
		mu, hold float64
	}{{4, 100e6, 0}, {4, 100e6, 5e9}, {1, 1e9, 1e9}, {10, 50e6, 30e9}} {
		p := newTransitPDF(c.k, c.mu, c.hold, 20e6)
		sum, mean := 0.0, 0.0
		for i, f := range p.f {
			x := p.shift + (float64(i)+0.5)*p.step
			sum += f * p.step
			mean += x * f * p.step
		}
		want := 20e6 + float64(c.k)*c.mu + c.hold
		if math.Abs(sum-1) > 0.01 || math.Abs(mean-want)/want > 0.02 {
			t.Errorf("%+v: mass %.4f, mean %.4g (want 1, %.4g)", c, sum, mean, want)
		}
	}
}

package stats

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestChiSquareCritical(t *testing.T) {
	// Reference quantiles from standard chi-square tables.
	cases := []struct {
		df    int
		alpha float64
		want  float64
	}{
		{15, 0.05, 24.996},
		{15, 0.001, 37.697},
		{100, 0.01, 135.807},
		{255, 0.05, 293.248},
		{255, 0.001, 330.520},
	}
	for _, c := range cases {
		got := ChiSquareCritical(c.df, c.alpha)
		if math.Abs(got-c.want)/c.want > 0.01 {
			t.Errorf("df=%d alpha=%g: %.3f, want %.3f", c.df, c.alpha, got, c.want)
		}
	}
}

// TestChiSquareSeparates checks that the statistic passes uniform bytes and
// fails bytes with a small bias, so the tests built on it can fail.
func TestChiSquareSeparates(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	uniform := make([]uint64, 256)
	biased := make([]uint64, 256)
	for range 1_000_000 {
		uniform[r.IntN(256)]++
		b := r.IntN(256)
		if r.IntN(100) == 0 {
			b = 0 // 1% of bytes stuck at zero
		}
		biased[b]++
	}
	crit := ChiSquareCritical(255, 1e-4)
	if x := ChiSquare(uniform); x > crit {
		t.Fatalf("uniform bytes rejected: %.1f > %.1f", x, crit)
	}
	if x := ChiSquare(biased); x < crit {
		t.Fatalf("biased bytes accepted: %.1f < %.1f", x, crit)
	}
}

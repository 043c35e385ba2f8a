package sim

import "testing"

// TestOverlap: intervals that share a point agree; figures a hair apart at
// a ceiling (intervals of width ~0) agree; a real gap does not.
func TestOverlap(t *testing.T) {
	for _, c := range []struct {
		c    Compared
		want bool
	}{
		{Compared{Pred: 0.5, PredLo: 0.4, PredHi: 0.6, Meas: 0.65, MeasLo: 0.55, MeasHi: 0.75}, true},
		{Compared{Pred: 2.555, PredLo: 2.55, PredHi: 2.558, Meas: 2.563, MeasLo: 2.56, MeasHi: 2.57}, true},
		{Compared{Pred: 1, PredLo: 0.89, PredHi: 1, Meas: 0.21, MeasLo: 0.11, MeasHi: 0.36}, false},
		{Compared{Pred: 2.0, PredLo: 1.99, PredHi: 2.0, Meas: 2.1, MeasLo: 2.09, MeasHi: 2.11}, false},
	} {
		if got := c.c.Overlap(); got != c.want {
			t.Errorf("%+v: Overlap %v, want %v", c.c, got, c.want)
		}
	}
}

package sim

import (
	"fmt"
	"math"

	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"

	istats "github.com/sealnet/sealnet/internal/stats"
)

// Wilson is the 95 % Wilson score interval of k successes in n trials: the
// confidence interval the comparison report gives a rate (internal/stats.Wilson).
func Wilson(k, n float64) (lo, hi float64) { return istats.Wilson(k, n) }

// A Compared is one figure, predicted and measured, with 95 % intervals.
type Compared struct {
	Name                 string
	Short                string // the plot's label; default Name
	Pred, PredLo, PredHi float64
	Meas, MeasLo, MeasHi float64
}

// Overlap reports whether the two intervals share a point.
//
// Figures within agreeTolerance of each other also count as agreeing: at a
// ceiling (every message's entropy near log2 of the users) the intervals
// shrink to nothing and a difference of a thousandth of a bit would
// otherwise count as a disagreement.
func (c Compared) Overlap() bool {
	return c.PredLo <= c.MeasHi && c.MeasLo <= c.PredHi || math.Abs(c.Pred-c.Meas) <= agreeTolerance*max(1, math.Abs(c.Pred))
}

// agreeTolerance is the relative difference under which two figures are
// the same figure (Compared.Overlap).
const agreeTolerance = 0.01

// WriteComparison writes two plots into dir, as PNG and SVG: the CDF of
// the sender entropy over targets, predicted and measured, and the attack
// rates (0..1) of rates with their intervals. It returns the files.
func WriteComparison(dir string, pred, meas *Result, rates []Compared) ([]string, error) {
	var files []string
	p := newPlot()
	p.Title.Text = "Sender entropy over targets: simulated vs measured"
	p.X.Label.Text = "sender entropy (bits)"
	p.Y.Label.Text = "share of targets"
	p.Y.Min, p.Y.Max = 0, 1
	for i, s := range []struct {
		name string
		r    *Result
	}{{"simulated", pred}, {"measured on the testnet", meas}} {
		if len(s.r.EntropyCDF) == 0 {
			continue
		}
		xy := make(plotter.XYs, len(s.r.EntropyCDF))
		for k, h := range s.r.EntropyCDF {
			xy[k].X, xy[k].Y = h, float64(k)/100
		}
		l, err := plotter.NewLine(xy)
		if err != nil {
			return nil, err
		}
		l.Color = plotutil.Color(i)
		l.Width = vg.Points(1.5)
		if i == 0 {
			l.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
		}
		p.Add(l)
		p.Legend.Add(fmt.Sprintf("%s (%d targets)", s.name, s.r.Targets), l)
	}
	f, err := savePlot(p, dir, "entropy_cdf")
	files = append(files, f...)
	if err != nil {
		return files, err
	}

	p = newPlot()
	p.Title.Text = "Attack success (95% intervals): simulated vs measured"
	p.Y.Label.Text = "rate"
	p.Y.Min, p.Y.Max = 0, 1
	names := make([]string, len(rates))
	for i, side := range []string{"simulated", "measured on the testnet"} {
		var xy plotter.XYs
		var yerr plotter.YErrors
		for k, c := range rates {
			names[k] = c.Name
			if c.Short != "" {
				names[k] = c.Short
			}
			v, lo, hi := c.Pred, c.PredLo, c.PredHi
			if i == 1 {
				v, lo, hi = c.Meas, c.MeasLo, c.MeasHi
			}
			if math.IsNaN(v) {
				continue
			}
			xy = append(xy, plotter.XY{X: float64(k) + 0.15*float64(2*i-1), Y: v})
			yerr = append(yerr, struct{ Low, High float64 }{v - lo, hi - v})
		}
		if len(xy) == 0 {
			continue
		}
		sc, err := plotter.NewScatter(xy)
		if err != nil {
			return files, err
		}
		sc.Color = plotutil.Color(i)
		sc.Shape = plotutil.Shape(i)
		eb, err := plotter.NewYErrorBars(struct {
			plotter.XYs
			plotter.YErrors
		}{xy, yerr})
		if err != nil {
			return files, err
		}
		eb.Color = plotutil.Color(i)
		p.Add(sc, eb)
		p.Legend.Add(side, sc)
	}
	p.NominalX(names...)
	p.X.Min, p.X.Max = -0.6, float64(len(rates))-0.4
	f, err = savePlot(p, dir, "attacks")
	return append(files, f...), err
}

package sim

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"
)

// The keys the figure plots put on their x axis.
const (
	keyDelay = "mixing.mean_delay"
	keyCover = "client.rate"
)

// maxLegend is the most lines the latency CDF names, and the most swept
// values the x axis ticks one by one; past it they would crowd the plot.
const maxLegend = 12

// Plot size, and the PNG's resolution.
const (
	plotW   = 16 * vg.Centimeter
	plotH   = 10 * vg.Centimeter
	plotDPI = 150
)

// WritePlots writes into dir, as PNG and SVG, the plots the result
// supports: entropy against the mean per-hop delay if mixing.mean_delay
// was swept, attack success against client.rate if that was, and always
// the latency CDF of each point's first seed. It returns the names of the
// files written; dir must exist. Both formats are deterministic: the
// same result gives the same bytes (TestSweepDeterministic).
func WritePlots(dir string, s *SweepResult) ([]string, error) {
	var written []string
	type maker struct {
		name string
		make func(*SweepResult) (*plot.Plot, error)
	}
	makers := []maker{{"latency_cdf", latencyCDFPlot}}
	if slices.Contains(s.Keys, keyDelay) {
		makers = append(makers, maker{"entropy_vs_delay", entropyPlot})
	}
	if slices.Contains(s.Keys, keyCover) {
		makers = append(makers, maker{"attack_vs_cover", attackPlot})
	}
	for _, m := range makers {
		p, err := m.make(s)
		if err != nil {
			return written, fmt.Errorf("sim: plot %s: %w", m.name, err)
		}
		files, err := savePlot(p, dir, m.name)
		written = append(written, files...)
		if err != nil {
			return written, fmt.Errorf("sim: plot %s: %w", m.name, err)
		}
	}
	return written, nil
}

// savePlot draws p with its legend below the axes, where it hides no
// data, and writes name.png and name.svg into dir.
func savePlot(p *plot.Plot, dir, name string) ([]string, error) {
	legend := p.Legend
	p.Legend = plot.NewLegend()
	legend.Left, legend.Top = true, true
	r := legend.Rectangle(draw.Canvas{})
	legendH := r.Max.Y - r.Min.Y
	h := plotH
	if legendH > 0 {
		legendH += vg.Centimeter / 2
		h += legendH
	}
	render := func(c vg.CanvasSizer) {
		dc := draw.New(c)
		p.Draw(draw.Crop(dc, 0, 0, legendH, 0))
		if legendH > 0 {
			area := dc
			area.Min.X += vg.Centimeter
			area.Max.Y = area.Min.Y + legendH - vg.Centimeter/4
			legend.Draw(area)
		}
	}
	png := vgimg.NewWith(vgimg.UseWH(plotW, h), vgimg.UseDPI(plotDPI))
	render(png)
	svg := vgsvg.New(plotW, h)
	render(svg)
	var files []string
	for _, f := range []struct {
		ext string
		w   io.WriterTo
	}{{"png", vgimg.PngCanvas{Canvas: png}}, {"svg", svg}} {
		var b bytes.Buffer
		if _, err := f.w.WriteTo(&b); err != nil {
			return files, err
		}
		path := filepath.Join(dir, name+"."+f.ext)
		if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
			return files, err
		}
		files = append(files, path)
	}
	return files, nil
}

// group is the points that share every swept value but the x axis's.
type group struct {
	label  string
	points []int
}

// groupBy splits the points by their values of every key but x, in the
// order the groups first appear.
func groupBy(s *SweepResult, x string) []group {
	var gs []group
	at := map[string]int{}
	for i, p := range s.Points {
		var parts []string
		for _, pv := range p.Params {
			if pv.Key != x {
				parts = append(parts, pv.Key+"="+pv.Text)
			}
		}
		label := strings.Join(parts, ", ")
		k, ok := at[label]
		if !ok {
			k = len(gs)
			at[label] = k
			gs = append(gs, group{label: label})
		}
		gs[k].points = append(gs[k].points, i)
	}
	return gs
}

// errXY is a line's points with their 95 % confidence bars, clipped to
// the figure's range (no negative entropy, no rate above 1).
type errXY struct {
	plotter.XYs
	lo, hi []float64
}

func (e errXY) YError(i int) (float64, float64) { return e.lo[i], e.hi[i] }

// series collects (x, stat) of a group's points, sorted by x, leaving out
// points without the figure.
func series(s *SweepResult, g group, x func(*Config) float64, stat func(*Aggregate) *Stat, ymax float64) errXY {
	var e errXY
	idx := slices.Clone(g.points)
	slices.SortStableFunc(idx, func(a, b int) int {
		xa, xb := x(s.Points[a].Config), x(s.Points[b].Config)
		switch {
		case xa < xb:
			return -1
		case xa > xb:
			return 1
		}
		return 0
	})
	for _, i := range idx {
		st := stat(&s.Points[i].Aggregate)
		if math.IsNaN(st.Mean) || math.IsInf(st.Mean, 0) {
			continue
		}
		ci := st.CI95
		if math.IsNaN(ci) || math.IsInf(ci, 0) {
			ci = 0 // one seed: no bar
		}
		e.XYs = append(e.XYs, plotter.XY{X: x(s.Points[i].Config), Y: st.Mean})
		e.lo = append(e.lo, min(ci, st.Mean))
		e.hi = append(e.hi, max(0, min(ci, ymax-st.Mean)))
	}
	return e
}

// addSeries draws a line with points and error bars.
func addSeries(p *plot.Plot, e errXY, i int, dashed bool, label string) error {
	if len(e.XYs) == 0 {
		return nil
	}
	line, pts, err := plotter.NewLinePoints(e.XYs)
	if err != nil {
		return err
	}
	c := plotutil.Color(i)
	line.Color, pts.Color = c, c
	pts.Shape = plotutil.Shape(i)
	if dashed {
		line.Dashes = []vg.Length{vg.Points(6), vg.Points(3)}
	}
	p.Add(line, pts)
	if slices.ContainsFunc(e.hi, func(c float64) bool { return c > 0 }) || slices.ContainsFunc(e.lo, func(c float64) bool { return c > 0 }) {
		bars, err := plotter.NewYErrorBars(e)
		if err != nil {
			return err
		}
		bars.Color = c
		p.Add(bars)
	}
	if label != "" {
		p.Legend.Add(label, line, pts)
	}
	return nil
}

// xAxis ticks the x axis at the swept values, and puts it on a log
// scale when they span a decade or more (delays do: their effect is
// logarithmic). It runs after the data are added, which set the range.
func xAxis(p *plot.Plot, s *SweepResult, x func(*Config) float64, logOK bool) {
	var xs []float64
	for _, pt := range s.Points {
		xs = append(xs, x(pt.Config))
	}
	slices.Sort(xs)
	xs = slices.Compact(xs)
	if p.X.Min > p.X.Max {
		return // no data
	}
	// A margin, so that the end points and their tick labels are not
	// cut at the edges.
	if logOK && p.X.Min > 0 && p.X.Max/p.X.Min >= 10 {
		p.X.Scale = plot.LogScale{}
		p.X.Tick.Marker = plot.LogTicks{Prec: -1}
		p.X.Min, p.X.Max = p.X.Min/1.2, p.X.Max*1.2
	} else {
		m := max((p.X.Max-p.X.Min)/25, math.Abs(p.X.Max)/25, 1e-9)
		p.X.Min, p.X.Max = p.X.Min-m, p.X.Max+m
	}
	if len(xs) <= maxLegend {
		ticks := make(plot.ConstantTicks, len(xs))
		for i, v := range xs {
			ticks[i] = plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'g', -1, 64)}
		}
		p.X.Tick.Marker = ticks
	}
}

func ciNote(s *SweepResult) string {
	if s.Seeds > 1 {
		return fmt.Sprintf("mean of %d seeds, bars: 95%% CI", s.Seeds)
	}
	return "one seed"
}

func entropyPlot(s *SweepResult) (*plot.Plot, error) {
	p := newPlot()
	p.Title.Text = "Sender entropy against mixing delay (" + ciNote(s) + ")"
	p.X.Label.Text = "mean per-hop delay (ms)"
	p.Y.Label.Text = "sender entropy (bits)"
	delay := func(c *Config) float64 { return c.Mixing.MeanDelay.D().Seconds() * 1e3 }
	for i, g := range groupBy(s, keyDelay) {
		e := series(s, g, delay, func(a *Aggregate) *Stat { return &a.Entropy }, math.Inf(1))
		if err := addSeries(p, e, i, false, g.label); err != nil {
			return nil, err
		}
	}
	xAxis(p, s, delay, true)
	return p, nil
}

func attackPlot(s *SweepResult) (*plot.Plot, error) {
	p := newPlot()
	p.Title.Text = "Attack success against cover rate (" + ciNote(s) + ")"
	p.X.Label.Text = "client sending rate λ, packets/s (cover fills what messages leave)"
	p.Y.Label.Text = "success"
	rate := func(c *Config) float64 { return c.Client.Rate }
	for i, g := range groupBy(s, keyCover) {
		suffix := ""
		if g.label != "" {
			suffix = " (" + g.label + ")"
		}
		top1 := series(s, g, rate, func(a *Aggregate) *Stat { return &a.Top1 }, 1)
		if err := addSeries(p, top1, i, false, "top-1 accuracy"+suffix); err != nil {
			return nil, err
		}
		tpr := series(s, g, rate, func(a *Aggregate) *Stat { return &a.TPR1e2 }, 1)
		if err := addSeries(p, tpr, i, true, "TPR at FPR 1e-2"+suffix); err != nil {
			return nil, err
		}
	}
	// Success rates start at zero; the top follows the data, which are
	// often far below 1.
	p.Y.Min = 0
	if p.Y.Max <= 0 {
		p.Y.Max = 1
	}
	xAxis(p, s, rate, false)
	return p, nil
}

func latencyCDFPlot(s *SweepResult) (*plot.Plot, error) {
	p := newPlot()
	p.Title.Text = "End-to-end latency of real messages"
	if len(s.Points) > 1 {
		p.Title.Text += " (first seed of each point)"
	}
	p.X.Label.Text = "latency (s)"
	p.Y.Label.Text = "fraction of messages"
	p.Y.Min, p.Y.Max = 0, 1
	for i, pt := range s.Points {
		if len(pt.Runs) == 0 || len(pt.Runs[0].LatencyCDF) == 0 {
			continue // nothing delivered
		}
		cdf := pt.Runs[0].LatencyCDF
		xys := make(plotter.XYs, len(cdf))
		for q, x := range cdf {
			xys[q] = plotter.XY{X: x, Y: float64(q) / float64(len(cdf)-1)}
		}
		line, err := plotter.NewLine(xys)
		if err != nil {
			return nil, err
		}
		line.Color = plotutil.Color(i)
		line.Dashes = plotutil.Dashes(i / len(plotutil.DefaultColors))
		p.Add(line)
		if len(s.Points) > 1 && len(s.Points) <= maxLegend {
			p.Legend.Add(describe(pt.Params), line)
		}
	}
	return p, nil
}

func newPlot() *plot.Plot {
	p := plot.New()
	p.Title.Padding = vg.Points(6) // room above the title
	p.Add(plotter.NewGrid())
	return p
}

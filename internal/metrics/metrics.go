// Package metrics exposes counters, gauges and histograms in the
// Prometheus text format (version 0.0.4) on a local HTTP address.
//
// Metrics here are aggregates only. No metric may carry a per-packet,
// per-user or per-peer label: the daemons must not become a record of who
// talked to whom.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Registry holds a daemon's metrics.
type Registry struct {
	mu     sync.Mutex
	series map[string]*family
}

type family struct {
	name, help, typ string
	series          []series
}

type series struct {
	labels string // rendered {k="v",...} or ""
	write  func(w io.Writer, name, labels string)
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{series: make(map[string]*family)} }

func renderLabels(kv []string) string {
	if len(kv) == 0 {
		return ""
	}
	if len(kv)%2 != 0 {
		panic("metrics: labels must be name/value pairs") // programming error
	}
	var b strings.Builder
	b.WriteByte('{')
	for i := 0; i < len(kv); i += 2 {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%s=%q", kv[i], kv[i+1])
	}
	b.WriteByte('}')
	return b.String()
}

func (r *Registry) add(name, help, typ string, labels []string, write func(io.Writer, string, string)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f := r.series[name]
	if f == nil {
		f = &family{name: name, help: help, typ: typ}
		r.series[name] = f
	}
	if f.typ != typ {
		panic("metrics: " + name + " registered with two types") // programming error
	}
	f.series = append(f.series, series{labels: renderLabels(labels), write: write})
}

// Counter is a monotonically increasing count.
type Counter struct{ v atomic.Uint64 }

// Add adds n.
func (c *Counter) Add(n uint64) { c.v.Add(n) }

// Inc adds 1.
func (c *Counter) Inc() { c.v.Add(1) }

// Load returns the count.
func (c *Counter) Load() uint64 { return c.v.Load() }

// Counter registers a counter; labels are name/value pairs fixed here.
func (r *Registry) Counter(name, help string, labels ...string) *Counter {
	c := new(Counter)
	r.CounterFunc(name, help, c.Load, labels...)
	return c
}

// CounterFunc registers a counter read from f at scrape time.
func (r *Registry) CounterFunc(name, help string, f func() uint64, labels ...string) {
	r.add(name, help, "counter", labels, func(w io.Writer, n, l string) {
		fmt.Fprintf(w, "%s%s %d\n", n, l, f())
	})
}

// Gauge is a value that goes up and down.
type Gauge struct{ v atomic.Int64 }

// Set sets the value.
func (g *Gauge) Set(v int64) { g.v.Store(v) }

// Add adds d (which may be negative).
func (g *Gauge) Add(d int64) { g.v.Add(d) }

// Load returns the value.
func (g *Gauge) Load() int64 { return g.v.Load() }

// Gauge registers a gauge.
func (r *Registry) Gauge(name, help string, labels ...string) *Gauge {
	g := new(Gauge)
	r.GaugeFunc(name, help, func() float64 { return float64(g.Load()) }, labels...)
	return g
}

// GaugeFunc registers a gauge read from f at scrape time.
func (r *Registry) GaugeFunc(name, help string, f func() float64, labels ...string) {
	r.add(name, help, "gauge", labels, func(w io.Writer, n, l string) {
		fmt.Fprintf(w, "%s%s %s\n", n, l, formatFloat(f()))
	})
}

// Histogram counts observations into cumulative buckets.
type Histogram struct {
	bounds []float64
	mu     sync.Mutex
	counts []uint64 // per bucket, not cumulative; last is +Inf
	sum    float64
	n      uint64
}

// Observe records v.
func (h *Histogram) Observe(v float64) {
	i := sort.SearchFloat64s(h.bounds, v)
	h.mu.Lock()
	h.counts[i]++
	h.sum += v
	h.n++
	h.mu.Unlock()
}

// ObserveDuration records d in seconds.
func (h *Histogram) ObserveDuration(d time.Duration) { h.Observe(d.Seconds()) }

// Count returns the number of observations.
func (h *Histogram) Count() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.n
}

// Histogram registers a histogram with the given upper bounds (sorted).
func (r *Registry) Histogram(name, help string, bounds []float64, labels ...string) *Histogram {
	if !sort.Float64sAreSorted(bounds) {
		panic("metrics: histogram bounds must be sorted") // programming error
	}
	h := &Histogram{bounds: bounds, counts: make([]uint64, len(bounds)+1)}
	r.add(name, help, "histogram", labels, func(w io.Writer, n, l string) {
		h.mu.Lock()
		counts, sum, total := append([]uint64(nil), h.counts...), h.sum, h.n
		h.mu.Unlock()
		inner := strings.TrimSuffix(strings.TrimPrefix(l, "{"), "}")
		le := func(v string) string {
			if inner == "" {
				return "{le=\"" + v + "\"}"
			}
			return "{" + inner + ",le=\"" + v + "\"}"
		}
		var cum uint64
		for i, b := range h.bounds {
			cum += counts[i]
			fmt.Fprintf(w, "%s_bucket%s %d\n", n, le(formatFloat(b)), cum)
		}
		fmt.Fprintf(w, "%s_bucket%s %d\n", n, le("+Inf"), total)
		fmt.Fprintf(w, "%s_sum%s %s\n", n, l, formatFloat(sum))
		fmt.Fprintf(w, "%s_count%s %d\n", n, l, total)
	})
	return h
}

// ExponentialBuckets returns count bounds starting at start, each factor
// times the last.
func ExponentialBuckets(start, factor float64, count int) []float64 {
	b := make([]float64, count)
	for i := range b {
		b[i] = start * math.Pow(factor, float64(i))
	}
	return b
}

func formatFloat(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case math.IsNaN(v):
		return "NaN"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// WriteTo writes every metric in the text format, families sorted by name.
func (r *Registry) WriteTo(w io.Writer) (int64, error) {
	r.mu.Lock()
	names := make([]string, 0, len(r.series))
	for n := range r.series {
		names = append(names, n)
	}
	sort.Strings(names)
	fams := make([]*family, len(names))
	for i, n := range names {
		f := r.series[n]
		fams[i] = &family{name: f.name, help: f.help, typ: f.typ, series: append([]series(nil), f.series...)}
	}
	r.mu.Unlock()
	cw := &countWriter{w: w}
	for _, f := range fams {
		fmt.Fprintf(cw, "# HELP %s %s\n# TYPE %s %s\n", f.name, f.help, f.name, f.typ)
		for _, s := range f.series {
			s.write(cw, f.name, s.labels)
		}
	}
	return cw.n, cw.err
}

type countWriter struct {
	w   io.Writer
	n   int64
	err error
}

func (c *countWriter) Write(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.w.Write(p)
	c.n += int64(n)
	c.err = err
	return n, err
}

// Handler serves the registry at any path.
func (r *Registry) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		r.WriteTo(w)
	})
}

// Serve serves the registry on ln until ctx is done.
func Serve(ctx context.Context, ln net.Listener, r *Registry) error {
	mux := http.NewServeMux()
	mux.Handle("/metrics", r.Handler())
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		MaxHeaderBytes:    8 << 10,
	}
	stop := context.AfterFunc(ctx, func() {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	})
	defer stop()
	err := srv.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return ctx.Err()
	}
	return err
}

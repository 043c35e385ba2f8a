// Package metrics is the small API the daemons register their counters,
// gauges and histograms with. Each daemon has its own Registry, a
// Prometheus registry (github.com/prometheus/client_golang, not its
// global default) that also holds the Go runtime (go_*) and process
// (process_*) collectors, served on a local HTTP address.
//
// Metrics here are aggregates only. No metric may carry a per-packet,
// per-user or per-peer label: the daemons must not become a record of who
// talked to whom. The API enforces it: a series' labels are fixed when it
// is registered, their names come from a short list of classifications
// (see allowedLabels), and their values are short lower-case words that
// the code names, never data.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// allowedLabels are the only label names a series may carry. Each sorts
// events by a word fixed in the code (why a packet was dropped, how a
// delivery ended, which alarm, which window figure). A label that could
// hold a peer, a user, an address or a packet does not belong here.
var allowedLabels = map[string]bool{"reason": true, "outcome": true, "kind": true, "figure": true}

// constLabels checks the name/value pairs of one series of name.
func constLabels(name string, kv []string) prometheus.Labels {
	if len(kv)%2 != 0 {
		panic("metrics: " + name + ": labels must be name/value pairs") // programming error
	}
	if len(kv) == 0 {
		return nil
	}
	l := make(prometheus.Labels, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		k, v := kv[i], kv[i+1]
		if !allowedLabels[k] {
			panic(fmt.Sprintf("metrics: %s: label %q is not an aggregate classification", name, k)) // programming error
		}
		if !isWord(v) {
			panic(fmt.Sprintf("metrics: %s: label value %q is not a word from the code", name, v)) // programming error
		}
		l[k] = v
	}
	return l
}

// isWord reports whether v is 1 to 32 lower-case letters and underscores,
// starting with a letter: no digits, so no ID, key, address or count.
func isWord(v string) bool {
	if len(v) == 0 || len(v) > 32 || v[0] == '_' {
		return false
	}
	for _, c := range []byte(v) {
		if (c < 'a' || c > 'z') && c != '_' {
			return false
		}
	}
	return true
}

// Registry holds a daemon's metrics.
type Registry struct{ reg *prometheus.Registry }

// NewRegistry returns a registry with only the Go runtime and process
// collectors.
func NewRegistry() *Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return &Registry{reg: reg}
}

// Counter is a monotonically increasing count.
type Counter struct{ c prometheus.Counter }

// Add adds n.
func (c *Counter) Add(n uint64) { c.c.Add(float64(n)) }

// Inc adds 1.
func (c *Counter) Inc() { c.c.Inc() }

// Load returns the count.
func (c *Counter) Load() uint64 {
	var m dto.Metric
	c.c.Write(&m)
	return uint64(m.GetCounter().GetValue())
}

// Counter registers a counter; labels are name/value pairs fixed here.
func (r *Registry) Counter(name, help string, labels ...string) *Counter {
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: constLabels(name, labels)})
	r.reg.MustRegister(c)
	return &Counter{c}
}

// CounterFunc registers a counter read from f at scrape time.
func (r *Registry) CounterFunc(name, help string, f func() uint64, labels ...string) {
	r.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: constLabels(name, labels)},
		func() float64 { return float64(f()) }))
}

// Gauge is a value that goes up and down.
type Gauge struct{ g prometheus.Gauge }

// Set sets the value.
func (g *Gauge) Set(v int64) { g.g.Set(float64(v)) }

// Gauge registers a gauge.
func (r *Registry) Gauge(name, help string, labels ...string) *Gauge {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help, ConstLabels: constLabels(name, labels)})
	r.reg.MustRegister(g)
	return &Gauge{g}
}

// GaugeFunc registers a gauge read from f at scrape time.
func (r *Registry) GaugeFunc(name, help string, f func() float64, labels ...string) {
	r.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help, ConstLabels: constLabels(name, labels)}, f))
}

// Histogram counts observations into cumulative buckets.
type Histogram struct{ h prometheus.Histogram }

// Observe records v.
func (h *Histogram) Observe(v float64) { h.h.Observe(v) }

// ObserveDuration records d in seconds.
func (h *Histogram) ObserveDuration(d time.Duration) { h.h.Observe(d.Seconds()) }

// Histogram registers a histogram with the given upper bounds (sorted).
func (r *Registry) Histogram(name, help string, bounds []float64, labels ...string) *Histogram {
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: name, Help: help, Buckets: bounds, ConstLabels: constLabels(name, labels)})
	r.reg.MustRegister(h)
	return &Histogram{h}
}

// ExponentialBuckets returns count bounds starting at start, each factor
// times the last.
func ExponentialBuckets(start, factor float64, count int) []float64 {
	return prometheus.ExponentialBuckets(start, factor, count)
}

// WriteTo writes every metric in the text format, families sorted by name.
func (r *Registry) WriteTo(w io.Writer) (int64, error) {
	mfs, err := r.reg.Gather()
	var n int64
	for _, mf := range mfs {
		k, werr := expfmt.MetricFamilyToText(w, mf)
		n += int64(k)
		if werr != nil {
			return n, werr
		}
	}
	return n, err
}

// Handler serves the registry at any path.
func (r *Registry) Handler() http.Handler {
	return promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
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

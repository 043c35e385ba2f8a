package sim

import (
	"bytes"
	"context"
	"encoding"
	"errors"
	"fmt"
	"math"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/BurntSushi/toml"

	istats "github.com/sealnet/sealnet/internal/stats"
)

// MaxRuns bounds a sweep: points × seeds. A grid past it is almost always
// a mistake in the file, and would run for days.
const MaxRuns = 10_000

// Sweep is the [sweep] table of a scenario file: the runs to make.
type Sweep struct {
	// Seeds is the number of runs per grid point, with seeds Seed,
	// Seed+1, …; default 1.
	Seeds  int
	Params []Param
}

// Param is one swept scenario key and the values it takes, as written in
// the file.
type Param struct {
	Key    string // dotted path, e.g. "mixing.mean_delay"
	Values []any
}

// Plan is a scenario file read by ParseSweep: the base scenario and the
// grid of points its sweep spans, each point already validated.
type Plan struct {
	// Base is the scenario's TOML without its [sweep] table: what
	// ParseConfig accepts, for a single run.
	Base     string
	Name     string
	BaseSeed uint64
	Sweep    Sweep
	// Points is the cartesian product of the parameters' values in
	// declaration order: the first parameter varies slowest.
	Points []Point
}

// Point is one grid point.
type Point struct {
	Params []ParamValue // one per Sweep.Params, in order
	Config *Config      // the point's scenario, with Seed = BaseSeed
	text   string       // its TOML, parsed afresh for each run
}

// ParamValue is the value a key takes at a point.
type ParamValue struct {
	Key   string
	Value any    // as decoded from the file
	Text  string // Value written for tables and legends: 50ms, 0.5
}

// Runs is the number of simulations the plan makes.
func (p *Plan) Runs() int { return len(p.Points) * p.Sweep.Seeds }

// ParseSweep reads a scenario file with an optional [sweep] table. The
// table cannot go through ParseConfig, which refuses unknown keys, so the
// file is decoded generically, the table taken out, and every point's
// scenario encoded again and validated by ParseConfig. Without a [sweep]
// table the plan is the scenario alone, once.
func ParseSweep(text string) (*Plan, error) {
	var doc map[string]any
	if _, err := toml.Decode(text, &doc); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	sw := Sweep{Seeds: 1}
	if raw, ok := doc["sweep"]; ok {
		delete(doc, "sweep")
		var err error
		if sw, err = parseSweepTable(raw); err != nil {
			return nil, err
		}
	}
	base, err := encodeTOML(doc)
	if err != nil {
		return nil, err
	}
	plan := &Plan{Base: base, Sweep: sw}
	n := 1
	for _, p := range sw.Params {
		n *= len(p.Values) // n ≤ MaxRuns before each step: no overflow
		if n*sw.Seeds > MaxRuns {
			return nil, fmt.Errorf("%w: sweep of more than %d runs (points × seeds); split it into several files or use fewer values or seeds", ErrConfig, MaxRuns)
		}
	}
	idx := make([]int, len(sw.Params))
	for range n {
		pt, err := makePoint(doc, sw.Params, idx)
		if err != nil {
			if len(sw.Params) == 0 {
				return nil, err // the scenario itself: no point to name
			}
			return nil, fmt.Errorf("sweep point %d (%s): %w", len(plan.Points), describe(pt.Params), err)
		}
		plan.Points = append(plan.Points, pt)
		// Odometer: the last parameter turns fastest.
		for k := len(idx) - 1; k >= 0; k-- {
			if idx[k]++; idx[k] < len(sw.Params[k].Values) {
				break
			}
			idx[k] = 0
		}
	}
	plan.Name, plan.BaseSeed = plan.Points[0].Config.Name, plan.Points[0].Config.Seed
	return plan, nil
}

// parseSweepTable checks the [sweep] table as strictly as ParseConfig
// checks the rest.
func parseSweepTable(raw any) (Sweep, error) {
	sw := Sweep{Seeds: 1}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrConfig}, args...)...)
	}
	t, ok := raw.(map[string]any)
	if !ok {
		return sw, bad("sweep must be a table ([sweep]), not %T", raw)
	}
	for _, k := range sortedKeys(t) {
		switch k {
		case "seeds":
			s, ok := t[k].(int64)
			if !ok || s < 1 || s > MaxRuns {
				return sw, bad("sweep.seeds %v: want an integer 1..%d", t[k], MaxRuns)
			}
			sw.Seeds = int(s)
		case "param":
			list, err := tableList(t[k])
			if err != nil {
				return sw, bad("sweep.param: %v", err)
			}
			for i, pt := range list {
				p, err := parseParam(pt, fmt.Sprintf("sweep.param[%d]", i))
				if err != nil {
					return sw, err
				}
				sw.Params = append(sw.Params, p)
			}
		default:
			return sw, bad("unknown key sweep.%s (the sweep table has seeds and [[sweep.param]])", k)
		}
	}
	for i, p := range sw.Params {
		for _, q := range sw.Params[:i] {
			if p.Key == q.Key || strings.HasPrefix(p.Key, q.Key+".") || strings.HasPrefix(q.Key, p.Key+".") {
				return sw, bad("sweep keys %q and %q overlap: sweep each key once", q.Key, p.Key)
			}
		}
	}
	return sw, nil
}

// tableList accepts [[sweep.param]] and the inline form param = [{…}].
func tableList(v any) ([]map[string]any, error) {
	switch v := v.(type) {
	case []map[string]any:
		return v, nil
	case []any:
		out := make([]map[string]any, len(v))
		for i, e := range v {
			m, ok := e.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("entry %d is %T, want a table with key and values", i, e)
			}
			out[i] = m
		}
		return out, nil
	}
	return nil, fmt.Errorf("want an array of tables ([[sweep.param]]), not %T", v)
}

func parseParam(t map[string]any, name string) (Param, error) {
	var p Param
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s: "+format, append([]any{ErrConfig, name}, args...)...)
	}
	for _, k := range sortedKeys(t) {
		switch k {
		case "key":
			s, ok := t[k].(string)
			if !ok {
				return p, bad("key must be a string such as \"mixing.mean_delay\"")
			}
			p.Key = s
		case "values":
			vs, ok := t[k].([]any)
			if !ok {
				// Arrays of tables decode to another type: values are
				// scalars or arrays, never tables.
				return p, bad("values must be an array of values")
			}
			p.Values = vs
		default:
			return p, bad("unknown key %q (a sweep parameter has key and values)", k)
		}
	}
	if p.Key == "" {
		return p, bad("key is missing")
	}
	if len(p.Values) == 0 {
		return p, bad("values for %q are missing or empty", p.Key)
	}
	if p.Key == "seed" {
		return p, bad("seed cannot be swept: set sweep.seeds for runs with seeds seed, seed+1, …")
	}
	if err := checkKey(p.Key); err != nil {
		return p, bad("%v", err)
	}
	for i, v := range p.Values {
		if f, ok := v.(float64); ok && (math.IsNaN(f) || math.IsInf(f, 0)) {
			return p, bad("values[%d] of %q is %v: want a finite number", i, p.Key, f)
		}
	}
	return p, nil
}

// checkKey reports whether key names a field of Config, following the
// toml tags, so that a typo is reported with the keys that exist.
func checkKey(key string) error {
	t := reflect.TypeFor[Config]()
	parts := strings.Split(key, ".")
	for i, part := range parts {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		where := strings.Join(parts[:i], ".")
		if t.Kind() != reflect.Struct || reflect.PointerTo(t).Implements(reflect.TypeFor[encoding.TextUnmarshaler]()) {
			return fmt.Errorf("unknown scenario key %q: %s is not a table", key, where)
		}
		f, names := fieldByTag(t, part)
		if f == nil {
			if where == "" {
				where = "the scenario"
			}
			return fmt.Errorf("unknown scenario key %q: %s has %s", key, where, strings.Join(names, ", "))
		}
		t = f.Type
	}
	return nil
}

// fieldByTag finds the field TOML decodes name into, and lists the names
// of all of them.
func fieldByTag(t reflect.Type, name string) (*reflect.StructField, []string) {
	var found *reflect.StructField
	var names []string
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		if tag == "-" {
			continue
		}
		if tag == "" {
			tag = f.Name
		}
		names = append(names, tag)
		// BurntSushi/toml falls back to a case-insensitive match.
		if found == nil && (tag == name || strings.EqualFold(tag, name)) {
			found = &f
		}
	}
	return found, names
}

// makePoint sets the point's values in a copy of the base document and
// validates the result.
func makePoint(doc map[string]any, params []Param, idx []int) (Point, error) {
	var pt Point
	m := cloneValue(doc).(map[string]any)
	for k, p := range params {
		v := p.Values[idx[k]]
		pt.Params = append(pt.Params, ParamValue{Key: p.Key, Value: v, Text: valueText(v)})
		if err := setKey(m, p.Key, cloneValue(v)); err != nil {
			return pt, err
		}
	}
	text, err := encodeTOML(m)
	if err != nil {
		return pt, err
	}
	cfg, err := ParseConfig(text)
	if err != nil {
		return pt, err
	}
	pt.Config, pt.text = cfg, text
	return pt, nil
}

func setKey(m map[string]any, key string, v any) error {
	parts := strings.Split(key, ".")
	for i, part := range parts[:len(parts)-1] {
		next, ok := m[part]
		if !ok {
			t := map[string]any{}
			m[part] = t
			m = t
			continue
		}
		if m, ok = next.(map[string]any); !ok {
			return fmt.Errorf("%w: cannot sweep %q: the scenario sets %s to a value, not a table", ErrConfig, key, strings.Join(parts[:i+1], "."))
		}
	}
	m[parts[len(parts)-1]] = v
	return nil
}

func cloneValue(v any) any {
	switch v := v.(type) {
	case map[string]any:
		c := make(map[string]any, len(v))
		for k, e := range v {
			c[k] = cloneValue(e)
		}
		return c
	case []map[string]any:
		c := make([]map[string]any, len(v))
		for i, e := range v {
			c[i] = cloneValue(e).(map[string]any)
		}
		return c
	case []any:
		c := make([]any, len(v))
		for i, e := range v {
			c[i] = cloneValue(e)
		}
		return c
	}
	return v
}

func encodeTOML(m map[string]any) (string, error) {
	var b bytes.Buffer
	if err := toml.NewEncoder(&b).Encode(m); err != nil {
		return "", fmt.Errorf("%w: %v", ErrConfig, err)
	}
	return b.String(), nil
}

// valueText writes a value as a person would in a table: strings bare,
// numbers shortest, anything else as TOML.
func valueText(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case int64:
		return strconv.FormatInt(v, 10)
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	case bool:
		return strconv.FormatBool(v)
	}
	s, err := encodeTOML(map[string]any{"v": v})
	if err != nil {
		return fmt.Sprint(v)
	}
	return strings.TrimSpace(strings.TrimPrefix(s, "v = "))
}

func describe(ps []ParamValue) string {
	parts := make([]string, len(ps))
	for i, p := range ps {
		parts[i] = p.Key + "=" + p.Text
	}
	return strings.Join(parts, ", ")
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	// Report the first bad key the same way every time.
	slices.Sort(keys)
	return keys
}

// SweepResult is what a sweep measured: every run, and per point the
// aggregates over its seeds.
type SweepResult struct {
	Scenario string
	BaseSeed uint64
	Seeds    int
	Keys     []string // the swept keys, in declaration order
	Points   []PointResult
}

// PointResult is one grid point's runs, in seed order, and their
// aggregates.
type PointResult struct {
	Params    []ParamValue
	Config    *Config // the point's scenario (seed: BaseSeed)
	Runs      []*Result
	Aggregate Aggregate
}

// Stat is a figure's mean over the runs that have it (a run without
// scored targets or deliveries has none) and the half-width of its 95 %
// confidence interval by Student's t; CI95 is NaN below two runs.
type Stat struct {
	Mean float64
	CI95 float64
	N    int
}

// Aggregate holds the figures a sweep compares, each over seeds.
type Aggregate struct {
	Entropy       Stat // mean sender entropy, bits
	MinEntropy    Stat // mean min-entropy, bits
	EffectiveSize Stat // mean 2^H
	Top1          Stat // top-1 linking accuracy
	TPR1e2        Stat // TPR at FPR 1e-2
	TPR1e3        Stat // TPR at FPR 1e-3
	LatencyMean   Stat // seconds
	LatencyP99    Stat // seconds
	Overhead      Stat // cover bytes per real byte
	Ack10         Stat // acknowledgement attack: pairs linked after 10 messages
	Receipt10     Stat // receipt by fetch timing: pairs linked after 10 messages
	LoopStrip     Stat // loop stripping accuracy
}

// metric names a figure in the JSON and CSV output and says where it
// comes from.
type metric struct {
	name string
	get  func(*Result) float64
	stat func(*Aggregate) *Stat
}

// metrics fixes the order of the output columns.
var metrics = []metric{
	{"entropy_bits", func(r *Result) float64 { return r.Entropy.Mean }, func(a *Aggregate) *Stat { return &a.Entropy }},
	{"min_entropy_bits", func(r *Result) float64 { return r.MinEntropy.Mean }, func(a *Aggregate) *Stat { return &a.MinEntropy }},
	{"effective_set_size", func(r *Result) float64 { return r.EffectiveSize.Mean }, func(a *Aggregate) *Stat { return &a.EffectiveSize }},
	{"top1_accuracy", func(r *Result) float64 { return topK(r, 1) }, func(a *Aggregate) *Stat { return &a.Top1 }},
	{"tpr_at_fpr_1e-2", func(r *Result) float64 { return tprAt(r, 1e-2) }, func(a *Aggregate) *Stat { return &a.TPR1e2 }},
	{"tpr_at_fpr_1e-3", func(r *Result) float64 { return tprAt(r, 1e-3) }, func(a *Aggregate) *Stat { return &a.TPR1e3 }},
	{"latency_mean_s", func(r *Result) float64 { return delivered(r, r.Latency.Mean) }, func(a *Aggregate) *Stat { return &a.LatencyMean }},
	{"latency_p99_s", func(r *Result) float64 { return delivered(r, r.Latency.P99) }, func(a *Aggregate) *Stat { return &a.LatencyP99 }},
	{"cover_overhead", overhead, func(a *Aggregate) *Stat { return &a.Overhead }},
	{"ack_top1_10_msgs", func(r *Result) float64 { return at10(r.Disclosure.Ack) }, func(a *Aggregate) *Stat { return &a.Ack10 }},
	{"receipt_top1_10_msgs", func(r *Result) float64 { return at10(r.Disclosure.Receipt) }, func(a *Aggregate) *Stat { return &a.Receipt10 }},
	{"loop_strip_accuracy", func(r *Result) float64 {
		if r.Disclosure.Returns == nil {
			return math.NaN()
		}
		return r.Disclosure.Returns.LoopStripAccuracy
	}, func(a *Aggregate) *Stat { return &a.LoopStrip }},
}

// at10 is a per-message curve's value after 10 messages (NaN if the run
// had fewer per pair).
func at10(curve []float64) float64 {
	if len(curve) < 10 {
		return math.NaN()
	}
	return curve[9]
}

func topK(r *Result, k int) float64 {
	for _, t := range r.TopK {
		if t.K == k {
			return t.Accuracy
		}
	}
	return math.NaN()
}

func tprAt(r *Result, fpr float64) float64 {
	for _, t := range r.TPR {
		if t.FPR == fpr {
			return t.TPR
		}
	}
	return math.NaN()
}

// delivered is x, or NaN when no message arrived: a zero latency would
// read as a figure.
func delivered(r *Result, x float64) float64 {
	if r.RealDelivered == 0 {
		return math.NaN()
	}
	return x
}

func overhead(r *Result) float64 {
	if r.RealBytes == 0 {
		return math.NaN()
	}
	return r.Overhead
}

// aggregate summarises each figure over the runs, skipping runs that
// lack it.
func aggregate(runs []*Result) Aggregate {
	var a Aggregate
	for _, m := range metrics {
		var xs []float64
		for _, r := range runs {
			if x := m.get(r); !math.IsNaN(x) && !math.IsInf(x, 0) {
				xs = append(xs, x)
			}
		}
		*m.stat(&a) = meanCI(xs)
	}
	return a
}

// meanCI is the mean of xs with the half-width of its 95 % confidence
// interval, t(0.975, n−1)·s/√n.
func meanCI(xs []float64) Stat {
	n := len(xs)
	if n == 0 {
		return Stat{Mean: math.NaN(), CI95: math.NaN()}
	}
	mean := 0.0
	for _, x := range xs {
		mean += x
	}
	mean /= float64(n)
	if n == 1 {
		return Stat{Mean: mean, CI95: math.NaN(), N: 1}
	}
	ss := 0.0
	for _, x := range xs {
		ss += (x - mean) * (x - mean)
	}
	sd := math.Sqrt(ss / float64(n-1))
	return Stat{Mean: mean, CI95: studentT975(n-1) * sd / math.Sqrt(float64(n)), N: n}
}

// t975 is the 0.975 quantile of Student's t for 1..30 degrees of freedom.
var t975 = [...]float64{
	12.706204736, 4.302652730, 3.182446305, 2.776445105, 2.570581836,
	2.446911851, 2.364624252, 2.306004135, 2.262157163, 2.228138852,
	2.200985160, 2.178812830, 2.160368656, 2.144786688, 2.131449546,
	2.119905299, 2.109815578, 2.100922040, 2.093024054, 2.085963447,
	2.079613845, 2.073873068, 2.068657610, 2.063898562, 2.059538553,
	2.055529439, 2.051830516, 2.048407142, 2.045229642, 2.042272456,
}

// studentT975 is the 0.975 quantile of Student's t with df degrees of
// freedom: the table up to 30, then the Cornish–Fisher expansion around
// the normal quantile, within 1e-6 there.
func studentT975(df int) float64 {
	if df < 1 {
		return math.NaN()
	}
	if df <= len(t975) {
		return t975[df-1]
	}
	const z = istats.Z975
	v := float64(df)
	z3, z5, z7, z9 := z*z*z, math.Pow(z, 5), math.Pow(z, 7), math.Pow(z, 9)
	return z + (z3+z)/(4*v) +
		(5*z5+16*z3+3*z)/(96*v*v) +
		(3*z7+19*z5+17*z3-15*z)/(384*v*v*v) +
		(79*z9+776*z7+1482*z5-1920*z3-945*z)/(92160*v*v*v*v)
}

// RunSweep makes every run of the plan, workers at a time (default
// GOMAXPROCS; each run is single-threaded), and aggregates each point
// over its seeds. The result does not depend on the scheduling: run i
// goes into slot i. progress, if not nil, is called from RunSweep's own
// goroutine after each run. The first failure (in run order) cancels the
// rest and is returned.
func RunSweep(ctx context.Context, plan *Plan, workers int, progress func(done, total int)) (*SweepResult, error) {
	total := plan.Runs()
	if total == 0 {
		return nil, fmt.Errorf("%w: the plan has no runs", ErrConfig)
	}
	if workers < 1 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = min(workers, total)
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	results := make([]*Result, total)
	errs := make([]error, total)
	jobs := make(chan int)
	done := make(chan struct{})
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range jobs {
				results[i], errs[i] = plan.run(runCtx, i)
				if errs[i] != nil {
					cancel()
				}
				done <- struct{}{}
			}
		})
	}
	go func() {
		defer close(jobs)
		for i := range total {
			select {
			case jobs <- i:
			case <-runCtx.Done():
				return
			}
		}
	}()
	go func() {
		wg.Wait()
		close(done)
	}()
	n := 0
	for range done {
		n++
		if progress != nil {
			progress(n, total)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for _, err := range errs {
		// Runs cancelled because another failed are not the cause.
		if err != nil && !errors.Is(err, context.Canceled) {
			return nil, err
		}
	}
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	sr := &SweepResult{Scenario: plan.Name, BaseSeed: plan.BaseSeed, Seeds: plan.Sweep.Seeds}
	for _, p := range plan.Sweep.Params {
		sr.Keys = append(sr.Keys, p.Key)
	}
	for k, pt := range plan.Points {
		runs := results[k*plan.Sweep.Seeds : (k+1)*plan.Sweep.Seeds]
		sr.Points = append(sr.Points, PointResult{Params: pt.Params, Config: pt.Config, Runs: runs, Aggregate: aggregate(runs)})
	}
	return sr, nil
}

// run makes run i: point i / seeds with seed BaseSeed + i mod seeds.
func (p *Plan) run(ctx context.Context, i int) (*Result, error) {
	pt, s := &p.Points[i/p.Sweep.Seeds], i%p.Sweep.Seeds
	// A fresh Config per run: nothing is shared between goroutines.
	cfg, err := ParseConfig(pt.text)
	if err != nil {
		return nil, fmt.Errorf("sweep point %d (%s): %w", i/p.Sweep.Seeds, describe(pt.Params), err)
	}
	cfg.Seed = p.BaseSeed + uint64(s)
	r, err := Run(ctx, cfg, nil)
	if err != nil {
		return nil, fmt.Errorf("sweep point %d (%s), seed %d: %w", i/p.Sweep.Seeds, describe(pt.Params), cfg.Seed, err)
	}
	return r, nil
}

// SingleResult wraps one run as a sweep of one point and one seed, so
// that it is written with the same JSON fields and CSV columns.
func SingleResult(cfg *Config, r *Result) *SweepResult {
	runs := []*Result{r}
	return &SweepResult{
		Scenario: cfg.Name, BaseSeed: cfg.Seed, Seeds: 1,
		Points: []PointResult{{Config: cfg, Runs: runs, Aggregate: aggregate(runs)}},
	}
}

package sim

import (
	"bytes"
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/sealnet/sealnet/internal/testkit/fuzzcheck"
)

func parsePlan(t *testing.T, text string) *Plan {
	t.Helper()
	p, err := ParseSweep(text)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSweepGrid: the grid is the cartesian product with the first
// parameter turning slowest, and each point's scenario has its values.
func TestSweepGrid(t *testing.T) {
	p := parsePlan(t, `
users = 100
seed = 40
[client]
rate = 4
[sweep]
seeds = 3
[[sweep.param]]
key = "mixing.mean_delay"
values = ["50ms", "100ms", "200ms"]
[[sweep.param]]
key = "client.rate"
values = [0.5, 1]
`)
	if len(p.Points) != 6 || p.Runs() != 18 || p.Sweep.Seeds != 3 || p.BaseSeed != 40 {
		t.Fatalf("%d points, %d runs, %d seeds, base seed %d; want 6, 18, 3, 40", len(p.Points), p.Runs(), p.Sweep.Seeds, p.BaseSeed)
	}
	want := []struct {
		delay time.Duration
		rate  float64
		desc  string
	}{
		{50 * time.Millisecond, 0.5, "mixing.mean_delay=50ms, client.rate=0.5"},
		{50 * time.Millisecond, 1, "mixing.mean_delay=50ms, client.rate=1"},
		{100 * time.Millisecond, 0.5, "mixing.mean_delay=100ms, client.rate=0.5"},
		{100 * time.Millisecond, 1, "mixing.mean_delay=100ms, client.rate=1"},
		{200 * time.Millisecond, 0.5, "mixing.mean_delay=200ms, client.rate=0.5"},
		{200 * time.Millisecond, 1, "mixing.mean_delay=200ms, client.rate=1"},
	}
	for i, w := range want {
		pt := p.Points[i]
		if got := describe(pt.Params); got != w.desc {
			t.Errorf("point %d is %q, want %q", i, got, w.desc)
		}
		if pt.Config.Mixing.MeanDelay.D() != w.delay || pt.Config.Client.Rate != w.rate || pt.Config.Users != 100 || pt.Config.Seed != 40 {
			t.Errorf("point %d: scenario has delay %v, rate %v, users %d, seed %d", i, pt.Config.Mixing.MeanDelay.D(), pt.Config.Client.Rate, pt.Config.Users, pt.Config.Seed)
		}
	}

	// Three parameters, one of them in a table the base file lacks.
	p = parsePlan(t, `
[sweep]
[[sweep.param]]
key = "relay.loop_rate"
values = [0, 1]
[[sweep.param]]
key = "users"
values = [100, 200, 300]
[[sweep.param]]
key = "adversary.top_k"
values = [[1], [1, 2], [2], [3]]
`)
	if len(p.Points) != 24 || p.Runs() != 24 {
		t.Fatalf("2×3×4 grid has %d points, %d runs", len(p.Points), p.Runs())
	}
	if last := p.Points[23].Config; last.Relay.LoopRate != 1 || last.Users != 300 || len(last.Adv.TopK) != 1 || last.Adv.TopK[0] != 3 {
		t.Fatalf("last point: %+v", last)
	}

	// No [sweep]: the scenario, once.
	p = parsePlan(t, "users = 50\n")
	if len(p.Points) != 1 || p.Runs() != 1 || len(p.Points[0].Params) != 0 || p.Points[0].Config.Users != 50 {
		t.Fatalf("plain scenario: %+v", p)
	}
	if _, err := ParseConfig(p.Base); err != nil {
		t.Fatalf("base of a plain scenario: %v", err)
	}
}

// TestSweepErrors: every mistake is an ErrConfig naming what is wrong.
func TestSweepErrors(t *testing.T) {
	many := "[0" + strings.Repeat(", 0", 100) + "]"
	cases := []struct {
		name, text, want string
	}{
		{"unknown key", "[sweep]\n[[sweep.param]]\nkey = \"mixing.mean_dela\"\nvalues = [\"1s\"]\n", `"mixing.mean_dela"`},
		{"unknown table", "[sweep]\n[[sweep.param]]\nkey = \"mixer.mean_delay\"\nvalues = [\"1s\"]\n", `"mixer.mean_delay"`},
		{"not a table", "[sweep]\n[[sweep.param]]\nkey = \"users.count\"\nvalues = [1]\n", "users is not a table"},
		{"unknown sweep key", "[sweep]\nseed = 3\n", "sweep.seed"},
		{"unknown param key", "[sweep]\n[[sweep.param]]\nkey = \"users\"\nvalue = [1]\n", `"value"`},
		{"no values", "[sweep]\n[[sweep.param]]\nkey = \"users\"\nvalues = []\n", "users"},
		{"no key", "[sweep]\n[[sweep.param]]\nvalues = [1]\n", "key is missing"},
		{"zero seeds", "[sweep]\nseeds = 0\n", "sweep.seeds"},
		{"seed swept", "[sweep]\n[[sweep.param]]\nkey = \"seed\"\nvalues = [1, 2]\n", "sweep.seeds"},
		{"twice", "[sweep]\n[[sweep.param]]\nkey = \"users\"\nvalues = [1]\n[[sweep.param]]\nkey = \"users\"\nvalues = [2]\n", "overlap"},
		{"overlap", "[sweep]\n[[sweep.param]]\nkey = \"latency\"\nvalues = [1]\n[[sweep.param]]\nkey = \"latency.kind\"\nvalues = [\"fixed\"]\n", "overlap"},
		{"too many runs", "[sweep]\n[[sweep.param]]\nkey = \"relay.loop_rate\"\nvalues = " + many + "\n[[sweep.param]]\nkey = \"client.loop_rate\"\nvalues = " + many + "\n", "10000 runs"},
		{"too many seeds", "[sweep]\nseeds = 2\n[[sweep.param]]\nkey = \"relay.loop_rate\"\nvalues = [0" + strings.Repeat(", 0", 5000) + "]\n", "10000 runs"},
		{"bad value", "[sweep]\n[[sweep.param]]\nkey = \"client.rate\"\nvalues = [1, -1]\n", "client.rate=-1"},
		{"wrong type", "[sweep]\n[[sweep.param]]\nkey = \"mixing.mean_delay\"\nvalues = [true]\n", "mixing.mean_delay=true"},
		{"nan", "[sweep]\n[[sweep.param]]\nkey = \"client.rate\"\nvalues = [nan]\n", "finite"},
		{"sweep not a table", "sweep = 3\n", "sweep must be a table"},
		{"base typo", "usres = 3\n[sweep]\n", "usres"},
		{"scalar over table", "mixing = 3\n[sweep]\n[[sweep.param]]\nkey = \"mixing.kind\"\nvalues = [\"poisson\"]\n", "mixing"},
		{"bad toml", "[sweep\n", "invalid scenario"},
	}
	for _, c := range cases {
		_, err := ParseSweep(c.text)
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want ErrConfig mentioning %s", c.name, err, c.want)
		}
	}
}

// tinySweep is 2 points × 2 seeds of 100 users for 20 s.
const tinySweep = `
name = "tiny"
seed = 9
users = 100
duration = "20s"
warmup = "4s"
width = 2
[client]
rate = 2
loop_rate = 0.2
[workload]
message_rate = 0.1
[adversary]
targets = 100
[sweep]
seeds = 2
[[sweep.param]]
key = "mixing.mean_delay"
values = ["20ms", "200ms"]
[[sweep.param]]
key = "client.rate"
values = [1]
`

func sweepOutput(t *testing.T, plan *Plan, workers int) (js, csv []byte, sr *SweepResult) {
	t.Helper()
	var calls []int
	sr, err := RunSweep(context.Background(), plan, workers, func(done, total int) {
		if total != plan.Runs() {
			t.Errorf("progress total %d, want %d", total, plan.Runs())
		}
		calls = append(calls, done)
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(calls) != plan.Runs() || calls[len(calls)-1] != plan.Runs() {
		t.Errorf("progress calls %v", calls)
	}
	var j, c bytes.Buffer
	if err := sr.WriteJSON(&j); err != nil {
		t.Fatal(err)
	}
	if err := sr.WriteCSV(&c); err != nil {
		t.Fatal(err)
	}
	return j.Bytes(), c.Bytes(), sr
}

// TestSweepDeterministic: whatever the scheduling, the same plan gives
// the same bytes; and each point's runs are its seeds in order.
func TestSweepDeterministic(t *testing.T) {
	plan := parsePlan(t, tinySweep)
	j1, c1, sr := sweepOutput(t, plan, 1)
	j2, c2, _ := sweepOutput(t, plan, 2)
	j3, c3, _ := sweepOutput(t, parsePlan(t, tinySweep), 2)
	if !bytes.Equal(j1, j2) || !bytes.Equal(j2, j3) {
		t.Fatal("JSON differs between runs or worker counts")
	}
	if !bytes.Equal(c1, c2) || !bytes.Equal(c2, c3) {
		t.Fatalf("CSV differs between runs or worker counts:\n%s\n%s\n%s", c1, c2, c3)
	}
	if len(sr.Points) != 2 || sr.Seeds != 2 {
		t.Fatalf("%d points, %d seeds", len(sr.Points), sr.Seeds)
	}
	for _, p := range sr.Points {
		if len(p.Runs) != 2 || p.Runs[0].Seed != 9 || p.Runs[1].Seed != 10 {
			t.Fatalf("runs of %s: %d, seeds %d, %d", describe(p.Params), len(p.Runs), p.Runs[0].Seed, p.Runs[1].Seed)
		}
		if p.Aggregate.Entropy.N != 2 || !(p.Aggregate.Entropy.Mean > 0) {
			t.Fatalf("%s: entropy %+v", describe(p.Params), p.Aggregate.Entropy)
		}
	}
	// The figures must respond to the parameter: ten times the delay,
	// more entropy.
	if a, b := sr.Points[0].Aggregate.Entropy.Mean, sr.Points[1].Aggregate.Entropy.Mean; a >= b {
		t.Errorf("entropy %.3f at 20ms, %.3f at 200ms: want it to grow", a, b)
	}
	lines := strings.Split(strings.TrimSpace(string(c1)), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "mixing.mean_delay,client.rate,entropy_bits_mean,entropy_bits_ci95,") || !strings.HasPrefix(lines[1], "20ms,1,") {
		t.Fatalf("CSV:\n%s", c1)
	}
	if n := len(strings.Split(lines[0], ",")); n != 2+2*len(metrics) || len(strings.Split(lines[1], ",")) != n {
		t.Fatalf("CSV has %d columns, want %d:\n%s", n, 2+2*len(metrics), c1)
	}

	// Plots: all three, non-empty, and the same bytes when drawn again.
	d1, d2 := t.TempDir(), t.TempDir()
	f1, err := WritePlots(d1, sr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := WritePlots(d2, sr); err != nil {
		t.Fatal(err)
	}
	names := []string{"latency_cdf", "entropy_vs_delay", "attack_vs_cover"}
	if len(f1) != 2*len(names) {
		t.Fatalf("wrote %v", f1)
	}
	for _, n := range names {
		for _, ext := range []string{".png", ".svg"} {
			a, err := os.ReadFile(filepath.Join(d1, n+ext))
			if err != nil || len(a) < 1000 {
				t.Fatalf("%s%s: %d bytes, %v", n, ext, len(a), err)
			}
			b, _ := os.ReadFile(filepath.Join(d2, n+ext))
			if !bytes.Equal(a, b) {
				t.Errorf("%s%s differs when drawn again", n, ext)
			}
		}
	}
}

// TestPlotsSkipped: the figure plots need their parameter swept; the
// latency CDF is always drawn, also for a single run.
func TestPlotsSkipped(t *testing.T) {
	cfg := parse(t, "users = 50\nduration = \"10s\"\n[workload]\nmessage_rate = 0.2\n[adversary]\ntargets = 20\n")
	r, err := Run(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	files, err := WritePlots(dir, SingleResult(cfg, r))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 || filepath.Base(files[0]) != "latency_cdf.png" || filepath.Base(files[1]) != "latency_cdf.svg" {
		t.Fatalf("single run wrote %v", files)
	}
	// A run that delivered nothing still gets its (empty) plot.
	empty := SingleResult(cfg, &Result{TopK: []TopK{{K: 1, Accuracy: math.NaN()}}})
	empty.Keys = []string{keyDelay, keyCover}
	if files, err := WritePlots(t.TempDir(), empty); err != nil || len(files) != 6 {
		t.Fatalf("empty result: %v, %v", files, err)
	}
}

// TestSweepCancel: a cancelled sweep stops and says so.
func TestSweepCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := RunSweep(ctx, parsePlan(t, tinySweep), 2, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}

// TestStudentT: the quantiles against published values, and the table
// and the expansion against the t distribution's CDF by integration.
func TestStudentT(t *testing.T) {
	for _, c := range []struct {
		df   int
		want float64
	}{{1, 12.706}, {2, 4.303}, {10, 2.228}, {30, 2.042}, {60, 2.000}, {120, 1.980}, {1_000_000, 1.960}} {
		if got := studentT975(c.df); math.Abs(got-c.want) > 0.0005 {
			t.Errorf("t(0.975, %d) = %.4f, want %.3f", c.df, got, c.want)
		}
	}
	for _, df := range []int{1, 2, 3, 5, 9, 17, 29, 30, 31, 40, 100, 1000} {
		if p := tCDF(studentT975(df), float64(df)); math.Abs(p-0.975) > 2e-6 {
			t.Errorf("df %d: CDF(t975) = %.7f, want 0.975", df, p)
		}
	}
	if !math.IsNaN(studentT975(0)) {
		t.Error("df 0 has a quantile")
	}
	// The interval itself: 1, 2, 3 has mean 2, sd 1.
	s := meanCI([]float64{1, 2, 3})
	if s.Mean != 2 || math.Abs(s.CI95-4.302652730/math.Sqrt(3)) > 1e-12 || s.N != 3 {
		t.Fatalf("meanCI(1,2,3) = %+v", s)
	}
	if s := meanCI([]float64{5}); s.Mean != 5 || !math.IsNaN(s.CI95) || s.N != 1 {
		t.Fatalf("one value: %+v", s)
	}
	if s := meanCI(nil); !math.IsNaN(s.Mean) || s.N != 0 {
		t.Fatalf("no value: %+v", s)
	}
}

// tCDF is P(T ≤ x) for Student's t with v degrees of freedom, by
// Simpson's rule over the density after the substitution u = atan(t/√v),
// which makes the integrand smooth and bounded.
func tCDF(x, v float64) float64 {
	lg1, _ := math.Lgamma((v + 1) / 2)
	lg2, _ := math.Lgamma(v / 2)
	c := math.Exp(lg1-lg2) / math.Sqrt(math.Pi)
	// With t = √v·tan u, f(t) dt = c·cos(u)^(v−1) du.
	f := func(u float64) float64 { return c * math.Pow(math.Cos(u), v-1) }
	b := math.Atan(x / math.Sqrt(v))
	const n = 20000
	h := b / n
	sum := f(0) + f(b)
	for i := 1; i < n; i++ {
		w := 2.0
		if i%2 == 1 {
			w = 4
		}
		sum += w * f(float64(i)*h)
	}
	return 0.5 + sum*h/3
}

// TestScenarioFiles: every shipped scenario parses; small.toml's whole
// sweep runs with its simulated time cut; reference.toml is the
// reference workload on the code's defaults (the network's parameters),
// and reference-before.toml the same as the network ran before issue 15.
func TestScenarioFiles(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("scenarios", "*.toml"))
	if err != nil || len(files) < 3 {
		t.Fatalf("scenarios: %v, %v", files, err)
	}
	for _, f := range files {
		text, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		p, err := ParseSweep(string(text))
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		t.Logf("%s: %d points × %d seeds", f, len(p.Points), p.Sweep.Seeds)
		switch filepath.Base(f) {
		case "reference.toml":
			c := p.Points[0].Config
			d := codeDefaults()
			if p.Runs() != 1 || c.Users != 100_000 || c.Client.Rate != d.Client.Rate || c.Layers != 3 || c.Width != 10 || c.Providers != 10 ||
				c.Mixing.MeanDelay.D() != d.Mixing.MeanDelay.D() || c.Duration.D() != time.Hour || c.Mixing.At != d.Mixing.At ||
				c.Workload.MessageRate != 0.01 || c.Client.LoopRate != d.Client.LoopRate || c.Client.Cover != d.Client.Cover ||
				c.Client.Fetch != d.Client.Fetch || c.Workload.AckDelay != d.Workload.AckDelay {
				t.Errorf("reference.toml is not the reference workload on the network's defaults: %d runs, %+v", p.Runs(), c)
			}
		case "reference-before.toml":
			c := p.Points[0].Config
			if c.Users != 100_000 || c.Client.Rate != 1 || c.Client.LoopRate != 0.1 || c.Mixing.MeanDelay.D() != 100*time.Millisecond ||
				c.Mixing.At != "mixes" || c.Client.Cover != "drop" || c.Client.Fetch != "longpoll" || c.Workload.AckDelay != 0 {
				t.Errorf("reference-before.toml is not the network before issue 15: %+v", c)
			}
		case "small.toml":
			if p.Runs() > 16 {
				t.Errorf("small.toml has %d runs: keep `make sim` short", p.Runs())
			}
			short := shortened(t, string(text), "10s", "2s")
			sr, err := RunSweep(context.Background(), parsePlan(t, short), 2, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(sr.Points) != len(p.Points) {
				t.Fatalf("shortened small.toml: %d points, want %d", len(sr.Points), len(p.Points))
			}
		}
	}
}

// shortened sets a scenario's duration and warm-up, leaving the rest.
func shortened(t *testing.T, text, duration, warmup string) string {
	t.Helper()
	var doc map[string]any
	if _, err := toml.Decode(text, &doc); err != nil {
		t.Fatal(err)
	}
	doc["duration"], doc["warmup"] = duration, warmup
	var b bytes.Buffer
	if err := toml.NewEncoder(&b).Encode(doc); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// FuzzParseSweep: the parser never panics and fails only with ErrConfig;
// a plan it accepts has exactly the product of the value counts as
// points, at most MaxRuns runs, points whose parameters are the swept
// keys in order and whose scenarios ParseConfig accepts as they are run;
// and a file without [sweep] means what ParseConfig says it means.
func FuzzParseSweep(f *testing.F) {
	fuzzcheck.RequireCorpus(f)
	f.Fuzz(func(t *testing.T, text string) {
		p, err := ParseSweep(text)
		if err != nil {
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("error without ErrConfig: %v", err)
			}
			return
		}
		n := 1
		for _, q := range p.Sweep.Params {
			n *= len(q.Values)
		}
		if len(p.Points) != n || p.Runs() != n*p.Sweep.Seeds || p.Runs() > MaxRuns || p.Sweep.Seeds < 1 {
			t.Fatalf("%d points, %d runs for %d values × %d seeds", len(p.Points), p.Runs(), n, p.Sweep.Seeds)
		}
		for i, pt := range p.Points {
			if len(pt.Params) != len(p.Sweep.Params) {
				t.Fatalf("point %d has %d params", i, len(pt.Params))
			}
			for k, pv := range pt.Params {
				if pv.Key != p.Sweep.Params[k].Key {
					t.Fatalf("point %d param %d is %q, want %q", i, k, pv.Key, p.Sweep.Params[k].Key)
				}
			}
			c, err := ParseConfig(pt.text)
			if err != nil {
				t.Fatalf("point %d does not parse again: %v", i, err)
			}
			if !reflect.DeepEqual(c, pt.Config) {
				t.Fatalf("point %d parses differently the second time", i)
			}
		}
		if !strings.Contains(text, "sweep") {
			c, err := ParseConfig(text)
			if err != nil {
				t.Fatalf("accepted without a sweep, but ParseConfig says %v", err)
			}
			if !reflect.DeepEqual(c, p.Points[0].Config) {
				t.Fatalf("re-encoding changed the scenario:\n%+v\n%+v", c, p.Points[0].Config)
			}
		}
	})
}

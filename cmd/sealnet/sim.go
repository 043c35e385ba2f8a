package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"

	"github.com/sealnet/sealnet/internal/daemon"
	"github.com/sealnet/sealnet/sim"
)

const simUsage = `Usage: sealnet sim run --config scenario.toml --out DIR
       sealnet sim sweep --config scenario.toml --out DIR [--workers N]
       sealnet sim analyze --capture FILE --testnet DIR --out DIR

run simulates the scenario once and writes result.json, result.csv and
latency_cdf.png/.svg into DIR. sweep makes every run of the scenario's
[sweep] table (grid points × seeds) and writes results.json, results.csv
and the plots. analyze runs the same attacks on a packet capture of a
testnet under a workload (sealnet testnet load) and writes a report of
simulated against measured figures (docs/measure.md). Scenarios to start
from: sim/scenarios/ in the source tree.`

func runSim(args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "analyze" {
		return runSimAnalyze(args[1:], stdout, stderr)
	}
	if len(args) > 0 && isHelp(args[0]) {
		fmt.Fprintln(stdout, simUsage)
		return flag.ErrHelp
	}
	if len(args) == 0 || (args[0] != "run" && args[0] != "sweep") {
		if len(args) > 0 {
			fmt.Fprintf(stderr, "sealnet sim: unknown subcommand %q\n\n", args[0])
		}
		fmt.Fprintln(stderr, simUsage)
		return errUsage
	}
	if args[0] == "run" {
		return runSimRun(args[1:], stdout, stderr)
	}
	return runSimSweep(args[1:], stdout, stderr)
}

// simFlags are the flags both subcommands share.
type simFlags struct {
	fs      *flag.FlagSet
	config  *string
	out     *string
	workers *int // sweep only
}

func newSimFlags(name, synopsis string, stderr io.Writer) *simFlags {
	fs := newFlagSet(name, synopsis, stderr)
	return &simFlags{
		fs:     fs,
		config: fs.String("config", "", "scenario file (TOML; see sim/scenarios/)"),
		out:    fs.String("out", "", "folder for the results and plots (created if missing; files in it are replaced)"),
	}
}

// parse checks the flags, reads the scenario and creates the output
// folder.
func (f *simFlags) parse(args []string, stdout, stderr io.Writer) (*sim.Plan, error) {
	if err := parseFlags(f.fs, args, stdout); err != nil {
		return nil, err
	}
	for _, req := range []struct{ name, val string }{{"config", *f.config}, {"out", *f.out}} {
		if req.val == "" {
			fmt.Fprintf(stderr, "sealnet %s: --%s is required\n", f.fs.Name(), req.name)
			f.fs.Usage()
			return nil, errUsage
		}
	}
	if f.workers != nil && *f.workers < 1 {
		fmt.Fprintf(stderr, "sealnet %s: --workers %d: want at least 1\n", f.fs.Name(), *f.workers)
		return nil, errUsage
	}
	text, err := os.ReadFile(*f.config)
	if err != nil {
		return nil, fmt.Errorf("reading the scenario: %w", err)
	}
	plan, err := sim.ParseSweep(string(text))
	if err != nil {
		return nil, fmt.Errorf("scenario %s: %w (fix the file; keys are in docs/sim.md and sim/config.go)", *f.config, err)
	}
	if err := os.MkdirAll(*f.out, 0o755); err != nil {
		return nil, fmt.Errorf("creating the output folder: %w", err)
	}
	return plan, nil
}

func runSimRun(args []string, stdout, stderr io.Writer) error {
	f := newSimFlags("sim run", "sim run --config scenario.toml --out DIR", stderr)
	plan, err := f.parse(args, stdout, stderr)
	if err != nil {
		return err
	}
	if plan.Runs() > 1 {
		fmt.Fprintf(stderr, "sealnet sim run: the scenario has a [sweep] of %d runs; running its base scenario once (use `sealnet sim sweep` for the grid)\n", plan.Runs())
	}
	cfg, err := sim.ParseConfig(plan.Base)
	if err != nil {
		return fmt.Errorf("scenario %s without its sweep: %w", *f.config, err)
	}
	ctx, stop := daemon.SignalContext(context.Background())
	defer stop()
	bar := newProgress(stderr, "simulated")
	res, err := sim.Run(ctx, cfg, func(done float64) { bar.update(done, 0, 0) })
	if err == nil {
		bar.update(1, 0, 0)
	}
	bar.finish(err == nil)
	if err != nil {
		return simError(err)
	}
	sr := sim.SingleResult(cfg, res)
	files, err := writeOutputs(*f.out, "result", sr, func(w io.Writer) error { return res.WriteJSON(w) })
	if err != nil {
		return err
	}
	printSummary(stdout, sr, files)
	return nil
}

func runSimSweep(args []string, stdout, stderr io.Writer) error {
	f := newSimFlags("sim sweep", "sim sweep --config scenario.toml --out DIR [--workers N]", stderr)
	workers := f.fs.Int("workers", runtime.NumCPU(), "runs at a time (each run uses one core)")
	f.workers = workers
	plan, err := f.parse(args, stdout, stderr)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "sim: %s: %d point(s) × %d seed(s) = %d runs on %d worker(s)\n",
		plan.Name, len(plan.Points), plan.Sweep.Seeds, plan.Runs(), min(*workers, plan.Runs()))
	ctx, stop := daemon.SignalContext(context.Background())
	defer stop()
	bar := newProgress(stderr, "runs")
	sr, err := sim.RunSweep(ctx, plan, *workers, func(done, total int) {
		bar.update(float64(done)/float64(total), done, total)
	})
	bar.finish(err == nil)
	if err != nil {
		return simError(err)
	}
	files, err := writeOutputs(*f.out, "results", sr, sr.WriteJSON)
	if err != nil {
		return err
	}
	printSummary(stdout, sr, files)
	return nil
}

func simError(err error) error {
	if errors.Is(err, context.Canceled) {
		return errors.New("interrupted; no results written")
	}
	return err
}

// writeOutputs writes base.json, base.csv and the plots into dir.
func writeOutputs(dir, base string, sr *sim.SweepResult, writeJSON func(io.Writer) error) ([]string, error) {
	var files []string
	for _, o := range []struct {
		name  string
		write func(io.Writer) error
	}{{base + ".json", writeJSON}, {base + ".csv", sr.WriteCSV}} {
		var b bytes.Buffer
		if err := o.write(&b); err != nil {
			return files, fmt.Errorf("writing %s: %w", o.name, err)
		}
		path := filepath.Join(dir, o.name)
		if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
			return files, fmt.Errorf("writing the results: %w", err)
		}
		files = append(files, path)
	}
	plots, err := sim.WritePlots(dir, sr)
	files = append(files, plots...)
	if err != nil {
		return files, fmt.Errorf("writing the plots: %w", err)
	}
	return files, nil
}

// printSummary shows each point's headline figures and the files.
func printSummary(w io.Writer, sr *sim.SweepResult, files []string) {
	for _, p := range sr.Points {
		var params []string
		for _, pv := range p.Params {
			params = append(params, pv.Key+"="+pv.Text)
		}
		label := strings.Join(params, " ")
		if label == "" {
			label = sr.Scenario
		}
		a := &p.Aggregate
		fmt.Fprintf(w, "%s: entropy %s bits, top-1 %s, latency mean %s s p99 %s s, overhead %s\n",
			label, stat(a.Entropy), stat(a.Top1), stat(a.LatencyMean), stat(a.LatencyP99), stat(a.Overhead))
	}
	fmt.Fprintf(w, "wrote %s\n", strings.Join(files, ", "))
}

func stat(s sim.Stat) string {
	switch {
	case s.N == 0:
		return "n/a"
	case s.N == 1:
		return fmt.Sprintf("%.3g", s.Mean)
	}
	return fmt.Sprintf("%.3g±%.2g", s.Mean, s.CI95)
}

// progress draws a bar redrawn in place on a terminal, and a line every
// tenth of the way (or every half minute) otherwise, so that logs stay
// short. A ticker redraws it while a long run is under way, so that the
// elapsed time moves.
type progress struct {
	w    io.Writer
	tty  bool
	unit string
	stop chan struct{}
	wg   sync.WaitGroup

	mu              sync.Mutex // guards w and the state below
	start, lastDraw time.Time
	frac, lastFrac  float64
	done, total     int
	drawn           bool
}

func newProgress(w io.Writer, unit string) *progress {
	tty := false
	if f, ok := w.(*os.File); ok {
		tty = term.IsTerminal(int(f.Fd()))
	}
	now := time.Now()
	p := &progress{w: w, tty: tty, unit: unit, start: now, lastDraw: now, stop: make(chan struct{})}
	p.wg.Go(func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				p.mu.Lock()
				p.draw(time.Now())
				p.mu.Unlock()
			case <-p.stop:
				return
			}
		}
	})
	return p
}

// update records frac (0..1) done; total > 0 adds done/total runs.
func (p *progress) update(frac float64, done, total int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.frac, p.done, p.total = frac, done, total
	p.draw(time.Now())
}

// draw shows the state if it is time to; p.mu is held.
func (p *progress) draw(now time.Time) {
	elapsed := now.Sub(p.start).Truncate(time.Second)
	last := p.total > 0 && p.done == p.total
	count := " " + p.unit
	if p.total > 0 {
		count = fmt.Sprintf(" %d/%d %s", p.done, p.total, p.unit)
	}
	if p.tty {
		if now.Sub(p.lastDraw) < 100*time.Millisecond && !last {
			return
		}
		const width = 30
		n := min(max(int(p.frac*width), 0), width)
		bar := strings.Repeat("#", n) + strings.Repeat(".", width-n)
		fmt.Fprintf(p.w, "\r[%s] %3.0f%%%s, %s elapsed ", bar, 100*p.frac, count, elapsed)
		p.lastDraw, p.drawn = now, true
		return
	}
	if p.frac-p.lastFrac < 0.1 && now.Sub(p.lastDraw) < 30*time.Second && !last {
		return
	}
	fmt.Fprintf(p.w, "sim: %3.0f%%%s, %s elapsed\n", 100*p.frac, count, elapsed)
	p.lastDraw, p.lastFrac = now, p.frac
}

// finish stops the ticker and ends the bar's line.
func (p *progress) finish(ok bool) {
	close(p.stop)
	p.wg.Wait()
	if p.tty && p.drawn {
		fmt.Fprintln(p.w)
	}
	if ok {
		fmt.Fprintf(p.w, "sim: done in %s\n", time.Since(p.start).Round(time.Millisecond))
	}
}

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/sealnet/sealnet/internal/config"
	"github.com/sealnet/sealnet/internal/daemon"
	"github.com/sealnet/sealnet/internal/testbed/capture"
	"github.com/sealnet/sealnet/internal/testbed/load"
	"github.com/sealnet/sealnet/internal/testbed/testnet"
	"github.com/sealnet/sealnet/mixnet"
	"github.com/sealnet/sealnet/sim"
	"github.com/sealnet/sealnet/sim/measure"
)

// runTestnetLoad is `sealnet testnet load`: drive a workload on a running
// testnet, optionally capturing loopback traffic around it.
func runTestnetLoad(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("testnet load", "testnet load --dir DIR [--config scenario.toml] [flags]", stderr)
	dir := fs.String("dir", "", "the running testnet's folder (sealnet testnet up --dir DIR --host-per-node)")
	scen := fs.String("config", "", "scenario giving the workload (users, workload.*, client.*, mixing.mean_delay, duration, warmup, seed); default sim/scenarios/measure.toml")
	users := fs.Int("users", 0, "override the scenario's number of users")
	dur := fs.Duration("duration", 0, "override the scenario's duration (writing time)")
	warm := fs.Duration("warmup", 0, "override the scenario's warm-up")
	drain := fs.Duration("drain", time.Minute, "after the last message is written, wait up to this for it to arrive")
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	if *dir == "" {
		fmt.Fprintln(stderr, "sealnet testnet load: --dir is required")
		fs.Usage()
		return errUsage
	}
	text := sim.MeasureScenario
	if *scen != "" {
		b, err := os.ReadFile(*scen)
		if err != nil {
			return fmt.Errorf("reading the scenario: %w", err)
		}
		text = string(b)
	}
	cfg, err := sim.ParseConfig(text)
	if err != nil {
		return fmt.Errorf("scenario: %w", err)
	}
	if *users > 0 {
		cfg.Users = *users
	}
	if *dur > 0 {
		cfg.Duration = config.Duration(*dur)
	}
	if *warm > 0 {
		w := config.Duration(*warm)
		cfg.Warmup = &w
	}
	nw, err := testnet.Open(*dir)
	if err != nil {
		return fmt.Errorf("%w (create and start one with `sealnet testnet up --dir %s --host-per-node`)", err, *dir)
	}
	ctx, stop := daemon.SignalContext(context.Background())
	defer stop()
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	tr, err := load.Run(ctx, nw, load.Options{Scenario: cfg, Drain: *drain, Logger: log,
		Progress: func(s string) { fmt.Fprintf(stdout, "load: %s\n", s) }})
	if tr != nil {
		recv := 0
		for _, m := range tr.Messages {
			if !m.Received.IsZero() {
				recv++
			}
		}
		fmt.Fprintf(stdout, "load: %d messages written, %d received; ground truth in %s\n", len(tr.Messages), recv, nw.Path(load.TruthFile))
	}
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// runSimAnalyze is `sealnet sim analyze`.
func runSimAnalyze(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("sim analyze", "sim analyze --capture FILE --testnet DIR --out DIR [flags]", stderr)
	capPath := fs.String("capture", "", "pcap or pcapng file of the testnet's loopback traffic")
	dir := fs.String("testnet", "", "the testnet's folder (its manifest maps addresses to nodes)")
	truthPath := fs.String("truth", "", "ground truth written by 'sealnet testnet load'; default TESTNET/"+load.TruthFile)
	out := fs.String("out", "", "folder for report.md, the plots and the JSON results")
	title := fs.String("title", "Measured vs simulated traffic analysis", "the report's title")
	noPred := fs.Bool("no-prediction", false, "skip the simulation of the same parameters")
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	for _, req := range []struct{ name, val string }{{"capture", *capPath}, {"testnet", *dir}, {"out", *out}} {
		if req.val == "" {
			fmt.Fprintf(stderr, "sealnet sim analyze: --%s is required\n", req.name)
			fs.Usage()
			return errUsage
		}
	}
	nw, err := testnet.Open(*dir)
	if err != nil {
		return err
	}
	if *truthPath == "" {
		*truthPath = nw.Path(load.TruthFile)
	}
	truth, err := load.ReadTruth(*truthPath)
	if err != nil {
		return fmt.Errorf("%w (run `sealnet testnet load --dir %s` first)", err, *dir)
	}
	f, err := os.Open(*capPath)
	if err != nil {
		return err
	}
	capt, err := capture.Read(f, capture.RecordSize(mixnet.DefaultGeometry()))
	f.Close()
	if err != nil {
		return fmt.Errorf("reading the capture: %w", err)
	}
	ctx, stop := daemon.SignalContext(context.Background())
	defer stop()
	a, err := measure.Analyze(ctx, nw, truth, capt, measure.Options{NoPrediction: *noPred})
	if err != nil {
		return err
	}
	if _, err := a.WriteReport(*out, *title); err != nil {
		return err
	}
	ac := a.Acct
	fmt.Fprintf(stdout, "analyze: %d link events, %d mail events; %d messages: %d scored, %d warm-up, %d unmatched, %d undelivered, %d failed\n",
		ac.LinkEvents, ac.MailEvents, ac.Messages, ac.Scored, ac.Warmup, ac.Unmatched, ac.Undelivered, ac.Failed)
	for _, c := range a.Figures {
		agree := "agree"
		if !c.Overlap() {
			agree = "DIFFER"
		}
		fmt.Fprintf(stdout, "  %-32s simulated %.3g [%.3g, %.3g]  measured %.3g [%.3g, %.3g]  %s\n", c.Name, c.Pred, c.PredLo, c.PredHi, c.Meas, c.MeasLo, c.MeasHi, agree)
	}
	if a.Predicted == nil {
		fmt.Fprintf(stdout, "  entropy %.3g bits, TPR@1e-2 %.3g\n", a.Measured.Entropy.Mean, tprAt(a.Measured, 1e-2))
	}
	fmt.Fprintf(stdout, "report: %s\n", filepath.Join(*out, "report.md"))
	return nil
}

func tprAt(r *sim.Result, fpr float64) float64 {
	for _, x := range r.TPR {
		if x.FPR == fpr {
			return x.TPR
		}
	}
	return -1
}

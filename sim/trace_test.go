package sim

import (
	"context"
	"errors"
	"math"
	"testing"
)

// TestTraceReplayIsTheAdversary: a trace recorded from a simulation and
// replayed by AnalyzeTrace must give the simulation's own posterior
// figures. With links of 1 ns (the trace has one time per packet and
// link, as loopback does), no acknowledgements and no relay cover
// the wire shows everything the simulated adversary uses, so the two must
// agree (to float rounding): AnalyzeTrace is the simulator's adversary, not a copy.
func TestTraceReplayIsTheAdversary(t *testing.T) {
	cfg, err := ParseConfig(`
seed = 3
duration = "60s"
warmup = "10s"
users = 40
providers = 2
layers = 2
width = 2
[latency]
kind = "fixed"
mean = "1ns"
[mixing]
mean_delay = "20ms"
at = "mixes" # a provider that mixes holds what it delivers: the wire's mail event comes later than the simulated arrival
[client]
rate = 2.0
loop_rate = 0.2
fetch = "longpoll" # a fetch answered the moment mail lands: the wire shows what the adversary uses
[relay]
loop_rate = 0 # node-made packets look forwarded on the wire; the simulated adversary is told
[workload]
message_rate = 0.1
contacts = 3
acks = false
[adversary]
estimator = "timing"
providers = "none"
targets = 200
`)
	if err != nil {
		t.Fatal(err)
	}
	m, err := newModel(cfg)
	if err != nil {
		t.Fatal(err)
	}
	m.rec = &Trace{}
	if err := m.run(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := m.result()
	tr, err := Observe(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(tr.Events) != len(m.rec.Events) || len(tr.Targets) != len(m.rec.Targets) {
		t.Fatalf("Observe recorded %d events and %d targets, the model %d and %d", len(tr.Events), len(tr.Targets), len(m.rec.Events), len(m.rec.Targets))
	}
	got, err := AnalyzeTrace(context.Background(), cfg, tr)
	if err != nil {
		t.Fatal(err)
	}
	if want.Targets < 50 || got.Targets != want.Targets {
		t.Fatalf("targets: simulated %d, replayed %d", want.Targets, got.Targets)
	}
	close := func(name string, a, b float64) {
		if math.Abs(a-b) > 1e-6*max(1, math.Abs(a)) {
			t.Errorf("%s: simulated %v, replayed %v", name, a, b)
		}
	}
	close("entropy", want.Entropy.Mean, got.Entropy.Mean)
	close("min-entropy", want.MinEntropy.Mean, got.MinEntropy.Mean)
	close("top-1", want.TopK[0].Accuracy, got.TopK[0].Accuracy)
	close("TPR@1e-2", want.TPR[0].TPR, got.TPR[0].TPR)
	wd, gd := want.Disclosure, got.Disclosure
	if len(wd.Receipt) < 3 || len(gd.Receipt) != len(wd.Receipt) {
		t.Fatalf("receipt attack: simulated %v, replayed %v messages per pair", len(wd.Receipt), len(gd.Receipt))
	}
	for n := range wd.Receipt {
		close("receipt top-1", wd.Receipt[n], gd.Receipt[n])
		close("online-window isolated", wd.Online[n], gd.Online[n])
	}
	t.Logf("%d targets: entropy %.4f bits, top-1 %.3f, TPR@1e-2 %.3f", got.Targets, got.Entropy.Mean, got.TopK[0].Accuracy, got.TPR[0].TPR)
}

func TestAnalyzeTraceRefuses(t *testing.T) {
	cfg, err := ParseConfig("users = 2\nproviders = 1\nlayers = 1\nwidth = 1\n[workload]\ncontacts = 1\n[adversary]\nestimator = \"timing\"\ntop_k = [1]\n")
	if err != nil {
		t.Fatal(err)
	}
	ok := func() *Trace {
		return &Trace{Contacts: [][]int32{{1}, {0}}, Warmup: 0, End: 10e9,
			Events:  []TraceEvent{{T: 1, From: -1, To: 1}, {T: 2, From: 1, To: 0}, {T: 3, From: 0, To: -2}},
			Targets: []TraceTarget{{Sender: 0, Recipient: 1, Event: 2}}}
	}
	if _, err := AnalyzeTrace(context.Background(), cfg, ok()); err != nil {
		t.Fatalf("a valid trace: %v", err)
	}
	for name, edit := range map[string]func(*Trace){
		"time order":          func(tr *Trace) { tr.Events[1].T = 0 },
		"unknown node":        func(tr *Trace) { tr.Events[1].To = 9 },
		"unknown user":        func(tr *Trace) { tr.Events[0].From = -5 },
		"user to provider":    func(tr *Trace) { tr.Events[0].To = 0 },
		"mail from a mix":     func(tr *Trace) { tr.Events[2].From = 1 },
		"target not mail":     func(tr *Trace) { tr.Targets[0].Event = 1 },
		"target out of range": func(tr *Trace) { tr.Targets[0].Event = 7 },
		"self contact":        func(tr *Trace) { tr.Contacts[0][0] = 0 },
		"no contacts":         func(tr *Trace) { tr.Contacts[1] = nil },
		"end before warm-up":  func(tr *Trace) { tr.End = -1 },
	} {
		tr := ok()
		edit(tr)
		if _, err := AnalyzeTrace(context.Background(), cfg, tr); !errors.Is(err, ErrTrace) {
			t.Errorf("%s: got %v, want ErrTrace", name, err)
		}
	}
	cfg.Adv.Estimator = "count"
	if _, err := AnalyzeTrace(context.Background(), cfg, ok()); !errors.Is(err, ErrConfig) {
		t.Errorf("count estimator on a trace: got %v, want ErrConfig", err)
	}
}

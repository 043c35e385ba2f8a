package sim

import (
	"context"
	"syscall"
	"testing"
	"time"
)

// cpuTime is the process's user and system CPU time so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkEvents runs a scaled-down reference workload (10,000 clients at
// 1 packet/s, 3 layers × 10, 0.1 s mean delay, loop cover, one simulated
// minute) and reports simulated events per second of wall time, and the
// same with the adversary scoring 200 targets.
func BenchmarkEvents(b *testing.B) {
	for _, targets := range []int{1, 200} {
		b.Run(map[int]string{1: "engine", 200: "with-adversary"}[targets], func(b *testing.B) {
			cfg, err := ParseConfig(`
users = 10000
providers = 10
layers = 3
width = 10
duration = "60s"
[client]
rate = 1
loop_rate = 0.1
[mixing]
mean_delay = "100ms"
[workload]
message_rate = 0.01
[adversary]
targets = ` + itoa(targets) + `
`)
			if err != nil {
				b.Fatal(err)
			}
			var events uint64
			start, cpu := time.Now(), cpuTime(b)
			for range b.N {
				r, err := Run(context.Background(), cfg, nil)
				if err != nil {
					b.Fatal(err)
				}
				events += r.Events
			}
			b.ReportMetric(float64(events)/time.Since(start).Seconds(), "events/s")
			// CPU time, the garbage collector's on the other core included.
			b.ReportMetric(float64(events)/(cpuTime(b)-cpu).Seconds(), "events/cpu-s")
		})
	}
}

// BenchmarkReference runs the reference workload of docs/sim.md §7
// (100,000 clients at 1 packet/s, 3 layers × 10, 0.1 s mean delay per
// hop, loop cover, one simulated hour, 1,000 scored targets). It takes
// tens of minutes; run it on its own:
// go test ./sim -run '^$' -bench Reference -benchtime 1x -timeout 2h
func BenchmarkReference(b *testing.B) {
	cfg, err := ParseConfig(`
name = "reference"
users = 100000
providers = 10
layers = 3
width = 10
duration = "1h"
[client]
rate = 1
loop_rate = 0.1
[mixing]
mean_delay = "100ms"
[workload]
message_rate = 0.01
[adversary]
targets = 1000
`)
	if err != nil {
		b.Fatal(err)
	}
	for range b.N {
		start := time.Now()
		r, err := Run(context.Background(), cfg, nil)
		if err != nil {
			b.Fatal(err)
		}
		wall := time.Since(start)
		b.ReportMetric(float64(r.Events)/wall.Seconds(), "events/s")
		b.ReportMetric(float64(r.Events), "events")
		b.ReportMetric(wall.Seconds(), "wall-s")
		b.ReportMetric(r.Entropy.Mean, "entropy-bits")
		b.ReportMetric(r.TopK[0].Accuracy, "top1")
	}
}

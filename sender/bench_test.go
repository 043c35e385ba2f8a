package sender_test

import (
	"context"
	crand "crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sealnet/sealnet/internal/testbed/testnet"
	"github.com/sealnet/sealnet/mixnet"
	"github.com/sealnet/sealnet/relay"
	"github.com/sealnet/sealnet/sender"
)

// procCPU returns the user+system CPU time a process has used so far.
func procCPU(tb testing.TB, pid int) time.Duration {
	tb.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		tb.Fatal(err)
	}
	// Fields after the command name (which may hold spaces) in ")".
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	ut, _ := strconv.ParseUint(f[11], 10, 64)
	st, _ := strconv.ParseUint(f[12], 10, 64)
	const hz = 100 // USER_HZ on Linux
	return time.Duration(ut+st) * time.Second / hz
}

// BenchmarkClientIdle runs `sealnet daemon` on the network's default
// parameters (a Poisson stream of cover at λ = 2/s, every packet with a
// SURB whose reply comes back, a pull every second) as its own process
// on an idle in-process testnet, and reports the CPU it uses as a
// percentage of one core. The baseline, measured in the same run, is the
// CPU the packets themselves need: 2λ × the time to build one 5-hop
// packet here (a cover packet and its SURB).
// Run it once: go test ./sender -run '^$' -bench ClientIdle -benchtime 1x
func BenchmarkClientIdle(b *testing.B) {
	const window = 20 * time.Second
	exe := filepath.Join(b.TempDir(), "sealnet")
	if out, err := exec.Command("go", "build", "-o", exe, "../cmd/sealnet").CombinedOutput(); err != nil {
		b.Fatalf("build: %v\n%s", err, out)
	}
	n := startNetworkB(b)
	dir := filepath.Join(b.TempDir(), "home")
	io := n.initOptions("idle@a")
	def := sender.DefaultSettings()
	io.Settings = &def
	if err := sender.Init(dir, pass, io); err != nil {
		b.Fatal(err)
	}
	c, err := sender.Open(dir, pass, sender.Options{})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Register(ctx); err != nil {
		b.Fatal(err)
	}
	c.Close()

	// Baseline: building one packet, as the daemon does for each cover
	// packet (its SURB is counted as a second packet).
	doc, err := n.nw.WaitDocument(ctx)
	if err != nil {
		b.Fatal(err)
	}
	var path []mixnet.Hop
	for _, layer := range doc.Doc.Layers {
		path = append(path, mixnet.Hop{ID: layer[0].ID(), PublicKey: layer[0].MixKeys[doc.Doc.Epoch]})
	}
	pv := doc.Doc.Providers[0]
	path = append(path, mixnet.Hop{ID: pv.ID(), PublicKey: pv.MixKeys[doc.Doc.Epoch]})
	const reps = 200
	start := time.Now()
	for range reps {
		if _, err := mixnet.NewPacket(crand.Reader, mixnet.DefaultGeometry(), path, mixnet.RecipientID{1}, nil); err != nil {
			b.Fatal(err)
		}
	}
	perPacket := time.Since(start) / reps
	baseline := 2 * def.Rate * perPacket.Seconds()

	// Packets entering the first layer per second, with and without the
	// daemon: the difference is the daemon's stream and its replies (they
	// cross the layers too): 2λ, showing it really sends while idle.
	entryRate := func(d time.Duration) float64 {
		var sum0, sum1 uint64
		for _, name := range []string{"mix-1a", "mix-1b"} {
			sum0 += nodeCounterOf(b, n, name, "sealnet_packets_in_total")
		}
		time.Sleep(d)
		for _, name := range []string{"mix-1a", "mix-1b"} {
			sum1 += nodeCounterOf(b, n, name, "sealnet_packets_in_total")
		}
		return float64(sum1-sum0) / d.Seconds()
	}
	quiet := entryRate(window / 2)

	for range b.N {
		logf, _ := os.Create(filepath.Join(b.TempDir(), "daemon.log"))
		cmd := exec.Command(exe, "daemon", "--dir", dir)
		cmd.Env = append(os.Environ(), "SEALNET_PASSPHRASE="+string(pass))
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		time.Sleep(3 * time.Second) // start-up: Argon2id, first document
		c0, t0 := procCPU(b, cmd.Process.Pid), time.Now()
		busy := entryRate(window)
		used, wall := procCPU(b, cmd.Process.Pid)-c0, time.Since(t0)
		cmd.Process.Kill()
		cmd.Wait()
		logf.Close()
		if log, _ := os.ReadFile(logf.Name()); strings.Contains(string(log), "level=") {
			b.Fatalf("the daemon logged warnings:\n%s", log)
		}
		share := used.Seconds() / wall.Seconds()
		b.ReportMetric(100*share, "cpu-%-of-core")
		b.ReportMetric(100*baseline, "baseline-cpu-%")
		b.ReportMetric(share/baseline, "ratio")
		b.ReportMetric(busy-quiet, "client-pkts/s")
	}
}

// startNetworkB is startNetwork for benchmarks.
func startNetworkB(b *testing.B) *network {
	b.Helper()
	nw, err := testnet.Create(b.TempDir(), testnet.Spec{LogLevel: "error"})
	if err != nil {
		b.Fatal(err)
	}
	p, err := testnet.StartInProcess(nw, testnet.InProcessOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { p.Stop() })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := nw.WaitDocument(ctx); err != nil {
		b.Fatal(err)
	}
	return &network{nw: nw, p: p}
}

// nodeCounterOf reads one node's counter.
func nodeCounterOf(tb testing.TB, n *network, node, series string) uint64 {
	one := &network{nw: n.nw, p: &testnet.InProcess{Nodes: map[string]*relay.Node{node: n.p.Nodes[node]}}}
	return nodeCounter(tb, one, series)
}

package relay_test

import (
	"bufio"
	"context"
	"crypto/ecdh"
	"crypto/ed25519"
	crand "crypto/rand"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sealnet/sealnet/internal/keystore"
	"github.com/sealnet/sealnet/internal/testbed/testnet"
	"github.com/sealnet/sealnet/mixnet"
	"github.com/sealnet/sealnet/mixnet/directory"
	"github.com/sealnet/sealnet/mixnet/link"
)

// sink stands in for the provider of a one-layer network: it publishes the
// provider's descriptor with the provider's own keys and counts the frames
// it receives without unwrapping them, so that it costs the relay under
// test no CPU.
type sink struct {
	got    atomic.Int64
	mixKey [32]byte
	desc   *directory.Descriptor
	stop   func()
}

func startSink(b testing.TB, nw *testnet.Network) *sink {
	b.Helper()
	var prov testnet.Node
	for _, n := range nw.Nodes {
		if n.Role == "provider" {
			prov = n
		}
	}
	cfg, err := nw.RelayConfig(prov)
	if err != nil {
		b.Fatal(err)
	}
	keyDir := filepath.Join(cfg.DataDir, "keys")
	id, _, err := keystore.Identity(keyDir)
	if err != nil {
		b.Fatal(err)
	}
	lk, _, err := keystore.Link(keyDir)
	if err != nil {
		b.Fatal(err)
	}
	e := directory.EpochAt(time.Now(), nw.Spec.EpochPeriod)
	mks := keystore.NewMixKeys(keyDir)
	pubs := map[uint64][32]byte{}
	for _, x := range []uint64{e, e + 1} {
		priv, _, err := mks.Get(x)
		if err != nil {
			b.Fatal(err)
		}
		k, err := mixnet.NewMixKey(geo, priv)
		if err != nil {
			b.Fatal(err)
		}
		pubs[x] = k.PublicKey()
	}
	s := &sink{mixKey: pubs[e]}
	s.desc = &directory.Descriptor{
		Name: prov.Name, Role: directory.RoleProvider, Domain: prov.Domain, Address: prov.Address,
		IdentityKey: id.Public().(ed25519.PublicKey), LinkKey: [32]byte(lk.Public), Epoch: e, MixKeys: pubs, GeometryHash: geo.Hash(),
	}
	signed, err := directory.SignDescriptor(s.desc, id)
	if err != nil {
		b.Fatal(err)
	}
	dc, err := nw.DirClient("")
	if err != nil {
		b.Fatal(err)
	}
	defer dc.Close()
	if _, err := dc.Publish(context.Background(), signed, nil); err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", prov.Address)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &link.Listener{
		Config: link.Config{Geometry: geo, Static: lk},
		Kinds:  []link.Kind{link.KindPeer},
		Authorize: func(link.Kind, [32]byte, net.Addr) error {
			return nil
		},
		Handle: func(ctx context.Context, c *link.Conn) {
			for {
				if _, err := c.ReadPacket(); err != nil {
					return
				}
				s.got.Add(1)
			}
		},
	}
	done := make(chan struct{})
	go func() { defer close(done); l.Serve(ctx, ln) }()
	s.stop = func() { cancel(); <-done }
	return s
}

// loadNetwork is an authority, one mix (the relay under test) and the sink.
func loadNetwork(b testing.TB, startMix bool) (*testnet.Network, *testnet.InProcess, *sink, *directory.SignedDocument) {
	b.Helper()
	nw, err := testnet.Create(b.TempDir(), testnet.Spec{EpochPeriod: time.Hour, Layers: 1, Width: 1, Providers: 1, LogLevel: "warn"})
	if err != nil {
		b.Fatal(err)
	}
	skip := map[string]bool{"provider-a": true}
	if !startMix {
		skip["mix-1a"] = true
	}
	p, err := testnet.StartInProcess(nw, testnet.InProcessOptions{Skip: skip, Relay: nil})
	if err != nil {
		b.Fatal(err)
	}
	s := startSink(b, nw)
	if !startMix {
		return nw, p, s, nil // the caller starts the mix, then waits
	}
	return nw, p, s, waitDoc(b, nw)
}

func waitDoc(b testing.TB, nw *testnet.Network) *directory.SignedDocument {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	doc, err := nw.WaitDocument(ctx)
	if err != nil {
		b.Fatal(err)
	}
	return doc
}

// x25519Rate measures raw X25519 operations per second with one goroutine
// per core busy, for d: the bound a relay's unwrapping can approach.
func x25519Rate(d time.Duration) float64 {
	var ops atomic.Int64
	var wg sync.WaitGroup
	deadline := time.Now().Add(d)
	for range runtimeCPUs() {
		wg.Go(func() {
			a, _ := ecdh.X25519().GenerateKey(crand.Reader)
			p, _ := ecdh.X25519().GenerateKey(crand.Reader)
			pub := p.PublicKey()
			n := 0
			for time.Now().Before(deadline) {
				for range 64 {
					a.ECDH(pub)
				}
				n += 64
			}
			ops.Add(int64(n))
		})
	}
	wg.Wait()
	return float64(ops.Load()) / d.Seconds()
}

// BenchmarkRelayThroughput pushes b.N packets through one relay over real
// TCP and Noise links on loopback (client links in, a peer link out) and
// reports packets/s, and the ratio to the X25519 bound (raw X25519
// operations/s on every core) measured in the same run. Run it with a
// fixed count: go test ./relay -run '^$' -bench RelayThroughput -benchtime 20000x
func BenchmarkRelayThroughput(b *testing.B) {
	_, p, s, doc := loadNetwork(b, true)
	defer p.Stop()
	defer s.stop()
	mix := doc.Doc.Layers[0][0]
	for !p.Nodes[mix.Name].Ready() {
		time.Sleep(20 * time.Millisecond)
	}
	path := []mixnet.Hop{{ID: mix.ID(), PublicKey: mix.MixKeys[doc.Doc.Epoch]}, {ID: s.desc.ID(), PublicKey: s.mixKey}}
	pkts := make([][]byte, b.N)
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Go(func() {
			for i := w; i < b.N; i += 2 {
				var err error
				if pkts[i], err = mixnet.NewPacket(crand.Reader, geo, path, mixnet.RecipientID{1}, nil); err != nil {
					panic(err)
				}
			}
		})
	}
	wg.Wait()
	bound := x25519Rate(time.Second)

	b.ResetTimer()
	start := time.Now()
	// Closed loop: at most window packets in flight, so the offered load
	// follows the relay's capacity instead of flooding it (the overload
	// test covers floods).
	const senders, window = 2, 4096
	var sent atomic.Int64
	for w := range senders {
		wg.Go(func() {
			inj := testnet.NewInjector(doc.Doc)
			defer inj.Close()
			for i := w; i < b.N; i += senders {
				for sent.Load()-s.got.Load() >= window {
					time.Sleep(50 * time.Microsecond)
				}
				if err := inj.Send(context.Background(), mix.ID(), pkts[i]); err != nil {
					b.Error(err)
					return
				}
				sent.Add(1)
			}
		})
	}
	wg.Wait()
	// Wait until the relay has passed on everything it kept.
	last, lastChange := int64(-1), time.Now()
	for time.Since(lastChange) < 300*time.Millisecond && s.got.Load() < int64(b.N) {
		if g := s.got.Load(); g != last {
			last, lastChange = g, time.Now()
		}
		time.Sleep(5 * time.Millisecond)
	}
	elapsed := lastChange.Sub(start) // when the last packet arrived
	b.StopTimer()
	pps := float64(s.got.Load()) / elapsed.Seconds()
	b.ReportMetric(pps, "pkts/s")
	b.ReportMetric(bound, "x25519-bound/s")
	b.ReportMetric(pps/bound, "ratio")
	b.ReportMetric(float64(int64(b.N)-s.got.Load())/float64(b.N), "dropped-frac")
}

func runtimeCPUs() int { return max(1, numCPU()) }

// BenchmarkRelayMemory runs the relay as its own process and offers it
// 5,000 packets/s for 20 s with a 1 s mean Poisson delay (about 5,000
// packets held at once), and reports its peak resident memory (VmHWM) and
// its resident memory before the load. Run it once:
// go test ./relay -run '^$' -bench RelayMemory -benchtime 1x
func BenchmarkRelayMemory(b *testing.B) {
	const rate, duration, meanDelay = 5000, 20 * time.Second, time.Second
	exe := filepath.Join(b.TempDir(), "sealnet")
	build := exec.Command("go", "build", "-o", exe, "../cmd/sealnet")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("build: %v\n%s", err, out)
	}
	nw, p, s, _ := loadNetwork(b, false)
	defer p.Stop()
	defer s.stop()
	mixNode := nw.Nodes[0]
	logf, _ := os.Create(filepath.Join(b.TempDir(), "relay.log"))
	defer logf.Close()
	cmd := exec.Command(exe, "relay", "--config", nw.Path(mixNode.Config))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	doc := waitDoc(b, nw)
	mix := doc.Doc.Layers[0][0]
	// The relay is ready once it accepts a client link and forwards.
	inj := testnet.NewInjector(doc.Doc)
	defer inj.Close()
	path := []mixnet.Hop{{ID: mix.ID(), PublicKey: mix.MixKeys[doc.Doc.Epoch]}, {ID: s.desc.ID(), PublicKey: s.mixKey}}
	probe := func() {
		pkt, _ := mixnet.NewPacket(crand.Reader, geo, path, mixnet.RecipientID{1}, nil)
		inj.Send(context.Background(), mix.ID(), pkt)
	}
	deadline := time.Now().Add(30 * time.Second)
	for s.got.Load() == 0 {
		if time.Now().After(deadline) {
			b.Fatal("the relay process never forwarded a packet")
		}
		inj.Close()
		probe()
		time.Sleep(200 * time.Millisecond)
	}
	baseRSS := procStatus(b, cmd.Process.Pid, "VmRSS")

	b.ResetTimer()
	var sent atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for w := range 2 {
		wg.Go(func() {
			for i := w; ; i += 2 {
				due := start.Add(time.Duration(i) * time.Second / rate)
				if time.Since(start) >= duration {
					return
				}
				time.Sleep(time.Until(due))
				hops := append([]mixnet.Hop(nil), path...)
				hops[0].Delay = expDelay(meanDelay)
				pkt, err := mixnet.NewPacket(crand.Reader, geo, hops, mixnet.RecipientID{1}, nil)
				if err != nil {
					panic(err)
				}
				if err := inj.Send(context.Background(), mix.ID(), pkt); err != nil {
					b.Error(err)
					return
				}
				sent.Add(1)
			}
		})
	}
	wg.Wait()
	offered := float64(sent.Load()) / time.Since(start).Seconds()
	time.Sleep(6 * meanDelay) // e^-6: almost every delayed packet is out
	peak := procStatus(b, cmd.Process.Pid, "VmHWM")
	b.StopTimer()
	b.ReportMetric(offered, "offered-pkts/s")
	b.ReportMetric(float64(peak)/1024, "peak-RSS-MiB")
	b.ReportMetric(float64(baseRSS)/1024, "idle-RSS-MiB")
	b.ReportMetric(float64(s.got.Load())/float64(sent.Load()+1), "delivered-frac")
}

// procStatus returns a /proc/PID/status field in KiB.
func procStatus(b testing.TB, pid int, field string) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb
		}
	}
	b.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

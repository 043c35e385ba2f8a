package relay

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sealnet/sealnet/mixnet"
)

// oldDefaultReplayCapacity is replay_capacity's default before issue 16:
// 4 Mi tags whatever the epoch and the machine.
const oldDefaultReplayCapacity = 4 << 20

// lineRate is what this machine's relay unwraps per second on all its
// workers: the relay's self-benchmark run on every worker's core at once,
// the rates summed, the highest of three rounds (the machine is shared;
// a higher rate makes every test here harder to pass).
func lineRate(t testing.TB, workers int) float64 {
	t.Helper()
	cores := unwrapCores(workers)
	best := 0.0
	for range 3 {
		rates := make([]float64, cores)
		errs := make([]error, cores)
		var wg sync.WaitGroup
		for i := range cores {
			wg.Go(func() { rates[i], errs[i] = measureUnwrapRate(mixnet.DefaultGeometry(), selfBenchCount) })
		}
		wg.Wait()
		sum := 0.0
		for i := range cores {
			if errs[i] != nil {
				t.Fatal(errs[i])
			}
			sum += rates[i]
		}
		best = max(best, sum)
	}
	return best
}

// epochConfig is a mix configuration whose [directory] section is tail.
func epochConfig(t testing.TB, tail string) *Config {
	t.Helper()
	return loadMixConfig(t.(*testing.T), t.TempDir(), 1, "127.0.0.1:4433", "[directory]\n"+tail)
}

// TestReplayCapacityCoversLineRate: with replay_capacity left to its
// default, a flood at this machine's measured unwrap rate on every worker
// does not fill a key's replay cache before the key expires, at the
// default epoch and when the operator shortens or lengthens it (the
// capacity follows epoch_period and epoch_grace). Before issue 16 the
// default was 4 Mi tags, full after about a minute and a half at 50,000
// unwraps/s of a 24-minute key lifetime.
func TestReplayCapacityCoversLineRate(t *testing.T) {
	var rate float64
	for _, tail := range []string{"", "epoch_period = \"5m\"\n", "epoch_period = \"1h\"\nepoch_grace = \"5m\"\n"} {
		c := epochConfig(t, tail)
		d, l := c.Directory, c.Limits
		if rate == 0 {
			rate = lineRate(t, l.Workers)
		}
		life := keyLifetime(d.EpochPeriod.D(), d.EpochGrace.D())
		need := rate * life.Seconds()
		fills := time.Duration(float64(l.ReplayCapacity) / rate * float64(time.Second))
		t.Logf("epoch %v, grace %v: key lifetime %v; line rate %.0f unwraps/s on %d workers; replay_capacity %d fills in %v (%.2f key lifetimes), %d MiB when full",
			d.EpochPeriod.D(), d.EpochGrace.D(), life, rate, unwrapCores(l.Workers), l.ReplayCapacity, fills.Round(time.Second), fills.Seconds()/life.Seconds(),
			mixnet.ReplayCacheMemory(l.ReplayCapacity)>>20)
		if float64(l.ReplayCapacity) < need {
			t.Errorf("epoch %v: replay_capacity %d fills in %v at line rate, before the key's lifetime of %v ends (needs %.0f)",
				d.EpochPeriod.D(), l.ReplayCapacity, fills.Round(time.Second), life, need)
		}
	}
}

// TestSelfBenchmarkWarnsSmallReplayCapacity: at start the relay compares
// its measured unwrap rate with its replay capacity and says so when a
// flood would fill a cache before its key expires; with the default it
// does not.
func TestSelfBenchmarkWarnsSmallReplayCapacity(t *testing.T) {
	for _, tc := range []struct {
		tail string
		warn bool
	}{{"", false}, {"[limits]\nreplay_capacity = 1000\n", true}} {
		c := loadMixConfig(t, t.TempDir(), 1, "127.0.0.1:4433", tc.tail)
		var buf bytes.Buffer
		n, err := New(*c, Options{Logger: slog.New(slog.NewTextHandler(&buf, nil))})
		if err != nil {
			t.Fatal(err)
		}
		n.selfBenchmark()
		out := buf.String()
		if !strings.Contains(out, "self-benchmark") || !strings.Contains(out, "replay_memory_full_mib=") {
			t.Fatalf("no self-benchmark line with the replay cache's memory: %q", out)
		}
		if got := strings.Contains(out, "limits.replay_capacity is too small"); got != tc.warn {
			t.Errorf("replay_capacity %d: warned %v, want %v: %q", c.Limits.ReplayCapacity, got, tc.warn, out)
		}
		n.keys.close()
	}
}

// randomTags returns n distinct pseudo-random tags (a real tag is
// pseudo-random: it is derived from the hop's shared secret).
func randomTags(n int, seed uint64) []mixnet.ReplayTag {
	tags := make([]mixnet.ReplayTag, n)
	var in [16]byte
	binary.LittleEndian.PutUint64(in[8:], seed)
	for i := range tags {
		binary.LittleEndian.PutUint64(in[:8], uint64(i))
		sum := sha256.Sum256(in[:])
		tags[i] = mixnet.ReplayTag(sum[:16])
	}
	return tags
}

// flood adds n tags (tag(i) for i < n) to rc from workers goroutines, as
// the relay's workers do, while another syncs the journal every interval,
// as the relay's replay_sync does. It returns how many were added before
// the first refusal (all of them if none), the first refusal or sync
// error, and the time taken.
func flood(rc *mixnet.ReplayCache, n int, tag func(int) mixnet.ReplayTag, workers int, interval time.Duration) (int, error, time.Duration) {
	var next, added atomic.Int64
	var first atomic.Pointer[error]
	fail := func(err error) { first.CompareAndSwap(nil, &err) }
	done := make(chan struct{})
	var syncer sync.WaitGroup
	syncer.Go(func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if err := rc.Sync(); err != nil {
					fail(err)
					return
				}
			}
		}
	})
	var wg sync.WaitGroup
	start := time.Now()
	for range workers {
		wg.Go(func() {
			for first.Load() == nil {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				if err := rc.Add(tag(int(i))); err != nil {
					fail(err)
					return
				}
				added.Add(1)
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	close(done)
	syncer.Wait()
	if err := rc.Sync(); err != nil {
		fail(err)
	}
	var err error
	if p := first.Load(); p != nil {
		err = *p
	}
	return int(added.Load()), err, took
}

// TestReplayCacheAtLineRateForAKeyLifetime drives a key's whole lifetime
// of tags at this machine's measured line rate, scaled down to 2-second
// epochs, through a journaled ReplayCache sized by the default rule: no
// packet is refused, the cache takes tags faster than the relay can
// unwrap them, the journal grows by 16 bytes a tag, and after a restart
// every tag is still refused. The control gives the same flood a cache
// sized by the old default's share of a 24-minute key lifetime: it is
// full long before the key expires.
func TestReplayCacheAtLineRateForAKeyLifetime(t *testing.T) {
	c := epochConfig(t, "epoch_period = \"2s\"\n")
	d, l := c.Directory, c.Limits
	rate := lineRate(t, l.Workers)
	life := keyLifetime(d.EpochPeriod.D(), d.EpochGrace.D())
	budget := int(rate * life.Seconds())
	tags := randomTags(budget, 1)
	tag := func(i int) mixnet.ReplayTag { return tags[i] }
	workers := unwrapCores(l.Workers)

	path := filepath.Join(t.TempDir(), "epoch-1.journal")
	keyID := [32]byte{16}
	rc, err := mixnet.OpenReplayCache(path, 1, keyID, l.ReplayCapacity)
	if err != nil {
		t.Fatal(err)
	}
	n, err, took := flood(rc, budget, tag, workers, l.ReplaySync.D())
	sustained := float64(n) / took.Seconds()
	t.Logf("key lifetime %v at %.0f unwraps/s: %d tags into replay_capacity %d; %d taken in %v (%.0f tags/s, %.1f x line rate)",
		life, rate, budget, l.ReplayCapacity, n, took.Round(time.Millisecond), sustained, sustained/rate)
	if err != nil || n != budget {
		t.Fatalf("refused after %d of %d tags (%.0f%% of the key's lifetime at line rate): %v", n, budget, 100*float64(n)/float64(budget), err)
	}
	if sustained < rate {
		t.Errorf("the cache took %.0f tags/s, less than the line rate of %.0f unwraps/s", sustained, rate)
	}
	if err := rc.Close(); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(48 + 16*budget); st.Size() != want {
		t.Errorf("journal of %d tags is %d bytes, want 48 + 16 per tag = %d", budget, st.Size(), want)
	}

	// A restart within the epoch still refuses every tag it saw.
	rc, err = mixnet.OpenReplayCache(path, 1, keyID, l.ReplayCapacity)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if rc.Len() != budget {
		t.Fatalf("reloaded %d tags, want %d", rc.Len(), budget)
	}
	for i := 0; i < budget; i += max(1, budget/1000) {
		if err := rc.Add(tags[i]); !errors.Is(err, mixnet.ErrReplay) {
			t.Fatalf("tag %d after restart: got %v, want ErrReplay", i, err)
		}
	}

	// Control: the old default held 4 Mi tags, that share of a 24-minute
	// key lifetime at line rate; scaled to this lifetime it is full early.
	// The control floods at the rate the default capacity is sized for
	// (DefaultReplayRatePerCore on each worker), or the measured one if
	// higher: under the race detector and a loaded CI machine the measured
	// rate can be a tenth of a relay's, at which 4 Mi tags would last.
	ctlRate := max(rate, float64(DefaultReplayRatePerCore*workers))
	ctlBudget := int(ctlRate * life.Seconds())
	ctlTags := randomTags(ctlBudget, 2)
	realLife := keyLifetime(20*time.Minute, 2*time.Minute)
	oldCap := max(1, int(float64(oldDefaultReplayCapacity)*life.Seconds()/realLife.Seconds()))
	old, err := mixnet.NewReplayCache(1, oldCap)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	n, err, _ = flood(old, ctlBudget, func(i int) mixnet.ReplayTag { return ctlTags[i] }, workers, l.ReplaySync.D())
	t.Logf("control: the old default, 4 Mi tags, is full after %v of a %v key lifetime at %.0f unwraps/s (here: refused after %d of %d tags)",
		(time.Duration(oldDefaultReplayCapacity / ctlRate * float64(time.Second))).Round(time.Second), realLife, ctlRate, n, ctlBudget)
	if !errors.Is(err, mixnet.ErrReplayCacheFull) || n >= ctlBudget {
		t.Fatalf("control: the old capacity took %d of %d tags (%v): the flood did not fill it", n, ctlBudget, err)
	}
	// And the default capacity takes that whole flood.
	full, err := mixnet.NewReplayCache(1, l.ReplayCapacity)
	if err != nil {
		t.Fatal(err)
	}
	defer full.Close()
	if n, err, _ := flood(full, ctlBudget, func(i int) mixnet.ReplayTag { return ctlTags[i] }, workers, l.ReplaySync.D()); err != nil || n != ctlBudget {
		t.Fatalf("the default capacity %d refused after %d of %d tags at %.0f unwraps/s: %v", l.ReplayCapacity, n, ctlBudget, ctlRate, err)
	}
}

// BenchmarkReplayCacheFullEpoch is the full-size run: a journaled replay
// cache with the default capacity of this machine's relay (20-minute
// epochs, 2-minute grace) takes a whole key lifetime of tags, as fast as
// the workers can add them. It reports the sustained tags/s against the
// measured unwraps/s on all workers, the live heap after filling, and
// the journal's size. Run it alone: go test ./relay -run '^$' -bench
// ReplayCacheFullEpoch -benchtime 1x (about 1.5 GB of disk, 1 GB of
// memory; a minute or two).
func BenchmarkReplayCacheFullEpoch(b *testing.B) {
	for b.Loop() {
		dir := b.TempDir()
		path := filepath.Join(dir, "relay.toml")
		cfg := `name = "m"
role = "mix"
layer = 1
listen = "127.0.0.1:4433"
data_dir = "` + filepath.ToSlash(dir) + `"

[[directory.authorities]]
url = "http://127.0.0.1:1"
key = "0000000000000000000000000000000000000000000000000000000000000000"
`
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			b.Fatal(err)
		}
		c, err := LoadConfig(path)
		if err != nil {
			b.Fatal(err)
		}
		d, l := c.Directory, c.Limits
		rate := lineRate(b, l.Workers)
		life := keyLifetime(d.EpochPeriod.D(), d.EpochGrace.D())
		budget := l.ReplayCapacity // the default: DefaultReplayRatePerCore × workers × lifetime
		workers := unwrapCores(l.Workers)

		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		jpath := filepath.Join(dir, "epoch-1.journal")
		rc, err := mixnet.OpenReplayCache(jpath, 1, [32]byte{1}, l.ReplayCapacity)
		if err != nil {
			b.Fatal(err)
		}
		// Tags are made on the fly (not held in memory, which would
		// swamp the heap figure): a counter through SHA-256.
		tag := func(i int) mixnet.ReplayTag {
			var in [8]byte
			binary.LittleEndian.PutUint64(in[:], uint64(i))
			sum := sha256.Sum256(in[:])
			return mixnet.ReplayTag(sum[:16])
		}
		added, err, took := flood(rc, budget, tag, workers, l.ReplaySync.D())
		if err != nil {
			b.Fatalf("refused after %d of %d tags: %v", added, budget, err)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		st, err := os.Stat(jpath)
		if err != nil {
			b.Fatal(err)
		}
		heap := float64(after.HeapAlloc) - float64(before.HeapAlloc)
		sustained := float64(added) / took.Seconds()
		b.ReportMetric(float64(budget), "tags")
		b.ReportMetric(sustained, "tags/s")
		b.ReportMetric(rate, "unwraps/s")
		b.ReportMetric(sustained/rate, "tags/unwraps")
		b.ReportMetric(heap/(1<<20), "heap-MiB")
		b.ReportMetric(heap/float64(budget), "heap-B/tag")
		b.ReportMetric(float64(st.Size())/(1<<20), "journal-MiB")
		b.ReportMetric(life.Seconds()*rate/float64(budget), "lifetime-fill")
		b.Logf("key lifetime %v, %d workers, line rate %.0f unwraps/s; %d tags in %v; heap %.0f MiB (predicted full %d MiB), journal %d bytes",
			life, workers, rate, budget, took.Round(time.Second), heap/(1<<20), mixnet.ReplayCacheMemory(budget)>>20, st.Size())
		if err := rc.Close(); err != nil {
			b.Fatal(err)
		}
		runtime.KeepAlive(rc)
	}
}

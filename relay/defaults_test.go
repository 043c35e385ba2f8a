package relay

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sealnet/sealnet/internal/config"
	"github.com/sealnet/sealnet/mixnet"
	"github.com/sealnet/sealnet/mixnet/directory"
)

// TestCoverAndMixingDefaults: a relay whose [cover] and [mixing] sections
// are empty drops at DefaultDropRate and, before any document, follows
// directory.DefaultParameters: loops at DefaultLoopRate, cover hops of
// mean DefaultCoverDelay, packets accepted up to DefaultMaxDelay (the
// values the simulator's tie test reads). Its Poisson mixer's own cap is
// the longest encodable delay: the bound is enforced before the mixer.
func TestCoverAndMixingDefaults(t *testing.T) {
	dir := t.TempDir()
	c := loadMixConfig(t, dir, 2, "127.0.0.1:4433", "[mixing]\n\n[cover]\n")
	if c.Cover.DropRate != DefaultDropRate || len(c.networkKeys()) != 0 {
		t.Errorf("empty [cover]: drop_rate %v, network keys %v; want %v, none", c.Cover.DropRate, c.networkKeys(), DefaultDropRate)
	}
	if c.Mixing.Strategy != "poisson" || c.mixConfig().MaxDelay != mixnet.MaxDelay {
		t.Errorf("empty [mixing]: strategy %q, mixer cap %v; want poisson, %v", c.Mixing.Strategy, c.mixConfig().MaxDelay, mixnet.MaxDelay)
	}

	n, err := New(*c, Options{})
	if err != nil {
		t.Fatal(err)
	}
	p := n.params()
	if p != directory.DefaultParameters() || p.RelayLoopRate != DefaultLoopRate || p.MeanDelay != DefaultCoverDelay || p.MaxDelay != DefaultMaxDelay {
		t.Errorf("before any document the node follows %+v, want the defaults", p)
	}

	// Cover hops draw from the document's mean delay, truncated at its
	// max delay, as clients do.
	d := &directory.Descriptor{IdentityKey: make([]byte, 32), MixKeys: map[uint64][32]byte{7: {1}}}
	const draws = 20000
	mean := func(p directory.Parameters) (time.Duration, int) {
		var sum time.Duration
		atMax := 0
		for range draws {
			h, ok := n.hop(d, 7, p) // what sendLoop and sendDrop put on every hop
			if !ok {
				t.Fatal("no hop")
			}
			if h.Delay > p.MaxDelay {
				t.Fatalf("cover hop delay %v above max delay %v", h.Delay, p.MaxDelay)
			}
			if h.Delay == p.MaxDelay {
				atMax++
			}
			sum += h.Delay
		}
		return sum / draws, atMax
	}
	// The mean of 20000 exponential draws is within 5% of the true mean
	// with overwhelming probability (the standard error is 0.7%).
	if got, _ := mean(p); got < DefaultCoverDelay*95/100 || got > DefaultCoverDelay*105/100 {
		t.Errorf("cover hop delays average %v, want about %v", got, DefaultCoverDelay)
	}
	q := p
	q.MeanDelay, q.MaxDelay = 10*time.Millisecond, 20*time.Millisecond
	// Truncated at twice the mean: E = mean·(1 - e⁻²) ≈ 8.65 ms, e⁻² ≈ 13.5% at the cap.
	got, atMax := mean(q)
	if got < 8200*time.Microsecond || got > 9100*time.Microsecond || atMax < draws/10 || atMax > draws/6 {
		t.Errorf("mean 10ms, max 20ms: cover hops average %v with %d of %d at the cap; want about 8.65ms and 2700", got, atMax, draws)
	}
}

// TestNetworkKeysIgnoredAndReported: the keys the network's parameters
// replace still load (old configuration files keep working), even with
// values the relay would once have refused, are ignored, and are named
// at start with the parameter used instead.
func TestNetworkKeysIgnoredAndReported(t *testing.T) {
	dir := t.TempDir()
	c := loadMixConfig(t, dir, 1, "127.0.0.1:0", "[mixing]\nmax_delay = \"5s\"\n\n[cover]\nloop_rate = 0.0\nmean_delay = \"1ms\"\n")
	var keys []string
	for _, k := range c.networkKeys() {
		keys = append(keys, k.key+"->"+k.param)
	}
	if want := []string{"cover.loop_rate->relay_loop_rate", "cover.mean_delay->mean_delay", "mixing.max_delay->max_delay"}; !slices.Equal(keys, want) {
		t.Fatalf("network keys %v, want %v", keys, want)
	}
	if c.mixConfig().MaxDelay != mixnet.MaxDelay {
		t.Errorf("mixing.max_delay reached the mixer: %v", c.mixConfig().MaxDelay)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	var mu sync.Mutex
	log := slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil))
	n, err := New(*c, Options{Logger: log, Listener: ln})
	if err != nil {
		t.Fatal(err)
	}
	if n.params().RelayLoopRate != DefaultLoopRate || n.params().MeanDelay != DefaultCoverDelay {
		t.Errorf("the configured cover replaced the network's: %+v", n.params())
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // start, log, stop
	if err := n.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	mu.Lock()
	out := logs.String()
	mu.Unlock()
	for _, k := range []string{"key=cover.loop_rate parameter=relay_loop_rate", "key=cover.mean_delay parameter=mean_delay", "key=mixing.max_delay parameter=max_delay"} {
		if !strings.Contains(out, k) || !strings.Contains(out, "configuration key ignored") {
			t.Errorf("the start log does not report %s:\n%s", k, out)
		}
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// TestLoopLayers: a mix's loop crosses every other layer, starting with the
// one after its own and wrapping around, then comes back; a provider's loop
// crosses every layer in order.
func TestLoopLayers(t *testing.T) {
	for _, c := range []struct {
		role          directory.Role
		layer, layers int
		want          []int // 1-based layers
	}{
		{"mix", 1, 3, []int{2, 3}},
		{"mix", 2, 3, []int{3, 1}},
		{"mix", 3, 3, []int{1, 2}},
		{"mix", 1, 1, []int{}},
		{"mix", 2, 4, []int{3, 4, 1}},
		{"provider", 0, 3, []int{1, 2, 3}},
	} {
		got := loopLayers(c.role, c.layer, c.layers)
		for i := range got {
			got[i]++
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%s at layer %d of %d: loop crosses layers %v, want %v", c.role, c.layer, c.layers, got, c.want)
		}
	}
}

// TestLoopAlarmExpectation: the loop alarm's defaults, and the round trip
// its delay test expects: for a mix of a three-layer network, two Poisson
// mixes of mean 100 ms and three links of 250 ms, 1.224 s at the 95th
// percentile (the Erlang(2) quantile 4.744 × 100 ms, plus 750 ms). A relay
// sets it from its own mean delay and path when it sends a loop; under a
// strategy other than poisson the delay test stays off.
func TestLoopAlarmExpectation(t *testing.T) {
	if got := loopRTTQuantile(2, 100*time.Millisecond, 250*time.Millisecond).Round(time.Millisecond); got != 1224*time.Millisecond {
		t.Errorf("expected 95th percentile %v, want 1.224s", got)
	}
	for _, strategy := range []string{"poisson", "timed-pool"} {
		dir := t.TempDir()
		c := Config{Name: "m", Role: "mix", Layer: 2, Listen: "127.0.0.1:4433", DataDir: dir}
		c.Directory.Authorities = []AuthorityConfig{{URL: "http://127.0.0.1:1", Key: strings.Repeat("ab", 32)}}
		c.Mixing.Strategy = strategy
		if strategy == "timed-pool" {
			c.Mixing.Interval, c.Mixing.Keep = config.Duration(time.Second), 1
		}
		if err := c.Validate(); err != nil {
			t.Fatal(err)
		}
		if c.Cover.LoopLoss != DefaultLoopLoss || c.Cover.LoopLinkLatency.D() != DefaultLoopLinkLatency {
			t.Errorf("defaults: loop_loss %v, loop_link_latency %v", c.Cover.LoopLoss, c.Cover.LoopLinkLatency.D())
		}
		n, err := New(c, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if cfg := n.loops.Config(); cfg.Timeout != time.Minute || cfg.BaselineLoss != DefaultLoopLoss || cfg.SlowRTT != 0 {
			t.Errorf("watcher config %+v", cfg)
		}
		n.expectLoopHops(2)
		want := loopRTTQuantile(2, DefaultCoverDelay, DefaultLoopLinkLatency)
		if strategy != "poisson" {
			want = 0
		}
		if got := n.loops.Config().SlowRTT; got != want {
			t.Errorf("%s: the delay test expects %v, want %v", strategy, got, want)
		}
		n.keys.close()
	}
}

// loadMixConfig writes and loads a mix's relay.toml in dir: the minimal
// keys, then tail.
func loadMixConfig(t *testing.T, dir string, layer int, listen, tail string) *Config {
	t.Helper()
	path := filepath.Join(dir, "relay.toml")
	text := fmt.Sprintf(`name = "m"
role = "mix"
layer = %d
listen = %q
data_dir = %q

[[directory.authorities]]
url = "http://127.0.0.1:1"
key = "0000000000000000000000000000000000000000000000000000000000000000"

`, layer, listen, filepath.ToSlash(dir)) + tail
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

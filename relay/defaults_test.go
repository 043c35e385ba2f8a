package relay

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sealnet/sealnet/internal/config"
	"github.com/sealnet/sealnet/mixnet/directory"
)

// TestCoverAndMixingDefaults: a relay whose [cover] and [mixing] sections
// are empty sends loops at DefaultLoopRate, drops at DefaultDropRate, with
// a mean per-hop delay of DefaultCoverDelay, and its Poisson mixer caps
// delays at DefaultMaxDelay: the values the simulator's tie test reads.
func TestCoverAndMixingDefaults(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "relay.toml")
	text := `name = "m"
role = "mix"
layer = 2
listen = "127.0.0.1:4433"
data_dir = "` + filepath.ToSlash(dir) + `"

[[directory.authorities]]
url = "http://127.0.0.1:1"
key = "0000000000000000000000000000000000000000000000000000000000000000"

[mixing]

[cover]
`
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	cv := c.Cover
	if cv.LoopRate != DefaultLoopRate || cv.DropRate != DefaultDropRate || cv.MeanDelay.D() != DefaultCoverDelay {
		t.Errorf("empty [cover]: loop_rate %v, drop_rate %v, mean_delay %v; want %v, %v, %v",
			cv.LoopRate, cv.DropRate, cv.MeanDelay.D(), DefaultLoopRate, DefaultDropRate, DefaultCoverDelay)
	}
	if c.Mixing.Strategy != "poisson" || c.Mixing.MaxDelay.D() != DefaultMaxDelay {
		t.Errorf("empty [mixing]: strategy %q, max_delay %v; want poisson, %v", c.Mixing.Strategy, c.Mixing.MaxDelay.D(), DefaultMaxDelay)
	}
	if got := c.mixConfig().MaxDelay; got != DefaultMaxDelay {
		t.Errorf("the mixer is given max delay %v, want %v", got, DefaultMaxDelay)
	}

	// A relay's cover hops draw from the mean delay it was configured with.
	n, err := New(*c, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := n.cfg.Cover.MeanDelay.D(); got != DefaultCoverDelay {
		t.Errorf("the node's cover mean delay is %v, want %v", got, DefaultCoverDelay)
	}
	d := &directory.Descriptor{IdentityKey: make([]byte, 32), MixKeys: map[uint64][32]byte{7: {1}}}
	const draws = 20000
	var sum time.Duration
	for range draws {
		h, ok := n.hop(d, 7) // what sendLoop and sendDrop put on every hop
		if !ok {
			t.Fatal("no hop")
		}
		sum += h.Delay
	}
	// The mean of 20000 exponential draws is within 5% of the true mean
	// with overwhelming probability (the standard error is 0.7%).
	if mean := sum / draws; mean < DefaultCoverDelay*95/100 || mean > DefaultCoverDelay*105/100 {
		t.Errorf("cover hop delays average %v, want about %v", mean, DefaultCoverDelay)
	}

	// Setting only drop_rate turns loops off: the loop default applies to
	// an empty section only.
	c2 := *c
	c2.Cover = CoverConfig{DropRate: 1}
	if err := c2.Validate(); err != nil {
		t.Fatal(err)
	}
	if c2.Cover.LoopRate != 0 || c2.Cover.MeanDelay.D() != DefaultCoverDelay {
		t.Errorf("[cover] drop_rate = 1: loop_rate %v, mean_delay %v; want 0, %v", c2.Cover.LoopRate, c2.Cover.MeanDelay.D(), DefaultCoverDelay)
	}
}

// TestLoopLayers: a mix's loop crosses every other layer, starting with the
// one after its own and wrapping around, then comes back; a provider's loop
// crosses every layer in order.
func TestLoopLayers(t *testing.T) {
	for _, c := range []struct {
		role          string
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

package relay

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sealnet/sealnet/internal/config"
	"github.com/sealnet/sealnet/mixnet"
	"github.com/sealnet/sealnet/mixnet/directory"
)

func TestEpochKeyWindows(t *testing.T) {
	dir := t.TempDir()
	const period, grace = 100 * time.Second, 10 * time.Second
	k := newEpochKeys(dir, mixnet.DefaultGeometry(), 100, period, grace)
	defer k.close()
	if err := k.ensure(4, 5, 6); err != nil {
		t.Fatal(err)
	}
	at := func(sec int) time.Time { return time.Unix(int64(sec), 0) }
	epochs := func(now time.Time) []uint64 {
		var out []uint64
		for _, ek := range k.candidates(now, nil) {
			out = append(out, ek.epoch)
		}
		return out
	}
	cases := []struct {
		sec  int
		want []uint64
	}{
		{500, []uint64{5, 4}}, // epoch start: previous still in grace
		{509, []uint64{5, 4}}, // last moment of grace
		{510, []uint64{5}},    // previous expired
		{550, []uint64{5}},    // middle
		{591, []uint64{5, 6}}, // next epoch's key within grace before it
		{600, []uint64{6, 5}}, // next epoch
	}
	for _, c := range cases {
		got := epochs(at(c.sec))
		if len(got) != len(c.want) {
			t.Fatalf("t=%d: candidates %v, want %v", c.sec, got, c.want)
		}
		for i := range got {
			if got[i] != c.want[i] {
				t.Fatalf("t=%d: candidates %v, want %v", c.sec, got, c.want)
			}
		}
	}
	keyFile := filepath.Join(dir, "keys", "mix", "epoch-4.key")
	journal := filepath.Join(dir, "replay", "epoch-4.journal")
	for _, f := range []string{keyFile, journal} {
		if _, err := os.Stat(f); err != nil {
			t.Fatalf("%s missing before retirement: %v", f, err)
		}
	}
	if gone := k.retire(at(505)); len(gone) != 0 {
		t.Fatalf("retired %v inside the grace window", gone)
	}
	if gone := k.retire(at(510)); len(gone) != 1 || gone[0] != 4 {
		t.Fatalf("retired %v at the end of grace, want [4]", gone)
	}
	for _, f := range []string{keyFile, journal} {
		if _, err := os.Stat(f); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s survives its key's retirement", f)
		}
	}
	if _, ok := k.public(4); ok {
		t.Fatal("retired key still held")
	}
}

func TestDurabilityGate(t *testing.T) {
	var syncs atomic.Int64
	var fail atomic.Bool
	d := newDurability(func() error {
		syncs.Add(1)
		if fail.Load() {
			return errors.New("disk full")
		}
		return nil
	})
	a, b := d.mark(), d.mark()
	if err := d.wait(b); err != nil {
		t.Fatal(err)
	}
	if err := d.wait(a); err != nil {
		t.Fatal(err)
	}
	if syncs.Load() != 1 {
		t.Fatalf("%d syncs for two tags marked together, want 1 (group commit)", syncs.Load())
	}
	fail.Store(true)
	c := d.mark()
	if err := d.wait(c); err == nil {
		t.Fatal("a failed sync let a packet through")
	}
	fail.Store(false)
	if err := d.wait(c); err != nil {
		t.Fatalf("after the disk recovers: %v", err)
	}
}

func validConfig() Config {
	var c Config
	c.Name, c.Role, c.Layer = "mix-1a", "mix", 1
	c.Listen, c.DataDir = "127.0.0.1:7000", "/tmp/x"
	c.Directory.Authorities = []AuthorityConfig{{URL: "http://127.0.0.1:1", Key: strings.Repeat("ab", 32)}}
	return c
}

func TestConfigDefaultsAndErrors(t *testing.T) {
	c := validConfig()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Mixing.Strategy != "poisson" || c.Directory.Threshold != 1 || c.Limits.Workers < 1 || c.Address != c.Listen || c.Cover.LoopTimeout.D() != time.Minute {
		t.Fatalf("defaults not filled: %+v", c)
	}
	bad := map[string]func(*Config){
		"role":              func(c *Config) { c.Role = "router" },
		"mix without layer": func(c *Config) { c.Layer = 0 },
		"mix with domain":   func(c *Config) { c.Domain = "a" },
		"listen":            func(c *Config) { c.Listen = "nowhere" },
		"no authorities":    func(c *Config) { c.Directory.Authorities = nil },
		"authority key":     func(c *Config) { c.Directory.Authorities[0].Key = "00" },
		"threshold":         func(c *Config) { c.Directory.Threshold = 2 },
		"epoch":             func(c *Config) { c.Directory.EpochPeriod = config.Duration(1500 * time.Millisecond) },
		"strategy":          func(c *Config) { c.Mixing.Strategy = "fifo" },
		"threshold batch":   func(c *Config) { c.Mixing.Strategy = "threshold"; c.Mixing.Threshold = 0 },
		"cover rate":        func(c *Config) { c.Cover.DropRate = -1 },
		"loop loss":         func(c *Config) { c.Cover.LoopLoss = 1 },
		"loop link latency": func(c *Config) { c.Cover.LoopLinkLatency = config.Duration(-time.Second) },
		"workers":           func(c *Config) { c.Limits.Workers = 1000 },
	}
	for name, f := range bad {
		c := validConfig()
		f(&c)
		if err := c.Validate(); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: got %v, want ErrConfig", name, err)
		}
	}
}

func TestConfigRejectsUnknownKeys(t *testing.T) {
	path := filepath.Join(t.TempDir(), "relay.toml")
	os.WriteFile(path, []byte("name = \"mix-1a\"\nrole = \"mix\"\nlayer = 1\nlisten = \"127.0.0.1:1\"\ndata_dir = \"/tmp\"\n[mixing]\nmax_dealy = \"1s\"\n"), 0o600)
	_, err := LoadConfig(path)
	if !errors.Is(err, config.ErrUnknownKey) || !strings.Contains(err.Error(), "mixing.max_dealy") {
		t.Fatalf("got %v, want an unknown-key error naming mixing.max_dealy", err)
	}
}

// TestConfigRoleText: the role is a directory.Role in the config and plain
// text in the file, as before: "mix" and "provider" load (and encode back
// the same), and an unknown role is refused, named in the error.
func TestConfigRoleText(t *testing.T) {
	const auth = "[directory]\n[[directory.authorities]]\nurl = \"http://127.0.0.1:1\"\nkey = \"" +
		"abababababababababababababababababababababababababababababababab\"\n"
	for _, c := range []struct {
		text string
		want directory.Role
	}{
		{"name = \"mix-1a\"\nrole = \"mix\"\nlayer = 1\n", directory.RoleMix},
		{"name = \"provider-a\"\nrole = \"provider\"\ndomain = \"a.example\"\n", directory.RoleProvider},
	} {
		path := filepath.Join(t.TempDir(), "relay.toml")
		if err := os.WriteFile(path, []byte(c.text+"listen = \"127.0.0.1:1\"\ndata_dir = \"/tmp\"\n"+auth), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := LoadConfig(path)
		if err != nil {
			t.Fatalf("%q: %v", c.want, err)
		}
		if cfg.Role != c.want {
			t.Fatalf("role %q loaded as %q", c.want, cfg.Role)
		}
		var out strings.Builder
		if err := config.Encode(&out, cfg); err != nil {
			t.Fatal(err)
		}
		if line := "role = \"" + string(c.want) + "\"\n"; !strings.Contains(out.String(), line) {
			t.Fatalf("encoded config lacks %q:\n%s", line, out.String())
		}
	}
	path := filepath.Join(t.TempDir(), "relay.toml")
	if err := os.WriteFile(path, []byte("name = \"mix-1a\"\nrole = \"router\"\nlayer = 1\nlisten = \"127.0.0.1:1\"\ndata_dir = \"/tmp\"\n"+auth), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := LoadConfig(path)
	if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), `role "router": want mix or provider`) {
		t.Fatalf("unknown role: got %v, want ErrConfig naming role \"router\"", err)
	}
}

package sender_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sealnet/sealnet/internal/config"
	"github.com/sealnet/sealnet/internal/torctl"
	"github.com/sealnet/sealnet/sender"
)

// docConfig returns the example DIR/config.toml of docs/tor.md: the
// fenced toml block after the paragraph that names the file, so that the
// test reads what users read.
func docConfig(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "docs", "tor.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "in `DIR/config.toml`")
	if !ok {
		t.Fatal("docs/tor.md no longer introduces the example DIR/config.toml")
	}
	_, rest, ok = strings.Cut(rest, "```toml\n")
	if !ok {
		t.Fatal("no ```toml block after the DIR/config.toml paragraph of docs/tor.md")
	}
	block, _, ok := strings.Cut(rest, "```")
	if !ok {
		t.Fatal("unterminated ```toml block in docs/tor.md")
	}
	return block
}

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), sender.ConfigName)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestConfigDocExample: the example in docs/tor.md is a valid
// configuration and means what the doc says.
func TestConfigDocExample(t *testing.T) {
	got, err := sender.LoadConfig(writeConfig(t, docConfig(t)))
	if err != nil {
		t.Fatalf("the example of docs/tor.md: %v", err)
	}
	want := sender.Config{Route: sender.RouteOnion, Tor: sender.TorConfig{
		Mode: sender.TorAttach, Socks: "127.0.0.1:9050", Control: "", Binary: "", Torrc: "",
		Entry: true, Provider: true, Directory: true, Bootstrap: config.Duration(3 * time.Minute),
	}}
	if got != want {
		t.Fatalf("the example of docs/tor.md gives\n%+v\nwant\n%+v", got, want)
	}
}

// TestConfigDefaults: no file, an empty file and a file of a few keys
// give the documented defaults for what they leave out.
func TestConfigDefaults(t *testing.T) {
	def := sender.DefaultConfig()
	if def.Route != sender.RouteMix || def.Tor.Mode != sender.TorOff || def.Tor.On() || !def.Tor.Entry || !def.Tor.Provider ||
		!def.Tor.Directory || def.Tor.Bootstrap.D() != 3*time.Minute {
		t.Fatalf("DefaultConfig() = %+v", def)
	}
	missing, err := sender.LoadConfig(filepath.Join(t.TempDir(), sender.ConfigName))
	if err != nil || missing != def {
		t.Fatalf("no file: %+v, %v; want the defaults", missing, err)
	}
	empty, err := sender.LoadConfig(writeConfig(t, ""))
	if err != nil || empty != def {
		t.Fatalf("empty file: %+v, %v; want the defaults", empty, err)
	}
	c, err := sender.LoadConfig(writeConfig(t, "[tor]\nmode = \"start\"\nprovider = false\nbootstrap_timeout = \"90s\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := def
	want.Tor.Mode, want.Tor.Provider, want.Tor.Bootstrap = sender.TorStart, false, config.Duration(90*time.Second)
	if c != want {
		t.Fatalf("got %+v, want %+v", c, want)
	}
	if w := c.Tor.StartWait(); w != 3*time.Minute {
		t.Errorf("start mode, 90s bootstrap: StartWait %v, want at least 3m", w)
	}
	if off, _ := sender.LoadConfig(writeConfig(t, "[tor]\nmode = \"off\"\n")); off != def || off.Tor.StartWait() != 0 {
		t.Errorf(`mode = "off": %+v`, off)
	}
	// The modes are torctl's, spelt the same.
	if string(sender.TorStart) != torctl.ModeStart || string(sender.TorAttach) != torctl.ModeAttach {
		t.Error("sender.TorStart/TorAttach differ from torctl.ModeStart/ModeAttach")
	}
}

// TestConfigErrorsNameTheKey: a mistake in the file is refused with an
// error that names the file and the key to fix, never read as a default.
func TestConfigErrorsNameTheKey(t *testing.T) {
	for _, tc := range []struct {
		name, text, key string
		unknown         bool
	}{
		{"unknown key", "[tor]\nmoed = \"attach\"\n", "tor.moed", true},
		{"unknown table", "[tors]\nmode = \"attach\"\n", "tors", true},
		{"unknown top-level key", "rout = \"onion\"\n", "rout", true},
		{"bad route", "route = \"pigeon\"\n", "route", false},
		{"bad mode", "[tor]\nmode = \"on\"\n", "tor.mode", false},
		{"bad boolean", "[tor]\nentry = \"yes\"\n", "tor.entry", false},
		{"bad duration", "[tor]\nbootstrap_timeout = \"soon\"\n", "tor.bootstrap_timeout", false},
		{"duration without unit", "[tor]\nbootstrap_timeout = \"3\"\n", "tor.bootstrap_timeout", false},
		{"negative duration", "[tor]\nbootstrap_timeout = \"-1m\"\n", "tor.bootstrap_timeout", false},
		{"not TOML", "route = onion\n", "route", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeConfig(t, tc.text)
			_, err := sender.LoadConfig(path)
			if err == nil {
				t.Fatalf("%q accepted", tc.text)
			}
			if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tc.key) {
				t.Errorf("error %q does not name the file %s and the key %s", err, path, tc.key)
			}
			if errors.Is(err, config.ErrUnknownKey) != tc.unknown {
				t.Errorf("errors.Is(%v, config.ErrUnknownKey) = %v", err, !tc.unknown)
			}
		})
	}
}

// TestSendRoute is the route choice: the asked route, else the file's;
// the onion route refused with ErrNoTor when this process would send it
// without Tor, left to the daemon when one sends it.
func TestSendRoute(t *testing.T) {
	off := sender.DefaultConfig()
	onionOff := off
	onionOff.Route = sender.RouteOnion
	onionOn := onionOff
	onionOn.Tor.Mode = sender.TorAttach
	for _, tc := range []struct {
		name     string
		cfg      sender.Config
		asked    sender.Route
		byDaemon bool
		want     sender.Route
		err      error
	}{
		{"default", off, "", false, sender.RouteMix, nil},
		{"asked mix", onionOn, sender.RouteMix, false, sender.RouteMix, nil},
		{"asked onion, Tor on", onionOn, sender.RouteOnion, false, sender.RouteOnion, nil},
		{"file's onion, Tor on", onionOn, "", false, sender.RouteOnion, nil},
		{"asked onion, Tor off", off, sender.RouteOnion, false, "", sender.ErrNoTor},
		{"file's onion, Tor off", onionOff, "", false, "", sender.ErrNoTor},
		{"asked onion, Tor off, a daemon sends", off, sender.RouteOnion, true, sender.RouteOnion, nil},
		{"file's onion, Tor off, a daemon sends", onionOff, "", true, sender.RouteOnion, nil},
		{"unknown route", onionOn, "pigeon", false, "", sender.ErrUnknownRoute},
		{"unknown route, a daemon sends", off, "pigeon", true, "", sender.ErrUnknownRoute},
		{"zero Config", sender.Config{}, "", false, sender.RouteMix, nil},
	} {
		got, err := tc.cfg.SendRoute(tc.asked, tc.byDaemon)
		if got != tc.want || !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
			t.Errorf("%s: SendRoute(%q, %v) = %q, %v; want %q, %v", tc.name, tc.asked, tc.byDaemon, got, err, tc.want, tc.err)
		}
	}
}

// TestTorDialers is the table of which connections go through Tor.
func TestTorDialers(t *testing.T) {
	errTor := errors.New("through tor")
	tor := func(context.Context, string, string) (net.Conn, error) { return nil, errTor }
	// which tells the dialers apart by calling them with a cancelled
	// context: tor answers errTor, a direct dial the cancellation.
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	which := func(d func(context.Context, string, string) (net.Conn, error)) string {
		if d == nil {
			return "default"
		}
		_, err := d(cancelled, "tcp", "127.0.0.1:9")
		switch {
		case errors.Is(err, errTor):
			return "tor"
		case errors.Is(err, context.Canceled):
			return "direct"
		}
		return "unknown: " + err.Error()
	}
	const t3 = "tor"
	for _, tc := range []struct {
		name                               string
		mode                               sender.TorMode
		entry, provider, directory         bool
		dial, providerDial, dirDial, onion string
		providerOnion                      bool
	}{
		{"Tor off", sender.TorOff, true, true, true, "default", "default", "default", "default", false},
		{"everything over Tor", sender.TorAttach, true, true, true, t3, t3, t3, t3, true},
		{"start mode", sender.TorStart, true, true, true, t3, t3, t3, t3, true},
		{"entry direct", sender.TorAttach, false, true, true, "default", t3, t3, t3, true},
		{"provider direct", sender.TorAttach, true, false, true, t3, "direct", t3, t3, false},
		{"directory direct", sender.TorAttach, true, true, false, t3, t3, "direct", t3, true},
		{"only onion services", sender.TorAttach, false, false, false, "default", "default", "default", t3, false},
	} {
		c := sender.DefaultConfig().Tor
		c.Mode, c.Entry, c.Provider, c.Directory = tc.mode, tc.entry, tc.provider, tc.directory
		var o sender.Options
		c.Dialers(&o, tor)
		got := [...]string{which(o.Dial), which(o.ProviderDial), which(o.DirectoryDial), which(o.OnionDial)}
		want := [...]string{tc.dial, tc.providerDial, tc.dirDial, tc.onion}
		if got != want || o.ProviderOnion != tc.providerOnion {
			t.Errorf("%s: entry, provider, directory, onion dialers %v, provider onion %v; want %v, %v",
				tc.name, got, o.ProviderOnion, want, tc.providerOnion)
		}
	}
}

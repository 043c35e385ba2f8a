package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSendConfigAndRouteErrors: the mistakes `send` refuses before it
// queues anything, each with an error that says what to fix (exit 1),
// and nothing spooled: a bad DIR/config.toml names the file and the key,
// a bad --route or --tor names the flag, and the onion route without Tor
// says which flag to give. No network is needed: these come first.
func TestSendConfigAndRouteErrors(t *testing.T) {
	t.Setenv("SEALNET_PASSPHRASE", "a passphrase for the test")
	for _, tc := range []struct {
		name, config string
		args         []string
		want         []string
	}{
		{"unknown key", "[tor]\nmoed = \"attach\"\n", nil, []string{"config.toml", "unknown configuration key", "tor.moed"}},
		{"bad mode in the file", "[tor]\nmode = \"on\"\n", nil, []string{"config.toml", "tor.mode", "want off, start or attach"}},
		{"bad duration", "[tor]\nbootstrap_timeout = \"soon\"\n", nil, []string{"config.toml", "tor.bootstrap_timeout"}},
		{"bad route in the file", "route = \"pigeon\"\n", nil, []string{"config.toml", "route", "pigeon"}},
		{"bad --route", "", []string{"--route", "pigeon"}, []string{`--route "pigeon": want mix or onion`}},
		{"bad --tor", "", []string{"--tor", "sideways"}, []string{`--tor "sideways": want off, start or attach`}},
		{"onion route without Tor", "", []string{"--route", "onion"}, []string{"the onion route needs Tor", "--tor start", "--tor attach"}},
		{"the file's onion route without Tor", "route = \"onion\"\n", nil, []string{"the onion route needs Tor"}},
		{"the file's onion route, Tor turned off", "route = \"onion\"\n[tor]\nmode = \"attach\"\n", []string{"--tor", "off"}, []string{"the onion route needs Tor"}},
		{"onion route without Tor, oneshot", "", []string{"--route", "onion", "--oneshot"}, []string{"the onion route needs Tor"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "alice")
			if err := os.MkdirAll(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			if tc.config != "" {
				if err := os.WriteFile(filepath.Join(dir, "config.toml"), []byte(tc.config), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			args := append([]string{"send", "--dir", dir, "--to", "bob@b"}, tc.args...)
			code, out, errs := cli(append(args, "hello")...)
			if code != 1 {
				t.Fatalf("exit %d, want 1\n%s%s", code, out, errs)
			}
			for _, w := range tc.want {
				if !strings.Contains(errs, w) {
					t.Errorf("stderr %q does not say %q", errs, w)
				}
			}
			if _, err := os.Stat(filepath.Join(dir, "spool")); !os.IsNotExist(err) {
				t.Errorf("something was spooled (%v)", err)
			}
		})
	}
}

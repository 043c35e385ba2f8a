package relay

import (
	"errors"
	"testing"
)

func TestTorConfig(t *testing.T) {
	base := func() Config {
		return Config{Name: "p", Role: "provider", Domain: "a", Listen: "127.0.0.1:4433", DataDir: t.TempDir(),
			Directory: DirectoryConfig{Authorities: []AuthorityConfig{{URL: "http://127.0.0.1:1", Key: "0000000000000000000000000000000000000000000000000000000000000000"}}}}
	}
	c := base()
	c.Tor.Onion = true
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Tor.Port != 4433 || c.Tor.Mode != "start" || c.Tor.DataDir == "" {
		t.Fatalf("defaults: %+v", c.Tor)
	}
	bad := map[string]func(*Config){
		"mix":            func(c *Config) { c.Role, c.Layer, c.Domain = "mix", 1, "" },
		"attach no ctl":  func(c *Config) { c.Tor.Mode = "attach" },
		"unknown mode":   func(c *Config) { c.Tor.Mode = "sometimes" },
		"port too large": func(c *Config) { c.Tor.Port = 70000 },
	}
	for name, mod := range bad {
		c := base()
		c.Tor.Onion = true
		mod(&c)
		if err := c.Validate(); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: Validate = %v, want ErrConfig", name, err)
		}
	}
}

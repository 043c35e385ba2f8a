package mix

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	poisson := Config{Kind: Poisson, Capacity: 10, MaxDelay: time.Second}
	thresh := Config{Kind: Threshold, Capacity: 10, N: 10}
	pool := Config{Kind: TimedPool, Capacity: 10, Interval: time.Second, Keep: 9}
	for _, ok := range []Config{
		poisson, thresh, pool,
		{Kind: Threshold, Capacity: 1, N: 1},
		{Kind: TimedPool, Capacity: 1, Interval: 1, Keep: 0},
		// Fields of other kinds are ignored.
		{Kind: Poisson, Capacity: 1, MaxDelay: 1, N: -1, Keep: -1, Interval: -1},
	} {
		if err := ok.Validate(); err != nil {
			t.Errorf("%+v: %v", ok, err)
		}
	}

	with := func(c Config, f func(*Config)) Config { f(&c); return c }
	for _, tc := range []struct {
		name  string
		cfg   Config
		field string // must appear in the message
	}{
		{"empty kind", Config{Capacity: 1, MaxDelay: 1}, "Kind"},
		{"unknown kind", with(poisson, func(c *Config) { c.Kind = "fifo" }), "Kind"},
		{"zero capacity", with(poisson, func(c *Config) { c.Capacity = 0 }), "Capacity"},
		{"negative capacity", with(thresh, func(c *Config) { c.Capacity = -1 }), "Capacity"},
		{"pool zero capacity", with(pool, func(c *Config) { c.Capacity = 0 }), "Capacity"},
		{"zero max delay", with(poisson, func(c *Config) { c.MaxDelay = 0 }), "MaxDelay"},
		{"negative max delay", with(poisson, func(c *Config) { c.MaxDelay = -time.Second }), "MaxDelay"},
		{"zero N", with(thresh, func(c *Config) { c.N = 0 }), "N is"},
		{"N above capacity", with(thresh, func(c *Config) { c.N = 11 }), "N is"},
		{"zero interval", with(pool, func(c *Config) { c.Interval = 0 }), "Interval"},
		{"negative interval", with(pool, func(c *Config) { c.Interval = -1 }), "Interval"},
		{"negative keep", with(pool, func(c *Config) { c.Keep = -1 }), "Keep"},
		{"keep equal capacity", with(pool, func(c *Config) { c.Keep = 10 }), "Keep"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("got %v, want ErrConfig", err)
			}
			if !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("message %q does not name %s", err, tc.field)
			}
			if _, err := New[int](tc.cfg, detRand(1)); !errors.Is(err, ErrConfig) {
				t.Fatalf("New: got %v, want ErrConfig", err)
			}
		})
	}
}

func TestNewNeedsRand(t *testing.T) {
	for _, cfg := range []Config{
		{Kind: Poisson, Capacity: 1, MaxDelay: 1},
		{Kind: Threshold, Capacity: 1, N: 1},
		{Kind: TimedPool, Capacity: 1, Interval: 1},
	} {
		s, err := New[int](cfg, nil)
		if !errors.Is(err, ErrConfig) || s != nil {
			t.Errorf("%s with nil rng: got %v, %v; want nil, ErrConfig", cfg.Kind, s, err)
		}
	}
}

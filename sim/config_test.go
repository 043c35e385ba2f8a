package sim

import (
	"errors"
	"strings"
	"testing"

	"github.com/sealnet/sealnet/internal/testkit/fuzzcheck"
)

// FuzzParseConfig: a scenario either parses into a configuration that
// validates (and whose strategy configuration mixnet/mix accepts), or
// fails with ErrConfig; it never panics.
func FuzzParseConfig(f *testing.F) {
	fuzzcheck.RequireCorpus(f)
	f.Fuzz(func(t *testing.T, text string) {
		c, err := ParseConfig(text)
		if err != nil {
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("error without ErrConfig: %v", err)
			}
			return
		}
		if err := c.validate(); err != nil {
			t.Fatalf("parsed but does not validate: %v", err)
		}
		if err := c.mixConfig().Validate(); err != nil {
			t.Fatalf("parsed but mixnet/mix refuses it: %v", err)
		}
		if c.Warmup == nil || c.Mixing.MeanDelay == nil || c.Workload.Acks == nil {
			t.Fatal("a default was not applied")
		}
	})
}

func TestConfigErrorsNameTheKey(t *testing.T) {
	for text, key := range map[string]string{
		"users = -1":                "users",
		"colour = 1":                "colour",
		"[mixing]\nkind = \"fifo\"": "mixing",
		"[latency]\nkind = \"uniform\"\nmin = \"5ms\"\nmax = \"1ms\"": "latency.max",
		"[client]\nrate = 0.5\n[workload]\nmessage_rate = 1":          "workload.message_rate",
		"[tor]\nfraction = 2":                "tor.fraction",
		"duration = \"1m\"\nwarmup = \"2m\"": "warmup",
	} {
		_, err := ParseConfig(text)
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), key) {
			t.Errorf("%q: %v; want ErrConfig naming %s", text, err, key)
		}
	}
}

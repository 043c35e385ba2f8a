package measure

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sealnet/sealnet/internal/testbed/load"
	"github.com/sealnet/sealnet/internal/testbed/testnet"
	"github.com/sealnet/sealnet/mixnet/directory"
	"github.com/sealnet/sealnet/sim"
)

// TestAdversaryConfigFromParameters: the simulated network's node cover
// and delay bound are the parameters the testnet's authorities publish,
// not the relays' configuration; a testnet whose relay configurations
// still set the keys those parameters replaced (made before relays
// followed the directory) is refused rather than analysed with values it
// did not run.
func TestAdversaryConfigFromParameters(t *testing.T) {
	p := directory.DefaultParameters()
	p.MeanDelay, p.MaxDelay, p.RelayLoopRate = 50*time.Millisecond, 5*time.Second, 0.5
	nw, err := testnet.Create(filepath.Join(t.TempDir(), "net"), testnet.Spec{Layers: 1, Width: 1, Providers: 1, Parameters: p})
	if err != nil {
		t.Fatal(err)
	}
	scenario, err := sim.ParseConfig("users = 6\n[mixing]\nmean_delay = \"50ms\"\n[workload]\ncontacts = 2\n")
	if err != nil {
		t.Fatal(err)
	}
	truth := &load.Truth{Scenario: scenario}
	c, err := adversaryConfig(nw, truth)
	if err != nil {
		t.Fatal(err)
	}
	if c.Relay.LoopRate != 0.5 || c.Relay.MeanDelay.D() != 50*time.Millisecond || c.Relay.DropRate != 0 || c.Mixing.MaxDelay.D() != 5*time.Second {
		t.Fatalf("simulated relays: %+v, max delay %v; want loops 0.5/s, 50ms, no drops, 5s", c.Relay, c.Mixing.MaxDelay.D())
	}

	// An old relay configuration: cover.mean_delay set.
	path := nw.Path(nw.Nodes[0].Config)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	old := strings.Replace(string(b), "[cover]\n", "[cover]\n  mean_delay = \"100ms\"\n", 1)
	if old == string(b) {
		t.Fatal("no [cover] section to edit")
	}
	if err := os.WriteFile(path, []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := adversaryConfig(nw, truth); err == nil || !strings.Contains(err.Error(), "cover.mean_delay") {
		t.Fatalf("an old testnet: got %v, want an error naming cover.mean_delay", err)
	}
}

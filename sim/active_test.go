package sim

import "testing"

// TestBlockingOneClient: dropping (or holding) a client's packets in half
// the rounds shows which mailboxes it writes to, because they receive
// less in those rounds; with no blocking (the control) the same
// open-versus-blocked count finds nothing. The attack is shown on the
// network before issue 15 (legacy); as deployed it still works in
// principle, and the client's loop alarm is what notices it
// (internal/loopwatch).
func TestBlockingOneClient(t *testing.T) {
	const workload = "message_rate = 0.05\ncontacts = 1"
	top := `duration = "20m"`
	control := run(t, legacy(top, workload, "", "", ""))
	drop := run(t, legacy(top, workload, "", `block = "drop"`, ""))
	delay := run(t, legacy(top, workload, "", `block = "delay"`+"\nblock_delay = \"30s\"", ""))
	last := func(x []float64) float64 {
		if len(x) == 0 {
			return -1
		}
		return x[len(x)-1]
	}
	t.Logf("contacts exposed after %v rounds: drop %v (%d packets dropped, %d retransmits), delay %v, no blocking %v",
		drop.Disclosure.Checkpoints, fmt2(drop.Disclosure.Block), drop.Blocked, drop.Retransmits, fmt2(delay.Disclosure.Block), control.Disclosure.Block)
	if control.Disclosure.Block != nil {
		t.Fatalf("block = none should not run the attack: %v", control.Disclosure.Block)
	}
	if last(drop.Disclosure.Block) < 0.5 || drop.Blocked == 0 {
		t.Errorf("dropping every other round should expose most targets' contacts: %v", drop.Disclosure.Block)
	}
	if last(delay.Disclosure.Block) < 0.25 {
		t.Errorf("holding for 30 s in half the rounds should expose a good share of the targets' contacts: %v", delay.Disclosure.Block)
	}
	// The control: the same statistic on the unblocked network.
	m, err := newModel(parse(t, legacy(top, workload, "", `block = "drop"`, "")))
	if err != nil {
		t.Fatal(err)
	}
	for _, tg := range m.att.block.targets {
		m.att.block.byUser[tg.user] = nil // watch, but never block
	}
	if err := m.run(t.Context()); err != nil {
		t.Fatal(err)
	}
	watched := m.result()
	t.Logf("watching without blocking: %v", fmt2(watched.Disclosure.Block))
	if watched.Blocked != 0 || last(watched.Disclosure.Block) > 0.2 {
		t.Errorf("without blocking the statistic should find (almost) nothing: %v, %d dropped", watched.Disclosure.Block, watched.Blocked)
	}
	dep := run(t, receiptScenario(top, workload, "", `block = "drop"`, ""))
	t.Logf("as deployed, dropping every other round: %v", fmt2(dep.Disclosure.Block))
}

package relay_test

import (
	"context"
	crand "crypto/rand"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sealnet/sealnet/internal/testbed/testnet"
	"github.com/sealnet/sealnet/mixnet"
	"github.com/sealnet/sealnet/relay"
)

// TestProviderHoldsFinalHop checks relay.ProvidersHoldFinalHop
// against the pipeline: a provider delivers a packet that ends at it at
// once, whatever delay its sender drew for the provider hop (here 3s, which
// the provider does receive in its routing slot). A control packet in the
// same run has the same 3s on its provider hop and 1s on its first mix hop:
// it must take at least 1s, so the measurement can tell a hop that holds a
// packet from one that does not.
func TestProviderHoldsFinalHop(t *testing.T) {
	const (
		finalDelay = 3 * time.Second // asked of the provider hop
		mixDelay   = 1 * time.Second // asked of the control's first mix hop
		slack      = 1500 * time.Millisecond
	)
	n := startNetwork(t, testnet.Spec{EpochPeriod: time.Hour, Layers: 3, Width: 1, Providers: 1, NoCover: true}, nil)
	inj := testnet.NewInjector(n.doc.Doc)
	defer inj.Close()
	dest := n.provider(t, 0)
	rng := rand.New(rand.NewPCG(1, 2))

	// Message 0: no mix delays, finalDelay at the provider. Message 1, the
	// control: mixDelay at the first mix, finalDelay at the provider.
	sent := make(map[uint32]time.Time)
	for i, first := range []time.Duration{0, mixDelay} {
		path, err := n.doc.Doc.SelectPath(rng, dest, n.doc.Doc.Epoch, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(path) != 4 {
			t.Fatalf("path of %d hops, want 3 mixes and the provider", len(path))
		}
		path[0].Delay = first
		path[len(path)-1].Delay = finalDelay
		pkt, err := mixnet.NewPacket(crand.Reader, geo, path, mixnet.RecipientID{1}, message(uint32(i)))
		if err != nil {
			t.Fatal(err)
		}
		sent[uint32(i)] = time.Now()
		if err := inj.Send(context.Background(), path[0].ID, pkt); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "both deliveries", 10*time.Second, func() bool { return n.del.count() >= 2 }, n.dump)

	n.del.mu.Lock()
	probe, control := n.del.at[0].Sub(sent[0]), n.del.at[1].Sub(sent[1])
	probeAsked, controlAsked := n.del.delay[0], n.del.delay[1]
	n.del.mu.Unlock()
	t.Logf("final-hop delay %v: delivered after %v; control (first mix %v): %v", finalDelay, probe, mixDelay, control)
	if probeAsked != finalDelay || controlAsked != finalDelay {
		t.Fatalf("the provider saw final-hop delays %v and %v, want %v", probeAsked, controlAsked, finalDelay)
	}
	// The control: a mix holds a packet for the delay asked of it.
	if control < mixDelay {
		t.Fatalf("control delivered after %v, before its first mix's delay of %v: the measurement cannot see a hold", control, mixDelay)
	}
	if relay.ProvidersHoldFinalHop {
		if probe < finalDelay || control < mixDelay+finalDelay {
			t.Fatalf("ProvidersHoldFinalHop, but delivered after %v and %v with %v asked of the provider", probe, control, finalDelay)
		}
		return
	}
	if probe >= slack || control >= mixDelay+slack {
		t.Fatalf("!ProvidersHoldFinalHop, but delivered after %v (control %v): the provider held the packet for its %v final-hop delay; update relay.ProvidersHoldFinalHop and the simulator's mixing.at",
			probe, control, finalDelay)
	}
}

// TestFinalHopWaitsForReplayJournal: a provider acts on a final-hop packet
// only once its replay tag is on disk, as a mix forwards only then. While
// the provider's journal cannot be synced, packets for its mailboxes are
// dropped, not delivered (a crash could otherwise forget the tag of a
// bundle request already answered, and a replay would take a second
// one-time prekey); once the disk recovers, delivery resumes. The entry
// mix's journal is healthy throughout, so the packets reach the provider.
func TestFinalHopWaitsForReplayJournal(t *testing.T) {
	n := startNetwork(t, testnet.Spec{EpochPeriod: time.Hour, Layers: 1, Width: 1, Providers: 1, NoCover: true}, nil)
	inj := testnet.NewInjector(n.doc.Doc)
	defer inj.Close()
	prov := n.p.Nodes[n.provider(t, 0).Name]
	var fail atomic.Bool
	fail.Store(true)
	relay.FailReplaySync(prov, &fail)

	const series = `sealnet_packets_dropped_total{reason="replay_journal_error"}`
	n.sendOne(t, inj, n.doc.Doc.Epoch, 30, 0)
	waitFor(t, "the provider to drop the packet it cannot journal", 10*time.Second,
		func() bool { return metric(t, prov, series) >= 1 }, n.dump)
	if got := n.delivered(30); got != 0 {
		t.Fatalf("delivered %d times while the provider's replay journal could not be synced", got)
	}

	fail.Store(false)
	n.sendOne(t, inj, n.doc.Doc.Epoch, 31, 0)
	waitFor(t, "delivery once the journal syncs again", 10*time.Second, func() bool { return n.delivered(31) == 1 }, n.dump)
	if got := n.delivered(30); got != 0 {
		t.Fatalf("the packet dropped for its journal was delivered %d times later", got)
	}
}

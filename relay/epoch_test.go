package relay_test

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"testing"
	"time"

	"github.com/sealnet/sealnet/internal/config"
	"github.com/sealnet/sealnet/internal/testbed/testnet"
	"github.com/sealnet/sealnet/mixnet"
	"github.com/sealnet/sealnet/mixnet/directory"
	"github.com/sealnet/sealnet/mixnet/directory/client"
	"github.com/sealnet/sealnet/relay"
)

// sendOne builds and sends one packet with the given epoch's keys and
// returns its message index.
func (n *network) sendOne(t *testing.T, inj *testnet.Injector, epoch uint64, i uint32, meanDelay time.Duration) []byte {
	t.Helper()
	entry, pkt, err := inj.PacketFor(epoch, n.provider(t, 0), mixnet.RecipientID{1, byte(i)}, message(i), meanDelay)
	if err != nil {
		t.Fatal(err)
	}
	raw := append([]byte(nil), pkt...)
	if err := inj.Send(context.Background(), entry, pkt); err != nil {
		t.Fatal(err)
	}
	return raw
}

func (n *network) delivered(i uint32) int {
	n.del.mu.Lock()
	defer n.del.mu.Unlock()
	return len(n.del.got[i])
}

// TestThresholdDocuments: with three authorities and k = 2, documents
// carry the authorities' signatures; a document with fewer than k valid
// signatures from the configured keys is refused, and one authority down
// does not stop the network.
func TestThresholdDocuments(t *testing.T) {
	n := startNetwork(t, testnet.Spec{EpochPeriod: time.Hour, Layers: 1, Width: 1, Providers: 1, Authorities: 3}, nil)
	if len(n.doc.Signatures) < 2 {
		t.Fatalf("document has %d signatures", len(n.doc.Signatures))
	}
	var keys []ed25519.PublicKey
	var auths []client.Authority
	for _, a := range n.nw.Authorities {
		k, _ := hex.DecodeString(a.Key)
		keys = append(keys, k)
		auths = append(auths, client.Authority{URL: a.URL, Key: k})
	}
	one := *n.doc
	one.Signatures = append([]directory.Signature(nil), n.doc.Signatures[0]) // a copy: n.doc stays intact
	b, err := one.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	dc, err := client.New(client.Config{Authorities: auths, Threshold: 2})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dc.Accept(b); !errors.Is(err, directory.ErrThreshold) {
		t.Fatalf("one signature of three, k=2: got %v, want ErrThreshold", err)
	}
	// Padding the count with a signature by a key not configured does not help.
	_, outsider, _ := ed25519.GenerateKey(nil)
	one.Signatures = append(one.Signatures, directory.SignDocument(one.Raw, outsider))
	b, _ = one.Marshal()
	if _, err := dc.Accept(b); !errors.Is(err, directory.ErrThreshold) {
		t.Fatalf("one valid + one outsider signature: got %v, want ErrThreshold", err)
	}
	full, _ := n.doc.Marshal()
	if _, err := directory.Verify(full, keys, 2); err != nil {
		t.Fatalf("the published document does not verify with k=2: %v", err)
	}
}

func TestOneAuthorityDown(t *testing.T) {
	n := startNetworkSkip(t, testnet.Spec{EpochPeriod: time.Hour, Layers: 1, Width: 1, Providers: 1, Authorities: 3}, nil,
		map[string]bool{"dirauth-3": true})
	if len(n.doc.Signatures) != 2 {
		t.Fatalf("document has %d signatures with one of three authorities down", len(n.doc.Signatures))
	}
	inj := testnet.NewInjector(n.doc.Doc)
	defer inj.Close()
	n.sendOne(t, inj, n.doc.Doc.Epoch, 1, 0)
	waitFor(t, "delivery", 20*time.Second, func() bool { return n.delivered(1) == 1 }, n.dump)
}

// TestEpochRotation: a packet built with an epoch's keys still goes
// through just after the epoch ends (the grace window), and is refused
// once the epoch's keys are erased. The network runs on a clock the test
// moves (testnet.RunningClock): the boundary and the end of the grace
// window are jumps, not sleeps, and the clock stands still while a packet
// crosses its hops, so a loaded machine cannot close the window under it.
func TestEpochRotation(t *testing.T) {
	const period, grace = time.Minute, time.Second
	clk := newTestClock(t, period)
	n := startNetworkWith(t, testnet.Spec{EpochPeriod: period, Layers: 2, Width: 1, Providers: 1}, netOptions{
		clock: clk,
		mod:   func(_ string, c *relay.Config) { c.Directory.EpochGrace = config.Duration(grace) },
	})
	// Work inside an epoch with at least 1.5 s left.
	clk.Hold()
	now := clk.Now()
	e := directory.EpochAt(now, period)
	if left := directory.EpochStart(e+1, period).Sub(now); left <= 1500*time.Millisecond {
		t.Fatalf("starting the network took the clock to %v before the boundary", left)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dc, err := n.nw.DirClient("")
	if err != nil {
		t.Fatal(err)
	}
	defer dc.Close()
	sd, err := dc.Fetch(ctx, e)
	if err != nil {
		t.Fatal(err)
	}
	inj := testnet.NewInjector(sd.Doc)
	defer inj.Close()
	// Built now with epoch e's keys; one sent within e as a control.
	n.sendOne(t, inj, e, 10, 0)
	waitFor(t, "control delivery", 5*time.Second, func() bool { return n.delivered(10) == 1 }, n.dump)
	_, late, _ := inj.PacketFor(e, n.provider(t, 0), mixnet.RecipientID{1, 11}, message(11), 0)
	entry, expired, _ := inj.PacketFor(e, n.provider(t, 0), mixnet.RecipientID{1, 12}, message(12), 0)

	// Just after the boundary, within the grace: still accepted.
	clk.Set(directory.EpochStart(e+1, period).Add(50 * time.Millisecond))
	if err := inj.Send(ctx, entry, late); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "delivery inside the grace window", 5*time.Second, func() bool { return n.delivered(11) == 1 }, n.dump)

	// After the grace window epoch e's keys are gone.
	entryNode := n.p.Nodes[n.doc.Doc.Layers[0][0].Name]
	before := metric(t, entryNode, `sealnet_packets_dropped_total{reason="header_invalid"}`)
	clk.Set(directory.EpochStart(e+1, period).Add(grace).Add(300 * time.Millisecond))
	if err := inj.Send(ctx, entry, expired); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the expired packet to be refused", 5*time.Second, func() bool {
		return metric(t, entryNode, `sealnet_packets_dropped_total{reason="header_invalid"}`) > before
	}, n.dump)
	time.Sleep(300 * time.Millisecond) // real time: a packet that got through would have crossed the links by now
	if n.delivered(12) != 0 {
		t.Fatal("a packet for an expired epoch was delivered")
	}
}

// TestReplayRefusedAfterRestart: the first relay drops a replayed packet,
// also after it restarts (its replay journal survives).
func TestReplayRefusedAfterRestart(t *testing.T) {
	n := startNetwork(t, testnet.Spec{EpochPeriod: time.Hour, Layers: 2, Width: 1, Providers: 1}, nil)
	inj := testnet.NewInjector(n.doc.Doc)
	raw := n.sendOne(t, inj, n.doc.Doc.Epoch, 7, 0)
	waitFor(t, "delivery", 10*time.Second, func() bool { return n.delivered(7) == 1 }, n.dump)
	entryName := n.doc.Doc.Layers[0][0].Name

	// Replayed at once: dropped by the entry.
	entry := n.doc.Doc.Layers[0][0].ID()
	if err := inj.Send(context.Background(), entry, append([]byte(nil), raw...)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the replay to be counted", 5*time.Second, func() bool {
		return metric(t, n.p.Nodes[entryName], "sealnet_packets_replayed_total") == 1
	}, n.dump)
	inj.Close()

	if err := n.p.StopNode(entryName); err != nil {
		t.Fatal(err)
	}
	if err := n.p.StartNode(entryName); err != nil {
		t.Fatal(err)
	}
	n.waitReady(t)
	inj2 := testnet.NewInjector(n.doc.Doc)
	defer inj2.Close()
	if err := inj2.Send(context.Background(), entry, raw); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the replay after restart to be counted", 5*time.Second, func() bool {
		return metric(t, n.p.Nodes[entryName], "sealnet_packets_replayed_total") == 1
	}, n.dump)
	time.Sleep(300 * time.Millisecond)
	if got := n.delivered(7); got != 1 {
		t.Fatalf("message delivered %d times", got)
	}
}

// TestAuthorityDownKeepsWorking: with every authority gone, relays keep
// forwarding on the last good document, across an epoch boundary (the old
// document carries the next epoch's keys), and report that they are stale.
// The boundaries are jumps of the network's clock (testnet.RunningClock).
func TestAuthorityDownKeepsWorking(t *testing.T) {
	const period = time.Minute
	clk := newTestClock(t, period)
	n := startNetworkWith(t, testnet.Spec{EpochPeriod: period, Layers: 2, Width: 1, Providers: 1}, netOptions{clock: clk})
	e := n.doc.Doc.Epoch
	// Hold the document of the epoch the authority is about to stop in.
	clk.Set(directory.EpochStart(e+1, period).Add(200 * time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dc, err := n.nw.DirClient("")
	if err != nil {
		t.Fatal(err)
	}
	defer dc.Close()
	var cur *directory.SignedDocument
	// The jump passed the time the document is built at; the authorities'
	// schedule, paced on the clock, builds it now.
	waitFor(t, "the document of epoch e+1", 10*time.Second, func() bool {
		cur, err = dc.Fetch(ctx, e+1)
		return err == nil
	})
	n.waitReady(t)
	for _, a := range n.nw.Authorities {
		if err := n.p.StopNode(a.Name); err != nil {
			t.Fatal(err)
		}
	}
	// Into the next epoch, for which no document will ever be built.
	next := cur.Doc.Epoch + 1
	clk.Set(directory.EpochStart(next, period).Add(period / 5))
	inj := testnet.NewInjector(cur.Doc)
	defer inj.Close()
	n.sendOne(t, inj, next, 20, 0) // the old document's "next" keys
	waitFor(t, "delivery on the last good document", 10*time.Second, func() bool { return n.delivered(20) == 1 }, n.dump)
	for name, node := range n.p.Nodes {
		waitFor(t, name+" to report a stale document", 5*time.Second, func() bool {
			return metric(t, node, "sealnet_directory_stale") == 1
		})
	}
}

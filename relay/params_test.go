package relay_test

import (
	"context"
	crand "crypto/rand"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/sealnet/sealnet/internal/config"
	"github.com/sealnet/sealnet/internal/testbed/testnet"
	"github.com/sealnet/sealnet/mixnet"
	"github.com/sealnet/sealnet/mixnet/directory"
	"github.com/sealnet/sealnet/relay"
)

const outOfBounds = `sealnet_packets_dropped_total{reason="delay_out_of_bounds"}`

// TestDelayAboveBoundRefused: mixes and providers refuse, and count, a
// packet whose per-hop delay exceeds the document's MaxDelay, at whichever
// hop asks it (first mix, second mix, provider), even where their own
// configuration still sets a longer mixing.max_delay; the controls, asking
// exactly MaxDelay of the first mix or of the provider, are delivered, the
// first after being held for it. The network's clock moves only where the
// test moves it (testnet.RunningClock), so the hold is measured on it.
func TestDelayAboveBoundRefused(t *testing.T) {
	const maxDelay = 400 * time.Millisecond
	p := directory.DefaultParameters()
	p.MaxDelay = maxDelay
	clk := newTestClock(t, time.Hour)
	n := startNetworkWith(t, testnet.Spec{EpochPeriod: time.Hour, Layers: 2, Width: 1, Providers: 1, NoCover: true, Parameters: p}, netOptions{
		clock: clk,
		mod: func(_ string, cfg *relay.Config) {
			long := config.Duration(time.Minute) // ignored: the network's bound applies
			cfg.Mixing.MaxDelay = &long
		},
	})
	clk.Hold()
	if got := n.doc.Doc.Params().MaxDelay; got != maxDelay {
		t.Fatalf("the document publishes max delay %v, want %v", got, maxDelay)
	}
	doc := n.doc.Doc
	inj := testnet.NewInjector(doc)
	defer inj.Close()
	rng := rand.New(rand.NewPCG(5, 6))
	const (
		entry    = 0 // hop indices: mix of layer 1, mix of layer 2, provider
		second   = 1
		provider = 2
	)
	cases := []struct {
		hop     int
		delay   time.Duration
		refused bool
	}{
		{entry, maxDelay + time.Microsecond, true},
		{entry, maxDelay, false}, // control: held for maxDelay, then delivered
		{second, maxDelay + time.Microsecond, true},
		{provider, maxDelay + time.Microsecond, true},
		{provider, maxDelay, false}, // control: the provider delivers at once
	}
	sent := make(map[uint32]time.Time)
	for i, c := range cases {
		path, err := doc.SelectPath(rng, n.provider(t, 0), doc.Epoch, 0)
		if err != nil {
			t.Fatal(err)
		}
		path[c.hop].Delay = c.delay
		pkt, err := mixnet.NewPacket(crand.Reader, geo, path, mixnet.RecipientID{1, byte(i)}, message(uint32(i)))
		if err != nil {
			t.Fatal(err)
		}
		sent[uint32(i)] = clk.Now()
		if err := inj.Send(context.Background(), path[0].ID, pkt); err != nil {
			t.Fatal(err)
		}
	}
	refusedAt := map[string]float64{doc.Layers[0][0].Name: 1, doc.Layers[1][0].Name: 1, doc.Providers[0].Name: 1}
	counted := func() bool {
		for name, want := range refusedAt {
			if metric(t, n.p.Nodes[name], outOfBounds) != want {
				return false
			}
		}
		return true
	}
	// The controls are held for maxDelay, the first by the entry and the
	// second by the provider (which holds the final hop too, when
	// ProvidersHoldFinalHop): once both are held, the clock moves that far.
	holding := 1
	if relay.ProvidersHoldFinalHop {
		holding = 2
	}
	waitArmed(t, clk, "the controls to be held", sent[1].Add(maxDelay), holding)
	clk.Advance(maxDelay)
	waitFor(t, "the controls delivered and the probes counted", 10*time.Second, func() bool { return n.del.count() >= 2 && counted() }, n.dump)
	// A probe that got through would be held at most maxDelay (and a
	// microsecond), then take real time on the links.
	clk.Advance(maxDelay)
	time.Sleep(300 * time.Millisecond)

	n.del.mu.Lock()
	defer n.del.mu.Unlock()
	for i, c := range cases {
		got := len(n.del.got[uint32(i)])
		if c.refused && got != 0 {
			t.Errorf("case %d: %v asked of hop %d, delivered", i, c.delay, c.hop)
		}
		if !c.refused && got != 1 {
			t.Errorf("control %d: %v asked of hop %d, delivered %d times", i, c.delay, c.hop, got)
		}
	}
	if held := n.del.at[1].Sub(sent[1]); held < maxDelay {
		t.Errorf("the control asking %v of the first mix arrived after %v", maxDelay, held)
	}
	if n.del.n != 2 {
		t.Errorf("%d deliveries, want the 2 controls", n.del.n)
	}
	for name, node := range n.p.Nodes {
		if got := metric(t, node, outOfBounds); got != refusedAt[name] {
			t.Errorf("%s counted %v packets out of bounds, want %v", name, got, refusedAt[name])
		}
	}
}

// TestRelayCoverFollowsDocument: relays loop at the document's
// RelayLoopRate, although their configuration sets cover.loop_rate = 0,
// and draw their cover hops from its MeanDelay truncated at its MaxDelay:
// with a mean of 200 ms and a bound of 250 ms, about a quarter of the hops
// would otherwise ask too much and be refused by the next relay.
func TestRelayCoverFollowsDocument(t *testing.T) {
	p := directory.DefaultParameters()
	p.RelayLoopRate, p.MeanDelay, p.MaxDelay = 5, 200*time.Millisecond, 250*time.Millisecond
	n := startNetwork(t, testnet.Spec{EpochPeriod: time.Hour, Layers: 2, Width: 1, Providers: 1, Parameters: p},
		func(_ string, cfg *relay.Config) {
			off := 0.0 // ignored: the network's rate applies
			cfg.Cover.LoopRate = &off
		})
	const sent, received = "sealnet_cover_loops_sent_total", "sealnet_cover_loops_received_total"
	waitFor(t, "loops from every node", 20*time.Second, func() bool {
		for _, node := range n.p.Nodes {
			if metric(t, node, received) < 5 {
				return false
			}
		}
		return true
	}, n.dump)
	for name, node := range n.p.Nodes {
		if got := metric(t, node, outOfBounds); got != 0 {
			t.Errorf("%s refused %v cover packets as out of bounds: cover hops are not truncated at the network's max delay", name, got)
		}
		t.Logf("%s: %v loops sent, %v back", name, metric(t, node, sent), metric(t, node, received))
	}
}

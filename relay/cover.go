package relay

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"math"
	"time"

	"github.com/sealnet/sealnet/internal/loopwatch"
	"github.com/sealnet/sealnet/mixnet"
	"github.com/sealnet/sealnet/mixnet/directory"
)

// coverLoop sends loop and drop cover packets as two Poisson processes:
// loops at the network's RelayLoopRate, read again when a loop is due and
// at every sweep so that a new document's rate takes over, and drops at
// the configured DropRate.
func (n *Node) coverLoop(ctx context.Context) {
	dropRate := n.cfg.Cover.DropRate
	loopRate := n.params().RelayLoopRate
	next := func(rate float64) time.Time {
		if rate == 0 {
			return time.Time{}
		}
		n.rngMu.Lock()
		d := time.Duration(n.rng.ExpFloat64() / rate * float64(time.Second))
		n.rngMu.Unlock()
		return n.now().Add(d)
	}
	nextLoop, nextDrop := next(loopRate), next(dropRate)
	sweepEvery := loopCheckInterval(n.cfg.Cover.LoopTimeout.D())
	sweep := n.clock.NewTimer(sweepEvery)
	defer sweep.Stop()
	timer := n.clock.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		wake := nextLoop
		if wake.IsZero() || (!nextDrop.IsZero() && nextDrop.Before(wake)) {
			wake = nextDrop
		}
		var fire <-chan time.Time // nil: neither loops nor drops, wait for a sweep
		if !wake.IsZero() {
			if !timer.Stop() {
				select {
				case <-timer.C():
				default:
				}
			}
			timer.Reset(wake.Sub(n.now()))
			fire = timer.C()
		}
		select {
		case <-ctx.Done():
			return
		case <-sweep.C():
			sweep.Reset(sweepEvery)
			n.checkLoops(n.now())
			if r := n.params().RelayLoopRate; r != loopRate {
				// Exponential gaps are memoryless: drawing the next loop
				// afresh at the new rate is the new process.
				loopRate, nextLoop = r, next(r)
			}
		case <-fire:
			now := n.now()
			if !nextLoop.IsZero() && !now.Before(nextLoop) {
				// A loop drawn at a rate no longer in force (the defaults
				// before the first document, or the last epoch's) is not
				// sent: the next one is drawn at the rate in force.
				if r := n.params().RelayLoopRate; r == loopRate {
					n.sendLoop()
				} else {
					loopRate = r
				}
				nextLoop = next(loopRate)
			}
			if !nextDrop.IsZero() && !now.Before(nextDrop) {
				n.sendDrop()
				nextDrop = next(dropRate)
			}
		}
	}
}

// coverDoc returns the document to build cover paths from, and the epoch
// whose keys to use.
func (n *Node) coverDoc() (*directory.SignedDocument, uint64, bool) {
	e := n.epoch()
	if sd, ok := n.dir.Document(e); ok {
		return sd, e, true
	}
	if sd, ok := n.dir.Document(e - 1); ok {
		return sd, e, true // carries e's keys as "next"
	}
	return nil, 0, false
}

func (n *Node) pick(nodes []*directory.Descriptor) *directory.Descriptor {
	n.rngMu.Lock()
	defer n.rngMu.Unlock()
	return nodes[n.rng.IntN(len(nodes))]
}

// hop is a cover hop through d with the keys of epoch e, its delay drawn
// as every client draws it: exponential with the network's MeanDelay,
// truncated at its MaxDelay (which the next hop would refuse to exceed).
func (n *Node) hop(d *directory.Descriptor, e uint64, p directory.Parameters) (mixnet.Hop, bool) {
	k, ok := d.MixKeys[e]
	return mixnet.Hop{ID: d.ID(), PublicKey: k, Delay: min(n.expDuration(p.MeanDelay), p.MaxDelay)}, ok
}

// loopLayers returns the layers (0-based indices into the document's
// Layers) that a loop from this node crosses, in order, before it comes
// back here: a mix's loop crosses every other layer, starting with the
// one after its own and wrapping around (layer 2 of 3: layers 3, 1); a
// provider's crosses every layer, 1 to L.
func loopLayers(role directory.Role, layer, layers int) []int {
	start := 0 // a provider loops through every layer
	if role == directory.RoleMix {
		start = layer // the layer after this one (0-based index)
	}
	out := make([]int, 0, layers)
	for i := range layers {
		l := (start + i) % layers
		if role == directory.RoleMix && l == layer-1 {
			continue
		}
		out = append(out, l)
	}
	return out
}

// sendLoop sends a packet through the layers of loopLayers and back to
// this node. Its payload is a random ID and the send time, readable only
// here.
func (n *Node) sendLoop() {
	sd, e, ok := n.coverDoc()
	if !ok {
		return
	}
	if _, listed := n.index(sd)[n.id]; !listed {
		return // the other relays would not know where to bring it back
	}
	doc := sd.Doc
	var path []mixnet.Hop
	for _, layer := range loopLayers(n.cfg.Role, n.cfg.Layer, len(doc.Layers)) {
		h, ok := n.hop(n.pick(doc.Layers[layer]), e, doc.Params())
		if !ok {
			return
		}
		path = append(path, h)
	}
	self, ok := n.keys.public(e)
	if !ok {
		return
	}
	path = append(path, mixnet.Hop{ID: n.id, PublicKey: self})
	var msg [24]byte
	rand.Read(msg[:16])
	binary.BigEndian.PutUint64(msg[16:], uint64(n.now().UnixNano()))
	pkt, err := mixnet.NewPacket(rand.Reader, n.geo, path, n.loopID, msg[:])
	if err != nil {
		n.log.Warn("cannot build loop packet", "err", err)
		return
	}
	n.expectLoopHops(len(path) - 1)
	n.loops.Sent([16]byte(msg[:16]), n.now())
	n.m.loopsSent.Inc()
	n.send(path[0].ID, pkt)
}

// sendDrop sends a packet through one mix per layer to a random provider,
// which discards it (recipient zero).
func (n *Node) sendDrop() {
	sd, e, ok := n.coverDoc()
	if !ok {
		return
	}
	doc := sd.Doc
	var path []mixnet.Hop
	for _, layer := range doc.Layers {
		h, ok := n.hop(n.pick(layer), e, doc.Params())
		if !ok {
			return
		}
		path = append(path, h)
	}
	h, ok := n.hop(n.pick(doc.Providers), e, doc.Params())
	if !ok {
		return
	}
	path = append(path, h)
	pkt, err := mixnet.NewPacket(rand.Reader, n.geo, path, mixnet.RecipientID{}, nil)
	if err != nil {
		return
	}
	n.m.dropsSent.Inc()
	n.send(path[0].ID, pkt)
}

// The loop alarm (docs/relay.md, "Loop alarm"): n.loops, a
// loopwatch.Watcher, remembers the loops in flight; checkLoops runs its
// tests every loopCheckInterval and turns the result into metrics and log
// lines.

// loopRTTQuantile is the round trip that only loopwatch.DefaultSlowShare
// of loops crossing hops Poisson mixes should exceed when nobody
// interferes: the mixes' exponential delays of mean meanDelay (what this
// relay draws for its cover hops), and linkLatency for each of the hops+1
// links the loop crosses, the last one back to this node. The mean delay
// is the network's published MeanDelay, with which the loop's hops were
// drawn.
func loopRTTQuantile(hops int, meanDelay, linkLatency time.Duration) time.Duration {
	return loopwatch.ExpectedRTT(hops, meanDelay, time.Duration(hops+1)*linkLatency, 1-loopwatch.DefaultSlowShare)
}

// loopCheckInterval is how often the loop alarm's tests run: every 5 s, or
// a tenth of the loop timeout if that is shorter (tests), but not more
// often than every 100 ms.
func loopCheckInterval(timeout time.Duration) time.Duration {
	return min(max(timeout/10, 100*time.Millisecond), 5*time.Second)
}

// maxLoops caps the loops tracked in flight; the watcher needs about
// rate × timeout of them. The rate is the network's, which can change with
// each epoch: the cap allows for up to 1 loop per second (a network that
// publishes more has the excess counted as untracked).
func maxLoops(c CoverConfig) int {
	need := int(4*max(DefaultLoopRate, 1)*c.LoopTimeout.D().Seconds()) + 64
	return min(max(need, 256), 100_000)
}

func newLoopWatcher(c CoverConfig) (*loopwatch.Watcher, error) {
	return loopwatch.New(loopwatch.Config{
		Timeout:      c.LoopTimeout.D(),
		BaselineLoss: c.LoopLoss,
		MaxPending:   maxLoops(c),
	})
}

// expectLoopHops sets the round trip the delay test expects for loops
// through hops mixes. Only Poisson mixes hold a packet for the delay its
// sender drew; under another strategy the delay a loop meets depends on
// traffic, and the delay test stays off.
func (n *Node) expectLoopHops(hops int) {
	mean := n.params().MeanDelay // what the loop's hops were drawn with
	key := int64(hops)<<40 | int64(mean/time.Microsecond)
	if n.cfg.Mixing.Strategy != "poisson" || n.loopHops.Swap(key) == key {
		return
	}
	n.loops.SetSlowRTT(loopRTTQuantile(hops, mean, n.cfg.Cover.LoopLinkLatency.D()))
}

// loopReturned takes a loop that came back (a worker calls it).
func (n *Node) loopReturned(payload []byte) {
	if len(payload) < 24 {
		return
	}
	if rtt, ok := n.loops.Returned([16]byte(payload[:16]), n.now()); ok {
		n.m.loopRTT.ObserveDuration(rtt)
	}
}

// checkLoops runs the loop alarm's tests and reports what changed: a
// warning when an alarm starts, a line when it clears. The figures are
// the relay's own loops; nothing names a peer or a packet.
func (n *Node) checkLoops(now time.Time) {
	st := n.loops.Check(now)
	for _, kind := range []loopwatch.Alarm{loopwatch.Loss, loopwatch.Delay} {
		on := st.Alarm&kind != 0
		n.m.loopAlarm[kind].Set(b2i(on))
		if st.Started&kind != 0 {
			n.m.loopAlarms[kind].Inc()
		}
		switch {
		case st.Started&kind != 0 && kind == loopwatch.Loss:
			f := st.Loss
			n.log.Warn("loop alarm: this relay's loops are being lost; its links may be blocked, or a relay is down",
				"kind", "loss", "sent", f.Sent, "returned", f.Returned, "expected", math.Round(f.Expected*10)/10, "p_value", f.PValue)
		case st.Started&kind != 0:
			f := st.Delay
			n.log.Warn("loop alarm: this relay's loops come back late; its links may be delayed, or a relay is overloaded",
				"kind", "delay", "returned", f.Returned, "slow", f.Slow, "expected", math.Round(f.Expected*10)/10, "p_value", f.PValue,
				"slow_rtt", n.loops.Config().SlowRTT)
		case st.Cleared&kind != 0:
			n.log.Info("loop alarm cleared", "kind", kind.String())
		}
	}
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

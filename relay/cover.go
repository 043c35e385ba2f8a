package relay

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"sync"
	"time"

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
		return time.Now().Add(d)
	}
	nextLoop, nextDrop := next(loopRate), next(dropRate)
	sweep := time.NewTicker(5 * time.Second)
	defer sweep.Stop()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		wake := nextLoop
		if wake.IsZero() || (!nextDrop.IsZero() && nextDrop.Before(wake)) {
			wake = nextDrop
		}
		var fire <-chan time.Time // nil: neither loops nor drops, wait for a sweep
		if !wake.IsZero() {
			timer.Reset(time.Until(wake))
			fire = timer.C
		}
		select {
		case <-ctx.Done():
			return
		case <-sweep.C:
			n.loops.expire(time.Now(), n.m)
			if r := n.params().RelayLoopRate; r != loopRate {
				// Exponential gaps are memoryless: drawing the next loop
				// afresh at the new rate is the new process.
				loopRate, nextLoop = r, next(r)
			}
		case <-fire:
			now := time.Now()
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
func (n *Node) coverDoc() (*directory.Document, uint64, bool) {
	e := n.epoch()
	if sd, ok := n.dir.Document(e); ok {
		return sd.Doc, e, true
	}
	if sd, ok := n.dir.Document(e - 1); ok {
		return sd.Doc, e, true // carries e's keys as "next"
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
func loopLayers(role string, layer, layers int) []int {
	start := 0 // a provider loops through every layer
	if role == "mix" {
		start = layer // the layer after this one (0-based index)
	}
	out := make([]int, 0, layers)
	for i := range layers {
		l := (start + i) % layers
		if role == "mix" && l == layer-1 {
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
	doc, e, ok := n.coverDoc()
	if !ok {
		return
	}
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
	binary.BigEndian.PutUint64(msg[16:], uint64(time.Now().UnixNano()))
	pkt, err := mixnet.NewPacket(rand.Reader, n.geo, path, n.loopID, msg[:])
	if err != nil {
		n.log.Warn("cannot build loop packet", "err", err)
		return
	}
	n.loops.sent([16]byte(msg[:16]), time.Now())
	n.m.loopsSent.Inc()
	n.send(path[0].ID, pkt)
}

// sendDrop sends a packet through one mix per layer to a random provider,
// which discards it (recipient zero).
func (n *Node) sendDrop() {
	doc, e, ok := n.coverDoc()
	if !ok {
		return
	}
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

// loopTracker remembers the loops in flight, at most maxLoops of them.
type loopTracker struct {
	timeout time.Duration
	mu      sync.Mutex
	pending map[[16]byte]time.Time
}

const maxLoops = 100_000

func newLoopTracker(timeout time.Duration) *loopTracker {
	return &loopTracker{timeout: timeout, pending: make(map[[16]byte]time.Time)}
}

func (l *loopTracker) sent(id [16]byte, at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.pending) < maxLoops {
		l.pending[id] = at
	}
}

func (l *loopTracker) received(payload []byte, m *nodeMetrics) {
	if len(payload) < 24 {
		return
	}
	id := [16]byte(payload[:16])
	l.mu.Lock()
	at, ok := l.pending[id]
	delete(l.pending, id)
	l.mu.Unlock()
	if !ok {
		return // late (already counted lost) or unknown
	}
	m.loopsReceived.Inc()
	m.loopRTT.ObserveDuration(time.Since(at))
}

func (l *loopTracker) expire(now time.Time, m *nodeMetrics) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for id, at := range l.pending {
		if now.Sub(at) > l.timeout {
			delete(l.pending, id)
			m.loopsLost.Inc()
		}
	}
}

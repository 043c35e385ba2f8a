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

// coverLoop sends loop and drop cover packets as two Poisson processes.
func (n *Node) coverLoop(ctx context.Context) {
	loopRate, dropRate := n.cfg.Cover.LoopRate, n.cfg.Cover.DropRate
	if loopRate == 0 && dropRate == 0 {
		return
	}
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
		timer.Reset(time.Until(wake))
		select {
		case <-ctx.Done():
			return
		case <-sweep.C:
			n.loops.expire(time.Now(), n.m)
		case <-timer.C:
			now := time.Now()
			if !nextLoop.IsZero() && !now.Before(nextLoop) {
				n.sendLoop()
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

func (n *Node) hop(d *directory.Descriptor, e uint64) (mixnet.Hop, bool) {
	k, ok := d.MixKeys[e]
	return mixnet.Hop{ID: d.ID(), PublicKey: k, Delay: n.expDuration(n.cfg.Cover.MeanDelay.D())}, ok
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
		h, ok := n.hop(n.pick(doc.Layers[layer]), e)
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
		h, ok := n.hop(n.pick(layer), e)
		if !ok {
			return
		}
		path = append(path, h)
	}
	h, ok := n.hop(n.pick(doc.Providers), e)
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

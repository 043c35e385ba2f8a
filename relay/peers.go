package relay

import (
	"context"
	"errors"
	"sync"

	"github.com/sealnet/sealnet/mixnet"
	"github.com/sealnet/sealnet/mixnet/directory"
	"github.com/sealnet/sealnet/mixnet/link"
)

// peers owns one Outbound (and its goroutine) per next hop in use.
type peers struct {
	n  *Node
	mu sync.Mutex
	m  map[mixnet.NodeID]*peer
	wg sync.WaitGroup
}

type peer struct {
	addr   string
	key    [32]byte
	out    *link.Outbound
	cancel context.CancelFunc
}

func newPeers(n *Node) *peers { return &peers{n: n, m: make(map[mixnet.NodeID]*peer)} }

var errUnknownNode = errors.New("relay: next hop not in the directory")

// lookup finds a node in the newest document that names it.
func (n *Node) lookup(id mixnet.NodeID) (*directory.Descriptor, bool) {
	e := n.epoch()
	for _, x := range []uint64{e + 1, e, e - 1} {
		if sd, ok := n.dir.Document(x); ok {
			if d, ok := n.index(sd)[id]; ok {
				return d, true
			}
		}
	}
	if sd := n.dir.Latest(); sd != nil {
		d, ok := n.index(sd)[id]
		return d, ok
	}
	return nil, false
}

// index returns the ID-to-descriptor map of a document, built once per
// document rather than hashing identity keys on every packet.
func (n *Node) index(sd *directory.SignedDocument) map[mixnet.NodeID]*directory.Descriptor {
	n.idxMu.Lock()
	defer n.idxMu.Unlock()
	if m, ok := n.idx[sd]; ok {
		return m
	}
	m := make(map[mixnet.NodeID]*directory.Descriptor)
	for _, l := range sd.Doc.Layers {
		for _, d := range l {
			m[d.ID()] = d
		}
	}
	for _, d := range sd.Doc.Providers {
		m[d.ID()] = d
	}
	if len(n.idx) >= 8 {
		clear(n.idx) // documents are few; start afresh rather than track age
	}
	n.idx[sd] = m
	return m
}

// get returns the outbound link to id, starting one if needed, and
// replacing one whose address or key the directory changed.
func (p *peers) get(id mixnet.NodeID) (*link.Outbound, error) {
	d, ok := p.n.lookup(id)
	if !ok {
		return nil, errUnknownNode
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if cur := p.m[id]; cur != nil {
		if cur.addr == d.Address && cur.key == d.LinkKey {
			return cur.out, nil
		}
		cur.cancel()
		delete(p.m, id)
	}
	if p.m == nil {
		return nil, errors.New("relay: shutting down")
	}
	out := link.NewOutbound(p.n.linkConfig(), link.KindPeer, d.Address, d.LinkKey, link.OutboundOptions{
		QueueLen: p.n.cfg.Limits.OutputQueue,
		Padding:  p.n.cfg.Limits.LinkPadding.D(),
		Dial:     p.n.opts.Dial,
		Logger:   p.n.log,
	})
	ctx, cancel := context.WithCancel(context.Background())
	p.m[id] = &peer{addr: d.Address, key: d.LinkKey, out: out, cancel: cancel}
	p.wg.Go(func() { out.Run(ctx) })
	return out, nil
}

// queued returns the packets waiting on all outgoing links.
func (p *peers) queued() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, pe := range p.m {
		n += pe.out.Queued()
	}
	return n
}

// closeAll stops every outbound link and waits for their goroutines.
func (p *peers) closeAll() {
	p.mu.Lock()
	for _, pe := range p.m {
		pe.cancel()
	}
	p.m = nil
	p.mu.Unlock()
	p.wg.Wait()
}

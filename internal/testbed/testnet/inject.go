package testnet

import (
	"context"
	crand "crypto/rand"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"time"

	"github.com/sealnet/sealnet/mixnet"
	"github.com/sealnet/sealnet/mixnet/directory"
	"github.com/sealnet/sealnet/mixnet/link"
)

// Injector sends packets into the network as a client does: over client
// links (Noise_NK, the client anonymous) to entry mixes, along stratified
// paths from the document.
type Injector struct {
	doc *directory.Document
	geo mixnet.Geometry

	mu    sync.Mutex
	rng   *rand.Rand
	conns map[mixnet.NodeID]*link.Conn
}

// NewInjector returns an injector for doc.
func NewInjector(doc *directory.Document) *Injector {
	var seed [32]byte
	crand.Read(seed[:])
	return &Injector{doc: doc, geo: doc.Geometry, rng: rand.New(rand.NewChaCha8(seed)), conns: make(map[mixnet.NodeID]*link.Conn)}
}

// Packet builds a packet for recipient at provider dest, with per-hop
// delays of the given mean, for the document's epoch. It returns the entry
// mix to send it to.
func (in *Injector) Packet(dest *directory.Descriptor, recipient mixnet.RecipientID, msg []byte, meanDelay time.Duration) (mixnet.NodeID, []byte, error) {
	return in.PacketFor(in.doc.Epoch, dest, recipient, msg, meanDelay)
}

// PacketFor is Packet with the keys of epoch (the document's or the next).
func (in *Injector) PacketFor(epoch uint64, dest *directory.Descriptor, recipient mixnet.RecipientID, msg []byte, meanDelay time.Duration) (mixnet.NodeID, []byte, error) {
	in.mu.Lock()
	path, err := in.doc.SelectPath(in.rng, dest, epoch, meanDelay)
	in.mu.Unlock()
	if err != nil {
		return mixnet.NodeID{}, nil, err
	}
	pkt, err := mixnet.NewPacket(crand.Reader, in.geo, path, recipient, msg)
	if err != nil {
		return mixnet.NodeID{}, nil, err
	}
	return path[0].ID, pkt, nil
}

// Send sends pkt to the entry mix, dialing it on first use.
func (in *Injector) Send(ctx context.Context, entry mixnet.NodeID, pkt []byte) error {
	in.mu.Lock()
	c := in.conns[entry]
	in.mu.Unlock()
	if c == nil {
		d, ok := in.doc.Node(entry)
		if !ok {
			return fmt.Errorf("testnet: entry %v not in the document", entry)
		}
		var dialer net.Dialer
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		nc, err := dialer.DialContext(dctx, "tcp", d.Address)
		if err != nil {
			return err
		}
		if c, err = link.Client(dctx, nc, link.Config{Geometry: in.geo}, link.KindClient, d.LinkKey); err != nil {
			return err
		}
		in.mu.Lock()
		if old := in.conns[entry]; old != nil {
			c.Close()
			c = old
		} else {
			in.conns[entry] = c
		}
		in.mu.Unlock()
	}
	return c.WritePacket(pkt)
}

// Close closes the injector's links.
func (in *Injector) Close() {
	in.mu.Lock()
	defer in.mu.Unlock()
	for id, c := range in.conns {
		c.Close()
		delete(in.conns, id)
	}
}

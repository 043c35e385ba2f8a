package sender

import (
	"context"
	"net"
	"sync"
	"time"

	"github.com/sealnet/sealnet/mixnet"
	"github.com/sealnet/sealnet/mixnet/directory"
	"github.com/sealnet/sealnet/mixnet/link"
)

// entryLinks holds the client links (Noise_NK: the client stays
// anonymous) to the entry mixes it sends through.
type entryLinks struct {
	c     *Client
	mu    sync.Mutex
	conns map[mixnet.NodeID]*link.Conn
}

func newEntryLinks(c *Client) *entryLinks {
	return &entryLinks{c: c, conns: make(map[mixnet.NodeID]*link.Conn)}
}

// send writes pkt to the entry mix d, dialing it if needed, once more
// after a broken link.
func (l *entryLinks) send(ctx context.Context, d *directory.Descriptor, pkt []byte) error {
	var err error
	for attempt := range 2 {
		var c *link.Conn
		if c, err = l.get(ctx, d, attempt > 0); err != nil {
			continue
		}
		if err = c.WritePacket(pkt); err == nil {
			return nil
		}
		l.drop(d.ID(), c)
	}
	return err
}

func (l *entryLinks) get(ctx context.Context, d *directory.Descriptor, fresh bool) (*link.Conn, error) {
	id := d.ID()
	l.mu.Lock()
	c := l.conns[id]
	l.mu.Unlock()
	if c != nil && !fresh {
		return c, nil
	}
	dial := l.c.opts.Dial
	if dial == nil {
		var dd net.Dialer
		dial = dd.DialContext
	}
	dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	nc, err := dial(dctx, "tcp", d.Address)
	if err != nil {
		return nil, err
	}
	c, err = link.Client(dctx, nc, link.Config{Geometry: l.c.geo}, link.KindClient, d.LinkKey)
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	if old := l.conns[id]; old != nil {
		old.Close()
	}
	l.conns[id] = c
	l.mu.Unlock()
	return c, nil
}

func (l *entryLinks) drop(id mixnet.NodeID, c *link.Conn) {
	l.mu.Lock()
	if l.conns[id] == c {
		delete(l.conns, id)
	}
	l.mu.Unlock()
	c.Close()
}

func (l *entryLinks) closeAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for id, c := range l.conns {
		c.Close()
		delete(l.conns, id)
	}
}

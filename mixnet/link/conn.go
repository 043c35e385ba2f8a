package link

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/flynn/noise"
)

// Conn is an established link. One goroutine may read and another write at
// the same time; writes are serialized.
type Conn struct {
	nc        net.Conn
	cfg       *Config
	kind      Kind
	peer      [32]byte
	frameSize int // ciphertext bytes per frame
	bodySize  int // packet bytes per frame

	wmu    sync.Mutex
	send   *noise.CipherState
	sent   uint64
	wbuf   []byte
	closed bool

	recv  *noise.CipherState
	rcvd  uint64
	rbuf  []byte
	stats *Stats
}

func newConn(nc net.Conn, cfg *Config, kind Kind, peer [32]byte, send, recv *noise.CipherState) *Conn {
	fs := FrameSize(cfg.Geometry)
	return &Conn{
		nc: nc, cfg: cfg, kind: kind, peer: peer,
		frameSize: fs, bodySize: cfg.Geometry.PacketSize(),
		send: send, recv: recv,
		wbuf:  make([]byte, 2+fs),
		rbuf:  make([]byte, 2+fs),
		stats: cfg.Stats,
	}
}

// Kind returns the kind of link.
func (c *Conn) Kind() Kind { return c.kind }

// PeerKey returns the other end's static key: the authenticated dialer's
// key on a peer link's listening side, the pinned key on a dialing side,
// zero for the listening side of a client link.
func (c *Conn) PeerKey() [32]byte { return c.peer }

// RemoteAddr returns the other end's network address.
func (c *Conn) RemoteAddr() net.Addr { return c.nc.RemoteAddr() }

// Close closes the link.
func (c *Conn) Close() error {
	c.wmu.Lock()
	c.closed = true
	c.wmu.Unlock()
	return c.nc.Close()
}

// WritePacket sends one packet, which must be exactly Geometry.PacketSize
// bytes, in one frame.
func (c *Conn) WritePacket(pkt []byte) error {
	if len(pkt) != c.bodySize {
		return fmt.Errorf("link: packet of %d bytes, want %d", len(pkt), c.bodySize)
	}
	return c.writeFrame(framePacket, pkt)
}

// WritePadding sends one padding frame, indistinguishable on the wire from
// a packet frame.
func (c *Conn) WritePadding() error { return c.writeFrame(framePadding, nil) }

func (c *Conn) writeFrame(typ byte, body []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closed {
		return net.ErrClosed
	}
	if c.sent >= c.cfg.MaxFrames {
		return ErrSessionExhausted
	}
	b := c.wbuf
	binary.BigEndian.PutUint16(b, uint16(c.frameSize))
	pt := b[2 : 2+1+c.bodySize]
	pt[0] = typ
	if body == nil {
		clear(pt[1:])
	} else {
		copy(pt[1:], body)
	}
	if _, err := c.send.Encrypt(pt[:0], nil, pt); err != nil {
		return fmt.Errorf("link: encrypt: %w", err)
	}
	c.sent++
	if c.sent%rekeyFrames == 0 {
		c.send.Rekey()
	}
	if err := c.nc.SetWriteDeadline(time.Now().Add(c.cfg.WriteTimeout)); err != nil {
		return err
	}
	if _, err := c.nc.Write(b); err != nil {
		return fmt.Errorf("link: write: %w", err)
	}
	c.stats.frameOut(typ)
	return nil
}

// ReadPacket returns the next packet, skipping padding frames. The slice
// is valid until the next call. Only one goroutine may read.
func (c *Conn) ReadPacket() ([]byte, error) {
	for {
		typ, body, err := c.readFrame()
		if err != nil {
			return nil, err
		}
		if typ == framePacket {
			return body, nil
		}
	}
}

func (c *Conn) readFrame() (byte, []byte, error) {
	if c.rcvd >= c.cfg.MaxFrames {
		return 0, nil, ErrSessionExhausted
	}
	if err := c.nc.SetReadDeadline(time.Now().Add(c.cfg.ReadTimeout)); err != nil {
		return 0, nil, err
	}
	if _, err := io.ReadFull(c.nc, c.rbuf[:2]); err != nil {
		return 0, nil, err
	}
	// The length is checked before reading the body: every frame has the
	// same size, so any other value is an error, not an allocation.
	if n := int(binary.BigEndian.Uint16(c.rbuf)); n != c.frameSize {
		return 0, nil, fmt.Errorf("%w: length %d, want %d", ErrFrame, n, c.frameSize)
	}
	if _, err := io.ReadFull(c.nc, c.rbuf[2:]); err != nil {
		return 0, nil, err
	}
	typ, body, err := c.openFrame(c.rbuf[2:])
	if err != nil {
		return 0, nil, err
	}
	c.stats.frameIn(typ)
	return typ, body, nil
}

// openFrame decrypts one frame's ciphertext in place and checks its type.
func (c *Conn) openFrame(ct []byte) (byte, []byte, error) {
	pt, err := c.recv.Decrypt(ct[:0], nil, ct)
	if err != nil {
		return 0, nil, fmt.Errorf("%w: %v", ErrFrame, err)
	}
	c.rcvd++
	if c.rcvd%rekeyFrames == 0 {
		c.recv.Rekey()
	}
	if len(pt) != 1+c.bodySize {
		return 0, nil, fmt.Errorf("%w: %d-byte plaintext", ErrFrame, len(pt))
	}
	switch pt[0] {
	case framePacket:
		return framePacket, pt[1:], nil
	case framePadding:
		return framePadding, nil, nil
	}
	return 0, nil, fmt.Errorf("%w: unknown type 0x%02x", ErrFrame, pt[0])
}

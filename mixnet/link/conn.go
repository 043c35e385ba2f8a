package link

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"slices"
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
	bbuf   []byte // batch buffer for WritePackets
	closed bool

	recv  *noise.CipherState
	rcvd  uint64
	rbuf  []byte
	br    *bufio.Reader // one read syscall brings in many frames
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
		br:    bufio.NewReaderSize(nc, 16*(2+fs)),
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

// Close closes the link. It closes the connection first, so that a writer
// blocked in a write returns at once instead of holding Close until its
// deadline.
func (c *Conn) Close() error {
	err := c.nc.Close()
	c.wmu.Lock()
	c.closed = true
	c.wmu.Unlock()
	return err
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
	b, err := c.sealFrame(c.wbuf[:0], typ, body)
	if err != nil {
		return err
	}
	return c.flush(b)
}

// WritePackets sends several packets, each in its own frame, with one
// write to the connection. It returns how many were sent in full before an
// error.
func (c *Conn) WritePackets(pkts [][]byte) (int, error) {
	for _, p := range pkts {
		if len(p) != c.bodySize {
			return 0, fmt.Errorf("link: packet of %d bytes, want %d", len(p), c.bodySize)
		}
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	need := len(pkts) * (2 + c.frameSize)
	if cap(c.bbuf) < need {
		c.bbuf = make([]byte, 0, need)
	}
	b := c.bbuf[:0]
	sealed := 0
	var err error
	for _, p := range pkts {
		if b, err = c.sealFrame(b, framePacket, p); err != nil {
			break
		}
		sealed++
	}
	if sealed > 0 {
		if werr := c.flush(b); werr != nil {
			return 0, werr
		}
	}
	return sealed, err
}

// sealFrame appends one encrypted frame to b. The caller holds wmu.
func (c *Conn) sealFrame(b []byte, typ byte, body []byte) ([]byte, error) {
	if c.closed {
		return b, net.ErrClosed
	}
	if c.sent >= c.cfg.MaxFrames {
		return b, ErrSessionExhausted
	}
	off := len(b)
	b = binary.BigEndian.AppendUint16(b, uint16(c.frameSize))
	b = append(b, typ)
	if body == nil {
		n := len(b)
		b = slices.Grow(b, c.bodySize)[:n+c.bodySize]
		clear(b[n:])
	} else {
		b = append(b, body...)
	}
	pt := b[off+2:]
	b, err := c.send.Encrypt(b[:off+2], nil, pt)
	if err != nil {
		return b[:off], fmt.Errorf("link: encrypt: %w", err)
	}
	c.sent++
	if c.sent%rekeyFrames == 0 {
		c.send.Rekey()
	}
	c.stats.frameOut(typ)
	return b, nil
}

// flush writes sealed frames under the write deadline. The caller holds
// wmu.
func (c *Conn) flush(b []byte) error {
	if err := c.nc.SetWriteDeadline(time.Now().Add(c.cfg.WriteTimeout)); err != nil {
		return err
	}
	if _, err := c.nc.Write(b); err != nil {
		return fmt.Errorf("link: write: %w", err)
	}
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
	// A deadline matters only when the next frame must come from the
	// network; a frame already buffered is read without waiting.
	if c.br.Buffered() < len(c.rbuf) {
		if err := c.nc.SetReadDeadline(time.Now().Add(c.cfg.ReadTimeout)); err != nil {
			return 0, nil, err
		}
	}
	typ, body, err := c.nextFrame()
	if err != nil {
		return 0, nil, err
	}
	c.rcvd++
	if c.rcvd%rekeyFrames == 0 {
		c.recv.Rekey()
	}
	c.stats.frameIn(typ)
	return typ, body, nil
}

// writeConfirmation sends the dialer's confirmation frame, frame 0 of its
// direction: a padding frame that only the holder of the session keys can
// produce, so it proves to the listener that the handshake is live and
// not a replayed first message (docs/link.md §2). It is written under
// the deadline already set on the connection (the handshake's) and is
// not counted in MaxFrames or in the rekey interval.
func (c *Conn) writeConfirmation() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	b := binary.BigEndian.AppendUint16(c.wbuf[:0], uint16(c.frameSize))
	b = append(b, framePadding)
	b = b[:3+c.bodySize] // wbuf has room for a whole frame
	clear(b[3:])
	b, err := c.send.Encrypt(b[:2], nil, b[2:])
	if err != nil {
		return fmt.Errorf("link: encrypt: %w", err)
	}
	c.stats.frameOut(framePadding)
	if _, err := c.nc.Write(b); err != nil {
		return fmt.Errorf("link: write: %w", err)
	}
	return nil
}

// readConfirmation reads the dialer's confirmation frame under the
// deadline already set on the connection (the handshake's) and requires
// it to be a padding frame.
func (c *Conn) readConfirmation() error {
	typ, _, err := c.nextFrame()
	if err != nil {
		return err
	}
	c.stats.frameIn(typ)
	if typ != framePadding {
		return fmt.Errorf("%w: the confirmation frame is not padding", ErrFrame)
	}
	return nil
}

// nextFrame reads and decrypts one frame, without setting a deadline or
// counting it.
func (c *Conn) nextFrame() (byte, []byte, error) {
	if _, err := io.ReadFull(c.br, c.rbuf[:2]); err != nil {
		return 0, nil, err
	}
	// The length is checked before reading the body: every frame has the
	// same size, so any other value is an error, not an allocation.
	if n := int(binary.BigEndian.Uint16(c.rbuf)); n != c.frameSize {
		return 0, nil, fmt.Errorf("%w: length %d, want %d", ErrFrame, n, c.frameSize)
	}
	if _, err := io.ReadFull(c.br, c.rbuf[2:]); err != nil {
		return 0, nil, err
	}
	return c.openFrame(c.rbuf[2:])
}

// openFrame decrypts one frame's ciphertext in place and checks its type.
func (c *Conn) openFrame(ct []byte) (byte, []byte, error) {
	pt, err := c.recv.Decrypt(ct[:0], nil, ct)
	if err != nil {
		return 0, nil, fmt.Errorf("%w: %v", ErrFrame, err)
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

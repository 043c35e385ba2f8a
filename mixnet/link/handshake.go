package link

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/flynn/noise"
)

// Handshake status codes, in the responder's message payload.
const (
	statusOK           = 0
	statusGeometry     = 1
	statusUnauthorized = 2
	statusBusy         = 3
	statusVersion      = 4
)

// hello is the initiator's first-message payload: version || geometry hash.
const helloSize = 1 + 32

// reply is the responder's payload: status || its geometry hash.
const replySize = 1 + 32

func prologue(k Kind) []byte {
	return append([]byte("sealnet link v1"), byte(k))
}

func pattern(k Kind) noise.HandshakePattern {
	if k == KindClient {
		return noise.HandshakeNK
	}
	return noise.HandshakeIK
}

// writeMsg writes a length-prefixed handshake message.
func writeMsg(w io.Writer, prefix []byte, msg []byte) error {
	b := make([]byte, 0, len(prefix)+2+len(msg))
	b = append(b, prefix...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(msg)))
	b = append(b, msg...)
	_, err := w.Write(b)
	return err
}

// readMsg reads a length-prefixed handshake message, checking the length
// before allocating.
func readMsg(r io.Reader) ([]byte, error) {
	var hdr [2]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint16(hdr[:]))
	if n == 0 || n > maxHandshakeMessage {
		return nil, fmt.Errorf("handshake message of %d bytes", n)
	}
	msg := make([]byte, n)
	if _, err := io.ReadFull(r, msg); err != nil {
		return nil, err
	}
	return msg, nil
}

// deadline returns the earlier of ctx's deadline and now+d.
func deadline(ctx context.Context, d time.Duration) time.Time {
	t := time.Now().Add(d)
	if dl, ok := ctx.Deadline(); ok && dl.Before(t) {
		return dl
	}
	return t
}

// Client runs the initiator side of a handshake on nc and returns the
// link. For KindPeer, cfg.Static is this node's key; peer is the
// listener's static key from the directory. nc is closed on failure.
func Client(ctx context.Context, nc net.Conn, cfg Config, kind Kind, peer [32]byte) (*Conn, error) {
	if err := cfg.Geometry.Validate(); err != nil {
		nc.Close()
		return nil, fmt.Errorf("link: %w", err)
	}
	c := cfg.withDefaults()
	conn, err := clientHandshake(ctx, nc, &c, kind, peer)
	if err != nil {
		nc.Close()
		return nil, err
	}
	return conn, nil
}

func clientHandshake(ctx context.Context, nc net.Conn, cfg *Config, kind Kind, peer [32]byte) (*Conn, error) {
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if err := nc.SetDeadline(deadline(ctx, cfg.HandshakeTimeout)); err != nil {
		return nil, err
	}
	hc := noise.Config{
		CipherSuite: cipherSuite,
		Pattern:     pattern(kind),
		Initiator:   true,
		Prologue:    prologue(kind),
		PeerStatic:  peer[:],
		Random:      cfg.Rand,
	}
	if kind != KindClient {
		hc.StaticKeypair = cfg.Static
	}
	// A fresh HandshakeState for this connection only; it is dropped on
	// any failure together with the connection.
	hs, err := noise.NewHandshakeState(hc)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrHandshake, err)
	}
	gh := cfg.Geometry.Hash()
	hello := append([]byte{protocolVersion}, gh[:]...)
	msg1, _, _, err := hs.WriteMessage(nil, hello)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrHandshake, err)
	}
	if err := writeMsg(nc, []byte{byte(kind)}, msg1); err != nil {
		return nil, fmt.Errorf("%w: send: %v", ErrHandshake, err)
	}
	msg2, err := readMsg(nc)
	if err != nil {
		return nil, fmt.Errorf("%w: receive: %v", ErrHandshake, err)
	}
	reply, cs1, cs2, err := hs.ReadMessage(nil, msg2)
	if err != nil {
		return nil, fmt.Errorf("%w: %v (wrong key for this node?)", ErrHandshake, err)
	}
	if len(reply) != replySize {
		return nil, fmt.Errorf("%w: reply of %d bytes", ErrHandshake, len(reply))
	}
	switch reply[0] {
	case statusOK:
	case statusGeometry:
		return nil, fmt.Errorf("%w: %w: ours %x…, theirs %x…", ErrRefused, ErrGeometry, gh[:6], reply[1:7])
	case statusUnauthorized:
		return nil, fmt.Errorf("%w: %w (is this node in the current directory document?)", ErrRefused, ErrUnauthorized)
	case statusBusy:
		return nil, fmt.Errorf("%w: %w", ErrRefused, ErrTooManyConns)
	case statusVersion:
		return nil, fmt.Errorf("%w: link protocol version %d not supported", ErrRefused, protocolVersion)
	default:
		return nil, fmt.Errorf("%w: unknown status %d", ErrHandshake, reply[0])
	}
	conn := newConn(nc, cfg, kind, peer, cs1, cs2)
	if err := conn.writeConfirmation(); err != nil {
		return nil, fmt.Errorf("%w: send confirmation: %v", ErrHandshake, err)
	}
	if err := nc.SetDeadline(time.Time{}); err != nil {
		return nil, err
	}
	return conn, nil
}

// Authorizer decides whether a handshaking peer may connect. For KindPeer
// links static is the dialer's key; for KindClient it is zero. Returning
// ErrUnauthorized refuses the link with that status, ErrTooManyConns with
// "busy"; any error refuses it.
type Authorizer func(kind Kind, static [32]byte, remote net.Addr) error

// Server runs the responder side of a handshake on nc. kinds lists the
// kinds of link this listener accepts. nc is closed on failure.
//
// Server returns only once the dialer's confirmation frame has arrived and
// decrypted, within the handshake timeout. That frame depends on this
// end's fresh ephemeral key, so a replayed first message never yields a
// Conn: authorize may see a replayed dialer's key, and must not count a
// link against it (Listener counts only returned links).
func Server(ctx context.Context, nc net.Conn, cfg Config, kinds []Kind, authorize Authorizer) (*Conn, error) {
	if err := cfg.Geometry.Validate(); err != nil {
		nc.Close()
		return nil, fmt.Errorf("link: %w", err)
	}
	c := cfg.withDefaults()
	conn, err := serverHandshake(ctx, nc, &c, kinds, authorize)
	if err != nil {
		nc.Close()
		return nil, err
	}
	return conn, nil
}

func serverHandshake(ctx context.Context, nc net.Conn, cfg *Config, kinds []Kind, authorize Authorizer) (*Conn, error) {
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if err := nc.SetDeadline(deadline(ctx, cfg.HandshakeTimeout)); err != nil {
		return nil, err
	}
	var kb [1]byte
	if _, err := io.ReadFull(nc, kb[:]); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrHandshake, err)
	}
	kind := Kind(kb[0])
	if !bytes.Contains(kindBytes(kinds), kb[:]) {
		return nil, fmt.Errorf("%w: link kind %v not accepted here", ErrHandshake, kind)
	}
	hs, err := noise.NewHandshakeState(noise.Config{
		CipherSuite:   cipherSuite,
		Pattern:       pattern(kind),
		Initiator:     false,
		Prologue:      prologue(kind),
		StaticKeypair: cfg.Static,
		Random:        cfg.Rand,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrHandshake, err)
	}
	msg1, err := readMsg(nc)
	if err != nil {
		return nil, fmt.Errorf("%w: receive: %v", ErrHandshake, err)
	}
	hello, _, _, err := hs.ReadMessage(nil, msg1)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrHandshake, err)
	}
	var peer [32]byte
	if kind != KindClient {
		copy(peer[:], hs.PeerStatic())
	}
	gh := cfg.Geometry.Hash()
	status, refusal := byte(statusOK), error(nil)
	switch {
	case len(hello) != helloSize || hello[0] != protocolVersion:
		status, refusal = statusVersion, fmt.Errorf("%w: unsupported link version", ErrRefused)
	case !bytes.Equal(hello[1:], gh[:]):
		status, refusal = statusGeometry, fmt.Errorf("%w: %w from %v", ErrRefused, ErrGeometry, nc.RemoteAddr())
	default:
		if err := authorize(kind, peer, nc.RemoteAddr()); err != nil {
			status, refusal = statusUnauthorized, fmt.Errorf("%w: %w", ErrRefused, err)
			if errors.Is(err, ErrTooManyConns) {
				status = statusBusy
			}
		}
	}
	reply := append([]byte{status}, gh[:]...)
	msg2, cs1, cs2, err := hs.WriteMessage(nil, reply)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrHandshake, err)
	}
	if err := writeMsg(nc, nil, msg2); err != nil {
		return nil, fmt.Errorf("%w: send: %v", ErrHandshake, err)
	}
	if refusal != nil {
		return nil, refusal
	}
	// The responder sends with cs2 and receives with cs1.
	conn := newConn(nc, cfg, kind, peer, cs2, cs1)
	// Still under the handshake deadline: a replayed message 1 cannot
	// produce this frame, so it holds the connection no longer than that.
	if err := conn.readConfirmation(); err != nil {
		return nil, fmt.Errorf("%w: no confirmation frame: %v", ErrHandshake, err)
	}
	if err := nc.SetDeadline(time.Time{}); err != nil {
		return nil, err
	}
	return conn, nil
}

func kindBytes(kinds []Kind) []byte {
	b := make([]byte, len(kinds))
	for i, k := range kinds {
		b[i] = byte(k)
	}
	return b
}

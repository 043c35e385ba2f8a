// Package link carries packets between nodes, and from clients to nodes, on
// Noise sessions over TCP.
//
// Two kinds of link exist:
//
//   - Peer links join relays and providers. They run Noise_IK: the dialer
//     pins the listener's static key from the directory, and the listener
//     learns the dialer's static key in the first message and accepts it
//     only if its Authorize callback does (normally: the key belongs to a
//     node in the current directory document). Both ends are authenticated.
//   - Client links run Noise_NK: the client pins the node's static key and
//     stays anonymous, as a client entering the mix network must.
//   - User links run Noise_IK from a user to its own provider, with the
//     user's identity key as static key: only the owner of a mailbox can
//     open a user link as that owner.
//
// After the handshake every frame on the wire has exactly the same size,
// 2 + FrameSize(geometry) bytes, whether it carries a packet or padding, so
// a link observer sees a stream of identical records and, when idle padding
// is on, no gaps either. The frame length is checked against that size
// before anything is read into memory. Reads and writes carry deadlines;
// each direction rekeys (Noise Rekey) every 65,536 frames; a session
// ends after MaxFrames frames so that the next one starts from a fresh
// handshake long before the Noise nonce could run out; a HandshakeState is
// never reused after a failure (each connection gets its own, and any
// failure closes the connection).
//
// The handshake's first message carries the link protocol version and the
// dialer's packet geometry hash; the listener answers with a status, so a
// node with another geometry, or a key not in the directory, is refused
// with an error that says so instead of a bare failure. The dialer then
// sends a confirmation frame (padding); a listener returns a link only
// once it has decrypted it, which a replayed first message cannot bring
// about, and a Listener counts a link against its peer's key only then
// (docs/link.md §2, §4).
package link

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/flynn/noise"

	"github.com/sealnet/sealnet/mixnet"
)

// Kind is the kind of link, sent in clear as the connection's first byte.
type Kind byte

const (
	// KindPeer is a node-to-node link (Noise_IK, both ends authenticated).
	KindPeer Kind = 0x01
	// KindClient is a client-to-node link (Noise_NK, the client anonymous).
	KindClient Kind = 0x02
	// KindUser is a user-to-provider link (Noise_IK with the user's
	// identity key as its static key, carried encrypted): the provider
	// learns which of its users connected; an observer does not.
	KindUser Kind = 0x03
)

func (k Kind) String() string {
	switch k {
	case KindPeer:
		return "peer"
	case KindClient:
		return "client"
	case KindUser:
		return "user"
	}
	return fmt.Sprintf("kind(0x%02x)", byte(k))
}

// Frame types, the first plaintext byte of a frame.
const (
	framePadding = 0x00
	framePacket  = 0x01
)

const protocolVersion = 1

// FrameSize is the size of a frame's ciphertext on the wire for geometry g:
// one type byte and one packet, plus the Poly1305 tag. Every frame is
// preceded by a 2-byte big-endian length that must equal it.
func FrameSize(g mixnet.Geometry) int { return frameOverhead + g.PacketSize() }

// frameOverhead is a frame's type byte and Poly1305 tag.
const frameOverhead = 1 + 16

// The frame of the largest packet a valid geometry allows must fit the
// 2-byte length prefix; this does not compile otherwise.
const _ uint16 = mixnet.MaxPacketSize + frameOverhead

// rekeyFrames: each direction calls Noise Rekey (Noise spec §11.3) after
// this many frames. It is part of the protocol, not a setting: both ends
// must agree. A variable only so that tests can make it small.
var rekeyFrames uint64 = 1 << 16

// maxHandshakeMessage bounds a handshake message read from the network.
const maxHandshakeMessage = 256

var cipherSuite = noise.NewCipherSuite(noise.DH25519, noise.CipherChaChaPoly, noise.HashSHA256)

// Errors.
var (
	// ErrRefused: the listener refused the link: unknown key, full, or a
	// geometry mismatch (wrapped with which).
	ErrRefused = errors.New("link: refused by the other end")
	// ErrGeometry: the two ends use different packet geometries.
	ErrGeometry = errors.New("link: packet geometry mismatch")
	// ErrUnauthorized: the dialer's static key is not allowed.
	ErrUnauthorized = errors.New("link: peer key not authorized")
	// ErrHandshake: the handshake failed (bad message, wrong key, timeout).
	ErrHandshake = errors.New("link: handshake failed")
	// ErrFrame: a frame had the wrong length, failed authentication or had
	// an unknown type. The link is unusable afterwards.
	ErrFrame = errors.New("link: bad frame")
	// ErrSessionExhausted: the session reached MaxFrames; dial again.
	ErrSessionExhausted = errors.New("link: session frame limit reached")
	// ErrTooManyConns: the connection cap was reached.
	ErrTooManyConns = errors.New("link: too many connections")
	// ErrQueueFull: an outbound queue is full; the packet was not queued.
	ErrQueueFull = errors.New("link: send queue full")
)

// Config is what both ends of a link need.
type Config struct {
	// Geometry of the packets the link carries.
	Geometry mixnet.Geometry
	// Static is this end's X25519 link key pair. Clients may leave it empty.
	Static noise.DHKey
	// HandshakeTimeout bounds the whole handshake. Default 10 s.
	HandshakeTimeout time.Duration
	// ReadTimeout bounds the wait for each frame. With idle padding on at
	// the other end, it only expires on a dead link. Default 3 min.
	ReadTimeout time.Duration
	// WriteTimeout bounds each frame write. Default 10 s.
	WriteTimeout time.Duration
	// MaxFrames: a session carries at most this many frames per direction,
	// then ends so that a new handshake starts. Default 2^32.
	MaxFrames uint64
	// Stats, if not nil, counts this end's link events.
	Stats *Stats
	// Rand supplies the handshakes' ephemeral keys; nil means
	// crypto/rand.Reader. Tests use a fixed reader.
	Rand io.Reader
}

func (c *Config) withDefaults() Config {
	d := *c
	if d.HandshakeTimeout <= 0 {
		d.HandshakeTimeout = 10 * time.Second
	}
	if d.ReadTimeout <= 0 {
		d.ReadTimeout = 3 * time.Minute
	}
	if d.WriteTimeout <= 0 {
		d.WriteTimeout = 10 * time.Second
	}
	if d.MaxFrames == 0 {
		d.MaxFrames = 1 << 32
	}
	if d.Stats == nil {
		d.Stats = new(Stats)
	}
	return d
}

// GenerateKey returns a new link key pair from rng (crypto/rand.Reader in
// production).
var GenerateKey = cipherSuite.GenerateKeypair

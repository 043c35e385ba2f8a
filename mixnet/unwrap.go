package mixnet

import (
	"crypto/ecdh"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"time"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/sealnet/sealnet/internal/crypto/lioness"
)

// MixKey is a node's X25519 mix key for one epoch, bound to a geometry. It
// is safe for concurrent use.
type MixKey struct {
	geo  Geometry
	priv *ecdh.PrivateKey
	pub  [32]byte
	hs   [sha256.Size]byte // Noise h after the prologue and the static key
}

// NewMixKey returns the mix key with the given 32-byte X25519 private key.
func NewMixKey(g Geometry, private []byte) (*MixKey, error) {
	if err := g.Validate(); err != nil {
		return nil, err
	}
	priv, err := ecdh.X25519().NewPrivateKey(private)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidKey, err)
	}
	k := &MixKey{geo: g, priv: priv}
	copy(k.pub[:], priv.PublicKey().Bytes())
	k.hs = staticHash(g, k.pub[:])
	return k, nil
}

// GenerateMixKey returns a new mix key made from 32 bytes of rng.
func GenerateMixKey(rng io.Reader, g Geometry) (*MixKey, error) {
	var seed [32]byte
	if _, err := io.ReadFull(rng, seed[:]); err != nil {
		return nil, fmt.Errorf("mixnet: read randomness: %w", err)
	}
	defer clear(seed[:])
	return NewMixKey(g, seed[:])
}

// PublicKey returns the key to publish in the directory.
func (k *MixKey) PublicKey() [32]byte { return k.pub }

// Bytes returns the private key, for storing in a key file.
func (k *MixKey) Bytes() []byte { return k.priv.Bytes() }

// Geometry returns the geometry the key unwraps.
func (k *MixKey) Geometry() Geometry { return k.geo }

// Result is what a hop learns from unwrapping a packet: where it goes next
// and when, or, at the final hop, what to deliver. Nothing in it depends on
// how many hops remain before or after this one.
type Result struct {
	// Tag is the packet's replay tag at this hop.
	Tag ReplayTag
	// Delay is how long the sender asked this hop to hold the packet.
	// Relays cap it.
	Delay time.Duration
	// Final reports that this hop is the last: Recipient and Payload are
	// set, NextHop and Packet are not.
	Final bool
	// NextHop is the node to forward Packet to.
	NextHop NodeID
	// Packet is the packet for NextHop. It is the input buffer, rewritten
	// in place.
	Packet []byte
	// Recipient is the mailbox at the final hop.
	Recipient RecipientID
	// SURBReply reports that the packet is a reply sent with a SURB: its
	// Payload is still encrypted for the SURB's creator, identified by
	// SURBID, and was not integrity-checked here.
	SURBReply bool
	SURBID    SURBID
	// Payload is, for a forward packet, the message (MessageSize bytes,
	// zero-padded); for a SURB reply, the whole payload block for
	// SURBKeys.Open. It aliases the input buffer.
	Payload []byte
}

var errNoReplayCache = errors.New("mixnet: Unwrap needs a replay cache")

// Unwrap removes this hop's layer from pkt, in place. It rejects a packet
// of the wrong size or version, a header that fails authentication under
// this key (modified, for another key, geometry or epoch, or garbage), and
// a packet whose replay tag rc already holds. A payload modified in transit
// is not noticed here unless this is the final hop (ErrPayloadAuth), so a
// hop learns nothing from tagging.
//
// On error, the contents of pkt are unspecified and must be dropped.
func (k *MixKey) Unwrap(pkt []byte, rc *ReplayCache) (Result, error) {
	g := &k.geo
	if rc == nil {
		return Result{}, errNoReplayCache
	}
	if len(pkt) != g.PacketSize() {
		return Result{}, fmt.Errorf("%w: got %d bytes, want %d", ErrPacketSize, len(pkt), g.PacketSize())
	}
	if pkt[0] != g.Version {
		return Result{}, fmt.Errorf("%w: 0x%02x", ErrUnsupportedVersion, pkt[0])
	}
	n, r := g.MaxHops, g.RoutingInfoSize
	betaLen := n * r
	eph := pkt[versionSize : versionSize+ephemeralSize]
	beta := pkt[versionSize+ephemeralSize : versionSize+ephemeralSize+betaLen]
	tag := pkt[versionSize+ephemeralSize+betaLen : g.HeaderSize()]
	payload := pkt[g.HeaderSize():]

	dh, err := x25519(k.priv, eph)
	if err != nil {
		return Result{}, ErrHeaderAuth
	}
	var keys hopKeys
	defer keys.wipe()
	err = deriveHopKeys(&k.hs, eph, dh, &keys)
	clear(dh)
	if err != nil {
		return Result{}, err
	}
	aead, err := chacha20poly1305.New(keys.headerKey[:])
	if err != nil {
		return Result{}, err
	}
	if _, err := aead.Open(beta[:0], zeroNonce[:], pkt[versionSize+ephemeralSize:g.HeaderSize()], keys.ad[:]); err != nil {
		return Result{}, ErrHeaderAuth
	}
	if err := rc.Add(keys.tag); err != nil {
		return Result{}, err
	}
	var rt routing
	if err := decodeRouting(beta[:r], &rt); err != nil {
		return Result{}, err
	}
	res := Result{Tag: keys.tag, Delay: rt.delay()}
	if err := lioness.Decrypt(&keys.payload, payload); err != nil {
		return Result{}, err
	}
	if rt.deliver {
		res.Final = true
		res.Recipient = rt.recipient
		if rt.surb {
			res.SURBReply, res.SURBID = true, rt.surbID
			res.Payload = payload
			return res, nil
		}
		var zero [PayloadTagSize]byte
		if subtle.ConstantTimeCompare(payload[:PayloadTagSize], zero[:]) != 1 {
			return Result{}, ErrPayloadAuth
		}
		res.Payload = payload[PayloadTagSize:]
		return res, nil
	}
	// β_{i+1} = β_i[R:] || F_i, then the next hop's key and tag.
	copy(beta, beta[r:])
	keystream(&keys.headerKey, g.fillerCounter(), beta[betaLen-r:])
	copy(eph, rt.nextEph[:])
	copy(tag, rt.nextTag[:])
	res.NextHop = rt.nextHop
	res.Packet = pkt
	return res, nil
}

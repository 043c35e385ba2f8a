package mixnet

import (
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"io"
	"sync"

	"github.com/sealnet/sealnet/internal/crypto/lioness"
)

// A SURB (single-use reply block) lets anyone who holds it send one packet
// back along a route its creator chose, to the creator's mailbox, without
// learning the route or who the creator is. The creator keeps the matching
// SURBKeys, which alone can open the reply.
//
// The reply's payload is encrypted by the replier under PayloadKey, then
// decrypted by every hop on the route like any payload; the creator undoes
// both. Hops cannot tell a reply from a forward packet. Using a SURB twice
// sends the same header twice, which the first hop drops as a replay.
type SURB struct {
	// FirstHop is the node the replier sends the packet to.
	FirstHop NodeID
	// PayloadKey seeds the LIONESS key the replier encrypts with.
	PayloadKey [32]byte
	// Header is the reply packet's header.
	Header []byte
}

// SURBSize is the size of a marshaled SURB.
func (g Geometry) SURBSize() int { return 32 + 32 + g.HeaderSize() }

// NewSURB builds a SURB whose reply travels path and is delivered to
// recipient at path's last hop (the creator's own provider). It returns the
// SURB to hand out and the keys to keep. Randomness is read from rng in
// this order: the SURB ID (16 bytes), the payload key (32), then what
// NewPacket reads for the header.
func NewSURB(rng io.Reader, g Geometry, path []Hop, recipient RecipientID) (*SURB, *SURBKeys, error) {
	var id SURBID
	if _, err := io.ReadFull(rng, id[:]); err != nil {
		return nil, nil, fmt.Errorf("mixnet: read randomness: %w", err)
	}
	return NewSURBWithID(rng, g, path, recipient, id)
}

// NewSURBWithID is NewSURB with a SURB ID the caller chose: the final hop
// reads it, and a provider may give it a meaning (docs/mailbox.md: the ID
// of a SURB for a mailbox authenticates the reply). Randomness is read as
// NewSURB reads it after the ID.
func NewSURBWithID(rng io.Reader, g Geometry, path []Hop, recipient RecipientID, id SURBID) (*SURB, *SURBKeys, error) {
	if err := g.Validate(); err != nil {
		return nil, nil, err
	}
	if len(path) < 1 {
		return nil, nil, fmt.Errorf("%w: a SURB needs at least one hop", ErrPath)
	}
	s := &SURB{FirstHop: path[0].ID, Header: make([]byte, g.HeaderSize())}
	if _, err := io.ReadFull(rng, s.PayloadKey[:]); err != nil {
		return nil, nil, fmt.Errorf("mixnet: read randomness: %w", err)
	}
	final := routing{deliver: true, recipient: recipient, surb: true, surbID: id}
	keys, err := buildHeader(rng, g, path, &final, s.Header)
	if err != nil {
		return nil, nil, err
	}
	sk := &SURBKeys{ID: id, hops: make([]lioness.Key, len(keys))}
	if err := surbPayloadKey(&s.PayloadKey, &sk.reply); err != nil {
		wipeKeys(keys)
		return nil, nil, err
	}
	for i := range keys {
		sk.hops[i] = keys[i].payload
	}
	wipeKeys(keys)
	return s, sk, nil
}

// surbPayloadKey expands a SURB's 32-byte payload key into LIONESS subkeys.
func surbPayloadKey(seed *[32]byte, k *lioness.Key) error {
	m, err := hkdf.Key(sha256.New, seed[:], nil, "sealnet sphinx surb payload", 4*lioness.KeySize)
	if err != nil {
		return fmt.Errorf("mixnet: surb payload key: %w", err)
	}
	for i := range k {
		copy(k[i][:], m[i*lioness.KeySize:])
	}
	clear(m)
	return nil
}

// NewReply builds the reply packet carrying message (at most
// Geometry.MessageSize bytes, zero-padded). Send it to s.FirstHop.
func (s *SURB) NewReply(g Geometry, message []byte) ([]byte, error) {
	if err := g.Validate(); err != nil {
		return nil, err
	}
	if len(s.Header) != g.HeaderSize() || s.Header[0] != g.Version {
		return nil, fmt.Errorf("%w: SURB header does not match %v", ErrMalformed, g)
	}
	if len(message) > g.MessageSize() {
		return nil, fmt.Errorf("%w: %d bytes, at most %d fit", ErrMessageSize, len(message), g.MessageSize())
	}
	pkt := make([]byte, g.PacketSize())
	copy(pkt, s.Header)
	block := pkt[g.HeaderSize():]
	copy(block[PayloadTagSize:], message)
	var k lioness.Key
	defer clear(k[:])
	if err := surbPayloadKey(&s.PayloadKey, &k); err != nil {
		return nil, err
	}
	if err := lioness.Encrypt(&k, block); err != nil {
		return nil, err
	}
	return pkt, nil
}

// MarshalBinary encodes s as FirstHop || PayloadKey || Header.
func (s *SURB) MarshalBinary() ([]byte, error) {
	b := make([]byte, 0, 64+len(s.Header))
	b = append(b, s.FirstHop[:]...)
	b = append(b, s.PayloadKey[:]...)
	return append(b, s.Header...), nil
}

// UnmarshalSURB decodes a SURB for geometry g.
func UnmarshalSURB(g Geometry, b []byte) (*SURB, error) {
	if err := g.Validate(); err != nil {
		return nil, err
	}
	if len(b) != g.SURBSize() {
		return nil, fmt.Errorf("%w: SURB is %d bytes, want %d", ErrMalformed, len(b), g.SURBSize())
	}
	if b[64] != g.Version {
		return nil, fmt.Errorf("%w: SURB header version 0x%02x", ErrUnsupportedVersion, b[64])
	}
	s := &SURB{Header: make([]byte, g.HeaderSize())}
	copy(s.FirstHop[:], b)
	copy(s.PayloadKey[:], b[32:])
	copy(s.Header, b[64:])
	return s, nil
}

// SURBKeys opens the reply sent with one SURB, once. It is safe for
// concurrent use.
type SURBKeys struct {
	ID SURBID

	mu    sync.Mutex
	used  bool
	reply lioness.Key   // the replier's layer
	hops  []lioness.Key // each hop's payload layer, in path order
}

// Open recovers the message from the payload of a reply delivered for this
// SURB (Result.Payload at the final hop), in place, and returns it. It
// returns ErrPayloadAuth if the payload was modified or belongs to another
// SURB, and ErrSURBUsed once a reply has been opened: the keys are then
// erased.
func (k *SURBKeys) Open(payload []byte) ([]byte, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.used {
		return nil, ErrSURBUsed
	}
	if len(payload) < PayloadTagSize+lioness.MinBlockSize {
		return nil, fmt.Errorf("%w: reply payload of %d bytes", ErrMalformed, len(payload))
	}
	work := make([]byte, len(payload))
	copy(work, payload)
	for i := len(k.hops) - 1; i >= 0; i-- {
		if err := lioness.Encrypt(&k.hops[i], work); err != nil {
			return nil, err
		}
	}
	if err := lioness.Decrypt(&k.reply, work); err != nil {
		return nil, err
	}
	var zero [PayloadTagSize]byte
	if subtle.ConstantTimeCompare(work[:PayloadTagSize], zero[:]) != 1 {
		clear(work)
		return nil, ErrPayloadAuth
	}
	k.used = true
	k.wipeLocked()
	copy(payload, work)
	clear(work)
	return payload[PayloadTagSize:], nil
}

func (k *SURBKeys) wipeLocked() {
	clear(k.reply[:])
	for i := range k.hops {
		clear(k.hops[i][:])
	}
	k.hops = nil
}

// Used reports whether the keys have opened a reply.
func (k *SURBKeys) Used() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.used
}

// MarshalBinary encodes unused keys for storage by their creator:
// ID (16) || hop count (1) || replier key (128) || hop keys (128 each).
// The encoding is secret: store it encrypted.
func (k *SURBKeys) MarshalBinary() ([]byte, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.used {
		return nil, ErrSURBUsed
	}
	b := make([]byte, 0, 17+(1+len(k.hops))*4*lioness.KeySize)
	b = append(b, k.ID[:]...)
	b = append(b, byte(len(k.hops)))
	for _, sub := range k.reply {
		b = append(b, sub[:]...)
	}
	for _, hk := range k.hops {
		for _, sub := range hk {
			b = append(b, sub[:]...)
		}
	}
	return b, nil
}

// UnmarshalSURBKeys decodes keys encoded by MarshalBinary.
func UnmarshalSURBKeys(b []byte) (*SURBKeys, error) {
	const keyLen = 4 * lioness.KeySize
	if len(b) < 17 {
		return nil, fmt.Errorf("%w: SURB keys truncated", ErrMalformed)
	}
	hops := int(b[16])
	if hops < 1 || hops > maxMaxHops {
		return nil, fmt.Errorf("%w: SURB keys for %d hops", ErrMalformed, hops)
	}
	if len(b) != 17+(1+hops)*keyLen {
		return nil, fmt.Errorf("%w: SURB keys are %d bytes, want %d", ErrMalformed, len(b), 17+(1+hops)*keyLen)
	}
	k := &SURBKeys{hops: make([]lioness.Key, hops)}
	copy(k.ID[:], b)
	off := 17
	read := func(dst *lioness.Key) {
		for i := range dst {
			copy(dst[i][:], b[off:])
			off += lioness.KeySize
		}
	}
	read(&k.reply)
	for i := range k.hops {
		read(&k.hops[i])
	}
	return k, nil
}

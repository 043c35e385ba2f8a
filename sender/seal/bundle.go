package seal

import (
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/mlkem"
	"errors"
	"fmt"

	"golang.org/x/crypto/cryptobyte"
)

// Prekeys (seed 001; X3DH with the ML-KEM hybrid of PQXDH). A user
// uploads a signed X25519 prekey, one-time X25519 prekeys, signed one-time
// ML-KEM-768 prekeys and a signed last-resort ML-KEM-768 prekey; the
// provider hands each one-time prekey out at most once. Signatures are by
// the user's Ed25519 identity key over a domain-separated message; every
// prekey carries the ID its owner gave it, and IDs are never reused.
//
// Encodings:
//
//	signed prekey   ID (4) || X25519 public (32) || signature (64) over "sealnet signed prekey v1\x00" || ID || public
//	one-time prekey ID (4) || X25519 public (32)
//	PQ prekey       ID (4) || kind (1: one-time, 2: last resort) || ML-KEM-768 encapsulation key (1184)
//	                || signature (64) over "sealnet pq prekey v1\x00" || kind || ID || key
const (
	SignedPrekeySize  = 4 + 32 + 64
	OneTimePrekeySize = 4 + 32
	PQPrekeySize      = 4 + 1 + mlkem.EncapsulationKeySize768 + 64

	PQOneTime    = 1
	PQLastResort = 2

	signedContext = "sealnet signed prekey v1\x00"
	pqContext     = "sealnet pq prekey v1\x00"
)

// ErrPrekey: a prekey's signature or key does not check out.
var ErrPrekey = errors.New("seal: invalid prekey")

// SignedPrekey is the medium-term X25519 prekey, signed.
type SignedPrekey struct {
	ID        uint32
	Public    [32]byte
	Signature [64]byte
}

// OneTimePrekey is a one-time X25519 prekey (not signed, as in X3DH).
type OneTimePrekey struct {
	ID     uint32
	Public [32]byte
}

// PQPrekey is a signed ML-KEM-768 prekey, one-time or last resort.
type PQPrekey struct {
	ID        uint32
	Kind      byte
	Key       [mlkem.EncapsulationKeySize768]byte
	Signature [64]byte
}

func signedMessage(id uint32, pub []byte) []byte {
	b := cryptobyte.NewFixedBuilder(make([]byte, 0, len(signedContext)+4+len(pub)))
	b.AddBytes([]byte(signedContext))
	b.AddUint32(id)
	b.AddBytes(pub)
	return b.BytesOrPanic()
}

func pqMessage(kind byte, id uint32, key []byte) []byte {
	b := cryptobyte.NewFixedBuilder(make([]byte, 0, len(pqContext)+1+4+len(key)))
	b.AddBytes([]byte(pqContext))
	b.AddUint8(kind)
	b.AddUint32(id)
	b.AddBytes(key)
	return b.BytesOrPanic()
}

// NewSignedPrekey signs an X25519 public key as a signed prekey.
func NewSignedPrekey(identity ed25519.PrivateKey, id uint32, pub *ecdh.PublicKey) SignedPrekey {
	p := SignedPrekey{ID: id}
	copy(p.Public[:], pub.Bytes())
	copy(p.Signature[:], ed25519.Sign(identity, signedMessage(id, p.Public[:])))
	return p
}

// NewPQPrekey signs an ML-KEM-768 encapsulation key.
func NewPQPrekey(identity ed25519.PrivateKey, id uint32, kind byte, key *mlkem.EncapsulationKey768) PQPrekey {
	p := PQPrekey{ID: id, Kind: kind}
	copy(p.Key[:], key.Bytes())
	copy(p.Signature[:], ed25519.Sign(identity, pqMessage(kind, id, p.Key[:])))
	return p
}

// Verify checks the signature with the owner's identity key.
func (p *SignedPrekey) Verify(identity ed25519.PublicKey) error {
	if len(identity) != ed25519.PublicKeySize || !ed25519.Verify(identity, signedMessage(p.ID, p.Public[:]), p.Signature[:]) {
		return fmt.Errorf("%w: signed prekey %d: bad signature", ErrPrekey, p.ID)
	}
	if _, err := ecdh.X25519().NewPublicKey(p.Public[:]); err != nil || p.Public == ([32]byte{}) {
		return fmt.Errorf("%w: signed prekey %d: bad key", ErrPrekey, p.ID)
	}
	return nil
}

// Verify checks the signature and that the key is a valid ML-KEM-768 key.
func (p *PQPrekey) Verify(identity ed25519.PublicKey) error {
	if p.Kind != PQOneTime && p.Kind != PQLastResort {
		return fmt.Errorf("%w: PQ prekey %d of kind %d", ErrPrekey, p.ID, p.Kind)
	}
	if len(identity) != ed25519.PublicKeySize || !ed25519.Verify(identity, pqMessage(p.Kind, p.ID, p.Key[:]), p.Signature[:]) {
		return fmt.Errorf("%w: PQ prekey %d: bad signature", ErrPrekey, p.ID)
	}
	if _, err := mlkem.NewEncapsulationKey768(p.Key[:]); err != nil {
		return fmt.Errorf("%w: PQ prekey %d: %v", ErrPrekey, p.ID, err)
	}
	return nil
}

// Marshal encodes the prekey.
func (p *SignedPrekey) Marshal() []byte {
	b := cryptobyte.NewFixedBuilder(make([]byte, 0, SignedPrekeySize))
	p.add(b)
	return b.BytesOrPanic()
}

func (p *SignedPrekey) add(b *cryptobyte.Builder) {
	b.AddUint32(p.ID)
	b.AddBytes(p.Public[:])
	b.AddBytes(p.Signature[:])
}

// Marshal encodes the prekey.
func (p *OneTimePrekey) Marshal() []byte {
	b := cryptobyte.NewFixedBuilder(make([]byte, 0, OneTimePrekeySize))
	p.add(b)
	return b.BytesOrPanic()
}

func (p *OneTimePrekey) add(b *cryptobyte.Builder) {
	b.AddUint32(p.ID)
	b.AddBytes(p.Public[:])
}

// Marshal encodes the prekey.
func (p *PQPrekey) Marshal() []byte {
	b := cryptobyte.NewFixedBuilder(make([]byte, 0, PQPrekeySize))
	p.add(b)
	return b.BytesOrPanic()
}

func (p *PQPrekey) add(b *cryptobyte.Builder) {
	b.AddUint32(p.ID)
	b.AddUint8(p.Kind)
	b.AddBytes(p.Key[:])
	b.AddBytes(p.Signature[:])
}

func (p *SignedPrekey) read(s *cryptobyte.String) bool {
	return s.ReadUint32(&p.ID) && s.CopyBytes(p.Public[:]) && s.CopyBytes(p.Signature[:])
}

func (p *OneTimePrekey) read(s *cryptobyte.String) bool {
	return s.ReadUint32(&p.ID) && s.CopyBytes(p.Public[:])
}

func (p *PQPrekey) read(s *cryptobyte.String) bool {
	return s.ReadUint32(&p.ID) && s.ReadUint8(&p.Kind) && s.CopyBytes(p.Key[:]) && s.CopyBytes(p.Signature[:])
}

// parseWhole decodes b with read, which must consume all of it.
func parseWhole(b []byte, what string, read func(*cryptobyte.String) bool) error {
	s := cryptobyte.String(b)
	return readWhole(read(&s), s, what)
}

// readWhole is parseWhole's verdict for a parser that read inline (to keep
// its variables on the stack): ok is whether every read succeeded, rest
// what is left of the input.
func readWhole(ok bool, rest cryptobyte.String, what string) error {
	if !ok {
		return fmt.Errorf("%w: %s truncated", ErrMalformed, what)
	}
	if !rest.Empty() {
		return fmt.Errorf("%w: %s: %d trailing bytes", ErrMalformed, what, len(rest))
	}
	return nil
}

// ParseSignedPrekey, ParseOneTimePrekey and ParsePQPrekey decode one
// encoded prekey strictly.
func ParseSignedPrekey(b []byte) (*SignedPrekey, error) {
	p := &SignedPrekey{}
	return p, parseWhole(b, "signed prekey", p.read)
}

func ParseOneTimePrekey(b []byte) (*OneTimePrekey, error) {
	p := &OneTimePrekey{}
	return p, parseWhole(b, "one-time prekey", p.read)
}

func ParsePQPrekey(b []byte) (*PQPrekey, error) {
	p := &PQPrekey{}
	return p, parseWhole(b, "post-quantum prekey", p.read)
}

// PrekeyBundle is what a sender fetches to start a conversation with a
// user who may be offline. It does not name the user: the sender knows
// whom it asked for, and a bundle for an address that does not exist has
// the same form (docs/mailbox.md, enumeration).
//
// Encoding: version (1) = 1 || identity X25519 (32) || identity Ed25519 (32)
// || signed prekey || has one-time (1) || [one-time prekey] || PQ prekey.
type PrekeyBundle struct {
	IdentityX25519  [32]byte
	IdentityEd25519 [32]byte
	Signed          SignedPrekey
	OneTime         *OneTimePrekey // nil when none was left
	PQ              PQPrekey       // one-time if any was left, else last resort
}

const bundleVersion = 1

// MaxBundle is the size of the largest encoded bundle.
const MaxBundle = 1 + 32 + 32 + SignedPrekeySize + 1 + OneTimePrekeySize + PQPrekeySize

// Marshal encodes the bundle.
func (b *PrekeyBundle) Marshal() []byte {
	bb := cryptobyte.NewFixedBuilder(make([]byte, 0, MaxBundle))
	bb.AddUint8(bundleVersion)
	bb.AddBytes(b.IdentityX25519[:])
	bb.AddBytes(b.IdentityEd25519[:])
	b.Signed.add(bb)
	if b.OneTime != nil {
		bb.AddUint8(1)
		b.OneTime.add(bb)
	} else {
		bb.AddUint8(0)
	}
	b.PQ.add(bb)
	return bb.BytesOrPanic()
}

// ParseBundle decodes a bundle strictly, without verifying it.
func ParseBundle(raw []byte) (*PrekeyBundle, error) {
	if len(raw) > MaxBundle {
		return nil, fmt.Errorf("%w: bundle of %d bytes", ErrMalformed, len(raw))
	}
	b := &PrekeyBundle{}
	var version, hasOneTime uint8
	err := parseWhole(raw, "bundle", func(s *cryptobyte.String) bool {
		if !s.ReadUint8(&version) || version != bundleVersion {
			return false
		}
		if !s.CopyBytes(b.IdentityX25519[:]) || !s.CopyBytes(b.IdentityEd25519[:]) || !b.Signed.read(s) || !s.ReadUint8(&hasOneTime) {
			return false
		}
		switch hasOneTime {
		case 0:
		case 1:
			b.OneTime = &OneTimePrekey{}
			if !b.OneTime.read(s) {
				return false
			}
		default:
			return false
		}
		return b.PQ.read(s)
	})
	switch {
	case len(raw) > 0 && version != bundleVersion:
		return nil, fmt.Errorf("%w: bundle version %d", ErrMalformed, version)
	case hasOneTime > 1:
		return nil, fmt.Errorf("%w: bundle's one-time flag is %d, not 0 or 1", ErrMalformed, hasOneTime)
	case err != nil:
		return nil, err
	}
	return b, nil
}

// Verify checks every signature in the bundle against the identity key it
// carries, and every key's form. Whether that identity key is the right
// one for the user is the client's question (trust on first use).
func (b *PrekeyBundle) Verify() error {
	id := ed25519.PublicKey(b.IdentityEd25519[:])
	if err := b.Signed.Verify(id); err != nil {
		return err
	}
	if err := b.PQ.Verify(id); err != nil {
		return err
	}
	if b.OneTime != nil {
		if _, err := ecdh.X25519().NewPublicKey(b.OneTime.Public[:]); err != nil || b.OneTime.Public == ([32]byte{}) {
			return fmt.Errorf("%w: one-time prekey %d", ErrPrekey, b.OneTime.ID)
		}
	}
	if b.IdentityX25519 == ([32]byte{}) {
		return fmt.Errorf("%w: zero identity key", ErrPrekey)
	}
	return nil
}

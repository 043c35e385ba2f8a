package mailbox

import (
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/mlkem"
	"errors"
	"fmt"
	"io"
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
var ErrPrekey = errors.New("mailbox: invalid prekey")

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
	var e enc
	e.fixed([]byte(signedContext))
	e.u32(id)
	e.fixed(pub)
	return e.b
}

func pqMessage(kind byte, id uint32, key []byte) []byte {
	var e enc
	e.fixed([]byte(pqContext))
	e.u8(kind)
	e.u32(id)
	e.fixed(key)
	return e.b
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
	var e enc
	e.u32(p.ID)
	e.fixed(p.Public[:])
	e.fixed(p.Signature[:])
	return e.b
}

// Marshal encodes the prekey.
func (p *OneTimePrekey) Marshal() []byte {
	var e enc
	e.u32(p.ID)
	e.fixed(p.Public[:])
	return e.b
}

// Marshal encodes the prekey.
func (p *PQPrekey) Marshal() []byte {
	var e enc
	e.u32(p.ID)
	e.u8(p.Kind)
	e.fixed(p.Key[:])
	e.fixed(p.Signature[:])
	return e.b
}

func (p *SignedPrekey) decode(d *dec) {
	p.ID = d.u32("prekey ID")
	d.fixed(p.Public[:], "prekey")
	d.fixed(p.Signature[:], "signature")
}

func (p *OneTimePrekey) decode(d *dec) {
	p.ID = d.u32("prekey ID")
	d.fixed(p.Public[:], "prekey")
}

func (p *PQPrekey) decode(d *dec) {
	p.ID = d.u32("prekey ID")
	p.Kind = d.u8("kind")
	d.fixed(p.Key[:], "prekey")
	d.fixed(p.Signature[:], "signature")
}

// ParseSignedPrekey, ParseOneTimePrekey and ParsePQPrekey decode one
// encoded prekey strictly.
func ParseSignedPrekey(b []byte) (*SignedPrekey, error) {
	p := &SignedPrekey{}
	d := &dec{b: b}
	p.decode(d)
	return p, d.done()
}

func ParseOneTimePrekey(b []byte) (*OneTimePrekey, error) {
	p := &OneTimePrekey{}
	d := &dec{b: b}
	p.decode(d)
	return p, d.done()
}

func ParsePQPrekey(b []byte) (*PQPrekey, error) {
	p := &PQPrekey{}
	d := &dec{b: b}
	p.decode(d)
	return p, d.done()
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
	var e enc
	e.u8(bundleVersion)
	e.fixed(b.IdentityX25519[:])
	e.fixed(b.IdentityEd25519[:])
	e.fixed(b.Signed.Marshal())
	if b.OneTime != nil {
		e.u8(1)
		e.fixed(b.OneTime.Marshal())
	} else {
		e.u8(0)
	}
	e.fixed(b.PQ.Marshal())
	return e.b
}

// ParseBundle decodes a bundle strictly, without verifying it.
func ParseBundle(raw []byte) (*PrekeyBundle, error) {
	if len(raw) > MaxBundle {
		return nil, fmt.Errorf("%w: bundle of %d bytes", ErrMalformed, len(raw))
	}
	d := &dec{b: raw}
	if v := d.u8("version"); v != bundleVersion && d.err == nil {
		return nil, fmt.Errorf("%w: bundle version %d", ErrMalformed, v)
	}
	b := &PrekeyBundle{}
	d.fixed(b.IdentityX25519[:], "identity key")
	d.fixed(b.IdentityEd25519[:], "identity key")
	b.Signed.decode(d)
	if d.bool("one-time flag") {
		b.OneTime = &OneTimePrekey{}
		b.OneTime.decode(d)
	}
	b.PQ.decode(d)
	if err := d.done(); err != nil {
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

// readFull reads n bytes from r.
func readFull(r io.Reader, n int) ([]byte, error) {
	b := make([]byte, n)
	_, err := io.ReadFull(r, b)
	return b, err
}

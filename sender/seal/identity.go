package seal

import (
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
)

// Identity is a user's long-term key pair: the X25519 key that message
// keys are agreed with (and that fragments are encrypted to, and that the
// provider knows as the mailbox owner's link key), and the Ed25519 key
// that signs the user's prekeys.
type Identity struct {
	X25519  *ecdh.PrivateKey
	Ed25519 ed25519.PrivateKey
}

// PublicIdentity is the public half of an Identity, as bundles and sender
// certificates carry it.
type PublicIdentity struct {
	X25519, Ed25519 [32]byte
}

const (
	identityVersion = 1
	// IdentitySize is the length of a marshaled Identity.
	IdentitySize = 1 + 32 + ed25519.SeedSize

	fingerprintContext = "sealnet fingerprint v1\x00"
)

// GenerateIdentity makes a new identity from 64 bytes of rng: the X25519
// private key, then the Ed25519 seed.
func GenerateIdentity(rng io.Reader) (*Identity, error) {
	var b [64]byte
	defer clear(b[:])
	if _, err := io.ReadFull(rng, b[:]); err != nil {
		return nil, fmt.Errorf("seal: reading randomness: %w", err)
	}
	x, err := ecdh.X25519().NewPrivateKey(b[:32])
	if err != nil {
		return nil, err
	}
	return &Identity{X25519: x, Ed25519: ed25519.NewKeyFromSeed(b[32:])}, nil
}

// Public returns the public keys.
func (id *Identity) Public() PublicIdentity {
	var p PublicIdentity
	copy(p.X25519[:], id.X25519.PublicKey().Bytes())
	copy(p.Ed25519[:], id.Ed25519.Public().(ed25519.PublicKey))
	return p
}

// MarshalBinary encodes the private keys: version (1) = 1 || X25519
// private key (32) || Ed25519 seed (32). The result is secret; the caller
// stores it encrypted and wipes it after use.
func (id *Identity) MarshalBinary() ([]byte, error) {
	if id == nil || id.X25519 == nil || len(id.Ed25519) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("%w: incomplete identity", ErrMalformed)
	}
	out := make([]byte, 0, IdentitySize)
	out = append(out, identityVersion)
	out = append(out, id.X25519.Bytes()...)
	return append(out, id.Ed25519.Seed()...), nil
}

// UnmarshalIdentity decodes what MarshalBinary wrote, strictly.
func UnmarshalIdentity(b []byte) (*Identity, error) {
	if len(b) != IdentitySize {
		return nil, fmt.Errorf("%w: identity of %d bytes, want %d", ErrMalformed, len(b), IdentitySize)
	}
	if b[0] != identityVersion {
		return nil, fmt.Errorf("%w: identity version %d", ErrMalformed, b[0])
	}
	x, err := ecdh.X25519().NewPrivateKey(b[1:33])
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return &Identity{X25519: x, Ed25519: ed25519.NewKeyFromSeed(b[33:])}, nil
}

// Fingerprint is what two people compare to be sure of each other's keys:
// the SHA-256 of "sealnet fingerprint v1\x00" || X25519 || Ed25519, as 64
// lowercase hex digits in 16 groups of 4 separated by spaces. It depends
// on this identity alone (not on who computes it or on any other key), so
// it is the same on every device and in every conversation.
func (p PublicIdentity) Fingerprint() string {
	h := sha256.New()
	h.Write([]byte(fingerprintContext))
	h.Write(p.X25519[:])
	h.Write(p.Ed25519[:])
	digits := hex.EncodeToString(h.Sum(nil))
	var b strings.Builder
	for i := 0; i < len(digits); i += 4 {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(digits[i : i+4])
	}
	return b.String()
}

// Equal compares two public identities in constant time.
func (p PublicIdentity) Equal(q PublicIdentity) bool {
	return subtle.ConstantTimeCompare(p.X25519[:], q.X25519[:])&
		subtle.ConstantTimeCompare(p.Ed25519[:], q.Ed25519[:]) == 1
}

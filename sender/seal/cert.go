package seal

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/crypto/cryptobyte"
)

// A sender certificate is a provider's statement "the user at Address has
// these identity keys, until Expires", signed with the provider's identity
// key (the one its directory descriptor publishes). A sender puts it inside
// the sealed envelope, so the recipient can check who sent a message while
// the recipient's provider sees nothing of the sender.
//
// Encoding (version 1):
//
//	version (1) = 1 || address (1-byte length, ≤ 128) || identity X25519 (32)
//	|| identity Ed25519 (32) || expires (8, Unix seconds) || provider key (32)
//	|| signature (64) over "sealnet sender certificate v1\x00" || everything before it
type Certificate struct {
	Address         string
	IdentityX25519  [32]byte
	IdentityEd25519 [32]byte
	Expires         time.Time
	Provider        [32]byte // the signing provider's Ed25519 identity key
}

// MaxAddress bounds an address (name@domain): in a certificate, and in the
// provider's protocol, which takes it from here.
const MaxAddress = 128

const (
	certVersion = 1
	certContext = "sealnet sender certificate v1\x00"
)

// MaxSignedCertificate is the size of the largest certificate
// SignCertificate makes (an envelope leaves room for up to MaxCertificate).
const MaxSignedCertificate = 1 + 1 + MaxAddress + 32 + 32 + 8 + 32 + ed25519.SignatureSize

// Certificate errors (VerifyCertificate; a certificate that does not
// decode is ErrMalformed). ErrCertificate, in errors.go, is Open's: the
// caller's check refused the certificate, and wraps the check's error.
var (
	ErrInvalidCertificate = errors.New("seal: sender certificate invalid")
	ErrExpired            = errors.New("seal: sender certificate expired")
)

func (c *Certificate) body() []byte {
	b := cryptobyte.NewBuilder(make([]byte, 0, MaxSignedCertificate))
	b.AddUint8(certVersion)
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(c.Address)) })
	b.AddBytes(c.IdentityX25519[:])
	b.AddBytes(c.IdentityEd25519[:])
	b.AddUint64(uint64(c.Expires.Unix()))
	b.AddBytes(c.Provider[:])
	return b.BytesOrPanic()
}

// SignCertificate returns the encoded certificate signed by the provider.
func SignCertificate(c Certificate, provider ed25519.PrivateKey) ([]byte, error) {
	if len(c.Address) == 0 || len(c.Address) > MaxAddress {
		return nil, fmt.Errorf("%w: address of %d bytes", ErrInvalidCertificate, len(c.Address))
	}
	copy(c.Provider[:], provider.Public().(ed25519.PublicKey))
	body := c.body()
	sig := ed25519.Sign(provider, append([]byte(certContext), body...))
	return append(body, sig...), nil
}

// ParseCertificate decodes a certificate without checking it.
func ParseCertificate(b []byte) (*Certificate, error) {
	if len(b) > MaxSignedCertificate || len(b) < ed25519.SignatureSize {
		return nil, fmt.Errorf("%w: certificate of %d bytes", ErrMalformed, len(b))
	}
	c := &Certificate{}
	var version uint8
	var addr cryptobyte.String
	var exp uint64
	// Read inline, not through parseWhole's callback: a closure would move
	// these variables to the heap on a path every received message takes.
	s := cryptobyte.String(b[:len(b)-ed25519.SignatureSize])
	ok := s.ReadUint8(&version) && version == certVersion &&
		s.ReadUint8LengthPrefixed(&addr) && len(addr) <= MaxAddress &&
		s.CopyBytes(c.IdentityX25519[:]) && s.CopyBytes(c.IdentityEd25519[:]) &&
		s.ReadUint64(&exp) && s.CopyBytes(c.Provider[:])
	err := readWhole(ok, s, "certificate")
	switch {
	case version != certVersion:
		return nil, fmt.Errorf("%w: certificate version %d", ErrMalformed, version)
	case len(addr) > MaxAddress:
		return nil, fmt.Errorf("%w: address of %d bytes, at most %d", ErrMalformed, len(addr), MaxAddress)
	case err != nil:
		return nil, err
	case exp > 1<<40:
		return nil, fmt.Errorf("%w: expiry out of range", ErrMalformed)
	}
	c.Address = string(addr)
	c.Expires = time.Unix(int64(exp), 0)
	return c, nil
}

// VerifyCertificate checks that b is a certificate signed by provider (the
// Ed25519 identity key the directory publishes for the provider of the
// address's domain), for an address in domain, and not expired at now.
func VerifyCertificate(b []byte, provider ed25519.PublicKey, domain string, now time.Time) (*Certificate, error) {
	c, err := ParseCertificate(b)
	if err != nil {
		return nil, err
	}
	if len(provider) != ed25519.PublicKeySize || string(c.Provider[:]) != string(provider) {
		return nil, fmt.Errorf("%w: signed by another provider key", ErrInvalidCertificate)
	}
	body := b[:len(b)-ed25519.SignatureSize]
	if !ed25519.Verify(provider, append([]byte(certContext), body...), b[len(body):]) {
		return nil, fmt.Errorf("%w: bad signature", ErrInvalidCertificate)
	}
	if _, d, ok := strings.Cut(c.Address, "@"); !ok || d != domain {
		return nil, fmt.Errorf("%w: address %q is not in domain %q", ErrInvalidCertificate, c.Address, domain)
	}
	if !now.Before(c.Expires) {
		return nil, fmt.Errorf("%w: since %v", ErrExpired, c.Expires.UTC().Format(time.RFC3339))
	}
	return c, nil
}

// Marshal re-encodes a parsed certificate body with sig (for round trips).
func (c *Certificate) marshalWith(sig []byte) []byte { return append(c.body(), sig...) }

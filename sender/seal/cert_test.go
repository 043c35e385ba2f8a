package seal

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"testing"
	"time"
)

func TestCertificate(t *testing.T) {
	provider := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, 32))
	now := time.Unix(1_800_000_000, 0)
	c := Certificate{Address: "alice@a", IdentityX25519: [32]byte{2}, IdentityEd25519: [32]byte{3}, Expires: now.Add(time.Hour)}
	b, err := SignCertificate(c, provider)
	if err != nil {
		t.Fatal(err)
	}
	pub := provider.Public().(ed25519.PublicKey)
	got, err := VerifyCertificate(b, pub, "a", now)
	if err != nil {
		t.Fatal(err)
	}
	if got.Address != c.Address || got.IdentityX25519 != c.IdentityX25519 || !got.Expires.Equal(c.Expires) {
		t.Fatalf("certificate says %+v", got)
	}
	if _, err := VerifyCertificate(b, pub, "a", now.Add(2*time.Hour)); !errors.Is(err, ErrExpired) {
		t.Fatalf("expired: got %v", err)
	}
	if _, err := VerifyCertificate(b, pub, "b", now); !errors.Is(err, ErrInvalidCertificate) {
		t.Fatalf("wrong domain: got %v", err)
	}
	other := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{2}, 32)).Public().(ed25519.PublicKey)
	if _, err := VerifyCertificate(b, other, "a", now); !errors.Is(err, ErrInvalidCertificate) {
		t.Fatalf("another provider's key: got %v", err)
	}
	for i := range b {
		mod := bytes.Clone(b)
		mod[i] ^= 1
		if _, err := VerifyCertificate(mod, pub, "a", now); err == nil {
			t.Fatalf("certificate with byte %d flipped verifies", i)
		}
	}
	for _, n := range []int{0, 10, len(b) - 1} {
		if _, err := ParseCertificate(b[:n]); err == nil {
			t.Fatalf("truncated to %d bytes accepted", n)
		}
	}
}

package seal

import (
	"crypto/ecdh"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"

	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/cryptobyte"

	"github.com/sealnet/sealnet/internal/crypto/hmac256"
)

// Fragments (docs/envelope.md §5). Each fragment blob is
//
//	e (32) || ChaCha20-Poly1305(k, nonce 0, ad = e || IK_B,
//	          message ID (16) || index (2) || count (2) || chunk length (2) || chunk || zeros)
//	k = HKDF-SHA256(ikm = X25519(e, IK_B), salt = e || IK_B, info = "sealnet sealed fragment v1")
//
// with a fresh ephemeral X25519 key e per fragment whose unused top bit
// (RFC 7748 §5) is random, so every byte of a blob is uniform.
const (
	fragmentInfo      = "sealnet sealed fragment v1"
	envelopeIDContext = "sealnet envelope id v1\x00"

	fragmentHeaderSize = 16 + 2 + 2 + 2
	// FragmentOverhead is what a fragment adds to its chunk.
	FragmentOverhead = 32 + tagSize + fragmentHeaderSize
	// MinFragmentSize and MaxFragmentSize bound the blob size: the largest
	// envelope a provider accepts (mailbox: 2,048 bytes on a direct link;
	// mailbox/proto.MaxMixEnvelope through the mix network).
	MinFragmentSize = 128
	MaxFragmentSize = 2048
	// MaxFragments is the most fragments of one message.
	MaxFragments = 64
	// MaxChunk is the largest chunk of any fragment.
	MaxChunk = MaxFragmentSize - FragmentOverhead
)

// Fragment is an opened fragment blob.
type Fragment struct {
	MessageID    [16]byte
	Index, Count int
	Chunk        []byte
}

// EnvelopeID is the provider-level envelope ID of fragment index of a
// message: the first 16 bytes of SHA-256("sealnet envelope id v1\x00" ||
// message ID || index (2, big endian)). A retransmitted fragment has the
// same ID, so the provider stores it once; without the message ID, which
// only the two ends know, IDs of one message cannot be linked.
func EnvelopeID(messageID [16]byte, index int) [16]byte {
	h := sha256.New()
	h.Write([]byte(envelopeIDContext))
	h.Write(messageID[:])
	h.Write(binary.BigEndian.AppendUint16(nil, uint16(index)))
	return [16]byte(h.Sum(nil))
}

// Fragments returns how many fragments of size bytes a sealed inner
// message of n bytes needs (which may exceed MaxFragments).
func Fragments(n, size int) int {
	c := size - FragmentOverhead
	if c <= 0 {
		return 0
	}
	return max(1, (n+c-1)/c)
}

// SealEnvelope builds the fragment blobs of one message: the sealed inner
// message (certificate || session message) cut into chunks, each chunk
// encrypted to the recipient's X25519 identity key under a fresh
// ephemeral key, each blob exactly size bytes. The certificate and the
// session message are checked for form only. It reads 33 bytes of rng
// per fragment (ephemeral key, then the byte whose low bit is the key's
// top bit). Envelope IDs come from EnvelopeID(messageID, i).
func SealEnvelope(rng io.Reader, recipient PublicIdentity, certificate, sessionMessage []byte, messageID [16]byte, size int) ([][]byte, error) {
	if size < MinFragmentSize || size > MaxFragmentSize {
		return nil, fmt.Errorf("%w: fragment size %d, want %d..%d", ErrMalformed, size, MinFragmentSize, MaxFragmentSize)
	}
	if len(certificate) == 0 || len(certificate) > MaxCertificate {
		return nil, fmt.Errorf("%w: certificate of %d bytes", ErrTooLarge, len(certificate))
	}
	if _, err := ParseCertificate(certificate); err != nil {
		return nil, fmt.Errorf("%w: certificate: %w", ErrMalformed, err)
	}
	if _, err := parseMessage(sessionMessage); err != nil {
		return nil, err
	}
	rk, err := ecdh.X25519().NewPublicKey(recipient.X25519[:])
	if err != nil {
		return nil, fmt.Errorf("%w: recipient key", ErrMalformed)
	}
	inner := appendInner(make([]byte, 0, 3+len(certificate)+len(sessionMessage)), certificate, sessionMessage)
	defer clear(inner) // it holds the certificate in clear
	chunk := size - FragmentOverhead
	count := Fragments(len(inner), size)
	if count > MaxFragments {
		return nil, fmt.Errorf("%w: %d bytes need %d fragments of %d bytes, at most %d", ErrTooLarge, len(inner), count, size, MaxFragments)
	}
	blobs := make([][]byte, count)
	pt := make([]byte, size-32-tagSize)
	defer clear(pt)
	for i := range count {
		putFragment(pt, messageID, i, count, inner[i*chunk:min(len(inner), (i+1)*chunk)])
		if blobs[i], err = sealFragment(rng, rk, recipient.X25519[:], pt, size); err != nil {
			return nil, err
		}
	}
	return blobs, nil
}

// sealFragment encrypts one fragment plaintext to the recipient.
func sealFragment(rng io.Reader, rk *ecdh.PublicKey, rkBytes, pt []byte, size int) ([]byte, error) {
	var r [33]byte
	defer clear(r[:])
	if _, err := io.ReadFull(rng, r[:]); err != nil {
		return nil, fmt.Errorf("seal: reading randomness: %w", err)
	}
	e, err := ecdh.X25519().NewPrivateKey(r[:32])
	if err != nil {
		return nil, err
	}
	dh, err := e.ECDH(rk)
	if err != nil {
		return nil, fmt.Errorf("%w: recipient key: %v", ErrMalformed, err)
	}
	defer clear(dh)
	blob := make([]byte, 32, size)
	copy(blob, e.PublicKey().Bytes())
	// X25519 ignores the top bit of a public key (RFC 7748 §5) and honest
	// keys always have it clear; set it at random so that it is not a
	// constant. The exact bytes are bound by the salt and ad below.
	blob[31] |= r[32] << 7
	salted := append(blob[:32:32], rkBytes...)
	aead, err := fragmentAEAD(dh, salted)
	if err != nil {
		return nil, err
	}
	return aead.Seal(blob, zeroNonce[:], pt, salted), nil
}

// fragmentAEAD derives the fragment key from the X25519 result and
// e || IK_B, wiping the key bytes it held.
func fragmentAEAD(dh, salt []byte) (interface {
	Seal(dst, nonce, plaintext, ad []byte) []byte
	Open(dst, nonce, ciphertext, ad []byte) ([]byte, error)
}, error) {
	var k [32]byte
	defer clear(k[:])
	hmac256.HKDF(k[:], salt, dh, []byte(fragmentInfo))
	return chacha20poly1305.New(k[:])
}

// OpenFragment decrypts one fragment blob addressed to me and checks its
// form: ErrMalformed for a size out of range or a bad structure, ErrAuth
// for anything that does not decrypt (another recipient, changed bytes,
// low-order ephemeral key).
func OpenFragment(me *Identity, blob []byte) (*Fragment, error) {
	pt, err := openFragment(me, blob)
	if err != nil {
		return nil, err
	}
	return parseFragment(pt)
}

// openFragment returns the decrypted fragment plaintext.
func openFragment(me *Identity, blob []byte) ([]byte, error) {
	if me == nil || me.X25519 == nil {
		return nil, fmt.Errorf("%w: no identity", ErrMalformed)
	}
	if len(blob) < MinFragmentSize || len(blob) > MaxFragmentSize {
		return nil, fmt.Errorf("%w: fragment of %d bytes", ErrMalformed, len(blob))
	}
	e, err := ecdh.X25519().NewPublicKey(blob[:32])
	if err != nil {
		return nil, fmt.Errorf("%w: ephemeral key", ErrMalformed)
	}
	dh, err := me.X25519.ECDH(e)
	if err != nil {
		return nil, fmt.Errorf("%w: fragment: %v", ErrAuth, err)
	}
	defer clear(dh)
	salt := append(blob[:32:32], me.X25519.PublicKey().Bytes()...)
	aead, err := fragmentAEAD(dh, salt)
	if err != nil {
		return nil, err
	}
	pt, err := aead.Open(nil, zeroNonce[:], blob[32:], salt)
	if err != nil {
		return nil, fmt.Errorf("%w: fragment", ErrAuth)
	}
	return pt, nil
}

// parseFragment decodes a fragment plaintext strictly: 1 ≤ count ≤
// MaxFragments, index < count, a chunk of at least one byte that fits,
// and zeros after it.
func parseFragment(pt []byte) (*Fragment, error) {
	s := cryptobyte.String(pt)
	f := &Fragment{}
	var index, count, n uint16
	var chunk []byte
	// Each case reads or checks one field, in field order, and stops at
	// the first failure.
	switch {
	case !s.CopyBytes(f.MessageID[:]):
		return nil, truncated("message ID")
	case !s.ReadUint16(&index):
		return nil, truncated("index")
	case !s.ReadUint16(&count):
		return nil, truncated("count")
	case !s.ReadUint16(&n):
		return nil, truncated("chunk length")
	case count < 1 || count > MaxFragments:
		return nil, malformed("fragment count %d", count)
	case index >= count:
		return nil, malformed("fragment %d of %d", index, count)
	case n == 0:
		return nil, malformed("empty chunk")
	case !s.ReadBytes(&chunk, int(n)):
		return nil, truncated("chunk")
	}
	var nz byte
	for _, b := range s {
		nz |= b
	}
	if nz != 0 {
		return nil, fmt.Errorf("%w: fragment padding not zero", ErrMalformed)
	}
	f.Index, f.Count = int(index), int(count)
	f.Chunk = chunk[:n:n] // appending to it must not overwrite the padding
	return f, nil
}

// marshalFragment writes the plaintext of f for blobs of size bytes (the
// inverse of parseFragment).
func marshalFragment(f *Fragment, size int) []byte {
	pt := make([]byte, size-32-tagSize)
	putFragment(pt, f.MessageID, f.Index, f.Count, f.Chunk)
	return pt
}

// putFragment writes a fragment plaintext into pt, which it fills.
func putFragment(pt []byte, id [16]byte, index, count int, chunk []byte) {
	clear(pt)
	copy(pt, id[:])
	binary.BigEndian.PutUint16(pt[16:], uint16(index))
	binary.BigEndian.PutUint16(pt[18:], uint16(count))
	binary.BigEndian.PutUint16(pt[20:], uint16(len(chunk)))
	copy(pt[fragmentHeaderSize:], chunk)
}

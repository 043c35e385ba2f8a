package directory

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"fmt"
)

// Document envelope: magic || version || '\n' || Raw length (u32, big
// endian) || Raw || signature count (u8) || count × (key (32) || sig (64)).
const (
	documentMagic      = "SNDOC"
	documentVersion    = '1'
	documentContext    = "sealnet document v1\x00"
	documentHeaderSize = len(documentMagic) + 2 + 4
	signatureEntrySize = ed25519.PublicKeySize + ed25519.SignatureSize
	// maxSignedDocumentSize bounds a whole signed document.
	maxSignedDocumentSize = documentHeaderSize + MaxDocumentSize + 1 + MaxSignatures*signatureEntrySize
)

// Signature is one authority's Ed25519 signature over a document's Raw
// bytes.
type Signature struct {
	Key ed25519.PublicKey
	Sig []byte
}

// SignedDocument is a document's exact bytes plus authority signatures
// over them.
type SignedDocument struct {
	// Raw is the document's canonical encoding (Document.Marshal); the
	// signatures cover exactly these bytes.
	Raw []byte
	// Doc is Raw decoded.
	Doc *Document
	// Signatures are kept in the order they were added or decoded.
	// ParseSignedDocument does not check them; Verify does.
	Signatures []Signature
}

// NewSignedDocument marshals doc and returns it with no signatures yet.
func NewSignedDocument(doc *Document) (*SignedDocument, error) {
	raw, err := doc.Marshal()
	if err != nil {
		return nil, err
	}
	return &SignedDocument{Raw: raw, Doc: doc}, nil
}

// SignDocument signs raw, a document's canonical encoding, as the
// authority holding priv. Like ed25519.Sign, it panics if priv is not
// ed25519.PrivateKeySize bytes. The key is rederived from its seed, so a
// corrupted public half in priv cannot produce a signature that names the
// wrong key.
func SignDocument(raw []byte, priv ed25519.PrivateKey) Signature {
	if len(priv) != ed25519.PrivateKeySize {
		panic("directory: SignDocument with a private key of the wrong size")
	}
	priv = ed25519.NewKeyFromSeed(priv.Seed())
	return Signature{
		Key: bytes.Clone(priv.Public().(ed25519.PublicKey)),
		Sig: ed25519.Sign(priv, withContext(documentContext, raw)),
	}
}

// valid reports whether sig is a well-formed signature over raw.
func (sig *Signature) valid(raw []byte) bool {
	return len(sig.Key) == ed25519.PublicKeySize && len(sig.Sig) == ed25519.SignatureSize &&
		ed25519.Verify(sig.Key, withContext(documentContext, raw), sig.Sig)
}

// AddSignature verifies sig over s.Raw (ErrSignature if it does not
// verify) and adds it. A signature by a key that already has a valid
// signature on s is ignored; one that replaces an invalid signature by the
// same key takes its place. At most MaxSignatures are kept (ErrInvalid).
func (s *SignedDocument) AddSignature(sig Signature) error {
	if !sig.valid(s.Raw) {
		return fmt.Errorf("%w: document signature does not verify", ErrSignature)
	}
	sig = Signature{Key: bytes.Clone(sig.Key), Sig: bytes.Clone(sig.Sig)}
	for i := range s.Signatures {
		if sig.Key.Equal(s.Signatures[i].Key) {
			if !s.Signatures[i].valid(s.Raw) {
				s.Signatures[i] = sig
			}
			return nil
		}
	}
	if len(s.Signatures) >= MaxSignatures {
		return fmt.Errorf("%w: already %d signatures, at most %d allowed", ErrInvalid, len(s.Signatures), MaxSignatures)
	}
	s.Signatures = append(s.Signatures, sig)
	return nil
}

// Marshal encodes s: Raw and the signatures in their order. It fails
// (ErrInvalid) only if s breaks the limits of the encoding: an empty or
// oversized Raw, more than MaxSignatures signatures, or a key or signature
// of the wrong length.
func (s *SignedDocument) Marshal() ([]byte, error) {
	if len(s.Raw) == 0 || len(s.Raw) > MaxDocumentSize {
		return nil, fmt.Errorf("%w: document is %d bytes, want 1 to %d", ErrInvalid, len(s.Raw), MaxDocumentSize)
	}
	if len(s.Signatures) > MaxSignatures {
		return nil, fmt.Errorf("%w: %d signatures, at most %d allowed", ErrInvalid, len(s.Signatures), MaxSignatures)
	}
	out := make([]byte, 0, documentHeaderSize+len(s.Raw)+1+len(s.Signatures)*signatureEntrySize)
	out = append(out, documentMagic...)
	out = append(out, documentVersion, '\n')
	out = binary.BigEndian.AppendUint32(out, uint32(len(s.Raw)))
	out = append(out, s.Raw...)
	out = append(out, byte(len(s.Signatures)))
	for i, sig := range s.Signatures {
		if len(sig.Key) != ed25519.PublicKeySize || len(sig.Sig) != ed25519.SignatureSize {
			return nil, fmt.Errorf("%w: signature %d has a %d-byte key and a %d-byte signature, want %d and %d",
				ErrInvalid, i, len(sig.Key), len(sig.Sig), ed25519.PublicKeySize, ed25519.SignatureSize)
		}
		out = append(out, sig.Key...)
		out = append(out, sig.Sig...)
	}
	return out, nil
}

// parseEnvelope splits a signed document into Raw and signatures without
// looking inside Raw. The results are copies; b is not retained.
func parseEnvelope(b []byte) (*SignedDocument, error) {
	if len(b) > maxSignedDocumentSize {
		return nil, fmt.Errorf("%w: signed document is %d bytes, at most %d allowed", ErrMalformed, len(b), maxSignedDocumentSize)
	}
	raw, rest, err := parseHeader(b, documentMagic, documentVersion, "document", MaxDocumentSize)
	if err != nil {
		return nil, err
	}
	if len(rest) < 1 {
		return nil, fmt.Errorf("%w: document truncated before its signature count", ErrMalformed)
	}
	n := int(rest[0])
	rest = rest[1:]
	switch {
	case n > MaxSignatures:
		return nil, fmt.Errorf("%w: %d signatures, at most %d allowed", ErrMalformed, n, MaxSignatures)
	case len(rest) < n*signatureEntrySize:
		return nil, fmt.Errorf("%w: document truncated in its signatures (%d bytes for %d)", ErrMalformed, len(rest), n)
	case len(rest) > n*signatureEntrySize:
		return nil, fmt.Errorf("%w: %d trailing bytes after the signatures", ErrMalformed, len(rest)-n*signatureEntrySize)
	}
	s := &SignedDocument{Raw: bytes.Clone(raw), Signatures: make([]Signature, n)}
	for i := range s.Signatures {
		e := rest[i*signatureEntrySize:]
		s.Signatures[i] = Signature{
			Key: bytes.Clone(e[:ed25519.PublicKeySize]),
			Sig: bytes.Clone(e[ed25519.PublicKeySize:signatureEntrySize]),
		}
	}
	return s, nil
}

// ParseSignedDocument decodes a signed document: the envelope, then Raw,
// which must be a valid document in canonical form. It does NOT check the
// signatures; use Verify for anything received from the network.
func ParseSignedDocument(b []byte) (*SignedDocument, error) {
	s, err := parseEnvelope(b)
	if err != nil {
		return nil, err
	}
	if s.Doc, err = decodeDocument(s.Raw); err != nil {
		return nil, err
	}
	return s, nil
}

// Verify parses b and returns it only if at least threshold distinct keys
// among authorities produced valid signatures over its Raw bytes.
// Signatures by keys not in authorities are ignored, and a key that signed
// more than once counts once. Signatures are checked before the document
// is decoded, so unauthenticated bytes never reach the decoder.
//
// Errors: ErrThreshold, wrapped with "k of n valid, need t", when too few
// authorities signed, and also when the configuration cannot be met
// (threshold below 1 or above the number of distinct authorities, or an
// authority key of the wrong length); ErrMalformed or ErrInvalid when the
// signed bytes are not a valid document.
//
// Verify does not check that the document is current: see the package
// documentation.
func Verify(b []byte, authorities []ed25519.PublicKey, threshold int) (*SignedDocument, error) {
	keys := make(map[[ed25519.PublicKeySize]byte]bool, len(authorities))
	for i, k := range authorities {
		if len(k) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("%w: authority key %d is %d bytes, want %d", ErrThreshold, i, len(k), ed25519.PublicKeySize)
		}
		keys[[ed25519.PublicKeySize]byte(k)] = true
	}
	if threshold < 1 || threshold > len(keys) {
		return nil, fmt.Errorf("%w: threshold %d cannot be used with %d distinct authority keys", ErrThreshold, threshold, len(keys))
	}
	s, err := parseEnvelope(b)
	if err != nil {
		return nil, err
	}
	valid := make(map[[ed25519.PublicKeySize]byte]bool, len(s.Signatures))
	for i := range s.Signatures {
		sig := &s.Signatures[i]
		k := [ed25519.PublicKeySize]byte(sig.Key)
		if !keys[k] || valid[k] {
			continue
		}
		if sig.valid(s.Raw) {
			valid[k] = true
		}
	}
	if len(valid) < threshold {
		return nil, fmt.Errorf("%w: %d of %d valid, need %d", ErrThreshold, len(valid), len(keys), threshold)
	}
	if s.Doc, err = decodeDocument(s.Raw); err != nil {
		return nil, err
	}
	return s, nil
}

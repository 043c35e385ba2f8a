package seal

import (
	"crypto/mlkem"
	"fmt"

	"golang.org/x/crypto/cryptobyte"
)

// Session message encodings (big endian; docs/envelope.md §3.3):
//
//	initial   0x03 || session ID (16) || IK_A X25519 (32) || IK_A Ed25519 (32) || EK_A (32)
//	          || SPK ID (4) || has OPK (1) || OPK ID (4) || PQ ID (4) || PQ kind (1)
//	          || ML-KEM-768 ciphertext (1088) || n (4) || salt (16) || AEAD ciphertext
//	follow-up 0x04 || session ID (16) || n (4) || salt (16) || AEAD ciphertext
//
// The AEAD ciphertext is ChaCha20-Poly1305, nonce zero, under the key
// HKDF-Expand(MK_n, "sealnet message key v2" || salt, 32), with associated
// data = everything before it || initiator's X25519 identity key ||
// responder's X25519 identity key. The salt is fresh randomness per
// message, so a session state restored from a backup, which repeats n and
// so MK_n, still never repeats a key (docs/envelope.md §3.2).
//
// Version 1 (types 0x01 and 0x02: the same without the salt, the AEAD key
// MK_n itself) is still opened, for messages sealed before version 2 in
// sessions that exist; it is never sealed.
const (
	typeInitial    = 0x03
	typeFollowUp   = 0x04
	typeInitialV1  = 0x01
	typeFollowUpV1 = 0x02

	// InitialOverhead and FollowUpOverhead are the bytes a session message
	// adds to its plaintext.
	InitialOverhead  = initialHeaderSize + tagSize
	FollowUpOverhead = followUpHeaderSize + tagSize

	// MaxPlaintext is the largest plaintext Seal accepts.
	MaxPlaintext = 64 << 10
	// MaxSessionMessage is the largest session message (an initial message
	// of MaxPlaintext bytes).
	MaxSessionMessage = InitialOverhead + MaxPlaintext

	// maxN: message numbers run from 0 to maxN-1; a session that has sent
	// maxN messages is used up.
	maxN = 1<<32 - 1

	// saltSize is the per-message randomness of a version 2 message.
	saltSize = 16

	pendingSize        = 32 + 4 + 1 + 4 + 4 + 1 + mlkem.CiphertextSize768
	initialHeaderSize  = 1 + 16 + 32 + 32 + pendingSize + 4 + saltSize
	followUpHeaderSize = 1 + 16 + 4 + saltSize
	tagSize            = 16
)

// initialHeader is what an initial message carries besides the sender's
// identity: what the responder needs to repeat the key agreement. The
// initiator keeps it (Session.pending) until it hears from the responder.
type initialHeader struct {
	ephemeral [32]byte
	spkID     uint32
	hasOPK    bool
	opkID     uint32
	pqID      uint32
	pqKind    byte
	kemCT     [mlkem.CiphertextSize768]byte
}

// add writes the header; its inverse is read.
func (h *initialHeader) add(b *cryptobyte.Builder) {
	b.AddBytes(h.ephemeral[:])
	b.AddUint32(h.spkID)
	b.AddUint8(boolByte(h.hasOPK))
	b.AddUint32(h.opkID)
	b.AddUint32(h.pqID)
	b.AddUint8(h.pqKind)
	b.AddBytes(h.kemCT[:])
}

// read decodes a header from s strictly, naming the first field that is
// short or out of range. Each case reads one field and stops at the
// first failure, in field order.
func (h *initialHeader) read(s *cryptobyte.String) error {
	var hasOPK uint8
	switch {
	case !s.CopyBytes(h.ephemeral[:]):
		return truncated("ephemeral key")
	case !s.ReadUint32(&h.spkID):
		return truncated("signed prekey ID")
	case !s.ReadUint8(&hasOPK):
		return truncated("one-time prekey flag")
	case hasOPK > 1:
		return malformed("one-time prekey flag is %d, not 0 or 1", hasOPK)
	case !s.ReadUint32(&h.opkID):
		return truncated("one-time prekey ID")
	case !s.ReadUint32(&h.pqID):
		return truncated("PQ prekey ID")
	case !s.ReadUint8(&h.pqKind):
		return truncated("PQ prekey kind")
	case !s.CopyBytes(h.kemCT[:]):
		return truncated("ML-KEM ciphertext")
	}
	h.hasOPK = hasOPK == 1
	switch {
	case !h.hasOPK && h.opkID != 0:
		return malformed("one-time prekey ID %d without a one-time prekey", h.opkID)
	case h.pqKind != PQOneTime && h.pqKind != PQLastResort:
		return malformed("PQ prekey kind %d", h.pqKind)
	}
	return nil
}

// message is a parsed session message. header and ciphertext alias the
// input.
type message struct {
	initial    bool
	v1         bool // version 1: no salt, the AEAD key is MK_n
	sessionID  [16]byte
	sender     PublicIdentity // initial only
	init       initialHeader  // initial only
	n          uint32
	salt       [saltSize]byte // version 2 only
	header     []byte         // everything before the ciphertext
	ciphertext []byte
}

// parseMessage decodes a session message strictly. It checks the form
// only; nothing is decrypted.
func parseMessage(b []byte) (*message, error) {
	if len(b) > MaxSessionMessage {
		return nil, fmt.Errorf("%w: session message of %d bytes", ErrTooLarge, len(b))
	}
	s := cryptobyte.String(b)
	m := &message{}
	var t uint8
	if !s.ReadUint8(&t) {
		return nil, truncated("message type")
	}
	// One case per message version: a new version is a new case here and
	// in appendHeader.
	switch t {
	case typeInitial:
		m.initial = true
	case typeFollowUp:
	case typeInitialV1:
		m.initial, m.v1 = true, true
	case typeFollowUpV1:
		m.v1 = true
	default:
		return nil, fmt.Errorf("%w: message type 0x%02x", ErrMalformed, t)
	}
	if !s.CopyBytes(m.sessionID[:]) {
		return nil, truncated("session ID")
	}
	if m.initial {
		if !s.CopyBytes(m.sender.X25519[:]) || !s.CopyBytes(m.sender.Ed25519[:]) {
			return nil, truncated("identity key")
		}
		if err := m.init.read(&s); err != nil {
			return nil, err
		}
	}
	switch {
	case !s.ReadUint32(&m.n):
		return nil, truncated("message number")
	case m.n == maxN:
		return nil, malformed("message number %d", m.n)
	case !m.v1 && !s.CopyBytes(m.salt[:]):
		return nil, truncated("salt")
	}
	m.header = b[:len(b)-len(s)]
	m.ciphertext = s
	if len(m.ciphertext) < tagSize {
		return nil, fmt.Errorf("%w: ciphertext of %d bytes", ErrMalformed, len(m.ciphertext))
	}
	return m, nil
}

// appendHeader writes the header of message n of a session, version 2
// with salt, or version 1 if salt is nil (tests and round trips only:
// Seal writes version 2).
func appendHeader(dst []byte, id [16]byte, sender *PublicIdentity, init *initialHeader, n uint32, salt *[saltSize]byte) []byte {
	var t byte
	switch {
	case init != nil && salt != nil:
		t = typeInitial
	case init != nil:
		t = typeInitialV1
	case salt != nil:
		t = typeFollowUp
	default:
		t = typeFollowUpV1
	}
	b := cryptobyte.NewBuilder(dst)
	b.AddUint8(t)
	b.AddBytes(id[:])
	if init != nil {
		b.AddBytes(sender.X25519[:])
		b.AddBytes(sender.Ed25519[:])
		init.add(b)
	}
	b.AddUint32(n)
	if salt != nil {
		b.AddBytes(salt[:])
	}
	return b.BytesOrPanic()
}

// marshal re-encodes a parsed message (for round-trip checks).
func (m *message) marshal() []byte {
	var init *initialHeader
	if m.initial {
		init = &m.init
	}
	salt := &m.salt
	if m.v1 {
		salt = nil
	}
	out := appendHeader(nil, m.sessionID, &m.sender, init, m.n, salt)
	return append(out, m.ciphertext...)
}

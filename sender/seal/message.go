package seal

import (
	"crypto/mlkem"
	"fmt"
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

func (h *initialHeader) encode(e *enc) {
	e.fixed(h.ephemeral[:])
	e.u32(h.spkID)
	e.bool(h.hasOPK)
	e.u32(h.opkID)
	e.u32(h.pqID)
	e.u8(h.pqKind)
	e.fixed(h.kemCT[:])
}

func (h *initialHeader) decode(d *dec) {
	d.fixed(h.ephemeral[:], "ephemeral key")
	h.spkID = d.u32("signed prekey ID")
	h.hasOPK = d.bool("one-time prekey flag")
	h.opkID = d.u32("one-time prekey ID")
	h.pqID = d.u32("PQ prekey ID")
	h.pqKind = d.u8("PQ prekey kind")
	d.fixed(h.kemCT[:], "ML-KEM ciphertext")
	if d.err != nil {
		return
	}
	if !h.hasOPK && h.opkID != 0 {
		d.invalid("one-time prekey ID %d without a one-time prekey", h.opkID)
	}
	if h.pqKind != PQOneTime && h.pqKind != PQLastResort {
		d.invalid("PQ prekey kind %d", h.pqKind)
	}
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
	d := &dec{b: b}
	m := &message{}
	switch t := d.u8("message type"); {
	case d.err != nil:
		return nil, d.err
	case t == typeInitial:
		m.initial = true
	case t == typeFollowUp:
	case t == typeInitialV1:
		m.initial, m.v1 = true, true
	case t == typeFollowUpV1:
		m.v1 = true
	default:
		return nil, fmt.Errorf("%w: message type 0x%02x", ErrMalformed, t)
	}
	d.fixed(m.sessionID[:], "session ID")
	if m.initial {
		d.fixed(m.sender.X25519[:], "identity key")
		d.fixed(m.sender.Ed25519[:], "identity key")
		m.init.decode(d)
	}
	m.n = d.u32("message number")
	if d.err == nil && m.n == maxN {
		d.invalid("message number %d", m.n)
	}
	if !m.v1 {
		d.fixed(m.salt[:], "salt")
	}
	m.header = b[:len(b)-len(d.b)]
	m.ciphertext = d.rest()
	if d.err != nil {
		return nil, d.err
	}
	if len(m.ciphertext) < tagSize {
		return nil, fmt.Errorf("%w: ciphertext of %d bytes", ErrMalformed, len(m.ciphertext))
	}
	return m, nil
}

// appendHeader writes the header of message n of a session, version 2
// with salt, or version 1 if salt is nil (tests and round trips only:
// Seal writes version 2).
func appendHeader(dst []byte, id [16]byte, sender *PublicIdentity, init *initialHeader, n uint32, salt *[saltSize]byte) []byte {
	e := enc{b: dst}
	t := [2]byte{typeFollowUpV1, typeFollowUp}
	if init != nil {
		t = [2]byte{typeInitialV1, typeInitial}
	}
	e.u8(t[boolByte(salt != nil)])
	e.fixed(id[:])
	if init != nil {
		e.fixed(sender.X25519[:])
		e.fixed(sender.Ed25519[:])
		init.encode(&e)
	}
	e.u32(n)
	if salt != nil {
		e.fixed(salt[:])
	}
	return e.b
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

package seal

import (
	"crypto/subtle"
	"fmt"
	"slices"
)

// Session encoding (version 1; docs/envelope.md §3.5):
//
//	version (1) = 1 || role (1: initiator, 2: responder) || session ID (16)
//	|| own X25519 (32) || own Ed25519 (32) || peer X25519 (32) || peer Ed25519 (32)
//	|| sending chain key (32) || next sending n (4)
//	|| receiving chain key (32) || next expected n (4)
//	|| pending (1) || [initial header: EK_A (32) || SPK ID (4) || has OPK (1)
//	   || OPK ID (4) || PQ ID (4) || PQ kind (1) || ML-KEM ciphertext (1088)]
//	|| skipped count (2, ≤ 256) || count × (n (4) || message key (32)), n ascending
//
// Canonical: pending only for an initiator, and exactly while it has
// received nothing (next expected n = 0); a responder has received at
// least one message; every skipped n is below the next expected one.
const (
	sessionVersion = 1
	// MaxSessionSize is the largest encoded Session.
	MaxSessionSize = 2 + 16 + 4*32 + 2*(32+4) + 1 + pendingSize + 2 + MaxSkipped*(4+32)
)

// MarshalBinary encodes the session's state, secrets included: the
// caller stores it encrypted, replaces the previous copy, and wipes the
// result after use.
func (s *Session) MarshalBinary() ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := enc{b: make([]byte, 0, 512)}
	e.u8(sessionVersion)
	e.u8(byte(s.role))
	e.fixed(s.id[:])
	e.fixed(s.self.X25519[:])
	e.fixed(s.self.Ed25519[:])
	e.fixed(s.peer.X25519[:])
	e.fixed(s.peer.Ed25519[:])
	e.fixed(s.st.sendCK[:])
	e.u32(s.st.sendN)
	e.fixed(s.st.recvCK[:])
	e.u32(s.st.recvN)
	e.bool(s.st.pending != nil)
	if s.st.pending != nil {
		s.st.pending.encode(&e)
	}
	ns := make([]uint32, 0, len(s.st.skipped))
	for n := range s.st.skipped {
		ns = append(ns, n)
	}
	slices.Sort(ns)
	e.u16(uint16(len(ns)))
	for _, n := range ns {
		k := s.st.skipped[n]
		e.u32(n)
		e.fixed(k[:])
		clear(k[:])
	}
	return e.b, nil
}

// UnmarshalSession decodes what MarshalBinary wrote, strictly.
func UnmarshalSession(b []byte) (*Session, error) {
	if len(b) > MaxSessionSize {
		return nil, fmt.Errorf("%w: session of %d bytes", ErrMalformed, len(b))
	}
	d := &dec{b: b}
	if v := d.u8("version"); d.err == nil && v != sessionVersion {
		return nil, fmt.Errorf("%w: session version %d", ErrMalformed, v)
	}
	s := &Session{role: Role(d.u8("role"))}
	if d.err == nil && s.role != Initiator && s.role != Responder {
		d.invalid("role %d", s.role)
	}
	d.fixed(s.id[:], "session ID")
	d.fixed(s.self.X25519[:], "identity key")
	d.fixed(s.self.Ed25519[:], "identity key")
	d.fixed(s.peer.X25519[:], "identity key")
	d.fixed(s.peer.Ed25519[:], "identity key")
	d.fixed(s.st.sendCK[:], "chain key")
	s.st.sendN = d.u32("sending message number")
	d.fixed(s.st.recvCK[:], "chain key")
	s.st.recvN = d.u32("receiving message number")
	if d.bool("pending flag") {
		s.st.pending = &initialHeader{}
		s.st.pending.decode(d)
	}
	count := int(d.u16("skipped count"))
	if d.err == nil && count > MaxSkipped {
		d.invalid("%d skipped keys, at most %d", count, MaxSkipped)
	}
	if d.err == nil && count > 0 {
		s.st.skipped = make(map[uint32][32]byte, count)
	}
	var prev uint32
	for i := 0; i < count && d.err == nil; i++ {
		n := d.u32("skipped message number")
		var k [32]byte
		d.fixed(k[:], "skipped message key")
		switch {
		case d.err != nil:
		case i > 0 && n <= prev:
			d.invalid("skipped message numbers not ascending")
		case n >= s.st.recvN:
			d.invalid("skipped message %d not below the next expected %d", n, s.st.recvN)
		default:
			s.st.skipped[n] = k
		}
		clear(k[:])
		prev = n
	}
	if err := d.done(); err != nil {
		s.wipe()
		return nil, err
	}
	switch {
	case s.role == Responder && s.st.pending != nil:
		d.invalid("pending initial header in a responder's session")
	case s.role == Initiator && (s.st.pending != nil) != (s.st.recvN == 0):
		d.invalid("initiator's pending flag disagrees with its receiving chain")
	case s.role == Responder && s.st.recvN == 0:
		d.invalid("responder's session has received nothing")
	}
	if d.err != nil {
		s.wipe()
		return nil, d.err
	}
	return s, nil
}

// wipe clears the session's secrets.
func (s *Session) wipe() {
	clear(s.st.sendCK[:])
	clear(s.st.recvCK[:])
	for n := range s.st.skipped {
		s.st.skipped[n] = [32]byte{}
	}
	clear(s.st.skipped)
}

// sameIdentity compares a certificate's identity keys with p in constant
// time.
func sameIdentity(x25519, ed25519 [32]byte, p PublicIdentity) bool {
	return subtle.ConstantTimeCompare(x25519[:], p.X25519[:])&
		subtle.ConstantTimeCompare(ed25519[:], p.Ed25519[:]) == 1
}

package seal

import (
	"crypto/subtle"
	"fmt"
	"slices"

	"golang.org/x/crypto/cryptobyte"
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
	b := cryptobyte.NewBuilder(make([]byte, 0, 512))
	b.AddUint8(sessionVersion)
	b.AddUint8(byte(s.role))
	b.AddBytes(s.id[:])
	b.AddBytes(s.self.X25519[:])
	b.AddBytes(s.self.Ed25519[:])
	b.AddBytes(s.peer.X25519[:])
	b.AddBytes(s.peer.Ed25519[:])
	b.AddBytes(s.st.sendCK[:])
	b.AddUint32(s.st.sendN)
	b.AddBytes(s.st.recvCK[:])
	b.AddUint32(s.st.recvN)
	b.AddUint8(boolByte(s.st.pending != nil))
	if s.st.pending != nil {
		s.st.pending.add(b)
	}
	ns := make([]uint32, 0, len(s.st.skipped))
	for n := range s.st.skipped {
		ns = append(ns, n)
	}
	slices.Sort(ns)
	b.AddUint16(uint16(len(ns)))
	for _, n := range ns {
		k := s.st.skipped[n]
		b.AddUint32(n)
		b.AddBytes(k[:])
		clear(k[:])
	}
	return b.Bytes()
}

// UnmarshalSession decodes what MarshalBinary wrote, strictly.
func UnmarshalSession(b []byte) (*Session, error) {
	if len(b) > MaxSessionSize {
		return nil, fmt.Errorf("%w: session of %d bytes", ErrMalformed, len(b))
	}
	in := cryptobyte.String(b)
	var v uint8
	if !in.ReadUint8(&v) {
		return nil, truncated("version")
	}
	// One case per session-state version: a new version is a new case
	// with its own decoder.
	switch v {
	case sessionVersion:
		return unmarshalSessionV1(in)
	default:
		return nil, fmt.Errorf("%w: session version %d", ErrMalformed, v)
	}
}

// unmarshalSessionV1 decodes a version 1 session after its version byte.
func unmarshalSessionV1(in cryptobyte.String) (*Session, error) {
	s := &Session{}
	if err := s.readV1(&in); err != nil {
		s.wipe()
		return nil, err
	}
	return s, nil
}

// readV1 reads the fields of a version 1 session into s and checks that
// they are canonical; on error s may hold part of the secrets.
func (s *Session) readV1(in *cryptobyte.String) error {
	var role, pending uint8
	// Each case reads one field and stops at the first failure, in field
	// order.
	switch {
	case !in.ReadUint8(&role):
		return truncated("role")
	case Role(role) != Initiator && Role(role) != Responder:
		return malformed("role %d", role)
	case !in.CopyBytes(s.id[:]):
		return truncated("session ID")
	case !in.CopyBytes(s.self.X25519[:]) || !in.CopyBytes(s.self.Ed25519[:]) ||
		!in.CopyBytes(s.peer.X25519[:]) || !in.CopyBytes(s.peer.Ed25519[:]):
		return truncated("identity key")
	case !in.CopyBytes(s.st.sendCK[:]):
		return truncated("chain key")
	case !in.ReadUint32(&s.st.sendN):
		return truncated("sending message number")
	case !in.CopyBytes(s.st.recvCK[:]):
		return truncated("chain key")
	case !in.ReadUint32(&s.st.recvN):
		return truncated("receiving message number")
	case !in.ReadUint8(&pending):
		return truncated("pending flag")
	case pending > 1:
		return malformed("pending flag is %d, not 0 or 1", pending)
	}
	s.role = Role(role)
	if pending == 1 {
		s.st.pending = &initialHeader{}
		if err := s.st.pending.read(in); err != nil {
			return err
		}
	}
	var count uint16
	switch {
	case !in.ReadUint16(&count):
		return truncated("skipped count")
	case count > MaxSkipped:
		return malformed("%d skipped keys, at most %d", count, MaxSkipped)
	case count > 0:
		s.st.skipped = make(map[uint32][32]byte, count)
	}
	var prev uint32
	for i := range int(count) {
		var n uint32
		var k [32]byte
		switch {
		case !in.ReadUint32(&n):
			return truncated("skipped message number")
		case !in.CopyBytes(k[:]):
			return truncated("skipped message key")
		case i > 0 && n <= prev:
			clear(k[:])
			return malformed("skipped message numbers not ascending")
		case n >= s.st.recvN:
			clear(k[:])
			return malformed("skipped message %d not below the next expected %d", n, s.st.recvN)
		}
		s.st.skipped[n] = k
		clear(k[:])
		prev = n
	}
	switch {
	case !in.Empty():
		return fmt.Errorf("%w: %d trailing bytes", ErrMalformed, len(*in))
	case s.role == Responder && s.st.pending != nil:
		return malformed("pending initial header in a responder's session")
	case s.role == Initiator && (s.st.pending != nil) != (s.st.recvN == 0):
		return malformed("initiator's pending flag disagrees with its receiving chain")
	case s.role == Responder && s.st.recvN == 0:
		return malformed("responder's session has received nothing")
	}
	return nil
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

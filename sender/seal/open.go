package seal

import (
	"crypto/ecdh"
	"crypto/mlkem"
	"fmt"

	"golang.org/x/crypto/cryptobyte"
)

// The sealed inner message, what the fragments carry (docs/envelope.md §4):
//
//	version (1) = 1 || sender certificate (2-byte length, 1..512) || session message
const (
	innerVersion = 1
	// MaxCertificate is the largest sender certificate an envelope carries.
	MaxCertificate = 512
	// MaxInner is the largest sealed inner message.
	MaxInner = 1 + 2 + MaxCertificate + MaxSessionMessage
)

// parseInner splits a sealed inner message into the certificate and the
// session message (both aliasing inner), checking the form only.
func parseInner(inner []byte) (cert, msg []byte, err error) {
	if len(inner) > MaxInner {
		return nil, nil, fmt.Errorf("%w: inner message of %d bytes", ErrTooLarge, len(inner))
	}
	s := cryptobyte.String(inner)
	var v uint8
	var n uint16
	// Each case reads or checks one field, in field order, and stops at
	// the first failure. The length is checked before the bytes are read,
	// so an oversized one is named as such even when the input is short.
	switch {
	case !s.ReadUint8(&v):
		return nil, nil, truncated("version")
	case v != innerVersion:
		return nil, nil, fmt.Errorf("%w: inner version %d", ErrMalformed, v)
	case !s.ReadUint16(&n):
		return nil, nil, truncated("certificate length")
	case n > MaxCertificate:
		return nil, nil, malformed("certificate of %d bytes, at most %d", n, MaxCertificate)
	case !s.ReadBytes(&cert, int(n)):
		return nil, nil, truncated("certificate")
	case n == 0:
		return nil, nil, malformed("empty certificate")
	case s.Empty():
		return nil, nil, fmt.Errorf("%w: no session message", ErrMalformed)
	}
	cert, msg = cert[:n:n], s
	return cert, msg, nil
}

// appendInner writes a sealed inner message.
func appendInner(dst, cert, msg []byte) []byte {
	// The length by hand, not AddUint16LengthPrefixed: its continuation
	// allocates, and the callers bound cert to MaxCertificate.
	b := cryptobyte.NewBuilder(dst)
	b.AddUint8(innerVersion)
	b.AddUint16(uint16(len(cert)))
	b.AddBytes(cert)
	b.AddBytes(msg)
	return b.BytesOrPanic()
}

// Prekeys gives the recipient's prekey private keys by ID. PQ also
// returns the key's kind (PQOneTime or PQLastResort), as
// its owner recorded it: an initial message that claims another kind for
// it is refused, so a sender cannot get a last-resort key deleted or a
// one-time key kept.
type Prekeys interface {
	Signed(id uint32) (*ecdh.PrivateKey, bool)
	OneTime(id uint32) (*ecdh.PrivateKey, bool)
	PQ(id uint32) (key *mlkem.DecapsulationKey768, kind byte, ok bool)
}

// Opened is the result of Open.
type Opened struct {
	Plaintext []byte
	// Sender is the certificate the verify callback returned; its identity
	// keys are the session's peer's.
	Sender *Certificate
	// Session is the session the message belongs to: the one lookup
	// returned, updated in place, or, if New, a new one (responder's side).
	// Persist it in place of any earlier copy.
	Session *Session
	New     bool
	// UsedOneTime and UsedPQ name the one-time prekeys the new session
	// consumed (UsedPQ only for a one-time PQ prekey, never the last
	// resort). The caller deletes them now: that deletion is what gives
	// the initial message its forward secrecy.
	UsedOneTime *uint32
	UsedPQ      *uint32
}

// Open decrypts a complete sealed inner message for me (docs/envelope.md
// §6). In order, and stopping at the first failure:
//
//  1. it parses the inner message and the session message (ErrMalformed);
//  2. it calls verify with the certificate bytes; verify checks it
//     against the key the directory publishes for the sender's provider
//     (VerifyCertificate) and returns it parsed (ErrCertificate);
//  3. it finds the session: lookup by ID for a follow-up
//     (ErrUnknownSession), or for an initial message, lookup and, if there
//     is none, the PQXDH responder's computation with prekeys;
//  4. it requires the certificate's identity keys to be exactly the
//     identity the session message is authenticated under: the initial
//     message's IK_A, or the session's peer (ErrSenderMismatch);
//  5. it decrypts (ErrAuth, ErrReplay, ErrGap).
//
// Only then does it change anything: an existing session is updated in
// place (under its lock) and nothing else is. No plaintext is returned
// without all five checks, and there is no other way to decrypt a received
// message, so the sender check cannot be skipped.
func Open(me *Identity, prekeys Prekeys, lookup func(id [16]byte) (*Session, bool), verify func(cert []byte) (*Certificate, error), inner []byte) (*Opened, error) {
	if me == nil || me.X25519 == nil || lookup == nil || verify == nil {
		return nil, fmt.Errorf("%w: Open needs an identity, a lookup and a verify function", ErrMalformed)
	}
	certBytes, raw, err := parseInner(inner)
	if err != nil {
		return nil, err
	}
	m, err := parseMessage(raw)
	if err != nil {
		return nil, err
	}
	cert, err := checkCertificate(verify, certBytes)
	if err != nil {
		return nil, err
	}

	self := me.Public()
	s, ok := lookup(m.sessionID)
	if !ok {
		s = nil
	}
	var claimed PublicIdentity
	switch {
	case s != nil:
		if s.id != m.sessionID || !s.self.Equal(self) {
			return nil, fmt.Errorf("%w: the session found has another ID or belongs to another identity", ErrUnknownSession)
		}
		if m.initial && (s.role != Responder || !s.peer.Equal(m.sender)) {
			return nil, fmt.Errorf("%w: initial message does not belong to the session with its ID", ErrAuth)
		}
		claimed = s.peer
	case m.initial:
		claimed = m.sender
	default:
		return nil, fmt.Errorf("%w: follow-up for a session not held", ErrUnknownSession)
	}
	if !sameIdentity(cert.IdentityX25519, cert.IdentityEd25519, claimed) {
		return nil, ErrSenderMismatch
	}

	if s != nil {
		s.mu.Lock()
		pt, err := s.open(m)
		s.mu.Unlock()
		if err != nil {
			return nil, err
		}
		return &Opened{Plaintext: pt, Sender: cert, Session: s}, nil
	}
	if prekeys == nil {
		return nil, fmt.Errorf("%w: no prekeys", ErrUnknownPrekey)
	}
	s, err = accept(me, self, prekeys, m)
	if err != nil {
		return nil, err
	}
	pt, err := s.open(m) // s is not shared yet
	if err != nil {
		s.wipe()
		return nil, err
	}
	o := &Opened{Plaintext: pt, Sender: cert, Session: s, New: true}
	if m.init.hasOPK {
		id := m.init.opkID
		o.UsedOneTime = &id
	}
	if m.init.pqKind == PQOneTime {
		id := m.init.pqID
		o.UsedPQ = &id
	}
	return o, nil
}

// checkCertificate runs verify and requires its answer to be the
// certificate it was given (so a confused callback cannot substitute
// another identity).
func checkCertificate(verify func([]byte) (*Certificate, error), b []byte) (*Certificate, error) {
	cert, err := verify(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCertificate, err)
	}
	parsed, err := ParseCertificate(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCertificate, err)
	}
	if cert == nil || cert.IdentityX25519 != parsed.IdentityX25519 || cert.IdentityEd25519 != parsed.IdentityEd25519 ||
		cert.Address != parsed.Address || cert.Provider != parsed.Provider {
		return nil, fmt.Errorf("%w: verify returned another certificate", ErrCertificate)
	}
	return cert, nil
}

// accept is the responder's side of PQXDH for initial message m: it finds
// the prekeys m names and derives the session's chains. Nothing is
// decrypted yet.
func accept(me *Identity, self PublicIdentity, prekeys Prekeys, m *message) (*Session, error) {
	h := &m.init
	spk, ok := prekeys.Signed(h.spkID)
	if !ok || spk == nil {
		return nil, fmt.Errorf("%w: signed prekey %d", ErrUnknownPrekey, h.spkID)
	}
	var opk *ecdh.PrivateKey
	if h.hasOPK {
		if opk, ok = prekeys.OneTime(h.opkID); !ok || opk == nil {
			return nil, fmt.Errorf("%w: one-time prekey %d", ErrUnknownPrekey, h.opkID)
		}
	}
	dk, kind, ok := prekeys.PQ(h.pqID)
	if !ok || dk == nil {
		return nil, fmt.Errorf("%w: PQ prekey %d", ErrUnknownPrekey, h.pqID)
	}
	if kind != h.pqKind {
		return nil, fmt.Errorf("%w: PQ prekey %d is of kind %d, the message says %d", ErrUnknownPrekey, h.pqID, kind, h.pqKind)
	}

	x := ecdh.X25519()
	ikA, err1 := x.NewPublicKey(m.sender.X25519[:])
	ekA, err2 := x.NewPublicKey(h.ephemeral[:])
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("%w: bad X25519 key", ErrMalformed)
	}
	ikm := make([]byte, 0, 32*6)
	defer func() { clear(ikm[:cap(ikm)]) }()
	ikm = append(ikm, ff32[:]...)
	pairs := []struct {
		priv *ecdh.PrivateKey
		pub  *ecdh.PublicKey
	}{{spk, ikA}, {me.X25519, ekA}, {spk, ekA}}
	if opk != nil {
		pairs = append(pairs, struct {
			priv *ecdh.PrivateKey
			pub  *ecdh.PublicKey
		}{opk, ekA})
	}
	var err error
	for _, p := range pairs {
		if ikm, err = appendDH(ikm, p.priv, p.pub); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrAuth, err)
		}
	}
	ss, err := dk.Decapsulate(h.kemCT[:])
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	ikm = append(ikm, ss...)
	clear(ss)

	s := &Session{id: m.sessionID, role: Responder, self: self, peer: m.sender}
	s.st.recvCK, s.st.sendCK = deriveChains(ikm)
	return s, nil
}

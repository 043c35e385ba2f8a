package seal

import (
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/mlkem"
	"crypto/sha256"
	"fmt"
	"io"
	"slices"
	"sync"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/sealnet/sealnet/internal/crypto/hmac256"
)

const (
	// pqxdhInfo is the HKDF info of the key agreement (PQXDH §2.1 "info").
	pqxdhInfo = "sealnet pqxdh v1 X25519 SHA-256 ML-KEM-768"
	// Chain key labels (HKDF-Expand info, one per direction).
	chainInfoAB = "sealnet chain v1 initiator to responder"
	chainInfoBA = "sealnet chain v1 responder to initiator"
	// messageKeyInfo prefixes the salt in the HKDF-Expand info that turns
	// a chain's message key into the AEAD key of one version 2 message.
	messageKeyInfo = "sealnet message key v2"

	// MaxSkipped is the number of skipped message keys a session holds
	// (keys of messages that have not arrived while later ones have); when
	// there are more, those of the oldest messages are dropped.
	MaxSkipped = 256
	// MaxGap is the most message numbers a message may be ahead of the
	// next expected one.
	MaxGap = 1024
)

// Role says which side of a session this is.
type Role byte

const (
	Initiator Role = 1 // started the session from the peer's bundle
	Responder Role = 2 // accepted an initial message
)

// Session is one side of a conversation between two identities: an
// identifier, the two identities, and a symmetric-key chain per direction
// (Signal's KDF chains, without the Diffie-Hellman ratchet;
// docs/envelope.md §3).
//
// A Session is safe for concurrent use. Its state changes with every
// Seal and every message Open decrypts; the caller persists it
// (MarshalBinary) after each, and deletes old copies, or the forward
// secrecy of the chains is lost.
type Session struct {
	id   [16]byte
	role Role
	self PublicIdentity
	peer PublicIdentity

	mu sync.Mutex
	st chains
}

// chains is the mutable state of a Session.
type chains struct {
	sendCK [32]byte
	sendN  uint32 // number of the next message to seal; maxN = used up
	recvCK [32]byte
	recvN  uint32 // number of the next expected message
	// pending is the initiator's initial header, repeated in every message
	// it seals until it has decrypted one from the responder.
	pending *initialHeader
	skipped map[uint32][32]byte
}

// ID returns the session's identifier, chosen at random by the initiator.
func (s *Session) ID() [16]byte { return s.id }

// Peer returns the other side's identity.
func (s *Session) Peer() PublicIdentity { return s.peer }

// Self returns this side's identity.
func (s *Session) Self() PublicIdentity { return s.self }

// Role returns which side of the session this is.
func (s *Session) Role() Role { return s.role }

// Confirmed reports whether the initiator has heard from the responder,
// so that it seals follow-up messages; a responder's session is always
// confirmed.
func (s *Session) Confirmed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st.pending == nil
}

// Initiate starts a session with the owner of bundle (PQXDH, initiator's
// side; docs/envelope.md §3.1). It verifies every signature and key of the
// bundle first. Whether the bundle's identity is the right one for the
// address is the caller's decision (trust on first use, fingerprints).
//
// It reads 48 bytes from rng: the session ID (16), then the ephemeral
// X25519 key (32). The ML-KEM encapsulation takes its randomness from the
// system's generator, because crypto/mlkem offers no other.
func Initiate(rng io.Reader, me *Identity, bundle *PrekeyBundle) (*Session, error) {
	if me == nil || me.X25519 == nil || len(me.Ed25519) != ed25519.PrivateKeySize || bundle == nil {
		return nil, fmt.Errorf("%w: no identity or no bundle", ErrBundle)
	}
	if err := bundle.Verify(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBundle, err)
	}
	s := &Session{role: Initiator, self: me.Public()}
	s.peer = PublicIdentity{X25519: bundle.IdentityX25519, Ed25519: bundle.IdentityEd25519}

	var r [16 + 32]byte
	defer clear(r[:])
	if _, err := io.ReadFull(rng, r[:]); err != nil {
		return nil, fmt.Errorf("seal: reading randomness: %w", err)
	}
	copy(s.id[:], r[:16])
	ek, err := ecdh.X25519().NewPrivateKey(r[16:])
	if err != nil {
		return nil, err
	}

	x := ecdh.X25519()
	ikB, err1 := x.NewPublicKey(bundle.IdentityX25519[:])
	spkB, err2 := x.NewPublicKey(bundle.Signed.Public[:])
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("%w: bad X25519 key", ErrBundle)
	}
	pk, err := mlkem.NewEncapsulationKey768(bundle.PQ.Key[:])
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBundle, err)
	}

	ikm := make([]byte, 0, 32*6)
	defer func() { clear(ikm[:cap(ikm)]) }()
	ikm = append(ikm, ff32[:]...)
	for _, dh := range []struct {
		priv *ecdh.PrivateKey
		pub  *ecdh.PublicKey
	}{{me.X25519, spkB}, {ek, ikB}, {ek, spkB}} {
		if ikm, err = appendDH(ikm, dh.priv, dh.pub); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBundle, err)
		}
	}
	h := &initialHeader{spkID: bundle.Signed.ID, pqID: bundle.PQ.ID, pqKind: bundle.PQ.Kind}
	copy(h.ephemeral[:], ek.PublicKey().Bytes())
	if bundle.OneTime != nil {
		opk, err := x.NewPublicKey(bundle.OneTime.Public[:])
		if err != nil {
			return nil, fmt.Errorf("%w: bad one-time prekey", ErrBundle)
		}
		if ikm, err = appendDH(ikm, ek, opk); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBundle, err)
		}
		h.hasOPK, h.opkID = true, bundle.OneTime.ID
	}
	ss, ct := pk.Encapsulate()
	copy(h.kemCT[:], ct)
	ikm = append(ikm, ss...)
	clear(ss)

	s.st.pending = h
	s.st.sendCK, s.st.recvCK = deriveChains(ikm)
	return s, nil
}

// ff32 is PQXDH's F for X25519: 32 0xFF bytes, so that the key material
// never starts like an X25519 output (PQXDH §3.3, X3DH §2.2).
var ff32 = [32]byte{
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
}

// appendDH appends X25519(priv, pub) to dst, wiping the temporary. A
// low-order pub gives an all-zero result, which crypto/ecdh refuses.
func appendDH(dst []byte, priv *ecdh.PrivateKey, pub *ecdh.PublicKey) ([]byte, error) {
	dh, err := priv.ECDH(pub)
	if err != nil {
		return dst, err
	}
	dst = append(dst, dh...)
	clear(dh)
	return dst, nil
}

// deriveChains computes SK = HKDF-SHA256(salt = 32 zero bytes, ikm, info)
// and from it the initiator-to-responder and responder-to-initiator chain
// keys, wiping SK.
func deriveChains(ikm []byte) (ab, ba [32]byte) {
	var zeroSalt, sk [32]byte
	hmac256.HKDF(sk[:], zeroSalt[:], ikm, []byte(pqxdhInfo))
	defer clear(sk[:])
	for _, c := range []struct {
		dst  *[32]byte
		info string
	}{{&ab, chainInfoAB}, {&ba, chainInfoBA}} {
		k, err := hkdf.Expand(sha256.New, sk[:], c.info, 32)
		if err != nil {
			panic("seal: HKDF-Expand: " + err.Error()) // 32 bytes of SHA-256 output cannot fail
		}
		copy(c.dst[:], k)
		clear(k)
	}
	return ab, ba
}

// chainStep returns the message key of the chain's current position and
// the next chain key (Double Ratchet §5.2 KDF_CK): MK = HMAC-SHA256(CK,
// 0x01), CK' = HMAC-SHA256(CK, 0x02).
func chainStep(ck *[32]byte) (mk, next [32]byte) {
	return hmac256.Sum(ck[:], []byte{0x01}), hmac256.Sum(ck[:], []byte{0x02})
}

var zeroNonce [chacha20poly1305.NonceSize]byte

// ad returns the associated data of a message with the given header.
func (s *Session) ad(header []byte) []byte {
	ad := make([]byte, 0, len(header)+64)
	ad = append(ad, header...)
	if s.role == Initiator {
		ad = append(ad, s.self.X25519[:]...)
		return append(ad, s.peer.X25519[:]...)
	}
	ad = append(ad, s.peer.X25519[:]...)
	return append(ad, s.self.X25519[:]...)
}

// Seal encrypts plaintext as the next message of the session. Until the
// initiator has decrypted a message from the responder, every message it
// seals is an initial message carrying the same key-agreement header (as
// Signal's PreKeySignalMessage), so the first one may be lost or arrive
// after later ones; afterwards, and on the responder's side always, it is
// a follow-up. The message key is wiped once used. Seal changes the
// session: persist it before sending the result.
//
// Seal reads 16 bytes from rng: the message's salt, which makes its AEAD
// key differ from that of any other message, even one sealed with the
// same message number by a copy of this session restored from a backup
// (docs/envelope.md §3.2). rng must be a cryptographic generator.
func (s *Session) Seal(rng io.Reader, plaintext []byte) ([]byte, error) {
	if len(plaintext) > MaxPlaintext {
		return nil, fmt.Errorf("%w: plaintext of %d bytes, at most %d", ErrTooLarge, len(plaintext), MaxPlaintext)
	}
	var salt [saltSize]byte
	if _, err := io.ReadFull(rng, salt[:]); err != nil {
		return nil, fmt.Errorf("seal: reading randomness: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.st.sendN >= maxN {
		return nil, fmt.Errorf("%w: session has used up its message numbers", ErrTooLarge)
	}
	size := FollowUpOverhead
	if s.st.pending != nil {
		size = InitialOverhead
	}
	out := appendHeader(make([]byte, 0, size+len(plaintext)), s.id, &s.self, s.st.pending, s.st.sendN, &salt)
	mk, next := chainStep(&s.st.sendCK)
	defer clear(mk[:])
	defer clear(next[:])
	k := messageKey(&mk, &salt)
	defer clear(k[:])
	aead, err := chacha20poly1305.New(k[:])
	if err != nil {
		return nil, err
	}
	out = aead.Seal(out, zeroNonce[:], plaintext, s.ad(out))
	s.st.sendCK = next
	s.st.sendN++
	return out, nil
}

// messageKey is the AEAD key of a version 2 message:
// HKDF-Expand(PRK = MK_n, info = "sealnet message key v2" || salt, 32).
// MK_n is a uniformly random 32-byte HMAC-SHA256 output, a valid PRK
// (RFC 5869 §3.3), so this is HMAC-SHA256 keyed with MK_n, a PRF, on
// inputs that differ whenever the salts do.
func messageKey(mk *[32]byte, salt *[saltSize]byte) [32]byte {
	info := make([]byte, 0, len(messageKeyInfo)+saltSize)
	info = append(append(info, messageKeyInfo...), salt[:]...)
	b, err := hkdf.Expand(sha256.New, mk[:], string(info), 32)
	if err != nil {
		panic("seal: HKDF-Expand: " + err.Error()) // 32 bytes of SHA-256 output cannot fail
	}
	k := [32]byte(b)
	clear(b)
	return k
}

// open decrypts m with the receive chain. The caller holds s.mu and has
// checked that m belongs to s. The state changes only if it succeeds.
func (s *Session) open(m *message) ([]byte, error) {
	st := &s.st
	ad := s.ad(m.header)
	if m.n < st.recvN {
		mk, ok := st.skipped[m.n]
		if !ok {
			return nil, fmt.Errorf("%w: message %d", ErrReplay, m.n)
		}
		pt, err := decrypt(&mk, m, ad)
		clear(mk[:])
		if err != nil {
			return nil, err
		}
		st.skipped[m.n] = [32]byte{} // overwrite the slot before deleting it
		delete(st.skipped, m.n)
		st.pending = nil
		return pt, nil
	}
	if m.n-st.recvN > MaxGap {
		return nil, fmt.Errorf("%w: message %d while expecting %d", ErrGap, m.n, st.recvN)
	}
	// Walk the chain to m.n on copies; keep the keys passed over only if m
	// authenticates.
	ck := st.recvCK
	defer clear(ck[:])
	skipped := make([][32]byte, 0, min(m.n-st.recvN, MaxSkipped))
	defer func() { clear(skipped) }()
	for i := st.recvN; i < m.n; i++ {
		mk, next := chainStep(&ck)
		if m.n-i <= MaxSkipped {
			skipped = append(skipped, mk)
		}
		clear(mk[:])
		ck = next
		clear(next[:])
	}
	mk, next := chainStep(&ck)
	defer clear(next[:])
	pt, err := decrypt(&mk, m, ad)
	clear(mk[:])
	if err != nil {
		return nil, err
	}
	if st.skipped == nil && len(skipped) > 0 {
		st.skipped = make(map[uint32][32]byte, len(skipped))
	}
	first := m.n - uint32(len(skipped))
	for j, k := range skipped {
		st.skipped[first+uint32(j)] = k
	}
	st.evict()
	st.recvCK = next
	st.recvN = m.n + 1
	st.pending = nil
	return pt, nil
}

// evict drops the keys of the oldest skipped messages beyond MaxSkipped.
func (st *chains) evict() {
	if len(st.skipped) <= MaxSkipped {
		return
	}
	ns := make([]uint32, 0, len(st.skipped))
	for n := range st.skipped {
		ns = append(ns, n)
	}
	slices.Sort(ns)
	for _, n := range ns[:len(ns)-MaxSkipped] {
		st.skipped[n] = [32]byte{}
		delete(st.skipped, n)
	}
}

// decrypt opens m's ciphertext with message key mk: under the key derived
// from mk and m's salt (version 2), or under mk itself (version 1).
func decrypt(mk *[32]byte, m *message, ad []byte) ([]byte, error) {
	k := *mk
	if !m.v1 {
		k = messageKey(mk, &m.salt)
	}
	defer clear(k[:])
	aead, err := chacha20poly1305.New(k[:])
	if err != nil {
		return nil, err
	}
	pt, err := aead.Open(nil, zeroNonce[:], m.ciphertext, ad)
	if err != nil {
		return nil, fmt.Errorf("%w: session message", ErrAuth)
	}
	return pt, nil
}

package seal

import (
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"io"
	"math"
	"time"
)

// The Double Ratchet of docs/ratchet-plan.md §1 (T. Perrin, M. Marlinspike,
// "The Double Ratchet Algorithm", rev. 1, 2016; DR §n below) on X25519,
// HKDF-SHA256 and HMAC-SHA256 as DR §5.2 recommends, initialised from
// PQXDH's SK as DR §7.1 does from X3DH. It hands out message keys; the
// caller (the session layer) derives the AEAD key and decrypts.
//
// The sending step is lazy (plan §1): receiving a new peer ratchet key
// computes only the receiving chain and erases our ratchet private key;
// the next sealKey generates the new key pair and the sending chain.
//
// State invariants (checked by parseRatchet):
//   - hasSend ⇒ hasDHs (a sending chain belongs to our current key pair);
//   - !hasDHs ⇒ len(chains) > 0 (a pending step needs DHr);
//   - !hasSend ⇒ ns == 0;
//   - DHr is chains[len(chains)-1].pub; a receiving chain exists iff
//     len(chains) > 0;
//   - skipped is in insertion order: grouped by chain in the order of
//     chains, n strictly increasing within a chain, stamps nondecreasing
//     (a stamp is max(now, the last stamp)), at most drMaxSkipped keys
//     from at most drMaxSkippedChains chains, every n at or above its
//     chain's dropped mark.
//
// Limitation: the X25519 private key passes through crypto/ecdh values
// that cannot be wiped; the ratchet's own copies are.

const (
	// drRootInfo is KDF_RK's HKDF info (plan §1).
	drRootInfo = "sealnet ratchet v1 root"
	// drMaxSkipped is the most skipped message keys a ratchet holds; beyond
	// it the oldest go.
	drMaxSkipped = 512
	// drMaxSkippedAge is how long a skipped key is held.
	drMaxSkippedAge = 7 * 24 * time.Hour
	// drMaxSkippedChains is the most peer ratchet keys with held keys.
	drMaxSkippedChains = 8
	// drMaxChains is how many peer ratchet keys are remembered (with the
	// mark below which keys of that chain were dropped), so that a message
	// whose key a bound dropped is answered ErrKeyDropped, not ErrReplay,
	// and a replay on a finished chain ErrReplay, not ErrAuth.
	drMaxChains = 16
	// drHeaderSize is the encoded size of a drHeader.
	drHeaderSize = 32 + 4 + 4
	// drNewChain marks keys of a chain not yet in r.chains.
	drNewChain = 0xff
)

// drHeader is DR §3.4's HEADER: the sender's ratchet public key, the
// length of its previous sending chain, and the message number.
type drHeader struct {
	pub   [32]byte
	pn, n uint32
}

// drChain is a peer ratchet public key we have stepped to, and the mark
// below which keys of its chain not held were dropped by a bound. The
// mark cannot tell dropped keys from used ones below it, so a replay of a
// used key below the mark is answered ErrKeyDropped too.
type drChain struct {
	pub     [32]byte
	dropped uint32
}

// drSkippedKey is one held message key of a chain (an index into chains),
// stamped with the time it was skipped (Unix seconds).
type drSkippedKey struct {
	chain uint8
	n     uint32
	at    int64
	mk    [32]byte
}

// ratchet is one side's Double Ratchet state (DR §3.2).
type ratchet struct {
	rk [32]byte
	// dhs is our ratchet private key, present iff hasDHs (absent: a lazy
	// sending step is pending); dhsPub its public key.
	dhs, dhsPub [32]byte
	hasDHs      bool
	// dhsKey is dhs as a crypto/ecdh key (so a DH costs one scalar
	// multiplication, not two), or nil; dropped with dhs.
	dhsKey  *ecdh.PrivateKey
	cks     [32]byte
	hasSend bool
	ns, pn  uint32
	ckr     [32]byte
	nr      uint32
	chains  []drChain
	skipped []drSkippedKey
	// dropped counts the keys dropped by a bound (count, age, chains).
	dropped uint64
}

// newInitiatorRatchet starts the initiator's ratchet from PQXDH's SK and
// the responder's signed prekey (DR §3.3, §7.1): a new ratchet key from
// rng (32 bytes), RK, CKs = KDF_RK(SK, DH(DHs, SPK_B)).
func newInitiatorRatchet(rng io.Reader, sk *[32]byte, peerSPK *ecdh.PublicKey) (*ratchet, error) {
	r := &ratchet{}
	if err := r.newKey(rng); err != nil {
		return nil, err
	}
	r.rk = *sk
	ck, err := r.rootStep(peerSPK.Bytes())
	if err != nil {
		r.wipe()
		return nil, err
	}
	r.cks, r.hasSend = ck, true
	clear(ck[:])
	return r, nil
}

// newResponderRatchet starts the responder's ratchet: DHs = SPK_B, RK = SK,
// no sending chain until the first message arrives (its DH ratchet step
// uses SPK_B, which the ratchet then erases).
func newResponderRatchet(sk *[32]byte, spk *ecdh.PrivateKey) *ratchet {
	r := &ratchet{rk: *sk, hasDHs: true}
	b := spk.Bytes()
	copy(r.dhs[:], b)
	clear(b)
	copy(r.dhsPub[:], spk.PublicKey().Bytes())
	r.dhsKey = spk
	return r
}

// wipe erases every secret of r.
func (r *ratchet) wipe() {
	clear(r.rk[:])
	clear(r.dhs[:])
	clear(r.cks[:])
	clear(r.ckr[:])
	clear(r.skipped)
	r.skipped = nil
	r.dhsKey = nil
}

// newKey replaces our ratchet key pair with one from 32 bytes of rng.
func (r *ratchet) newKey(rng io.Reader) error {
	var b [32]byte
	if _, err := io.ReadFull(rng, b[:]); err != nil {
		return fmt.Errorf("seal: ratchet key: %w", err)
	}
	k, err := ecdh.X25519().NewPrivateKey(b[:])
	if err != nil {
		clear(b[:])
		return fmt.Errorf("seal: ratchet key: %w", err)
	}
	clear(r.dhs[:])
	r.dhs = b
	clear(b[:])
	copy(r.dhsPub[:], k.PublicKey().Bytes())
	r.dhsKey = k
	r.hasDHs = true
	return nil
}

// dh is X25519(r.dhs, pub); ErrAuth for a low-order pub.
func (r *ratchet) dh(pub []byte) ([]byte, error) {
	k := r.dhsKey
	if k == nil {
		var err error
		if k, err = ecdh.X25519().NewPrivateKey(r.dhs[:]); err != nil {
			return nil, fmt.Errorf("%w: ratchet key", ErrAuth)
		}
	}
	p, err := ecdh.X25519().NewPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("%w: peer ratchet key", ErrAuth)
	}
	out, err := k.ECDH(p)
	if err != nil {
		return nil, fmt.Errorf("%w: peer ratchet key", ErrAuth)
	}
	return out, nil
}

// rootStep is RK, CK = KDF_RK(RK, DH(DHs, pub)), replacing r.rk.
func (r *ratchet) rootStep(pub []byte) ([32]byte, error) {
	out, err := r.dh(pub)
	if err != nil {
		return [32]byte{}, err
	}
	rk, ck := drKDFRK(&r.rk, out)
	clear(out)
	r.rk = rk
	clear(rk[:])
	return ck, nil
}

// drKDFRK is KDF_RK (plan §1): HKDF-SHA256(salt = rk, IKM = dh, info
// drRootInfo, 64 bytes) split into RK' and CK.
func drKDFRK(rk *[32]byte, dh []byte) (rkOut, ck [32]byte) {
	b, err := hkdf.Key(sha256.New, dh, rk[:], drRootInfo, 64)
	if err != nil {
		panic("seal: HKDF: " + err.Error()) // 64 bytes of SHA-256 output cannot fail
	}
	copy(rkOut[:], b[:32])
	copy(ck[:], b[32:])
	clear(b)
	return rkOut, ck
}

// sealKey returns the header and message key of the next message to send.
// If the peer has stepped since we last sent (a pending step), it first
// makes a new ratchet key from 32 bytes of rng and derives the sending
// chain. The key is used up whether or not the caller sends the message.
func (r *ratchet) sealKey(rng io.Reader) (hdr drHeader, mk [32]byte, err error) {
	if !r.hasDHs {
		if err := r.newKey(rng); err != nil {
			return drHeader{}, mk, err
		}
		ck, err := r.rootStep(r.chains[len(r.chains)-1].pub[:])
		if err != nil {
			clear(r.dhs[:])
			r.hasDHs, r.dhsKey = false, nil
			return drHeader{}, mk, err
		}
		r.cks, r.hasSend = ck, true
		clear(ck[:])
	}
	if !r.hasSend {
		return drHeader{}, mk, fmt.Errorf("%w: the ratchet has no sending chain before the first message arrives", ErrMalformed)
	}
	if r.ns == math.MaxUint32 {
		return drHeader{}, mk, fmt.Errorf("%w: sending chain used up", ErrTooLarge)
	}
	mk, next := chainStep(&r.cks)
	r.cks = next
	clear(next[:])
	hdr = drHeader{pub: r.dhsPub, pn: r.pn, n: r.ns}
	r.ns++
	return hdr, mk, nil
}

// chainIndex is the index in r.chains of pub, or -1.
func (r *ratchet) chainIndex(pub *[32]byte) int {
	for i := range r.chains {
		if subtle.ConstantTimeCompare(r.chains[i].pub[:], pub[:]) == 1 {
			return i
		}
	}
	return -1
}

// drExpired is whether a key stamped at is past drMaxSkippedAge at now.
func drExpired(at int64, now time.Time) bool {
	return now.Unix()-at > int64(drMaxSkippedAge/time.Second)
}

// openKey finds the message key of a received header (DR §3.5) and calls
// try with it; try decrypts and reports whether the message
// authenticated. Only then is the new state committed (the key used is
// erased, the keys passed over are held, bounds applied as at now); if try
// returns false (ErrAuth) or openKey fails otherwise, r does not change.
//
// Errors: ErrReplay (a key already used), ErrKeyDropped (a key a bound
// dropped, so far as r remembers; see drChain), ErrGap (more than MaxGap
// ahead, in the new chain or the old chain's PN), ErrAuth.
func (r *ratchet) openKey(hdr drHeader, now time.Time, try func(mk *[32]byte) bool) error {
	ci := r.chainIndex(&hdr.pub)
	// Skipped keys first.
	if ci >= 0 {
		for i := range r.skipped {
			s := &r.skipped[i]
			if int(s.chain) != ci || s.n != hdr.n {
				continue
			}
			if drExpired(s.at, now) {
				return fmt.Errorf("%w: message %d", ErrKeyDropped, hdr.n)
			}
			mk := s.mk
			ok := try(&mk)
			clear(mk[:])
			if !ok {
				return fmt.Errorf("%w: message %d", ErrAuth, hdr.n)
			}
			m := copy(r.skipped[i:], r.skipped[i+1:])
			clear(r.skipped[i+m:]) // the used key, or the copy left behind
			r.skipped = r.skipped[:i+m]
			r.expire(now)
			return nil
		}
	}
	cur := ci >= 0 && ci == len(r.chains)-1
	switch {
	case ci >= 0 && (!cur || hdr.n < r.nr):
		if hdr.n < r.chains[ci].dropped {
			return fmt.Errorf("%w: message %d", ErrKeyDropped, hdr.n)
		}
		return fmt.Errorf("%w: message %d", ErrReplay, hdr.n)
	case cur:
		if hdr.n-r.nr > MaxGap {
			return fmt.Errorf("%w: message %d while expecting %d", ErrGap, hdr.n, r.nr)
		}
		ck := r.ckr
		defer clear(ck[:])
		add := drWalk(&ck, uint8(ci), r.nr, hdr.n, nil)
		defer clear(add)
		mk, next := chainStep(&ck)
		defer clear(next[:])
		ok := try(&mk)
		clear(mk[:])
		if !ok {
			return fmt.Errorf("%w: message %d", ErrAuth, hdr.n)
		}
		r.commitKeys(add, now)
		r.ckr, r.nr = next, hdr.n+1
		r.expire(now)
		return nil
	}
	// A new peer ratchet key: skip the current chain to PN, DH ratchet step.
	if !r.hasDHs {
		return fmt.Errorf("%w: a second new ratchet key before we sent", ErrAuth)
	}
	hasRecv := len(r.chains) > 0
	if hasRecv && hdr.pn > r.nr && hdr.pn-r.nr > MaxGap {
		return fmt.Errorf("%w: previous chain of %d while expecting %d", ErrGap, hdr.pn, r.nr)
	}
	if hdr.n > MaxGap {
		return fmt.Errorf("%w: message %d of a new chain", ErrGap, hdr.n)
	}
	var add []drSkippedKey
	defer func() { clear(add) }()
	if hasRecv && hdr.pn > r.nr {
		ck := r.ckr
		add = drWalk(&ck, uint8(len(r.chains)-1), r.nr, hdr.pn, add)
		clear(ck[:])
	}
	out, err := r.dh(hdr.pub[:])
	if err != nil {
		return err
	}
	rk, ck := drKDFRK(&r.rk, out)
	clear(out)
	defer clear(rk[:])
	defer clear(ck[:])
	add = drWalk(&ck, drNewChain, 0, hdr.n, add)
	mk, next := chainStep(&ck)
	defer clear(next[:])
	ok := try(&mk)
	clear(mk[:])
	if !ok {
		return fmt.Errorf("%w: message %d", ErrAuth, hdr.n)
	}
	// Commit.
	r.chains = append(r.chains, drChain{pub: hdr.pub})
	newIdx := uint8(len(r.chains) - 1)
	for i := range add {
		if add[i].chain == drNewChain {
			add[i].chain = newIdx
		}
	}
	r.commitKeys(add, now)
	r.rk = rk
	r.ckr, r.nr = next, hdr.n+1
	clear(r.dhs[:])
	clear(r.cks[:])
	r.hasDHs, r.hasSend, r.dhsKey = false, false, nil
	r.pn, r.ns = r.ns, 0
	r.trimChains()
	r.expire(now)
	return nil
}

// drWalk runs ck from message from to message to (exclusive) and appends
// the keys passed over to dst (at most MaxGap+1 per walk, the callers'
// bound; the commit then keeps the newest drMaxSkipped), leaving ck at
// message to.
func drWalk(ck *[32]byte, chain uint8, from, to uint32, dst []drSkippedKey) []drSkippedKey {
	for i := from; i < to; i++ {
		mk, next := chainStep(ck)
		dst = append(dst, drSkippedKey{chain: chain, n: i, mk: mk})
		clear(mk[:])
		*ck = next
		clear(next[:])
	}
	return dst
}

// commitKeys holds the keys passed over, stamped max(now, last stamp),
// and applies the count and chain bounds (so keys beyond drMaxSkipped in
// one walk are dropped and counted like any others).
func (r *ratchet) commitKeys(add []drSkippedKey, now time.Time) {
	at := now.Unix()
	if len(r.skipped) > 0 {
		at = max(at, r.skipped[len(r.skipped)-1].at)
	}
	for _, k := range add {
		k.at = at
		r.skipped = append(r.skipped, k)
	}
	r.evict()
}

// drop erases k's key, counts it and raises its chain's mark.
func (r *ratchet) drop(k *drSkippedKey) {
	clear(k.mk[:])
	r.dropped++
	c := &r.chains[k.chain]
	c.dropped = max(c.dropped, k.n+1)
}

// evict applies drMaxSkipped (oldest first) and drMaxSkippedChains (all
// the keys of the oldest chains).
func (r *ratchet) evict() {
	n := 0
	if len(r.skipped) > drMaxSkipped {
		n = len(r.skipped) - drMaxSkipped
	}
	for distinct := r.skippedChains(n); distinct > drMaxSkippedChains; distinct-- {
		c := r.skipped[n].chain
		for n < len(r.skipped) && r.skipped[n].chain == c {
			n++
		}
	}
	r.dropFront(n)
}

// skippedChains is the number of chains among skipped[from:].
func (r *ratchet) skippedChains(from int) int {
	d := 0
	for i := from; i < len(r.skipped); i++ {
		if i == from || r.skipped[i].chain != r.skipped[i-1].chain {
			d++
		}
	}
	return d
}

// dropFront drops the first n skipped keys.
func (r *ratchet) dropFront(n int) {
	if n == 0 {
		return
	}
	for i := range n {
		r.drop(&r.skipped[i])
	}
	m := copy(r.skipped, r.skipped[n:])
	clear(r.skipped[m:]) // the copies left behind hold keys
	r.skipped = r.skipped[:m]
}

// expire drops the skipped keys older than drMaxSkippedAge at now.
func (r *ratchet) expire(now time.Time) {
	n := 0
	for n < len(r.skipped) && drExpired(r.skipped[n].at, now) {
		n++
	}
	r.dropFront(n)
}

// trimChains forgets the oldest chain records beyond drMaxChains, with
// any keys they still hold (dropped, counted), and renumbers the rest.
func (r *ratchet) trimChains() {
	extra := len(r.chains) - drMaxChains
	if extra <= 0 {
		return
	}
	n := 0
	for n < len(r.skipped) && int(r.skipped[n].chain) < extra {
		n++
	}
	r.dropFront(n)
	r.chains = append(r.chains[:0], r.chains[extra:]...)
	for i := range r.skipped {
		r.skipped[i].chain -= uint8(extra)
	}
}

package seal

import (
	"crypto/ecdh"
	"crypto/subtle"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/sealnet/sealnet/internal/crypto/hmac256"
)

// The Double Ratchet (docs/ratchet-plan.md §1; T. Perrin, M. Marlinspike,
// "The Double Ratchet Algorithm", rev. 1, cited as DR §n), on X25519,
// HKDF-SHA256 and HMAC-SHA256 as DR §5.2 recommends, initialised from
// PQXDH's SK as DR §7.1 does from X3DH's.
//
// Departure from DR §3.5 (plan §1, "lazy sending step"): on receiving a
// new peer ratchet key only the receiving chain is derived and DHs is
// erased; the new DHs and the sending chain are made by the next sealKey.
// The keys are those of DR with the generation moved later (DR §6.5).

const (
	drRootInfo = "sealnet ratchet v1 root"
	// drMaxSkipped is the most skipped message keys held; beyond it those
	// stamped earliest are dropped.
	drMaxSkipped = 512
	// drMaxSkippedAge is how long a skipped key is held.
	drMaxSkippedAge = 7 * 24 * time.Hour
	// drMaxChains is the most peer ratchet keys with held skipped keys,
	// and the number of previous peer ratchet keys remembered (so that a
	// message of an older chain whose key is gone is ErrReplay, not a
	// failed DH step).
	drMaxChains = 8
	// drMaxDropped is how many dropped keys are remembered by (ratchet
	// key, n), so that their messages get ErrKeyDropped, not ErrReplay.
	// Older drops are forgotten (then ErrReplay); the count in dropped
	// is exact.
	drMaxDropped = 256
	// drHeaderSize: ratchet public key (32) || PN (4) || N (4).
	drHeaderSize = 32 + 4 + 4
)

// drHeader is DR §3.4 HEADER: the sender's ratchet public key, the length
// of its previous sending chain, and the message's number in its chain.
type drHeader struct {
	pub [32]byte
	pn  uint32
	n   uint32
}

// drKeyID names a message key: its chain's peer ratchet key and n.
type drKeyID struct {
	pub [32]byte
	n   uint32
}

// drSkipped is a held skipped message key, stamped with when it was
// skipped (Unix seconds).
type drSkipped struct {
	drKeyID
	at int64
	mk [32]byte
}

// ratchet is one side's Double Ratchet state.
//
// Invariants: hasCKs implies dhs != nil and hasDHr; hasCKr implies hasDHr;
// dhs == nil implies hasDHr (a step is pending: sealKey makes DHs).
// skipped is sorted by (pub, n) ascending, at most drMaxSkipped keys of at
// most drMaxChains pubs; prev holds at most drMaxChains earlier peer
// ratchet keys, oldest first; droppedIDs at most drMaxDropped, oldest first.
type ratchet struct {
	rk     [32]byte
	dhs    *ecdh.PrivateKey // own ratchet key; nil: lazy step pending
	dhr    [32]byte         // peer's current ratchet public key
	hasDHr bool
	cks    [32]byte
	hasCKs bool
	ckr    [32]byte
	hasCKr bool
	ns, nr uint32
	pn     uint32

	skipped    []drSkipped
	prev       [][32]byte
	dropped    uint64 // keys ever dropped by a bound
	droppedIDs []drKeyID
}

// kdfRK is DR §5.2 KDF_RK: HKDF-SHA256(salt = rk, IKM = dh, info, 64)
// split into the new root key and a chain key. It overwrites rk.
func drKDFRK(rk *[32]byte, dh []byte) (ck [32]byte) {
	var out [64]byte
	hmac256.HKDF(out[:], rk[:], dh, []byte(drRootInfo))
	copy(rk[:], out[:32])
	copy(ck[:], out[32:])
	clear(out[:])
	return ck
}

// drDH is X25519(priv, pub); a low-order or invalid pub is ErrAuth.
func drDH(priv *ecdh.PrivateKey, pub *[32]byte) ([]byte, error) {
	p, err := ecdh.X25519().NewPublicKey(pub[:])
	if err != nil {
		return nil, fmt.Errorf("%w: ratchet key", ErrAuth)
	}
	dh, err := priv.ECDH(p)
	if err != nil {
		return nil, fmt.Errorf("%w: ratchet key", ErrAuth)
	}
	return dh, nil
}

// newInitiatorRatchet is DR §3.3 RatchetInitAlice with SK from PQXDH and
// the responder's signed prekey as its first ratchet key. It reads 32
// bytes from rng for DHs. sk is not kept (the caller wipes it).
func newInitiatorRatchet(rng io.Reader, sk *[32]byte, peerSPK *ecdh.PublicKey) (*ratchet, error) {
	r := &ratchet{rk: *sk, hasDHr: true}
	copy(r.dhr[:], peerSPK.Bytes())
	if err := r.stepSend(rng); err != nil {
		r.wipe()
		return nil, err
	}
	return r, nil
}

// newResponderRatchet is DR §3.3 RatchetInitBob: DHs is the signed prekey,
// used by the first message's DH step and then erased from the state.
func newResponderRatchet(sk *[32]byte, spk *ecdh.PrivateKey) *ratchet {
	return &ratchet{rk: *sk, dhs: spk}
}

// stepSend makes a new DHs (32 bytes from rng) and the sending chain.
func (r *ratchet) stepSend(rng io.Reader) error {
	var b [32]byte
	defer clear(b[:])
	if _, err := io.ReadFull(rng, b[:]); err != nil {
		return fmt.Errorf("seal: reading randomness: %w", err)
	}
	k, err := ecdh.X25519().NewPrivateKey(b[:])
	if err != nil {
		return err
	}
	dh, err := drDH(k, &r.dhr)
	if err != nil {
		return err
	}
	ck := drKDFRK(&r.rk, dh)
	clear(dh)
	r.dhs, r.cks, r.hasCKs = k, ck, true
	clear(ck[:])
	return nil
}

// sealKey returns the header and message key of the next message to send,
// first making the lazy sending step if the peer has ratcheted since we
// last sent (32 bytes from rng). The caller wipes mk.
func (r *ratchet) sealKey(rng io.Reader) (hdr drHeader, mk [32]byte, err error) {
	if !r.hasDHr {
		return hdr, mk, fmt.Errorf("%w: no peer ratchet key yet", ErrTooLarge)
	}
	if r.ns == maxN {
		return hdr, mk, fmt.Errorf("%w: sending chain used up", ErrTooLarge)
	}
	if r.dhs == nil || !r.hasCKs {
		if err := r.stepSend(rng); err != nil {
			return hdr, mk, err
		}
	}
	var next [32]byte
	mk, next = chainStep(&r.cks)
	r.cks = next
	clear(next[:])
	copy(hdr.pub[:], r.dhs.PublicKey().Bytes())
	hdr.pn, hdr.n = r.pn, r.ns
	r.ns++
	return hdr, mk, nil
}

// openKey finds the message key of hdr (DR §3.5 RatchetDecrypt) on a copy
// of the state and calls try with it; try decrypts and reports whether the
// message authenticated. Only then is the copy committed (the used key
// erased, the keys passed over held, bounds applied); otherwise, or on any
// error, r is unchanged. now stamps new skipped keys and expires old ones.
//
// Errors: ErrReplay (key used, or its chain gone), ErrKeyDropped (its key
// was erased by a bound, recently enough to remember), ErrGap (more than
// MaxGap ahead), ErrAuth (try returned false, or a bad ratchet key).
func (r *ratchet) openKey(hdr drHeader, now time.Time, try func(mk *[32]byte) bool) error {
	c := r.clone()
	defer c.wipe()
	c.expire(now)
	id := drKeyID{pub: hdr.pub, n: hdr.n}
	if i, ok := c.findSkipped(id); ok {
		mk := c.skipped[i].mk
		defer clear(mk[:])
		if !try(&mk) {
			return fmt.Errorf("%w: session message", ErrAuth)
		}
		clear(c.skipped[i].mk[:])
		c.skipped = slices.Delete(c.skipped, i, i+1)
		r.commit(c)
		return nil
	}
	switch {
	case c.wasDropped(id):
		return fmt.Errorf("%w: message %d", ErrKeyDropped, hdr.n)
	case c.hasDHr && drSameKey(&hdr.pub, &c.dhr):
		if !c.hasCKr || hdr.n < c.nr {
			return fmt.Errorf("%w: message %d", ErrReplay, hdr.n)
		}
		if hdr.n-c.nr > MaxGap {
			return fmt.Errorf("%w: message %d while expecting %d", ErrGap, hdr.n, c.nr)
		}
	case c.isPrev(&hdr.pub):
		return fmt.Errorf("%w: message %d of an earlier chain", ErrReplay, hdr.n)
	default:
		// A new peer ratchet key: finish the current chain to PN, then
		// the DH step (receiving half).
		if c.dhs == nil {
			return fmt.Errorf("%w: ratchet key", ErrAuth) // the peer cannot have stepped twice
		}
		if hdr.n > MaxGap || (c.hasCKr && hdr.pn > c.nr && hdr.pn-c.nr > MaxGap) {
			return fmt.Errorf("%w: message %d of a new chain, previous %d", ErrGap, hdr.n, hdr.pn)
		}
		if c.hasCKr {
			c.skipTo(hdr.pn, now)
		}
		dh, err := drDH(c.dhs, &hdr.pub)
		if err != nil {
			return err
		}
		ck := drKDFRK(&c.rk, dh)
		clear(dh)
		if c.hasDHr {
			c.prev = append(c.prev, c.dhr)
			if len(c.prev) > drMaxChains {
				c.prev = slices.Delete(c.prev, 0, len(c.prev)-drMaxChains)
			}
		}
		c.dhr, c.hasDHr = hdr.pub, true
		c.ckr, c.hasCKr, c.nr = ck, true, 0
		clear(ck[:])
		c.pn, c.ns = c.ns, 0
		c.dhs = nil // erased; sealKey makes the next one
		clear(c.cks[:])
		c.hasCKs = false
	}
	c.skipTo(hdr.n, now)
	mk, next := chainStep(&c.ckr)
	defer clear(mk[:])
	defer clear(next[:])
	if !try(&mk) {
		return fmt.Errorf("%w: session message", ErrAuth)
	}
	c.ckr, c.nr = next, hdr.n+1
	c.bound()
	r.commit(c)
	return nil
}

// skipTo walks the receiving chain to n, holding the keys passed over.
func (r *ratchet) skipTo(n uint32, now time.Time) {
	for r.nr < n {
		mk, next := chainStep(&r.ckr)
		r.skipped = append(r.skipped, drSkipped{drKeyID: drKeyID{pub: r.dhr, n: r.nr}, at: now.Unix(), mk: mk})
		clear(mk[:])
		r.ckr = next
		clear(next[:])
		r.nr++
	}
	slices.SortFunc(r.skipped, drCompare)
}

func drCompare(a, b drSkipped) int { return drCompareID(a.drKeyID, b.drKeyID) }

func drCompareID(a, b drKeyID) int {
	if c := slices.Compare(a.pub[:], b.pub[:]); c != 0 {
		return c
	}
	switch {
	case a.n < b.n:
		return -1
	case a.n > b.n:
		return 1
	}
	return 0
}

func drSameKey(a, b *[32]byte) bool { return subtle.ConstantTimeCompare(a[:], b[:]) == 1 }

func (r *ratchet) findSkipped(id drKeyID) (int, bool) {
	return slices.BinarySearchFunc(r.skipped, id, func(s drSkipped, id drKeyID) int { return drCompareID(s.drKeyID, id) })
}

func (r *ratchet) wasDropped(id drKeyID) bool {
	for _, d := range r.droppedIDs {
		if d.n == id.n && drSameKey(&d.pub, &id.pub) {
			return true
		}
	}
	return false
}

func (r *ratchet) isPrev(pub *[32]byte) bool {
	for i := range r.prev {
		if drSameKey(&r.prev[i], pub) {
			return true
		}
	}
	return false
}

// drop erases the skipped keys for which gone is true, counting and
// remembering them.
func (r *ratchet) drop(gone func(*drSkipped) bool) {
	r.skipped = slices.DeleteFunc(r.skipped, func(s drSkipped) bool {
		if !gone(&s) {
			return false
		}
		r.dropped++
		r.droppedIDs = append(r.droppedIDs, s.drKeyID)
		clear(s.mk[:])
		return true
	})
	clear(r.skipped[len(r.skipped):cap(r.skipped)])
	if len(r.droppedIDs) > drMaxDropped {
		r.droppedIDs = slices.Delete(r.droppedIDs, 0, len(r.droppedIDs)-drMaxDropped)
	}
}

// expire drops the skipped keys held longer than drMaxSkippedAge.
func (r *ratchet) expire(now time.Time) {
	limit := now.Add(-drMaxSkippedAge).Unix()
	r.drop(func(s *drSkipped) bool { return s.at < limit })
}

// bound applies the count bounds: at most drMaxChains pubs (those whose
// newest key is oldest go first, then lowest pub), then at most
// drMaxSkipped keys (earliest stamped first, then by (pub, n)).
func (r *ratchet) bound() {
	for {
		newest := map[[32]byte]int64{}
		for _, s := range r.skipped {
			newest[s.pub] = max(newest[s.pub], s.at)
		}
		if len(newest) <= drMaxChains {
			break
		}
		var victim [32]byte
		first := true
		for p, at := range newest {
			if first || at < newest[victim] || (at == newest[victim] && slices.Compare(p[:], victim[:]) < 0) {
				victim, first = p, false
			}
		}
		r.drop(func(s *drSkipped) bool { return s.pub == victim })
	}
	if extra := len(r.skipped) - drMaxSkipped; extra > 0 {
		order := make([]int, len(r.skipped))
		for i := range order {
			order[i] = i
		}
		slices.SortStableFunc(order, func(a, b int) int {
			switch x, y := r.skipped[a].at, r.skipped[b].at; {
			case x < y:
				return -1
			case x > y:
				return 1
			}
			return a - b
		})
		gone := map[drKeyID]bool{}
		for _, i := range order[:extra] {
			gone[r.skipped[i].drKeyID] = true
		}
		r.drop(func(s *drSkipped) bool { return gone[s.drKeyID] })
	}
}

// clone is a deep copy (the private key is re-made from its bytes).
func (r *ratchet) clone() *ratchet {
	c := *r
	if r.dhs != nil {
		b := r.dhs.Bytes()
		c.dhs, _ = ecdh.X25519().NewPrivateKey(b)
		clear(b)
	}
	c.skipped = slices.Clone(r.skipped)
	c.prev = slices.Clone(r.prev)
	c.droppedIDs = slices.Clone(r.droppedIDs)
	return &c
}

// commit replaces r's state by c's, wiping r's old secrets; c is left
// empty.
func (r *ratchet) commit(c *ratchet) {
	r.wipe()
	*r = *c
	*c = ratchet{}
}

// wipe clears the secrets r holds. crypto/ecdh keeps its private bytes
// where they cannot be cleared; dropping the reference is what it allows.
func (r *ratchet) wipe() {
	clear(r.rk[:])
	clear(r.cks[:])
	clear(r.ckr[:])
	for i := range r.skipped {
		clear(r.skipped[i].mk[:])
	}
	r.skipped = nil
	r.dhs = nil
}

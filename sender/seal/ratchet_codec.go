package seal

import (
	"crypto/ecdh"
	"fmt"

	"golang.org/x/crypto/cryptobyte"
)

// Encodings of the Double Ratchet (ratchet.go): its header (DR §3.4) and
// its state, which the session state embeds.
//
//	header  ratchet public key (32) ‖ PN (4) ‖ N (4)
//	state   RK (32) ‖ flags (1: 0x01 DHs held, 0x02 sending chain)
//	        ‖ [DHs private key (32)] ‖ [CKs (32)] ‖ Ns (4) ‖ PN (4)
//	        ‖ chain count (1, ≤ drMaxChains)
//	        ‖ chains: peer ratchet key (32) ‖ dropped mark (4)
//	        ‖ [CKr (32) ‖ Nr (4)]          (if there is a chain)
//	        ‖ skipped count (2, ≤ drMaxSkipped)
//	        ‖ skipped: chain index (1) ‖ n (4) ‖ stamp (8, Unix s) ‖ MK (32)
//	        ‖ dropped count (8)
//
// Integers big-endian. The state decoder is strict and canonical: unknown
// flags, a sending chain without DHs, a pending step without a peer key,
// Ns ≠ 0 without a sending chain, repeated chain keys, skipped keys out of
// the order ratchet.go keeps them in (by chain, n increasing, stamps
// nondecreasing), from more than drMaxSkippedChains chains, below their
// chain's mark or at or past Nr of the current chain are ErrMalformed.

const (
	drFlagDHs  = 0x01
	drFlagSend = 0x02
)

func (h *drHeader) append(dst []byte) []byte {
	b := cryptobyte.NewBuilder(dst)
	b.AddBytes(h.pub[:])
	b.AddUint32(h.pn)
	b.AddUint32(h.n)
	return b.BytesOrPanic()
}

func (h *drHeader) read(s *cryptobyte.String) bool {
	return s.CopyBytes(h.pub[:]) && s.ReadUint32(&h.pn) && s.ReadUint32(&h.n)
}

// parseDRHeader decodes exactly one header.
func parseDRHeader(b []byte) (drHeader, error) {
	var h drHeader
	s := cryptobyte.String(b)
	return h, readWhole(h.read(&s), s, "ratchet header")
}

// appendRatchet appends r's state encoding to dst.
func (r *ratchet) appendRatchet(dst []byte) []byte {
	b := cryptobyte.NewBuilder(dst)
	b.AddBytes(r.rk[:])
	var flags uint8
	if r.hasDHs {
		flags |= drFlagDHs
	}
	if r.hasSend {
		flags |= drFlagSend
	}
	b.AddUint8(flags)
	if r.hasDHs {
		b.AddBytes(r.dhs[:])
	}
	if r.hasSend {
		b.AddBytes(r.cks[:])
	}
	b.AddUint32(r.ns)
	b.AddUint32(r.pn)
	b.AddUint8(uint8(len(r.chains)))
	for i := range r.chains {
		b.AddBytes(r.chains[i].pub[:])
		b.AddUint32(r.chains[i].dropped)
	}
	if len(r.chains) > 0 {
		b.AddBytes(r.ckr[:])
		b.AddUint32(r.nr)
	}
	b.AddUint16(uint16(len(r.skipped)))
	for i := range r.skipped {
		k := &r.skipped[i]
		b.AddUint8(k.chain)
		b.AddUint32(k.n)
		b.AddUint64(uint64(k.at))
		b.AddBytes(k.mk[:])
	}
	b.AddUint64(r.dropped)
	return b.BytesOrPanic()
}

// parseRatchet decodes one ratchet state, the whole of s.
func parseRatchet(s cryptobyte.String) (*ratchet, error) {
	r := &ratchet{}
	if err := r.read(&s); err != nil {
		r.wipe()
		return nil, err
	}
	if !s.Empty() {
		r.wipe()
		return nil, fmt.Errorf("%w: ratchet state: %d trailing bytes", ErrMalformed, len(s))
	}
	return r, nil
}

func drInvalid(format string, args ...any) error {
	return fmt.Errorf("%w: ratchet state: "+format, append([]any{ErrMalformed}, args...)...)
}

// read decodes a ratchet state from the front of s.
func (r *ratchet) read(s *cryptobyte.String) error {
	var flags, nChains uint8
	if !s.CopyBytes(r.rk[:]) || !s.ReadUint8(&flags) {
		return drInvalid("truncated")
	}
	if flags&^(drFlagDHs|drFlagSend) != 0 {
		return drInvalid("unknown flags %#x", flags)
	}
	r.hasDHs, r.hasSend = flags&drFlagDHs != 0, flags&drFlagSend != 0
	if r.hasSend && !r.hasDHs {
		return drInvalid("a sending chain without a ratchet key")
	}
	if r.hasDHs && !s.CopyBytes(r.dhs[:]) || r.hasSend && !s.CopyBytes(r.cks[:]) ||
		!s.ReadUint32(&r.ns) || !s.ReadUint32(&r.pn) || !s.ReadUint8(&nChains) {
		return drInvalid("truncated")
	}
	if !r.hasSend && r.ns != 0 {
		return drInvalid("Ns %d without a sending chain", r.ns)
	}
	if nChains > drMaxChains {
		return drInvalid("%d chains, at most %d", nChains, drMaxChains)
	}
	if !r.hasDHs && nChains == 0 {
		return drInvalid("a pending step without a peer ratchet key")
	}
	if r.hasDHs {
		k, err := ecdh.X25519().NewPrivateKey(r.dhs[:])
		if err != nil {
			return drInvalid("ratchet key")
		}
		copy(r.dhsPub[:], k.PublicKey().Bytes())
		r.dhsKey = k
	}
	r.chains = make([]drChain, nChains)
	for i := range r.chains {
		c := &r.chains[i]
		if !s.CopyBytes(c.pub[:]) || !s.ReadUint32(&c.dropped) {
			return drInvalid("truncated")
		}
		for j := range i {
			if r.chains[j].pub == c.pub {
				return drInvalid("chain %d repeats chain %d", i, j)
			}
		}
	}
	if nChains > 0 && (!s.CopyBytes(r.ckr[:]) || !s.ReadUint32(&r.nr)) {
		return drInvalid("truncated")
	}
	var nSkipped uint16
	if !s.ReadUint16(&nSkipped) {
		return drInvalid("truncated")
	}
	if nSkipped > drMaxSkipped {
		return drInvalid("%d skipped keys, at most %d", nSkipped, drMaxSkipped)
	}
	r.skipped = make([]drSkippedKey, nSkipped)
	distinct := 0
	for i := range r.skipped {
		k := &r.skipped[i]
		var at uint64
		if !s.ReadUint8(&k.chain) || !s.ReadUint32(&k.n) || !s.ReadUint64(&at) || !s.CopyBytes(k.mk[:]) {
			return drInvalid("truncated")
		}
		k.at = int64(at)
		if int(k.chain) >= len(r.chains) {
			return drInvalid("skipped key of chain %d of %d", k.chain, len(r.chains))
		}
		if k.n < r.chains[k.chain].dropped || int(k.chain) == len(r.chains)-1 && k.n >= r.nr {
			return drInvalid("skipped key %d outside its chain", k.n)
		}
		if i == 0 || k.chain != r.skipped[i-1].chain {
			distinct++
		}
		if i > 0 {
			p := &r.skipped[i-1]
			if k.chain < p.chain || k.chain == p.chain && k.n <= p.n || k.at < p.at {
				return drInvalid("skipped keys out of order")
			}
		}
	}
	if distinct > drMaxSkippedChains {
		return drInvalid("skipped keys of %d chains, at most %d", distinct, drMaxSkippedChains)
	}
	if !s.ReadUint64(&r.dropped) {
		return drInvalid("truncated")
	}
	return nil
}

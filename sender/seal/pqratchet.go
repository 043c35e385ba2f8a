package seal

import (
	"crypto/hkdf"
	"crypto/mlkem"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"

	"golang.org/x/crypto/cryptobyte"
)

// The post-quantum epoch ratchet (docs/ratchet-plan.md §2), in the manner
// of Signal's SPQR and Apple's PQ3: epochs of ML-KEM-768 key exchange, the
// encapsulation key and ciphertext carried in erasure-coded shards
// (shards.go) on ordinary messages. Every message key of session v3 needs
// the epoch key of its epoch (plan §3); this file owns only the epoch
// keys. It is self-contained so the session can embed it: the session
// asks sealEpoch and appendShards when sealing, openEpoch before
// authenticating a received message and receive after.
//
// Epoch keys: K_0 = HKDF-Expand(SK, "sealnet pq epoch 0", 32). The step
// E → E+1 has a starter: the initiator when E+1 is odd, the responder when
// it is even.
//
//	starter (phase pqStarting)            peer
//	  makes (dk, ek), sends ek shards       (pqAwaitingEK) collects ek shards
//	  under K_E                             decodes ek; (ss, ct) = Encaps(ek);
//	                                        K_{E+1} = HKDF(salt K_E, IKM ss,
//	                                          "sealnet pq epoch v1" ‖ E+1 ‖
//	                                          SHA-256(ek) ‖ SHA-256(ct))
//	  collects ct shards                  (pqConfirming) sends ct shards under K_E
//	  decodes ct, Decaps → K_{E+1},
//	  wipes dk, seals under E+1;
//	  is now the peer of E+2 (pqAwaitingEK)
//	                                        first authenticated message under
//	                                        E+1: seals under E+1 and is the
//	                                        starter of E+2 (pqStarting)
//
// The step starts as soon as the previous one completed, so the initiator
// starts step 1 at once. Each side keeps the keys of its last
// pqKeepEpochs epochs for late messages; older ones are ErrKeyDropped.
//
// Randomness: crypto/mlkem takes no io.Reader; GenerateKey768 and
// Encapsulate read the system's generator. Nothing here can be made
// deterministic, and tests compare the two sides rather than fixed bytes.
//
// Post-compromise security: an adversary holding a copy of this state
// (and every X25519 secret, which this type never sees) at epoch E
// computes the epoch keys the copy holds or will derive from secrets
// already in it: K_{E+1} if the copy is pqStarting (its dk decapsulates
// the peer's ct) or pqConfirming (K_{E+1} is in it). The first epoch key
// it cannot compute is the first one whose ML-KEM secret is drawn after
// the copy: K_{E+1} if the copy was pqAwaitingEK (this side's fresh
// encapsulation), K_{E+2} otherwise (the peer's fresh dk, or this side's
// fresh dk). pqratchet_test.go tests each case.
const (
	pqKeepEpochs = 4
	// pqMaxEpoch: no step starts from it (the counter is exhausted; at one
	// step per round trip it is not reached).
	pqMaxEpoch = math.MaxUint32 - 1

	pqSeedSize = mlkem.SeedSize // 64: the decapsulation key as its seed
)

// pqPhase is what this side does for the step epoch → epoch+1.
type pqPhase byte

const (
	pqStarting   pqPhase = 1 // starter: sends ek shards, collects ct shards
	pqAwaitingEK pqPhase = 2 // peer: collects ek shards, sends nothing
	pqConfirming pqPhase = 3 // peer: holds K_{E+1}, sends ct shards, waits for a message under E+1
	pqIdle       pqPhase = 4 // epoch == pqMaxEpoch: no further step
)

// pqRatchet is one side's epoch ratchet. A copy of the struct (a value
// assignment) is an independent state: its slices are never written in
// place, only replaced.
type pqRatchet struct {
	role  Role
	epoch uint32 // E: this side seals under it
	// keys[i] = K_{E-i} for i ≤ min(E, pqKeepEpochs-1); the rest zero.
	keys  [pqKeepEpochs][32]byte
	phase pqPhase
	// cursor: index of the next shard to send (pqStarting, pqConfirming).
	cursor byte
	// pqStarting: the decapsulation key's seed and SHA-256 of its ek.
	dkSeed [pqSeedSize]byte
	ekHash [32]byte
	// dec: pqStarting, the ct of epoch E+1; pqAwaitingEK, the ek of E+1.
	dec shardDecoder
	// pqConfirming: K_{E+1} and the ciphertext that made it.
	next [32]byte
	ct   []byte
	// out: the shardTotal shards this side sends (of ek or ct), derived.
	out [][]byte
}

// pqStarter is the side that starts the step creating epoch e.
func pqStarter(e uint32) Role {
	if e%2 == 1 {
		return Initiator
	}
	return Responder
}

// newPQRatchet starts the epoch ratchet of a session whose PQXDH secret
// is sk. The initiator's first messages carry the ek of step 1.
func newPQRatchet(role Role, sk *[32]byte) (*pqRatchet, error) {
	if role != Initiator && role != Responder {
		return nil, fmt.Errorf("%w: role %d", ErrMalformed, role)
	}
	k, err := hkdf.Expand(sha256.New, sk[:], "sealnet pq epoch 0", 32)
	if err != nil {
		return nil, err
	}
	p := &pqRatchet{role: role}
	copy(p.keys[0][:], k)
	clear(k)
	if err := p.enter(); err != nil {
		return nil, err
	}
	return p, nil
}

// enter sets up this side's part of the step epoch → epoch+1, having just
// reached epoch: a new ML-KEM key if it starts the step.
func (p *pqRatchet) enter() error {
	p.cursor, p.out, p.ct = 0, nil, nil
	clear(p.next[:])
	clear(p.dkSeed[:])
	p.ekHash = [32]byte{}
	next := p.epoch + 1
	switch {
	case p.epoch >= pqMaxEpoch:
		p.phase, p.dec = pqIdle, shardDecoder{}
	case pqStarter(next) == p.role:
		dk, err := mlkem.GenerateKey768()
		if err != nil {
			return err
		}
		copy(p.dkSeed[:], dk.Bytes())
		p.phase, p.dec = pqStarting, shardDecoder{kind: shardKindCT, epoch: next}
		return p.deriveStarting()
	default:
		p.phase, p.dec = pqAwaitingEK, shardDecoder{kind: shardKindEK, epoch: next}
	}
	return nil
}

// deriveStarting computes ekHash and out from dkSeed.
func (p *pqRatchet) deriveStarting() error {
	dk, err := mlkem.NewDecapsulationKey768(p.dkSeed[:])
	if err != nil {
		return err
	}
	ek := dk.EncapsulationKey().Bytes()
	p.ekHash = sha256.Sum256(ek)
	p.out, err = shardEncode(shardKindEK, ek)
	return err
}

// advance moves to epoch+1 with key k (wiping the oldest key) and enters
// the next step.
func (p *pqRatchet) advance(k *[32]byte) error {
	clear(p.keys[pqKeepEpochs-1][:])
	copy(p.keys[1:], p.keys[:pqKeepEpochs-1])
	p.keys[0] = *k
	p.epoch++
	return p.enter()
}

// pqEpochKey is K_e = HKDF-SHA256(salt = prev, IKM = ss, info = "sealnet
// pq epoch v1" ‖ e (4) ‖ SHA-256(ek) ‖ SHA-256(ct), 32).
func pqEpochKey(prev *[32]byte, ss []byte, e uint32, ekHash, ctHash *[32]byte) ([32]byte, error) {
	info := make([]byte, 0, 19+4+64)
	info = append(info, "sealnet pq epoch v1"...)
	info = binary.BigEndian.AppendUint32(info, e)
	info = append(append(info, ekHash[:]...), ctHash[:]...)
	var k [32]byte
	b, err := hkdf.Key(sha256.New, ss, prev[:], string(info), 32)
	if err != nil {
		return k, err
	}
	copy(k[:], b)
	clear(b)
	return k, nil
}

// sealEpoch returns the epoch and epoch key to seal the next message
// under. The caller wipes its copy of the key.
func (p *pqRatchet) sealEpoch() (uint32, [32]byte) { return p.epoch, p.keys[0] }

// appendShards appends a shard section for the next message: as many
// shards as fit in room bytes (the section's count byte included), at
// least one while this side has a step part to send (even if room is too
// small), at most shardTotal; cycling through the shards from 0, so the
// systematic shards go first. With nothing to send it appends a count of
// 0. It advances the send cursor, so the state changes.
func (p *pqRatchet) appendShards(dst []byte, room int) []byte {
	var kind byte
	switch p.phase {
	case pqStarting:
		kind = shardKindEK
	case pqConfirming:
		kind = shardKindCT
	default:
		return append(dst, 0)
	}
	n := (room - 1) / shardWireSize(kind)
	n = max(1, min(n, shardTotal))
	dst = append(dst, byte(n))
	for range n {
		dst = appendShard(dst, kind, p.epoch+1, p.cursor, p.out[p.cursor])
		p.cursor = (p.cursor + 1) % shardTotal
	}
	return dst
}

// openEpoch returns the key of a received message's epoch, before the
// message is authenticated (it changes nothing):
//
//   - a kept epoch (the last pqKeepEpochs): its key;
//   - E+1 while pqConfirming: K_{E+1} (the starter's confirmation);
//   - older than kept: ErrKeyDropped (the key is gone, as for a dropped
//     skipped key);
//   - any other later epoch: ErrAuth. An honest peer never seals under
//     an epoch this side cannot know (it reaches E+1 only from this
//     side's ct), so such a header was not made by the peer with this
//     session's keys: it is a message that does not belong to the
//     session, which is ErrAuth. It is not ErrMalformed because the header
//     has the documented form.
func (p *pqRatchet) openEpoch(epoch uint32) ([32]byte, error) {
	if epoch <= p.epoch {
		if p.epoch-epoch >= pqKeepEpochs {
			return [32]byte{}, fmt.Errorf("%w: PQ epoch %d, now %d", ErrKeyDropped, epoch, p.epoch)
		}
		return p.keys[p.epoch-epoch], nil
	}
	if p.phase == pqConfirming && epoch == p.epoch+1 {
		return p.next, nil
	}
	return [32]byte{}, fmt.Errorf("%w: PQ epoch %d not reached (now %d)", ErrAuth, epoch, p.epoch)
}

// receive takes the shard section of a message of the given epoch that
// has authenticated under the key openEpoch returned for it. It feeds the
// shards of the step in progress to its decoder and ignores the others
// (another kind, another epoch, duplicates, beyond shardData held); on
// decoding an ek it encapsulates, on decoding a ct it decapsulates and
// moves to E+1; a message under E+1 while pqConfirming moves to E+1 and
// starts the next step.
//
// It is transactional: it works on a copy and commits only when nothing
// failed; an error changes nothing. Errors: ErrMalformed for a section
// that does not parse or an ek that is not a valid ML-KEM-768 key (only
// the peer can have sent either, since the section was authenticated:
// the session should treat it as a broken peer); openEpoch's errors for
// an epoch it would not give a key for.
//
// A wrong ct cannot be detected here (ML-KEM decapsulation rejects
// implicitly): the two sides then hold different K_{E+1}, and the
// starter's messages under E+1 fail to authenticate at the peer (ErrAuth,
// the peer's state unchanged). The step does not recover from that; it
// takes a peer that sends bad shards inside authenticated messages.
func (p *pqRatchet) receive(epoch uint32, section []byte) error {
	shards, err := parseShardSection(section)
	if err != nil {
		return err
	}
	if _, err := p.openEpoch(epoch); err != nil {
		return err
	}
	q := *p
	defer q.wipeArrays()
	if q.phase == pqConfirming && epoch == q.epoch+1 {
		k := q.next
		err := q.advance(&k)
		clear(k[:])
		if err != nil {
			return err
		}
	}
	for _, s := range shards {
		if (q.phase != pqStarting && q.phase != pqAwaitingEK) || !q.dec.add(s) {
			continue
		}
		whole, err := q.dec.decode()
		if err != nil {
			return err
		}
		if q.phase == pqAwaitingEK {
			err = q.encapsulate(whole)
		} else {
			err = q.decapsulate(whole)
		}
		if err != nil {
			return err
		}
	}
	*p = q
	return nil
}

// encapsulate: the peer has decoded ek of step E+1.
func (q *pqRatchet) encapsulate(ek []byte) error {
	key, err := mlkem.NewEncapsulationKey768(ek)
	if err != nil {
		return fmt.Errorf("%w: PQ epoch %d: encapsulation key refused", ErrMalformed, q.epoch+1)
	}
	ss, ct := key.Encapsulate()
	defer clear(ss)
	ekHash, ctHash := sha256.Sum256(ek), sha256.Sum256(ct)
	out, err := shardEncode(shardKindCT, ct)
	if err != nil {
		return err
	}
	q.next, err = pqEpochKey(&q.keys[0], ss, q.epoch+1, &ekHash, &ctHash)
	if err != nil {
		return err
	}
	q.phase, q.ct, q.out, q.cursor = pqConfirming, ct, out, 0
	q.dec.wipe()
	return nil
}

// decapsulate: the starter has decoded ct of step E+1.
func (q *pqRatchet) decapsulate(ct []byte) error {
	dk, err := mlkem.NewDecapsulationKey768(q.dkSeed[:])
	if err != nil {
		return err
	}
	ss, err := dk.Decapsulate(ct)
	if err != nil {
		return fmt.Errorf("%w: PQ epoch %d: ciphertext refused", ErrMalformed, q.epoch+1)
	}
	defer clear(ss)
	ctHash := sha256.Sum256(ct)
	k, err := pqEpochKey(&q.keys[0], ss, q.epoch+1, &q.ekHash, &ctHash)
	if err != nil {
		return err
	}
	defer clear(k[:])
	return q.advance(&k) // enter wipes dkSeed
}

// wipeArrays clears the secrets held in the struct itself (not its
// slices, which a committed copy shares).
func (q *pqRatchet) wipeArrays() {
	for i := range q.keys {
		clear(q.keys[i][:])
	}
	clear(q.dkSeed[:])
	clear(q.next[:])
}

// Encoding of the state (part of session state v2), strict and
// canonical:
//
//	role (1) ‖ epoch (4) ‖ min(epoch+1, pqKeepEpochs) × key (32), newest first
//	‖ phase (1) ‖ cursor (1)
//	‖ pqStarting:   dk seed (64) ‖ decoder
//	  pqAwaitingEK: decoder
//	  pqConfirming: K_{E+1} (32) ‖ ct (1088)
//	  pqIdle:       nothing
//	decoder = n (1, < 8) ‖ n × (index (1) ‖ data), indices strictly increasing
//
// The phase must be the one role and epoch imply (pqStarting iff this
// side starts step E+1, pqIdle iff E = pqMaxEpoch); cursor < 32, and 0
// where nothing is sent.

// appendPQ appends the encoding of p.
func (p *pqRatchet) appendPQ(dst []byte) []byte {
	dst = append(dst, byte(p.role))
	dst = binary.BigEndian.AppendUint32(dst, p.epoch)
	for i := range pqKept(p.epoch) {
		dst = append(dst, p.keys[i][:]...)
	}
	dst = append(dst, byte(p.phase), p.cursor)
	switch p.phase {
	case pqStarting:
		dst = append(dst, p.dkSeed[:]...)
		dst = p.dec.appendTo(dst)
	case pqAwaitingEK:
		dst = p.dec.appendTo(dst)
	case pqConfirming:
		dst = append(append(dst, p.next[:]...), p.ct...)
	}
	return dst
}

// pqKept is how many epoch keys a side at epoch e holds.
func pqKept(e uint32) int { return int(min(uint64(e)+1, pqKeepEpochs)) }

func (d *shardDecoder) appendTo(dst []byte) []byte {
	dst = append(dst, byte(d.n))
	for k := range d.n {
		dst = append(append(dst, d.index[k]), d.data[k]...)
	}
	return dst
}

// parsePQ reads an encoded state from s (leaving what follows it) and
// refuses anything appendPQ would not have written (ErrMalformed).
func parsePQ(s *cryptobyte.String) (*pqRatchet, error) {
	p := &pqRatchet{}
	bad := func(what string) (*pqRatchet, error) {
		p.wipeArrays()
		return nil, fmt.Errorf("%w: PQ state: %s", ErrMalformed, what)
	}
	var role, phase uint8
	if !s.ReadUint8(&role) || !s.ReadUint32(&p.epoch) {
		return bad("truncated")
	}
	p.role = Role(role)
	if p.role != Initiator && p.role != Responder {
		return bad("role")
	}
	if p.epoch > pqMaxEpoch {
		return bad("epoch")
	}
	for i := range pqKept(p.epoch) {
		if !s.CopyBytes(p.keys[i][:]) {
			return bad("truncated")
		}
	}
	if !s.ReadUint8(&phase) || !s.ReadUint8(&p.cursor) {
		return bad("truncated")
	}
	p.phase = pqPhase(phase)
	want := pqAwaitingEK
	switch {
	case p.epoch == pqMaxEpoch:
		want = pqIdle
	case pqStarter(p.epoch+1) == p.role:
		want = pqStarting
	}
	if p.phase != want && !(want == pqAwaitingEK && p.phase == pqConfirming) {
		return bad("phase")
	}
	if p.cursor >= shardTotal || (p.cursor != 0 && (p.phase == pqAwaitingEK || p.phase == pqIdle)) {
		return bad("cursor")
	}
	switch p.phase {
	case pqStarting:
		if !s.CopyBytes(p.dkSeed[:]) {
			return bad("truncated")
		}
		p.dec = shardDecoder{kind: shardKindCT, epoch: p.epoch + 1}
		if !p.dec.read(s) {
			return bad("decoder")
		}
		if err := p.deriveStarting(); err != nil {
			return bad("decapsulation key")
		}
	case pqAwaitingEK:
		p.dec = shardDecoder{kind: shardKindEK, epoch: p.epoch + 1}
		if !p.dec.read(s) {
			return bad("decoder")
		}
	case pqConfirming:
		var ct []byte
		if !s.CopyBytes(p.next[:]) || !s.ReadBytes(&ct, mlkem.CiphertextSize768) {
			return bad("truncated")
		}
		p.ct = append([]byte(nil), ct...)
		out, err := shardEncode(shardKindCT, p.ct)
		if err != nil {
			return bad("ciphertext")
		}
		p.out = out
	}
	return p, nil
}

// read decodes a decoder's held shards (kind and epoch already set).
func (d *shardDecoder) read(s *cryptobyte.String) bool {
	var n uint8
	if !s.ReadUint8(&n) || n >= shardData {
		return false
	}
	size := shardSize(d.kind)
	for k := range int(n) {
		var data []byte
		if !s.ReadUint8(&d.index[k]) || d.index[k] >= shardTotal || (k > 0 && d.index[k] <= d.index[k-1]) || !s.ReadBytes(&data, size) {
			return false
		}
		d.data[k] = append([]byte(nil), data...)
	}
	d.n = int(n)
	return true
}

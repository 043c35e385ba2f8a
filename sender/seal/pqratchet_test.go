package seal

import (
	"bytes"
	"crypto/mlkem"
	"crypto/sha256"
	"errors"
	"math/rand/v2"
	"testing"

	"golang.org/x/crypto/cryptobyte"
)

// pqMsg is what a sealed message tells the PQ ratchet of its receiver:
// the epoch (in the header), the key it was sealed under (standing in for
// the AEAD: the receiver authenticates iff its key is the same) and the
// shard section (in the plaintext).
type pqMsg struct {
	epoch  uint32
	key    [32]byte
	shards []byte
}

func pqPair(t testing.TB) (a, b *pqRatchet) {
	sk := sha256.Sum256([]byte("pq test sk"))
	a, err := newPQRatchet(Initiator, &sk)
	if err != nil {
		t.Fatal(err)
	}
	b, err = newPQRatchet(Responder, &sk)
	if err != nil {
		t.Fatal(err)
	}
	return a, b
}

func pqSend(p *pqRatchet, room int) pqMsg {
	e, k := p.sealEpoch()
	return pqMsg{epoch: e, key: k, shards: p.appendShards(nil, room)}
}

// pqDeliver does what the session will: openEpoch, authenticate, receive.
func pqDeliver(to *pqRatchet, m pqMsg) error {
	k, err := to.openEpoch(m.epoch)
	if err != nil {
		return err
	}
	if k != m.key {
		return ErrAuth
	}
	return to.receive(m.epoch, m.shards)
}

func pqState(p *pqRatchet) []byte { return p.appendPQ(nil) }

// pqCheckAgree: every epoch both sides hold has the same key on both.
func pqCheckAgree(t testing.TB, a, b *pqRatchet) {
	t.Helper()
	for e := uint32(0); e <= min(a.epoch, b.epoch); e++ {
		ka, ea := a.openEpoch(e)
		kb, eb := b.openEpoch(e)
		if ea == nil && eb == nil && ka != kb {
			t.Fatalf("epoch %d: keys differ", e)
		}
	}
}

// pqRoom is the room for n shards of either kind.
func pqRoom(n int) int { return 1 + n*shardWireSize(shardKindEK) }

// pqConverse runs a strictly alternating conversation (a first) losing
// each message with probability loss, until both sides reach epoch
// steps; it returns the messages sent (lost ones included) for each step,
// counted from the start of the step until both sides are past it.
func pqConverse(t testing.TB, room int, loss float64, steps uint32, seed uint64) []int {
	rng := rand.New(rand.NewPCG(seed, 99))
	a, b := pqPair(t)
	var per []int
	count := 0
	side := [2]*pqRatchet{a, b}
	for i := 0; i < 100000 && min(a.epoch, b.epoch) < steps; i++ {
		from, to := side[i%2], side[1-i%2]
		before := min(a.epoch, b.epoch)
		m := pqSend(from, room)
		count++
		if rng.Float64() >= loss {
			if err := pqDeliver(to, m); err != nil {
				t.Fatalf("message %d: %v", i, err)
			}
		}
		pqCheckAgree(t, a, b)
		if min(a.epoch, b.epoch) > before {
			per = append(per, count)
			count = 0
		}
	}
	if min(a.epoch, b.epoch) < steps {
		t.Fatalf("only reached epochs %d/%d", a.epoch, b.epoch)
	}
	return per
}

func pqStats(per []int) (mean float64, most int) {
	for _, n := range per {
		mean += float64(n)
		most = max(most, n)
	}
	return mean / float64(len(per)), most
}

// TestPQStepsComplete: steps complete in both directions of starter, and
// the figures (messages per step, both directions counted) are logged.
func TestPQStepsComplete(t *testing.T) {
	for _, tc := range []struct {
		name   string
		shards int
		loss   float64
		within float64
	}{
		{"1 shard", 1, 0, 32},
		{"7 shards", 7, 0, 8},
		{"1 shard 20% loss", 1, 0.2, 60},
		{"7 shards 20% loss", 7, 0.2, 12},
	} {
		t.Run(tc.name, func(t *testing.T) {
			per := pqConverse(t, pqRoom(tc.shards), tc.loss, 12, 5)
			mean, most := pqStats(per)
			t.Logf("room %d shards, loss %.0f%%: %.1f messages per PQ step (max %d, %d steps)", tc.shards, tc.loss*100, mean, most, len(per))
			if mean > tc.within {
				t.Errorf("%.1f messages per step, want ≤ %.0f", mean, tc.within)
			}
		})
	}
}

// BenchmarkPQMessagesPerStep reports the step length as metrics.
func BenchmarkPQMessagesPerStep(b *testing.B) {
	for b.Loop() {
		for _, tc := range []struct {
			name   string
			shards int
			loss   float64
		}{{"1shard", 1, 0}, {"7shards", 7, 0}, {"1shard-loss20", 1, 0.2}, {"7shards-loss20", 7, 0.2}} {
			mean, _ := pqStats(pqConverse(b, pqRoom(tc.shards), tc.loss, 6, 5))
			b.ReportMetric(mean, "msgs/step-"+tc.name)
		}
	}
}

// TestPQOpenEpoch: kept epochs open, an older one is ErrKeyDropped, a
// later unknown one ErrAuth; a late message of a kept epoch still
// delivers.
func TestPQOpenEpoch(t *testing.T) {
	a, b := pqPair(t)
	var early pqMsg
	for i := 0; i < 1000 && b.epoch < 6; i++ {
		m := pqSend(a, pqRoom(8))
		if i == 0 {
			early = m
		}
		if err := pqDeliver(b, m); err != nil {
			t.Fatal(err)
		}
		if err := pqDeliver(a, pqSend(b, pqRoom(8))); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.openEpoch(b.epoch + 2); !errors.Is(err, ErrAuth) {
		t.Fatalf("future epoch: %v", err)
	}
	if _, err := b.openEpoch(b.epoch - pqKeepEpochs); !errors.Is(err, ErrKeyDropped) {
		t.Fatalf("dropped epoch: %v", err)
	}
	if err := pqDeliver(b, early); !errors.Is(err, ErrKeyDropped) {
		t.Fatalf("epoch-0 message at epoch %d: %v", b.epoch, err)
	}
	// A late message of the oldest kept epoch: opens, its shards (of an
	// old step) are ignored, the state does not change.
	old := b.epoch - (pqKeepEpochs - 1)
	k, err := b.openEpoch(old)
	if err != nil {
		t.Fatal(err)
	}
	before := pqState(b)
	stale := appendShard([]byte{1}, shardKindEK, old, 3, make([]byte, shardEKSize))
	if err := pqDeliver(b, pqMsg{epoch: old, key: k, shards: stale}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, pqState(b)) {
		t.Fatal("old shard changed the state")
	}
}

// TestPQLossDuplicatesReorder: the peer gets the ek shards out of order,
// some twice, from parity shards only, and still decodes; each duplicate
// leaves the state as it was.
func TestPQLossDuplicatesReorder(t *testing.T) {
	a, b := pqPair(t)
	var msgs []pqMsg
	for range shardTotal {
		msgs = append(msgs, pqSend(a, pqRoom(1)))
	}
	rng := rand.New(rand.NewPCG(3, 4))
	rng.Shuffle(len(msgs), func(i, j int) { msgs[i], msgs[j] = msgs[j], msgs[i] })
	// drop the systematic ones: only parity shards arrive
	var parity []pqMsg
	for _, m := range msgs {
		if m.shards[6] >= shardData {
			parity = append(parity, m)
		}
	}
	for i, m := range parity[:shardData] {
		if err := pqDeliver(b, m); err != nil {
			t.Fatal(err)
		}
		if i < shardData-1 {
			before := pqState(b)
			if err := pqDeliver(b, m); err != nil || !bytes.Equal(before, pqState(b)) {
				t.Fatalf("duplicate: %v, state changed %v", err, !bytes.Equal(before, pqState(b)))
			}
		}
	}
	if b.phase != pqConfirming {
		t.Fatalf("b in phase %d after 8 parity shards", b.phase)
	}
	// complete the step
	for i := 0; i < 100 && a.epoch == 0; i++ {
		if err := pqDeliver(a, pqSend(b, pqRoom(1))); err != nil {
			t.Fatal(err)
		}
	}
	if err := pqDeliver(b, pqSend(a, pqRoom(1))); err != nil || a.epoch != 1 || b.epoch != 1 {
		t.Fatalf("%v: epochs %d %d", err, a.epoch, b.epoch)
	}
	pqCheckAgree(t, a, b)
}

// TestPQBadSectionChangesNothing: every truncation of a valid section and
// every byte of its header changed → ErrMalformed or ignored, and on an
// error the encoded state is unchanged.
func TestPQBadSectionChangesNothing(t *testing.T) {
	a, b := pqPair(t)
	m := pqSend(a, pqRoom(2))
	for n := range len(m.shards) {
		before := pqState(b)
		if err := pqDeliver(b, pqMsg{m.epoch, m.key, m.shards[:n]}); !errors.Is(err, ErrMalformed) {
			t.Fatalf("truncated to %d: %v", n, err)
		}
		if !bytes.Equal(before, pqState(b)) {
			t.Fatalf("truncated to %d: state changed", n)
		}
	}
	one := pqSend(a, pqRoom(1)) // one shard: a changed header must make it refused or ignored
	for i := range 1 + shardHeaderSize {
		for _, bit := range []byte{0x01, 0x80} {
			s := append([]byte(nil), one.shards...)
			s[i] ^= bit
			before := pqState(b)
			err := pqDeliver(b, pqMsg{one.epoch, one.key, s})
			if err != nil && !bytes.Equal(before, pqState(b)) {
				t.Fatalf("byte %d: error %v and state changed", i, err)
			}
			if err == nil && i >= 1 && i < 6 && !bytes.Equal(before, pqState(b)) {
				t.Fatalf("byte %d: a shard of another kind or epoch was taken", i)
			}
			b.dec.wipe() // start each case from an empty decoder
		}
	}
	// A message under a key b does not hold changes nothing.
	before := pqState(b)
	if err := b.receive(9, m.shards); !errors.Is(err, ErrAuth) || !bytes.Equal(before, pqState(b)) {
		t.Fatalf("receive under an unknown epoch: %v", err)
	}
}

// TestPQTamperedShard: a shard whose data was changed (possible only for
// the peer itself: shards ride inside the AEAD) is caught either when
// the decoded ek is not a valid ML-KEM key (ErrMalformed, state
// unchanged) or, for a valid but wrong ek, because the two sides derive
// different K_1 and the starter's first message under epoch 1 fails to
// authenticate at the peer, whose state stays unchanged.
func TestPQTamperedShard(t *testing.T) {
	t.Run("invalid ek", func(t *testing.T) {
		a, b := pqPair(t)
		for i := range shardData {
			m := pqSend(a, pqRoom(1))
			if i == 0 {
				m.shards[7], m.shards[8] = 0xff, 0xff // coefficient 4095 ≥ q
			}
			before := pqState(b)
			err := pqDeliver(b, m)
			if i < shardData-1 && err != nil {
				t.Fatal(err)
			}
			if i == shardData-1 && (!errors.Is(err, ErrMalformed) || !bytes.Equal(before, pqState(b))) {
				t.Fatalf("invalid ek: %v", err)
			}
		}
	})
	t.Run("valid wrong ek", func(t *testing.T) {
		a, b := pqPair(t)
		for i := range shardData {
			m := pqSend(a, pqRoom(1))
			if i == shardData-1 {
				m.shards[len(m.shards)-1] ^= 1 // in ρ, the last 32 bytes of ek: still a valid key
			}
			if err := pqDeliver(b, m); err != nil {
				t.Fatal(err)
			}
		}
		for i := 0; i < 100 && a.epoch == 0; i++ {
			if err := pqDeliver(a, pqSend(b, pqRoom(1))); err != nil {
				t.Fatal(err)
			}
		}
		if a.epoch != 1 {
			t.Fatal("starter did not finish")
		}
		before := pqState(b)
		if err := pqDeliver(b, pqSend(a, pqRoom(1))); !errors.Is(err, ErrAuth) {
			t.Fatalf("message under a mismatched K_1: %v", err)
		}
		if !bytes.Equal(before, pqState(b)) || b.epoch != 0 {
			t.Fatal("peer state changed")
		}
		// Control: the same exchange untampered authenticates.
		pqConverse(t, pqRoom(1), 0, 1, 1)
	})
}

// TestPQStateRoundTrip: in every phase the state re-encodes identically
// after parsing, the parsed copy carries on as the original (it completes
// the step with the peer), and every truncation and a trailing byte are
// refused.
func TestPQStateRoundTrip(t *testing.T) {
	a, b := pqPair(t)
	seen := map[pqPhase]bool{}
	for i := 0; i < 200 && len(seen) < 3; i++ {
		from, to := a, b
		if i%2 == 1 {
			from, to = b, a
		}
		if err := pqDeliver(to, pqSend(from, pqRoom(3))); err != nil {
			t.Fatal(err)
		}
		for _, p := range []*pqRatchet{a, b} {
			seen[p.phase] = true
			enc := pqState(p)
			q, err := pqParseWhole(enc)
			if err != nil {
				t.Fatalf("phase %d: %v", p.phase, err)
			}
			if !bytes.Equal(pqState(q), enc) {
				t.Fatalf("phase %d: re-encoding differs", p.phase)
			}
			if len(q.out) != len(p.out) || (len(p.out) > 0 && !bytes.Equal(q.out[5], p.out[5])) {
				t.Fatalf("phase %d: derived shards differ", p.phase)
			}
			if _, err := pqParseWhole(append(enc, 0)); !errors.Is(err, ErrMalformed) {
				t.Fatal("trailing byte accepted")
			}
			for n := 0; n < len(enc); n += 7 {
				if _, err := pqParseWhole(enc[:n]); !errors.Is(err, ErrMalformed) {
					t.Fatalf("phase %d: truncated to %d accepted", p.phase, n)
				}
			}
			*p = *q // carry on with the parsed state
		}
	}
	if len(seen) < 3 {
		t.Fatalf("phases seen: %v", seen)
	}
	pqCheckAgree(t, a, b)
	// Wrong phase for role and epoch: refused.
	enc := pqState(a)
	at := 1 + 4 + 32*pqKept(a.epoch)
	for _, ph := range []byte{0, 1, 2, 3, 4, 5} {
		if ph == enc[at] || (ph == byte(pqConfirming) && enc[at] == byte(pqAwaitingEK)) {
			continue
		}
		bad := append([]byte(nil), enc...)
		bad[at] = ph
		if _, err := pqParseWhole(bad); !errors.Is(err, ErrMalformed) {
			t.Fatalf("phase %d for %d accepted", ph, enc[at])
		}
	}
}

func pqParseWhole(b []byte) (*pqRatchet, error) {
	s := cryptobyte.String(b)
	p, err := parsePQ(&s)
	if err != nil {
		return nil, err
	}
	if err := readWhole(true, s, "PQ state"); err != nil {
		return nil, err
	}
	return p, nil
}

// pqAttack is what an adversary derives from a copy of one side: every
// key the copy holds, every key a replica of the copy fed the real
// traffic derives, and every key obtained by decapsulating the wire ct of
// each step with any decapsulation key it ever held, or by encapsulating
// to the wire ek itself, from any key it knows.
func pqAttack(t *testing.T, c pqRatchet, toCopy []pqMsg, wire []pqMsg) map[[32]byte]bool {
	known := map[[32]byte]bool{}
	var seeds [][pqSeedSize]byte
	note := func(p *pqRatchet) {
		for i := range pqKept(p.epoch) {
			known[p.keys[i]] = true
		}
		if p.phase == pqConfirming {
			known[p.next] = true
		}
		if p.phase == pqStarting {
			seeds = append(seeds, p.dkSeed)
		}
	}
	replica := c
	note(&replica)
	for _, m := range toCopy {
		_ = replica.receive(m.epoch, m.shards) // errors: the replica is off the real track
		note(&replica)
	}
	// Decode each step's ek and ct from the wire.
	type step struct{ ek, ct []byte }
	steps := map[uint32]*step{}
	decs := map[[2]uint32]*shardDecoder{}
	for _, m := range wire {
		sh, err := parseShardSection(m.shards)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range sh {
			id := [2]uint32{uint32(s.kind), s.epoch}
			d := decs[id]
			if d == nil {
				d = &shardDecoder{kind: s.kind, epoch: s.epoch}
				decs[id] = d
			}
			if d.n < shardData && d.add(s) {
				v, err := d.decode()
				if err != nil {
					t.Fatal(err)
				}
				if steps[s.epoch] == nil {
					steps[s.epoch] = &step{}
				}
				if s.kind == shardKindEK {
					steps[s.epoch].ek = v
				} else {
					steps[s.epoch].ct = v
				}
			}
		}
	}
	for e := c.epoch + 1; steps[e] != nil && steps[e].ek != nil && steps[e].ct != nil; e++ {
		st := steps[e]
		ekH, ctH := sha256.Sum256(st.ek), sha256.Sum256(st.ct)
		var secrets [][]byte
		for _, seed := range seeds {
			dk, _ := mlkem.NewDecapsulationKey768(seed[:])
			ss, _ := dk.Decapsulate(st.ct)
			secrets = append(secrets, ss)
		}
		if ek, err := mlkem.NewEncapsulationKey768(st.ek); err == nil {
			ss, _ := ek.Encapsulate()
			secrets = append(secrets, ss)
		}
		var add [][32]byte
		for k := range known {
			for _, ss := range secrets {
				nk, _ := pqEpochKey(&k, ss, e, &ekH, &ctH)
				add = append(add, nk)
			}
		}
		for _, k := range add {
			known[k] = true
		}
	}
	return known
}

// TestPQHealsWithDHRevealed: PCS against an adversary who knows every
// X25519 secret (so everything but ML-KEM secrets): it copies one side at
// epoch E ≥ 2 in a given phase and sees every shard. It computes the keys
// the copy holds and, if the copy was pqStarting or pqConfirming, K_{E+1}
// (the controls: the attack works on what the copy holds); it computes
// none from the first key whose ML-KEM secret is fresh after the copy:
// K_{E+1} for a copy in pqAwaitingEK, K_{E+2} otherwise.
func TestPQHealsWithDHRevealed(t *testing.T) {
	for _, tc := range []struct {
		phase pqPhase
		fresh uint32 // first epoch (after E) the adversary must not reach
	}{{pqStarting, 2}, {pqAwaitingEK, 1}, {pqConfirming, 2}} {
		t.Run(map[pqPhase]string{pqStarting: "starter", pqAwaitingEK: "peer awaiting ek", pqConfirming: "peer confirming"}[tc.phase], func(t *testing.T) {
			a, b := pqPair(t)
			var copied *pqRatchet
			var victim *pqRatchet
			var toVictim, wire []pqMsg
			real := map[uint32][32]byte{}
			record := func(p *pqRatchet) {
				for i := range pqKept(p.epoch) {
					real[p.epoch-uint32(i)] = p.keys[i]
				}
			}
			side := [2]*pqRatchet{a, b}
			for i := 0; i < 2000 && (copied == nil || min(a.epoch, b.epoch) < copied.epoch+4); i++ {
				from, to := side[i%2], side[1-i%2]
				m := pqSend(from, pqRoom(3))
				if copied != nil {
					wire = append(wire, m)
					if to == victim {
						toVictim = append(toVictim, m)
					}
				}
				if err := pqDeliver(to, m); err != nil {
					t.Fatal(err)
				}
				record(a)
				record(b)
				for _, p := range side {
					if copied == nil && p.epoch >= 2 && p.phase == tc.phase {
						c := *p
						copied, victim = &c, p
					}
				}
			}
			if copied == nil {
				t.Fatal("phase never reached")
			}
			known := pqAttack(t, *copied, toVictim, wire)
			E := copied.epoch
			if !known[real[E]] {
				t.Fatal("control: the adversary lacks the key the copy holds")
			}
			if tc.fresh == 2 && !known[real[E+1]] {
				t.Fatalf("control: the adversary cannot compute K_%d although the copy holds its secret", E+1)
			}
			for e := E + tc.fresh; e <= E+3; e++ {
				k, ok := real[e]
				if !ok {
					t.Fatalf("epoch %d not reached", e)
				}
				if known[k] {
					t.Fatalf("the adversary computed K_%d (copy at epoch %d, phase %d)", e, E, tc.phase)
				}
			}
			t.Logf("copy at epoch %d: adversary has %d candidate keys, K_%d.. unreachable", E, len(known), E+tc.fresh)
		})
	}
}

// BenchmarkPQStep: one step's computation, both sides: key generation,
// RS encoding of ek, decoding from parity shards, encapsulation, K,
// RS of ct, decapsulation, K. Compare with BenchmarkBaselineX25519.
func BenchmarkPQStep(b *testing.B) {
	var k0 [32]byte
	for b.Loop() {
		dk, _ := mlkem.GenerateKey768()
		ek := dk.EncapsulationKey().Bytes()
		out, _ := shardEncode(shardKindEK, ek)
		d := shardDecoder{kind: shardKindEK, epoch: 1}
		for i := shardTotal - shardData; i < shardTotal; i++ {
			d.add(shard{kind: shardKindEK, epoch: 1, index: byte(i), data: out[i]})
		}
		ek2, err := d.decode()
		if err != nil {
			b.Fatal(err)
		}
		key, _ := mlkem.NewEncapsulationKey768(ek2)
		ss, ct := key.Encapsulate()
		ekH, ctH := sha256.Sum256(ek2), sha256.Sum256(ct)
		k1, _ := pqEpochKey(&k0, ss, 1, &ekH, &ctH)
		cts, _ := shardEncode(shardKindCT, ct)
		dc := shardDecoder{kind: shardKindCT, epoch: 1}
		for i := shardTotal - shardData; i < shardTotal; i++ {
			dc.add(shard{kind: shardKindCT, epoch: 1, index: byte(i), data: cts[i]})
		}
		ct2, _ := dc.decode()
		ss2, _ := dk.Decapsulate(ct2)
		k2, _ := pqEpochKey(&k0, ss2, 1, &ekH, &ctH)
		if k1 != k2 {
			b.Fatal("keys differ")
		}
	}
}

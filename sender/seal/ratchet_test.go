package seal

import (
	"bytes"
	"crypto/ecdh"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/cryptobyte"
)

// The Double Ratchet on its own API (ratchet.go), with a trivial AEAD:
// ChaCha20-Poly1305 keyed with MK, zero nonce, the encoded header as AD.

var drT0 = time.Unix(1_800_000_000, 0)

type drMsg struct {
	hdr drHeader
	ct  []byte
	pt  []byte
}

// drPair is an initiator A and a responder B from a fixed SK and SPK_B.
func drPair(t testing.TB, name string) (a, b *ratchet, rngA, rngB io.Reader) {
	t.Helper()
	rngA, rngB = testRand(name+" a"), testRand(name+" b")
	sk := sha256.Sum256([]byte("dr sk " + name))
	spkSeed := sha256.Sum256([]byte("dr spk " + name))
	spk, err := ecdh.X25519().NewPrivateKey(spkSeed[:])
	if err != nil {
		t.Fatal(err)
	}
	a, err = newInitiatorRatchet(rngA, &sk, spk.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	return a, newResponderRatchet(&sk, spk), rngA, rngB
}

func drAEAD(mk *[32]byte) interface {
	Seal(dst, nonce, pt, ad []byte) []byte
	Open(dst, nonce, ct, ad []byte) ([]byte, error)
} {
	aead, err := chacha20poly1305.New(mk[:])
	if err != nil {
		panic(err)
	}
	return aead
}

func drSeal(t testing.TB, r *ratchet, rng io.Reader, pt string) drMsg {
	t.Helper()
	hdr, mk, err := r.sealKey(rng)
	if err != nil {
		t.Fatal(err)
	}
	ct := drAEAD(&mk).Seal(nil, zeroNonce[:], []byte(pt), hdr.append(nil))
	return drMsg{hdr: hdr, ct: ct, pt: []byte(pt)}
}

// drTry is the try callback that decrypts m into *out.
func drTry(m drMsg, out *[]byte) func(mk *[32]byte) bool {
	return func(mk *[32]byte) bool {
		pt, err := drAEAD(mk).Open(nil, zeroNonce[:], m.ct, m.hdr.append(nil))
		*out = pt
		return err == nil
	}
}

func drOpen(r *ratchet, m drMsg, now time.Time) ([]byte, error) {
	var pt []byte
	err := r.openKey(m.hdr, now, drTry(m, &pt))
	return pt, err
}

func drMustOpen(t testing.TB, r *ratchet, m drMsg, now time.Time) {
	t.Helper()
	pt, err := drOpen(r, m, now)
	if err != nil {
		t.Fatalf("open %d/%d: %v", m.hdr.pn, m.hdr.n, err)
	}
	if !bytes.Equal(pt, m.pt) {
		t.Fatalf("open %d: %q, want %q", m.hdr.n, pt, m.pt)
	}
}

func drState(r *ratchet) []byte { return r.appendRatchet(nil) }

// drClone copies r through its encoding (so every use also checks that
// the encoding keeps the whole state).
func drClone(t testing.TB, r *ratchet) *ratchet {
	t.Helper()
	b := drState(r)
	c, err := parseRatchet(cryptobyte.String(b))
	if err != nil {
		t.Fatalf("parse own encoding: %v", err)
	}
	if again := drState(c); !bytes.Equal(again, b) {
		t.Fatal("state re-encodes differently")
	}
	return c
}

func TestRatchetPingPong(t *testing.T) {
	a, b, rngA, rngB := drPair(t, "ping-pong")
	prng := rand.New(rand.NewPCG(1, 2))
	sides := [2]*ratchet{a, b}
	rngs := [2]io.Reader{rngA, rngB}
	sent, turn := 0, 0
	for sent < 200 {
		from := turn % 2
		for range 1 + prng.IntN(5) {
			m := drSeal(t, sides[from], rngs[from], fmt.Sprintf("message %d", sent))
			drMustOpen(t, sides[1-from], m, drT0)
			sent++
		}
		// Continue from the decoded state now and then.
		if turn%7 == 3 {
			sides[0], sides[1] = drClone(t, sides[0]), drClone(t, sides[1])
		}
		turn++
	}
	if a.dropped != 0 || b.dropped != 0 || len(a.skipped)+len(b.skipped) != 0 {
		t.Fatalf("dropped %d/%d, skipped %d/%d", a.dropped, b.dropped, len(a.skipped), len(b.skipped))
	}
}

// A's messages over several DH steps, delivered shuffled, some lost, some
// twice: each delivered one opens exactly once, a second copy is ErrReplay.
func TestRatchetReorderLossDuplicates(t *testing.T) {
	a, b, rngA, rngB := drPair(t, "reorder")
	prng := rand.New(rand.NewPCG(3, 4))
	var window []drMsg
	for chain := range 4 {
		batch := make([]drMsg, 40)
		for i := range batch {
			batch[i] = drSeal(t, a, rngA, fmt.Sprintf("chain %d message %d", chain, i))
		}
		// The last of the batch arrives first: B steps and answers, so A
		// steps on its next message.
		drMustOpen(t, b, batch[len(batch)-1], drT0)
		drMustOpen(t, a, drSeal(t, b, rngB, "ack"), drT0)
		window = append(window, batch[:len(batch)-1]...)
	}
	prng.Shuffle(len(window), func(i, j int) { window[i], window[j] = window[j], window[i] })
	opened := map[string]int{}
	delivered := 0
	for i, m := range window {
		switch {
		case i%10 == 3: // lost
			continue
		case i%10 == 7: // twice
			drMustOpen(t, b, m, drT0)
			if _, err := drOpen(b, m, drT0); !errors.Is(err, ErrReplay) {
				t.Fatalf("duplicate: %v, want ErrReplay", err)
			}
		default:
			drMustOpen(t, b, m, drT0)
		}
		opened[string(m.pt)]++
		delivered++
	}
	if len(opened) != delivered || delivered < 100 {
		t.Fatalf("%d distinct of %d delivered", len(opened), delivered)
	}
	if len(b.skipped) != len(window)-delivered || b.dropped != 0 {
		t.Fatalf("B holds %d keys (want %d, the lost ones), dropped %d", len(b.skipped), len(window)-delivered, b.dropped)
	}
}

func TestRatchetBoundCount(t *testing.T) {
	a, b, rngA, _ := drPair(t, "count")
	msgs := make([]drMsg, 600)
	for i := range msgs {
		msgs[i] = drSeal(t, a, rngA, fmt.Sprint(i))
	}
	drMustOpen(t, b, msgs[599], drT0)
	lost := 599 - drMaxSkipped
	if len(b.skipped) != drMaxSkipped || b.dropped != uint64(lost) {
		t.Fatalf("holds %d, dropped %d; want %d, %d", len(b.skipped), b.dropped, drMaxSkipped, lost)
	}
	before := drState(b)
	for _, n := range []int{0, lost - 1} {
		if _, err := drOpen(b, msgs[n], drT0); !errors.Is(err, ErrKeyDropped) {
			t.Fatalf("message %d: %v, want ErrKeyDropped", n, err)
		}
	}
	if !bytes.Equal(before, drState(b)) {
		t.Fatal("a refused message changed the state")
	}
	drMustOpen(t, b, msgs[lost], drT0) // the oldest kept: control
	for _, n := range []int{lost, 599} {
		if _, err := drOpen(b, msgs[n], drT0); !errors.Is(err, ErrReplay) {
			t.Fatalf("message %d again: %v, want ErrReplay", n, err)
		}
	}
}

func TestRatchetBoundAge(t *testing.T) {
	a, b, rngA, _ := drPair(t, "age")
	msgs := make([]drMsg, 5)
	for i := range msgs {
		msgs[i] = drSeal(t, a, rngA, fmt.Sprint(i))
	}
	drMustOpen(t, b, msgs[4], drT0)
	early := drClone(t, b)
	late := drT0.Add(drMaxSkippedAge + time.Second)
	before := drState(b)
	if _, err := drOpen(b, msgs[0], late); !errors.Is(err, ErrKeyDropped) {
		t.Fatalf("old key at open: %v, want ErrKeyDropped", err)
	}
	if !bytes.Equal(before, drState(b)) {
		t.Fatal("a refused message changed the state")
	}
	drMustOpen(t, early, msgs[0], drT0.Add(drMaxSkippedAge)) // control: just in time
	drMustOpen(t, b, msgs[1], drT0.Add(24*time.Hour))
	b.expire(late)
	if len(b.skipped) != 0 || b.dropped != 3 {
		t.Fatalf("after expire: holds %d, dropped %d", len(b.skipped), b.dropped)
	}
	for _, n := range []int{0, 2, 3} {
		if _, err := drOpen(b, msgs[n], late); !errors.Is(err, ErrKeyDropped) {
			t.Fatalf("message %d after expire: %v", n, err)
		}
	}
	// (Message 1, used, is below its chain's mark now: answered
	// ErrKeyDropped, the documented imprecision of drChain.)
}

func TestRatchetBoundGap(t *testing.T) {
	a, b, rngA, rngB := drPair(t, "gap")
	msgs := make([]drMsg, MaxGap+2)
	for i := range msgs {
		msgs[i] = drSeal(t, a, rngA, fmt.Sprint(i))
	}
	before := drState(b)
	if _, err := drOpen(b, msgs[MaxGap+1], drT0); !errors.Is(err, ErrGap) {
		t.Fatalf("beyond MaxGap: %v", err)
	}
	if !bytes.Equal(before, drState(b)) {
		t.Fatal("refused message changed the state")
	}
	drMustOpen(t, b, msgs[0], drT0)
	// The old chain's PN beyond MaxGap on a chain switch.
	drMustOpen(t, a, drSeal(t, b, rngB, "ack"), drT0)
	next := drSeal(t, a, rngA, "new chain")
	if next.hdr.pn != MaxGap+2 {
		t.Fatalf("PN %d", next.hdr.pn)
	}
	before = drState(b)
	if _, err := drOpen(b, next, drT0); !errors.Is(err, ErrGap) {
		t.Fatalf("PN beyond MaxGap: %v", err)
	}
	if !bytes.Equal(before, drState(b)) {
		t.Fatal("refused message changed the state")
	}
	drMustOpen(t, b, msgs[MaxGap], drT0) // control: within MaxGap
	drMustOpen(t, b, next, drT0)         // and now the switch is within too
}

// At most drMaxSkippedChains peer ratchet keys hold keys: those of the
// oldest chain go (counted, ErrKeyDropped).
func TestRatchetBoundChains(t *testing.T) {
	a, b, rngA, rngB := drPair(t, "chains")
	var first []drMsg
	for chain := range drMaxSkippedChains + 2 {
		m0 := drSeal(t, a, rngA, "skipped")
		m1 := drSeal(t, a, rngA, "read")
		drMustOpen(t, b, m1, drT0)
		drMustOpen(t, a, drSeal(t, b, rngB, "ack"), drT0)
		first = append(first, m0)
		_ = chain
	}
	if got := b.skippedChains(0); got != drMaxSkippedChains || b.dropped != 2 {
		t.Fatalf("keys of %d chains, dropped %d", got, b.dropped)
	}
	for _, m := range first[:2] {
		if _, err := drOpen(b, m, drT0); !errors.Is(err, ErrKeyDropped) {
			t.Fatalf("oldest chain: %v, want ErrKeyDropped", err)
		}
	}
	for _, m := range first[2:] {
		drMustOpen(t, b, m, drT0)
	}
}

// drAttackerKeys is every message key a stolen state can compute without
// new randomness: its skipped keys, and both chains run ahead keys forward.
func drAttackerKeys(r *ratchet, ahead int) [][32]byte {
	var keys [][32]byte
	for _, k := range r.skipped {
		keys = append(keys, k.mk)
	}
	var chains [][32]byte
	if r.hasSend {
		chains = append(chains, r.cks)
	}
	if len(r.chains) > 0 {
		chains = append(chains, r.ckr)
	}
	for _, ck := range chains {
		for range ahead {
			mk, next := chainStep(&ck)
			keys = append(keys, mk)
			ck = next
		}
	}
	return keys
}

func drOpensWith(keys [][32]byte, m drMsg) bool {
	for i := range keys {
		if _, err := drAEAD(&keys[i]).Open(nil, zeroNonce[:], m.ct, m.hdr.append(nil)); err == nil {
			return true
		}
	}
	return false
}

// Forward secrecy: a copy of B's state after reading message i derives no
// key of a message it has read (over three DH steps, with keys held for
// undelivered messages); control: a copy from before the last read
// derives and opens it.
func TestRatchetForwardSecrecy(t *testing.T) {
	a, b, rngA, rngB := drPair(t, "fs")
	var read []drMsg
	var before *ratchet
	for chain := range 3 {
		for i := range 6 {
			m := drSeal(t, a, rngA, fmt.Sprintf("%d/%d", chain, i))
			if i == 2 || i == 4 {
				continue // never delivered: B holds its key
			}
			before = drClone(t, b)
			drMustOpen(t, b, m, drT0)
			read = append(read, m)
		}
		drMustOpen(t, a, drSeal(t, b, rngB, "ack"), drT0)
	}
	stolen := drClone(t, b)
	keys := drAttackerKeys(stolen, MaxGap+8)
	for _, m := range read {
		if drOpensWith(keys, m) {
			t.Fatalf("the copy after reading derives the key of read message %q", m.pt)
		}
		if _, err := drOpen(drClone(t, stolen), m, drT0); err == nil {
			t.Fatalf("the copy after reading opens %q", m.pt)
		}
	}
	last := read[len(read)-1]
	if !drOpensWith(drAttackerKeys(before, 8), last) {
		t.Fatal("control: the copy from before the read does not derive its key")
	}
	drMustOpen(t, before, last, drT0)
}

// Post-compromise security (classical): a full copy of A taken at some
// point; a passive attacker who sees every header and ciphertext and runs
// the copy's logic on them (opening B's messages in order, sealing with
// its own randomness where A would step, every key it can compute tried
// on every message) reads the messages before the next round trip
// (control) and none after it.
func TestRatchetPostCompromise(t *testing.T) {
	a, b, rngA, rngB := drPair(t, "pcs")
	for i := range 3 {
		drMustOpen(t, b, drSeal(t, a, rngA, fmt.Sprint("warm-up a", i)), drT0)
		drMustOpen(t, a, drSeal(t, b, rngB, fmt.Sprint("warm-up b", i)), drT0)
	}
	// A has just sent on its chain: the theft is of a sending chain in use.
	drMustOpen(t, b, drSeal(t, a, rngA, "warm-up last"), drT0)
	stolen := drClone(t, a)
	attackerRng := testRand("pcs attacker")

	var fromA, fromB []drMsg
	send := func(from, to *ratchet, rng io.Reader, out *[]drMsg, pt string) {
		m := drSeal(t, from, rng, pt)
		drMustOpen(t, to, m, drT0)
		*out = append(*out, m)
	}
	send(a, b, rngA, &fromA, "before 1") // A's chain at the theft
	send(b, a, rngB, &fromB, "before 2") // B's new key, DH with A's stolen key
	send(a, b, rngA, &fromA, "after 1")  // A's new ratchet key, from A's randomness
	send(b, a, rngB, &fromB, "after 2")
	send(a, b, rngA, &fromA, "after 3")
	send(a, b, rngA, &fromA, "after 4")
	send(b, a, rngB, &fromB, "after 5")
	all := append(append([]drMsg{}, fromA...), fromB...)

	readable := map[string]bool{}
	try := func(keys [][32]byte) {
		for _, m := range all {
			if drOpensWith(keys, m) {
				readable[string(m.pt)] = true
			}
		}
	}
	try(drAttackerKeys(stolen, 64))
	for _, m := range fromB {
		if pt, err := drOpen(stolen, m, drT0); err == nil {
			readable[string(pt)] = true
		}
		try(drAttackerKeys(stolen, 64))
		if _, _, err := stolen.sealKey(attackerRng); err != nil {
			t.Fatal(err)
		}
		try(drAttackerKeys(stolen, 64))
	}
	for _, want := range []string{"before 1", "before 2"} {
		if !readable[want] {
			t.Errorf("control: %q, sent before the round trip, not derivable from the copy", want)
		}
	}
	for _, m := range all {
		if s := string(m.pt); s[:5] == "after" && readable[s] {
			t.Errorf("%q, after the round trip, derivable from the copy", s)
		}
	}
}

// Tamper: any byte of the header or ciphertext changed is refused and
// leaves the state as it was; control: the message as sent opens.
func TestRatchetTamper(t *testing.T) {
	a, b, rngA, rngB := drPair(t, "tamper")
	drMustOpen(t, b, drSeal(t, a, rngA, "first"), drT0)
	drMustOpen(t, a, drSeal(t, b, rngB, "reply"), drT0)
	same := drSeal(t, b, rngB, "same chain")
	drSeal(t, b, rngB, "skipped")
	later := drSeal(t, b, rngB, "later")
	drMustOpen(t, a, later, drT0) // A holds one skipped key
	drMustOpen(t, b, drSeal(t, a, rngA, "step"), drT0)
	newChain := drSeal(t, b, rngB, "new chain")
	for _, m := range []drMsg{same, newChain} {
		before := drState(a)
		hb := m.hdr.append(nil)
		for i := range hb {
			for _, x := range []byte{0x01, 0x80} {
				bad := append([]byte{}, hb...)
				bad[i] ^= x
				h, err := parseDRHeader(bad)
				if err != nil {
					t.Fatal(err)
				}
				tm := m
				tm.hdr = h
				// try decrypts with the header as sent (AD) too: a key found
				// for a changed header must not authenticate either.
				if _, err := drOpen(a, tm, drT0); err == nil {
					t.Fatalf("header byte %d ^%#x accepted", i, x)
				}
				if !bytes.Equal(before, drState(a)) {
					t.Fatalf("header byte %d ^%#x changed the state", i, x)
				}
			}
		}
		for i := range m.ct {
			tm := m
			tm.ct = append([]byte{}, m.ct...)
			tm.ct[i] ^= 0x01
			if _, err := drOpen(a, tm, drT0); !errors.Is(err, ErrAuth) {
				t.Fatalf("ciphertext byte %d: %v, want ErrAuth", i, err)
			}
			if !bytes.Equal(before, drState(a)) {
				t.Fatalf("ciphertext byte %d changed the state", i)
			}
		}
		drMustOpen(t, a, m, drT0) // control
	}
}

func TestRatchetHeaderCodec(t *testing.T) {
	h := drHeader{pub: [32]byte{1, 2, 3}, pn: 7, n: 9}
	b := h.append(nil)
	if len(b) != drHeaderSize {
		t.Fatalf("%d bytes", len(b))
	}
	if got, err := parseDRHeader(b); err != nil || got != h {
		t.Fatalf("%v %v", got, err)
	}
	for _, bad := range [][]byte{b[:drHeaderSize-1], append(b, 0)} {
		if _, err := parseDRHeader(bad); !errors.Is(err, ErrMalformed) {
			t.Fatalf("%d bytes: %v", len(bad), err)
		}
	}
}

// A strict state decoder: a few non-canonical changes of a real state.
func TestRatchetStateStrict(t *testing.T) {
	a, b, rngA, _ := drPair(t, "strict")
	for range 3 {
		drSeal(t, a, rngA, "lost")
	}
	drMustOpen(t, b, drSeal(t, a, rngA, "read"), drT0)
	good := drState(b)
	if _, err := parseRatchet(cryptobyte.String(good)); err != nil {
		t.Fatal(err)
	}
	mut := func(f func(s []byte) []byte) []byte { return f(append([]byte{}, good...)) }
	// B: RK 32, flags 0x00 (pending), Ns, PN, 1 chain, CKr, Nr, skipped...
	cases := map[string][]byte{
		"trailing":      append(append([]byte{}, good...), 0),
		"truncated":     good[:len(good)-1],
		"unknown flag":  mut(func(s []byte) []byte { s[32] |= 0x04; return s }),
		"send sans DHs": mut(func(s []byte) []byte { s[32] = drFlagSend; return s }),
		"Ns sans chain": mut(func(s []byte) []byte { s[36] = 1; return s }),
	}
	skip0 := 32 + 1 + 8 + 1 + 36 + 36 + 2
	cases["skipped order"] = mut(func(s []byte) []byte {
		copy(s[skip0+1:skip0+5], s[skip0+45+1:skip0+45+5]) // key 0 numbered as key 1
		return s
	})
	cases["skipped at Nr"] = mut(func(s []byte) []byte { s[skip0+2*45+4] = 4; return s })
	for name, bad := range cases {
		if _, err := parseRatchet(cryptobyte.String(bad)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
	}
}

// BenchmarkRatchetStep: one message each way per iteration, so every
// seal does a DH step (strict alternation, the worst case: a new key pair,
// and two X25519 per round trip side). Compare BenchmarkBaselineX25519.
func BenchmarkRatchetStep(b *testing.B) {
	a, r, rngA, rngB := drPair(b, "bench step")
	for b.Loop() {
		drMustOpen(b, r, drSeal(b, a, rngA, "x"), drT0)
		drMustOpen(b, a, drSeal(b, r, rngB, "y"), drT0)
	}
}

// BenchmarkRatchetNoStep: one seal and open on a chain, no DH.
func BenchmarkRatchetNoStep(b *testing.B) {
	a, r, rngA, _ := drPair(b, "bench no step")
	for b.Loop() {
		drMustOpen(b, r, drSeal(b, a, rngA, "x"), drT0)
	}
}

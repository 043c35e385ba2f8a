package seal

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
)

// TestFragmentSize: the client's size is MaxMixEnvelope of the default
// geometry; every blob has exactly that many bytes, and the count is what
// Fragments predicts, for inner messages around the chunk boundaries.
func TestFragmentSize(t *testing.T) {
	if fragmentSize < MinFragmentSize || fragmentSize > MaxFragmentSize {
		t.Fatalf("fragment size %d", fragmentSize)
	}
	w := newWorld(t)
	alice, bob, s, _ := established(t, w)
	chunk := fragmentSize - FragmentOverhead
	fixed := 3 + len(alice.cert) + FollowUpOverhead
	for _, n := range []int{0, 1, chunk - fixed, chunk - fixed + 1, 2*chunk - fixed, 2*chunk - fixed + 1, 5000} {
		msg := mustSeal(t, s, string(make([]byte, n)))
		blobs := alice.envelope(msg, bob)
		if want := Fragments(fixed+n, fragmentSize); len(blobs) != want {
			t.Fatalf("plaintext %d: %d fragments, want %d", n, len(blobs), want)
		}
		for i, b := range blobs {
			if len(b) != fragmentSize {
				t.Fatalf("plaintext %d: fragment %d has %d bytes", n, i, len(b))
			}
		}
		bob.mustReceive(blobs, string(make([]byte, n)))
	}
}

// TestFragmentsOfShortText: the sizes docs/envelope.md §7 states.
func TestFragmentsOfShortText(t *testing.T) {
	w := newWorld(t)
	alice, bob := w.user("alice"), w.user("bob")
	if len(alice.cert) != 1+1+len("alice@b.example")+32+32+8+32+64 {
		t.Fatalf("certificate of %d bytes", len(alice.cert))
	}
	s := alice.initiate(bob)
	if n := len(alice.seal(s, bob, "hello, bob")); n != 2 {
		t.Fatalf("short initial message: %d fragments", n)
	}
	bs := bob.mustReceive(alice.seal(s, bob, "hello"), "hello").Session
	alice.mustReceive(bob.seal(bs, alice, "hi"), "hi")
	if fragmentSize != 1388 {
		t.Fatalf("MaxMixEnvelope is %d; update docs/envelope.md §7", fragmentSize)
	}
	if n := len(alice.seal(s, bob, string(make([]byte, 1077)))); n != 1 {
		t.Fatalf("follow-up of 1,077 bytes: %d fragments", n)
	}
	if n := len(alice.seal(s, bob, string(make([]byte, 1078)))); n != 2 {
		t.Fatalf("follow-up of 1,078 bytes: %d fragments", n)
	}
	msg := mustSeal(t, s, string(make([]byte, MaxPlaintext)))
	if n := Fragments(3+len(alice.cert)+len(msg), fragmentSize); n != 50 {
		t.Fatalf("64 KiB follow-up: %d fragments", n)
	}
	if n := Fragments(3+len(alice.cert)+InitialOverhead+MaxPlaintext, fragmentSize); n != 51 {
		t.Fatalf("64 KiB initial message: %d fragments", n)
	}
}

// TestLargeMessage: a 64 KiB initial message through fragmentation and
// reassembly, fragments in random order.
func TestLargeMessage(t *testing.T) {
	w := newWorld(t)
	alice, bob := w.user("alice"), w.user("bob")
	s := alice.initiate(bob)
	text := make([]byte, 64<<10)
	io.ReadFull(w.rng, text)
	blobs := alice.seal(s, bob, string(text))
	if len(blobs) > MaxFragments || len(blobs) < 50 {
		t.Fatalf("%d fragments", len(blobs))
	}
	r := rand.New(rand.NewPCG(1, 2))
	r.Shuffle(len(blobs), func(i, j int) { blobs[i], blobs[j] = blobs[j], blobs[i] })
	ra := NewReassembler()
	var inner []byte
	for i, b := range blobs {
		f, err := OpenFragment(bob.id, b)
		if err != nil {
			t.Fatal(err)
		}
		in, complete, err := ra.Add(f)
		if err != nil || complete != (i == len(blobs)-1) {
			t.Fatalf("fragment %d: %v, complete %v", i, err, complete)
		}
		inner = in
	}
	o, err := bob.open(inner)
	if err != nil || !bytes.Equal(o.Plaintext, text) {
		t.Fatalf("64 KiB message: %v", err)
	}
}

// TestWrongRecipient: fragments for Bob do not open for Carol.
func TestWrongRecipient(t *testing.T) {
	w := newWorld(t)
	alice, bob, s, _ := established(t, w)
	carol := w.user("carol")
	for _, b := range alice.seal(s, bob, "for bob") {
		if _, err := OpenFragment(carol.id, b); !errors.Is(err, ErrAuth) {
			t.Fatalf("carol opened bob's fragment: %v", err)
		}
	}
}

// TestLowOrderFragmentKey: blobs whose ephemeral key is a low-order point
// are authentication failures.
func TestLowOrderFragmentKey(t *testing.T) {
	bob := fuzzIdentity()
	for _, p := range [][32]byte{{}, {1}} {
		blob := make([]byte, fragmentSize)
		copy(blob, p[:])
		if _, err := OpenFragment(bob, blob); !errors.Is(err, ErrAuth) {
			t.Fatalf("low-order ephemeral: %v", err)
		}
	}
}

// TestSealEnvelopeChecks: sizes, certificates and session messages out of
// range are refused.
func TestSealEnvelopeChecks(t *testing.T) {
	w := newWorld(t)
	alice, bob, s, _ := established(t, w)
	msg := mustSeal(t, s, "x")
	to := bob.id.Public()
	var id [16]byte
	cases := map[string]struct {
		cert, msg []byte
		size      int
		to        PublicIdentity
		want      error
	}{
		"size too small":        {alice.cert, msg, MinFragmentSize - 1, to, ErrMalformed},
		"size too large":        {alice.cert, msg, MaxFragmentSize + 1, to, ErrMalformed},
		"no certificate":        {nil, msg, fragmentSize, to, ErrTooLarge},
		"certificate too large": {make([]byte, MaxCertificate+1), msg, fragmentSize, to, ErrTooLarge},
		"not a certificate":     {[]byte("hello"), msg, fragmentSize, to, ErrMalformed},
		"not a session message": {alice.cert, []byte("plaintext by mistake"), fragmentSize, to, ErrMalformed},
		"low-order recipient":   {alice.cert, msg, fragmentSize, PublicIdentity{}, ErrMalformed},
		"more than 64 fragments": {alice.cert, mustSeal(t, s, string(make([]byte, MaxPlaintext))),
			MinFragmentSize, to, ErrTooLarge},
	}
	for name, c := range cases {
		if _, err := SealEnvelope(w.rng, c.to, c.cert, c.msg, id, c.size); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
	if _, err := SealEnvelope(io.LimitReader(w.rng, 10), to, alice.cert, msg, id, fragmentSize); err == nil {
		t.Error("short randomness accepted")
	}
}

// TestFragmentPlaintext: the decrypted form is exactly message ID ||
// index || count || length || chunk || zeros, and anything else is
// refused.
func TestFragmentPlaintext(t *testing.T) {
	f := &Fragment{MessageID: [16]byte{1, 2, 3}, Index: 2, Count: 3, Chunk: []byte("chunk")}
	pt := marshalFragment(f, fragmentSize)
	want := append([]byte{1, 2, 3}, make([]byte, 13)...)
	want = append(want, 0, 2, 0, 3, 0, 5)
	want = append(want, "chunk"...)
	if !bytes.Equal(pt[:len(want)], want) || len(pt) != fragmentSize-48 || !allZero(pt[len(want):]) {
		t.Fatalf("fragment plaintext %x", pt[:len(want)])
	}
	g, err := parseFragment(pt)
	if err != nil || g.MessageID != f.MessageID || g.Index != 2 || g.Count != 3 || string(g.Chunk) != "chunk" {
		t.Fatalf("parse: %v", err)
	}
	for name, mutate := range map[string]func(b []byte){
		"count 0":          func(b []byte) { b[19] = 0 },
		"count 65":         func(b []byte) { b[19] = 65 },
		"index = count":    func(b []byte) { b[17] = 3 },
		"empty chunk":      func(b []byte) { b[21] = 0 },
		"chunk too long":   func(b []byte) { binary.BigEndian.PutUint16(b[20:], uint16(len(b)-21)) },
		"padding not zero": func(b []byte) { b[len(b)-1] = 1 },
	} {
		b := bytes.Clone(pt)
		mutate(b)
		if _, err := parseFragment(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func allZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}

// TestEnvelopeID: the specified hash, deterministic, and distinct over
// messages and indices.
func TestEnvelopeID(t *testing.T) {
	mid := [16]byte{0xaa, 0xbb}
	h := sha256.Sum256(append(append([]byte("sealnet envelope id v1\x00"), mid[:]...), 0, 5))
	if got := EnvelopeID(mid, 5); !bytes.Equal(got[:], h[:16]) {
		t.Fatalf("EnvelopeID %x, want %x", got, h[:16])
	}
	if EnvelopeID(mid, 5) != EnvelopeID(mid, 5) {
		t.Fatal("not deterministic")
	}
	seen := map[[16]byte]bool{}
	rng := testRand("envelope ids")
	for range 200 {
		io.ReadFull(rng, mid[:])
		for i := range MaxFragments {
			id := EnvelopeID(mid, i)
			if seen[id] {
				t.Fatal("envelope ID repeated")
			}
			seen[id] = true
		}
	}
}

// TestFragmentsUniform: the bytes of many blobs, over many messages, are
// uniform: overall, and at each of the first 64 positions (the ephemeral
// key, whose top bit would otherwise always be 0, and the start of the
// ciphertext, which would otherwise show the message ID's structure). A
// chi-square statistic with 255 degrees of freedom has mean 255 and
// standard deviation 22.6; the bound 400 is more than six deviations,
// and the source is deterministic, so this test does not flake.
func TestFragmentsUniform(t *testing.T) {
	w := newWorld(t)
	alice, bob, s, _ := established(t, w)
	var blobs [][]byte
	for len(blobs) < 2048 {
		msg := mustSeal(t, s, string(make([]byte, 1500))) // two fragments each, mostly zeros
		blobs = append(blobs, alice.envelope(msg, bob)...)
	}
	chi := func(counts *[256]int, total int) float64 {
		e := float64(total) / 256
		var x float64
		for _, c := range counts {
			d := float64(c) - e
			x += d * d / e
		}
		return x
	}
	var all [256]int
	total := 0
	for _, b := range blobs {
		if len(b) != fragmentSize {
			t.Fatal("blob size")
		}
		for _, x := range b {
			all[x]++
		}
		total += len(b)
	}
	if x := chi(&all, total); x > 400 {
		t.Errorf("all bytes: chi-square %.0f", x)
	}
	for pos := range 64 {
		var c [256]int
		for _, b := range blobs {
			c[b[pos]]++
		}
		if x := chi(&c, len(blobs)); x > 400 {
			t.Errorf("position %d: chi-square %.0f", pos, x)
		}
	}
}

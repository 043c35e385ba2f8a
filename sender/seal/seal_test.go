package seal

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/chacha20poly1305"
)

// TestRoundTrip: an initial exchange and follow-ups both ways, through
// fragments, reassembly and Open, with every session stored and reloaded
// through its encoding between steps, as the client does.
func TestRoundTrip(t *testing.T) {
	w := newWorld(t)
	alice, bob := w.user("alice"), w.user("bob")
	s := alice.initiate(bob)
	if s.Role() != Initiator || s.Confirmed() || s.Peer() != bob.id.Public() || s.Self() != alice.id.Public() {
		t.Fatal("fresh session has the wrong role, state or identities")
	}

	// Alice sends three messages before hearing back: all initial-form.
	for i := range 3 {
		text := fmt.Sprintf("hello %d", i)
		o := bob.mustReceive(alice.seal(s, bob, text), text)
		if o.New != (i == 0) {
			t.Fatalf("message %d: New = %v", i, o.New)
		}
		if i == 0 && (o.UsedOneTime == nil || o.UsedPQ == nil) {
			t.Fatal("first message does not report the one-time prekeys it used")
		}
		if i > 0 && (o.UsedOneTime != nil || o.UsedPQ != nil) {
			t.Fatal("a later message reports prekeys")
		}
		if o.Sender.Address != "alice@b.example" || o.Session.Peer() != alice.id.Public() || o.Session.ID() != s.ID() {
			t.Fatalf("sender %q, peer %v", o.Sender.Address, o.Session.Peer())
		}
		bob.sessions.put(cloneSession(t, o.Session))
		s = cloneSession(t, s)
	}
	if len(bob.prekeys.oneTime) != 0 || len(bob.prekeys.pq) != 0 {
		t.Fatal("one-time prekeys not consumed")
	}

	// Then a conversation.
	bs, _ := bob.sessions.lookup(s.ID())
	if bs.Role() != Responder || !bs.Confirmed() {
		t.Fatal("responder's session")
	}
	alice.sessions.put(s)
	for round := range 4 {
		for i := range 2 {
			text := fmt.Sprintf("bob %d.%d", round, i)
			o := alice.mustReceive(bob.seal(bs, alice, text), text)
			if o.New || o.Sender.Address != "bob@b.example" {
				t.Fatal("reply opened as a new session, or from the wrong sender")
			}
			s = cloneSession(t, o.Session)
			alice.sessions.put(s)
		}
		if !s.Confirmed() {
			t.Fatal("initiator not confirmed after a reply")
		}
		for i := range 2 {
			text := fmt.Sprintf("alice %d.%d", round, i)
			msg, err := s.Seal(sealRand, []byte(text))
			if err != nil {
				t.Fatal(err)
			}
			if msg[0] != typeFollowUp {
				t.Fatal("initiator still sends initial messages after a reply")
			}
			o := bob.mustReceive(alice.envelope(msg, bob), text)
			bs = cloneSession(t, o.Session)
			bob.sessions.put(bs)
		}
	}
}

// TestInitiatorRepeatsInitialForm: until the responder's first message is
// decrypted, each message carries the same key-agreement header.
func TestInitiatorRepeatsInitialForm(t *testing.T) {
	w := newWorld(t)
	alice, bob := w.user("alice"), w.user("bob")
	s := alice.initiate(bob)
	var headers [][]byte
	for i := range 3 {
		msg, err := s.Seal(sealRand, []byte("x"))
		if err != nil {
			t.Fatal(err)
		}
		m, err := parseMessage(msg)
		if err != nil || !m.initial || m.n != uint32(i) {
			t.Fatalf("message %d: %v, initial %v", i, err, m != nil && m.initial)
		}
		headers = append(headers, m.header[:initialHeaderSize-4-saltSize])
	}
	if !bytes.Equal(headers[0], headers[1]) || !bytes.Equal(headers[0], headers[2]) {
		t.Fatal("initial headers differ")
	}
	// A message from Bob confirms the session.
	bob.mustReceive(alice.envelope(mustSeal(t, s, "x"), bob), "x")
	bs, _ := bob.sessions.lookup(s.ID())
	alice.mustReceive(bob.seal(bs, alice, "reply"), "reply")
	if msg := mustSeal(t, s, "y"); msg[0] != typeFollowUp {
		t.Fatal("still initial after the reply")
	}
}

func mustSeal(t testing.TB, s *Session, text string) []byte {
	t.Helper()
	msg, err := s.Seal(sealRand, []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

// TestLostFirstMessage: the first message never arrives; the second, still
// initial-form, establishes the session; the first arriving late still
// opens, once.
func TestLostFirstMessage(t *testing.T) {
	w := newWorld(t)
	alice, bob := w.user("alice"), w.user("bob")
	s := alice.initiate(bob)
	lost := alice.seal(s, bob, "first")
	o := bob.mustReceive(alice.seal(s, bob, "second"), "second")
	if !o.New {
		t.Fatal("second message did not establish the session")
	}
	alice.mustReceive(bob.seal(o.Session, alice, "got it"), "got it")
	if o := bob.mustReceive(lost, "first"); o.New {
		t.Fatal("late first message made a new session")
	}
	if _, err := bob.receive(lost); !errors.Is(err, ErrReplay) {
		t.Fatalf("first message twice: %v", err)
	}
}

// TestOutOfOrder: follow-ups delivered in a shuffled order all open, once.
func TestOutOfOrder(t *testing.T) {
	w := newWorld(t)
	alice, bob, s, bs := established(t, w)
	var msgs [][][]byte
	for i := range 40 {
		msgs = append(msgs, alice.seal(s, bob, fmt.Sprint(i)))
	}
	perm := []int{5, 0, 39, 1, 2, 20, 3, 4, 38, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 21,
		22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37}
	for _, i := range perm {
		bob.mustReceive(msgs[i], fmt.Sprint(i))
	}
	for _, i := range []int{0, 5, 39, 17} {
		if _, err := bob.receive(msgs[i]); !errors.Is(err, ErrReplay) {
			t.Fatalf("replay of %d: %v", i, err)
		}
	}
	if len(bs.st.skipped) != 0 {
		t.Fatalf("%d skipped keys left after every message arrived", len(bs.st.skipped))
	}
}

// established returns Alice and Bob with a confirmed session both ways.
func established(t testing.TB, w *world) (alice, bob *user, s, bs *Session) {
	alice, bob = w.user("alice"), w.user("bob")
	s = alice.initiate(bob)
	o := bob.mustReceive(alice.seal(s, bob, "hi"), "hi")
	bs = o.Session
	alice.mustReceive(bob.seal(bs, alice, "hi"), "hi")
	return alice, bob, s, bs
}

// TestReplay: a follow-up and an initial-form message replayed.
func TestReplay(t *testing.T) {
	w := newWorld(t)
	alice, bob := w.user("alice"), w.user("bob")
	s := alice.initiate(bob)
	initial := alice.seal(s, bob, "one")
	bob.mustReceive(initial, "one")
	if _, err := bob.receive(initial); !errors.Is(err, ErrReplay) {
		t.Fatalf("initial replayed: %v", err)
	}
	bs, _ := bob.sessions.lookup(s.ID())
	alice.mustReceive(bob.seal(bs, alice, "ok"), "ok")
	f := alice.seal(s, bob, "two")
	bob.mustReceive(f, "two")
	if _, err := bob.receive(f); !errors.Is(err, ErrReplay) {
		t.Fatalf("follow-up replayed: %v", err)
	}
	// With the session gone, the initial message needs the deleted
	// one-time prekeys.
	bob.sessions = &sessionStore{m: map[[16]byte]*Session{}}
	if _, err := bob.receive(initial); !errors.Is(err, ErrUnknownPrekey) {
		t.Fatalf("initial replayed to a fresh Bob: %v", err)
	}
	if _, err := bob.receive(f); !errors.Is(err, ErrUnknownSession) {
		t.Fatalf("follow-up without session: %v", err)
	}
}

// TestGap: a message MaxGap ahead opens; one further ahead is refused and
// changes nothing.
func TestGap(t *testing.T) {
	w := newWorld(t)
	alice, bob, s, bs := established(t, w)
	// Bob expects n = 1 from Alice.
	var far, farther []byte
	for i := range MaxGap + 2 {
		msg := mustSeal(t, s, fmt.Sprint(i))
		switch i + 1 {
		case 1 + MaxGap + 1:
			farther = msg
		case 1 + MaxGap:
			far = msg
		}
	}
	before, _ := bs.MarshalBinary()
	if _, err := bob.open(innerOf(alice.cert, farther)); !errors.Is(err, ErrGap) {
		t.Fatalf("gap of %d: %v", MaxGap+1, err)
	}
	if after, _ := bs.MarshalBinary(); !bytes.Equal(before, after) {
		t.Fatal("a refused message changed the session")
	}
	if _, err := bob.open(innerOf(alice.cert, far)); err != nil {
		t.Fatalf("gap of %d: %v", MaxGap, err)
	}
	if len(bs.st.skipped) != MaxSkipped {
		t.Fatalf("%d skipped keys held, want %d", len(bs.st.skipped), MaxSkipped)
	}
	if _, err := bob.open(innerOf(alice.cert, farther)); err != nil {
		t.Fatalf("next message after the gap: %v", err)
	}
}

// TestSkippedKeysBounded: of 300 skipped messages only the last 256 keys
// are held; the older ones no longer open.
func TestSkippedKeysBounded(t *testing.T) {
	w := newWorld(t)
	alice, bob, s, bs := established(t, w)
	var msgs [][]byte
	for i := range 301 {
		msgs = append(msgs, mustSeal(t, s, fmt.Sprint(i)))
	}
	if _, err := bob.open(innerOf(alice.cert, msgs[300])); err != nil {
		t.Fatal(err)
	}
	if len(bs.st.skipped) != MaxSkipped {
		t.Fatalf("%d skipped keys", len(bs.st.skipped))
	}
	for i := range 300 {
		o, err := bob.open(innerOf(alice.cert, msgs[i]))
		if i < 300-MaxSkipped {
			if !errors.Is(err, ErrReplay) {
				t.Fatalf("message %d, older than the window: %v", i, err)
			}
			continue
		}
		if err != nil || string(o.Plaintext) != fmt.Sprint(i) {
			t.Fatalf("message %d: %v", i, err)
		}
	}
}

// TestSkippedKeysAccumulate: keys skipped over several gaps together stay
// within MaxSkipped, the oldest dropped first.
func TestSkippedKeysAccumulate(t *testing.T) {
	w := newWorld(t)
	alice, bob, s, bs := established(t, w)
	var msgs [][]byte
	for i := range 402 {
		msgs = append(msgs, mustSeal(t, s, fmt.Sprint(i)))
	}
	// Bob expects Alice's n = 1 (msgs[0]); n = 201 and n = 401 skip 200 + 199.
	for _, i := range []int{200, 400} {
		if _, err := bob.open(innerOf(alice.cert, msgs[i])); err != nil {
			t.Fatal(err)
		}
		if len(bs.st.skipped) > MaxSkipped {
			t.Fatalf("%d skipped keys held", len(bs.st.skipped))
		}
	}
	if len(bs.st.skipped) != MaxSkipped {
		t.Fatalf("%d skipped keys held, want %d", len(bs.st.skipped), MaxSkipped)
	}
	// Held: n = 144..200 and 202..400, that is msgs[143:200] and msgs[201:400].
	for i := range 400 {
		_, err := bob.open(innerOf(alice.cert, msgs[i]))
		switch {
		case i == 200 || i < 400-MaxSkipped-1:
			if !errors.Is(err, ErrReplay) {
				t.Fatalf("message %d: %v, want ErrReplay", i, err)
			}
		case err != nil:
			t.Fatalf("message %d: %v", i, err)
		}
	}
}

// TestSenderMismatch: a properly signed certificate of another identity
// with a valid session message is refused, for initial messages and
// follow-ups; so is a certificate verify refuses, and a verify answer for
// another certificate.
func TestSenderMismatch(t *testing.T) {
	w := newWorld(t)
	alice, bob := w.user("alice"), w.user("bob")
	mallory := w.user("mallory")
	s := alice.initiate(bob)
	initial := mustSeal(t, s, "from alice")

	for name, cert := range map[string][]byte{
		"mallory's":                    mallory.cert,
		"alice's name, mallory's keys": w.certificate("alice", mallory.id.Public()),
		"alice's X25519, mallory's Ed": w.certificate("alice", PublicIdentity{alice.id.Public().X25519, mallory.id.Public().Ed25519}),
		"mallory's X25519, alice's Ed": w.certificate("alice", PublicIdentity{mallory.id.Public().X25519, alice.id.Public().Ed25519}),
	} {
		if _, err := bob.open(innerOf(cert, initial)); !errors.Is(err, ErrSenderMismatch) {
			t.Fatalf("initial with %s certificate: %v", name, err)
		}
	}
	if len(bob.sessions.m) != 0 || len(bob.prekeys.oneTime) != 1 {
		t.Fatal("a refused message created a session or consumed prekeys")
	}
	o, err := bob.open(innerOf(alice.cert, initial))
	if err != nil {
		t.Fatal(err)
	}
	alice.mustReceive(bob.seal(o.Session, alice, "hi"), "hi")

	follow := mustSeal(t, s, "follow-up")
	before, _ := o.Session.MarshalBinary()
	if _, err := bob.open(innerOf(mallory.cert, follow)); !errors.Is(err, ErrSenderMismatch) {
		t.Fatalf("follow-up with mallory's certificate: %v", err)
	}
	if after, _ := o.Session.MarshalBinary(); !bytes.Equal(before, after) {
		t.Fatal("a refused message changed the session")
	}

	// A certificate verify refuses: another provider's, and an expired one.
	other := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))
	foreign, err := SignCertificate(Certificate{Address: "alice@b.example",
		IdentityX25519: alice.id.Public().X25519, IdentityEd25519: alice.id.Public().Ed25519, Expires: w.now.Add(time.Hour)}, other)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.open(innerOf(foreign, follow)); !errors.Is(err, ErrCertificate) || !errors.Is(err, ErrInvalidCertificate) {
		t.Fatalf("certificate of another provider: %v", err)
	}
	w.now = w.now.Add(2 * time.Hour)
	if _, err := bob.open(innerOf(alice.cert, follow)); !errors.Is(err, ErrCertificate) || !errors.Is(err, ErrExpired) {
		t.Fatalf("expired certificate: %v", err)
	}
	w.now = w.now.Add(-2 * time.Hour)

	// A verify that answers with another certificate than it was given.
	lying := func([]byte) (*Certificate, error) { return ParseCertificate(alice.cert) }
	if _, err := Open(bob.id, bob.prekeys, bob.sessions.lookup, lying, innerOf(mallory.cert, follow)); !errors.Is(err, ErrCertificate) {
		t.Fatalf("verify substituting a certificate: %v", err)
	}
	// Still intact: the genuine message opens.
	if o, err := bob.open(innerOf(alice.cert, follow)); err != nil || string(o.Plaintext) != "follow-up" {
		t.Fatalf("genuine follow-up after the refusals: %v", err)
	}
}

// TestWrongPrekeys: Bob's prekeys replaced by others with the same IDs,
// missing ones, and a PQ kind that does not match Bob's record.
func TestWrongPrekeys(t *testing.T) {
	w := newWorld(t)
	alice, bob := w.user("alice"), w.user("bob")
	s := alice.initiate(bob)
	inner := innerOf(alice.cert, mustSeal(t, s, "x"))
	m, _ := parseMessage(inner[3+len(alice.cert):])
	h := m.init

	impostor := w.user("bob")
	impostor.id = bob.id
	impostor.bundle(true, PQOneTime) // keys under other IDs
	swap := func(f func(p *prekeyStore)) *prekeyStore {
		p := bob.prekeys.clone()
		f(p)
		return p
	}
	other := impostor.prekeys
	cases := map[string]struct {
		p    *prekeyStore
		want error
	}{
		"other signed prekey":   {swap(func(p *prekeyStore) { p.signed[h.spkID] = other.signed[1] }), ErrAuth},
		"other one-time prekey": {swap(func(p *prekeyStore) { p.oneTime[h.opkID] = other.oneTime[2] }), ErrAuth},
		"other PQ prekey":       {swap(func(p *prekeyStore) { p.pq[h.pqID] = other.pq[3] }), ErrAuth},
		"no signed prekey":      {swap(func(p *prekeyStore) { delete(p.signed, h.spkID) }), ErrUnknownPrekey},
		"no one-time prekey":    {swap(func(p *prekeyStore) { delete(p.oneTime, h.opkID) }), ErrUnknownPrekey},
		"no PQ prekey":          {swap(func(p *prekeyStore) { delete(p.pq, h.pqID) }), ErrUnknownPrekey},
		"PQ key recorded as last resort": {swap(func(p *prekeyStore) {
			p.pq[h.pqID] = pqKey{p.pq[h.pqID].dk, PQLastResort}
		}), ErrUnknownPrekey},
	}
	for name, c := range cases {
		if _, err := Open(bob.id, c.p, noSessions, w.verify, inner); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
	// Another identity with Bob's prekeys: DH2 differs.
	if _, err := Open(w.user("carol").id, bob.prekeys, noSessions, w.verify, inner); !errors.Is(err, ErrAuth) {
		t.Errorf("another identity: %v", err)
	}
	if _, err := Open(bob.id, nil, noSessions, w.verify, inner); !errors.Is(err, ErrUnknownPrekey) {
		t.Errorf("no prekeys: %v", err)
	}
	if _, err := Open(bob.id, bob.prekeys, noSessions, w.verify, inner); err != nil {
		t.Fatalf("the right prekeys: %v", err)
	}
}

// TestSessionOfAnotherIdentity: a session found by ID that belongs to
// another local identity is not used; nor is an initiator's session for
// an initial message (a reflected one).
func TestSessionOfAnotherIdentity(t *testing.T) {
	w := newWorld(t)
	alice, bob, s, bs := established(t, w)
	msg := mustSeal(t, s, "x")
	carol := w.user("carol")
	if _, err := Open(carol.id, nil, lookupOnly(bs), w.verify, innerOf(alice.cert, msg)); !errors.Is(err, ErrUnknownSession) {
		t.Fatalf("session of another identity: %v", err)
	}
	// Alice's own initial message handed back to her.
	s2 := alice.initiate(bob)
	initial := mustSeal(t, s2, "x")
	if _, err := Open(alice.id, alice.prekeys, lookupOnly(s2), w.verify, innerOf(alice.cert, initial)); !errors.Is(err, ErrAuth) {
		t.Fatalf("reflected initial message: %v", err)
	}
	// Bob, who knows the session, sends Alice an initial-form message in
	// it (under his own sending chain): an initiator accepts no initial
	// messages.
	forged := cloneSession(t, bs)
	forged.st.pending = &initialHeader{pqKind: 1}
	if _, err := Open(alice.id, nil, lookupOnly(s), w.verify, innerOf(bob.cert, mustSeal(t, forged, "x"))); !errors.Is(err, ErrAuth) {
		t.Fatalf("initial-form message to the initiator: %v", err)
	}
	// Alice's follow-up reflected: her receiving chain is the other one.
	if _, err := Open(alice.id, nil, lookupOnly(s), w.verify, innerOf(alice.cert, msg)); err == nil {
		t.Fatal("reflected follow-up opened")
	}
}

// TestBundleChecked: Initiate refuses a bundle with a bad signature and
// one whose signed prekey is a low-order point (properly signed).
func TestBundleChecked(t *testing.T) {
	w := newWorld(t)
	alice, bob := w.user("alice"), w.user("bob")
	b := bob.bundle(true, PQOneTime)
	b.Signed.Signature[0] ^= 1
	if _, err := Initiate(w.rng, alice.id, b); !errors.Is(err, ErrBundle) || !errors.Is(err, ErrPrekey) {
		t.Fatalf("bad signature: %v", err)
	}
	b = bob.bundle(true, PQOneTime)
	var lowOrder *ecdh.PublicKey
	lowOrder, _ = ecdh.X25519().NewPublicKey(append([]byte{1}, make([]byte, 31)...))
	b.Signed = NewSignedPrekey(bob.id.Ed25519, 99, lowOrder)
	if _, err := Initiate(w.rng, alice.id, b); !errors.Is(err, ErrBundle) {
		t.Fatalf("low-order signed prekey: %v", err)
	}
	b = bob.bundle(true, PQOneTime)
	b.OneTime.Public = [32]byte{1}
	if _, err := Initiate(w.rng, alice.id, b); !errors.Is(err, ErrBundle) {
		t.Fatalf("low-order one-time prekey: %v", err)
	}
}

// TestLowOrderEphemeral: an initial message whose EK_A is a low-order
// point is refused as an authentication failure, before any decryption.
func TestLowOrderEphemeral(t *testing.T) {
	w := newWorld(t)
	alice, bob := w.user("alice"), w.user("bob")
	s := alice.initiate(bob)
	msg := mustSeal(t, s, "x")
	for _, p := range [][32]byte{{}, {1}, {0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f, 0xc4, 0x6a,
		0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49, 0xb8, 0x00}} {
		bad := bytes.Clone(msg)
		copy(bad[81:113], p[:])
		_, err := Open(bob.id, bob.prekeys, noSessions, w.verify, innerOf(alice.cert, bad))
		if !errors.Is(err, ErrAuth) || !bytes.Contains([]byte(err.Error()), []byte("low order")) {
			t.Fatalf("low-order ephemeral %x: %v", p[:4], err)
		}
	}
}

// TestKeyScheduleMatchesSpec recomputes an initial message from
// docs/envelope.md §3 with the standard library alone (crypto/hkdf,
// crypto/hmac, chacha20poly1305) and Bob's private keys, and requires the
// same ciphertext. This pins the construction to the document.
func TestKeyScheduleMatchesSpec(t *testing.T) {
	w := newWorld(t)
	alice, bob := w.user("alice"), w.user("bob")
	s := alice.initiate(bob)
	var sealed [][]byte
	for i := range 3 {
		sealed = append(sealed, mustSeal(t, s, fmt.Sprint("message ", i)))
	}
	m, err := parseMessage(sealed[0])
	if err != nil {
		t.Fatal(err)
	}
	h := m.init
	dh := func(priv *ecdh.PrivateKey, pub []byte) []byte {
		k, err := ecdh.X25519().NewPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		out, err := priv.ECDH(k)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	pa, pb := alice.id.Public(), bob.id.Public()
	ikm := bytes.Repeat([]byte{0xff}, 32)
	ikm = append(ikm, dh(bob.prekeys.signed[h.spkID], pa.X25519[:])...)
	ikm = append(ikm, dh(bob.id.X25519, h.ephemeral[:])...)
	ikm = append(ikm, dh(bob.prekeys.signed[h.spkID], h.ephemeral[:])...)
	ikm = append(ikm, dh(bob.prekeys.oneTime[h.opkID], h.ephemeral[:])...)
	ss, err := bob.prekeys.pq[h.pqID].dk.Decapsulate(h.kemCT[:])
	if err != nil {
		t.Fatal(err)
	}
	ikm = append(ikm, ss...)
	sk, err := hkdf.Key(sha256.New, ikm, make([]byte, 32), "sealnet pqxdh v1 X25519 SHA-256 ML-KEM-768", 32)
	if err != nil {
		t.Fatal(err)
	}
	ck, err := hkdf.Expand(sha256.New, sk, "sealnet chain v1 initiator to responder", 32)
	if err != nil {
		t.Fatal(err)
	}
	for i, msg := range sealed {
		mac := hmac.New(sha256.New, ck)
		mac.Write([]byte{1})
		mk := mac.Sum(nil)
		mac = hmac.New(sha256.New, ck)
		mac.Write([]byte{2})
		ck = mac.Sum(nil)
		header := msg[:initialHeaderSize]
		salt := header[initialHeaderSize-16:]
		k, err := hkdf.Expand(sha256.New, mk, "sealnet message key v2"+string(salt), 32)
		if err != nil {
			t.Fatal(err)
		}
		aead, _ := chacha20poly1305.New(k)
		ad := append(append(bytes.Clone(header), pa.X25519[:]...), pb.X25519[:]...)
		pt := []byte(fmt.Sprint("message ", i))
		if want := aead.Seal(bytes.Clone(header), make([]byte, 12), pt, ad); !bytes.Equal(want, msg) {
			t.Fatalf("message %d differs from the specified construction", i)
		}
	}
	// Layout of the header, field by field.
	var e []byte
	e = append(e, 0x03)
	e = append(e, m.sessionID[:]...)
	e = append(e, pa.X25519[:]...)
	e = append(e, pa.Ed25519[:]...)
	e = append(e, h.ephemeral[:]...)
	e = append(e, byte(h.spkID>>24), byte(h.spkID>>16), byte(h.spkID>>8), byte(h.spkID), 1)
	e = append(e, byte(h.opkID>>24), byte(h.opkID>>16), byte(h.opkID>>8), byte(h.opkID))
	e = append(e, byte(h.pqID>>24), byte(h.pqID>>16), byte(h.pqID>>8), byte(h.pqID), PQOneTime)
	e = append(e, h.kemCT[:]...)
	e = append(e, 0, 0, 0, 0)
	e = append(e, m.salt[:]...)
	if len(e) != 1235 || !bytes.Equal(e, sealed[0][:initialHeaderSize]) || len(sealed[0]) != InitialOverhead+len("message 0") {
		t.Fatal("initial header layout differs from the document")
	}
	// Every message has its own salt.
	salts := map[[saltSize]byte]bool{}
	for _, msg := range sealed {
		salts[[saltSize]byte(msg[initialHeaderSize-saltSize:initialHeaderSize])] = true
	}
	if len(salts) != len(sealed) {
		t.Fatal("two messages share a salt")
	}
}

// TestFollowUpLayout: 0x04 || session ID || n || salt || AEAD, AD with
// the initiator's key first in both directions.
func TestFollowUpLayout(t *testing.T) {
	w := newWorld(t)
	alice, bob, s, bs := established(t, w)
	msg := mustSeal(t, bs, "to alice")
	id := s.ID()
	want := append(append([]byte{0x04}, id[:]...), 0, 0, 0, 1)
	if followUpHeaderSize != 37 || !bytes.Equal(msg[:followUpHeaderSize-saltSize], want) || len(msg) != FollowUpOverhead+len("to alice") {
		t.Fatalf("follow-up header %x", msg[:followUpHeaderSize])
	}
	ad := bs.ad(msg[:followUpHeaderSize])
	a, b := alice.id.Public(), bob.id.Public()
	if !bytes.Equal(ad[followUpHeaderSize:], append(a.X25519[:], b.X25519[:]...)) {
		t.Fatal("responder's AD is not header || IK_initiator || IK_responder")
	}
}

// TestSessionEncoding: sessions at every stage survive MarshalBinary and
// UnmarshalSession exactly; non-canonical encodings are refused.
func TestSessionEncoding(t *testing.T) {
	w := newWorld(t)
	alice, bob := w.user("alice"), w.user("bob")
	s := alice.initiate(bob)
	var msgs [][]byte
	for range 5 {
		msgs = append(msgs, mustSeal(t, s, "x"))
	}
	o, err := bob.open(innerOf(alice.cert, msgs[4])) // leaves 4 skipped keys
	if err != nil {
		t.Fatal(err)
	}
	for name, x := range map[string]*Session{"initiator pending": s, "responder with skipped": o.Session} {
		b, err := x.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		y, err := UnmarshalSession(b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		c, _ := y.MarshalBinary()
		if !bytes.Equal(b, c) || y.ID() != x.ID() || y.Peer() != x.Peer() || y.Role() != x.Role() {
			t.Fatalf("%s: round trip differs", name)
		}
		if _, err := UnmarshalSession(append(bytes.Clone(b), 0)); !errors.Is(err, ErrMalformed) {
			t.Fatalf("%s: trailing byte: %v", name, err)
		}
		for n := range len(b) {
			if _, err := UnmarshalSession(b[:n]); !errors.Is(err, ErrMalformed) {
				t.Fatalf("%s: truncated to %d: %v", name, n, err)
			}
		}
	}
	b, _ := o.Session.MarshalBinary()
	// The skipped list is at the end: count (2) then 4 × 36 bytes.
	tail := len(b) - 4*36
	bad := bytes.Clone(b)
	copy(bad[tail:], bad[tail+36:tail+72]) // first n equals second: not ascending
	if _, err := UnmarshalSession(bad); !errors.Is(err, ErrMalformed) {
		t.Fatalf("skipped not ascending: %v", err)
	}
	bad = bytes.Clone(b)
	bad[1] = byte(Initiator) // an initiator without pending must have received: it has, but…
	if _, err := UnmarshalSession(bad); err != nil {
		t.Fatalf("initiator that has received: %v", err)
	}
	bad[1] = 3
	if _, err := UnmarshalSession(bad); !errors.Is(err, ErrMalformed) {
		t.Fatalf("role 3: %v", err)
	}
}

// TestSealLimits: the plaintext and message-number limits.
func TestSealLimits(t *testing.T) {
	w := newWorld(t)
	alice, bob := w.user("alice"), w.user("bob")
	s := alice.initiate(bob)
	if _, err := s.Seal(sealRand, make([]byte, MaxPlaintext+1)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("plaintext too large: %v", err)
	}
	msg, err := s.Seal(sealRand, make([]byte, MaxPlaintext))
	if err != nil || len(msg) != MaxSessionMessage {
		t.Fatalf("largest plaintext: %v, %d bytes", err, len(msg))
	}
	s.st.sendN = maxN - 1
	if _, err := s.Seal(sealRand, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Seal(sealRand, nil); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("used-up session: %v", err)
	}
}

// TestIdentity: encoding, and the fingerprint's form and stability.
func TestIdentity(t *testing.T) {
	id := fuzzIdentity()
	b, err := id.MarshalBinary()
	if err != nil || len(b) != IdentitySize {
		t.Fatal(err)
	}
	id2, err := UnmarshalIdentity(b)
	if err != nil || id2.Public() != id.Public() {
		t.Fatal("identity round trip")
	}
	for _, bad := range [][]byte{b[:64], append(bytes.Clone(b), 0), append([]byte{2}, b[1:]...), nil} {
		if _, err := UnmarshalIdentity(bad); !errors.Is(err, ErrMalformed) {
			t.Fatalf("bad identity accepted: %v", err)
		}
	}
	p := id.Public()
	fp := p.Fingerprint()
	h := sha256.Sum256(append(append([]byte("sealnet fingerprint v1\x00"), p.X25519[:]...), p.Ed25519[:]...))
	want := fmt.Sprintf("%x", h)
	if len(fp) != 64+15 || bytes.Count([]byte(fp), []byte(" ")) != 15 || string(bytes.ReplaceAll([]byte(fp), []byte(" "), nil)) != want {
		t.Fatalf("fingerprint %q", fp)
	}
	q := p
	q.Ed25519[0] ^= 1
	if q.Fingerprint() == fp || q.Equal(p) || !p.Equal(id2.Public()) {
		t.Fatal("fingerprint or Equal ignores the Ed25519 key")
	}
	g, err := GenerateIdentity(testRand("identity"))
	if err != nil || g.Public() == p {
		t.Fatal("GenerateIdentity")
	}
}

// TestConcurrentUse: Seal and Open on the same sessions from several
// goroutines (for the race detector); every message opens exactly once.
func TestConcurrentUse(t *testing.T) {
	w := newWorld(t)
	alice, bob, s, bs := established(t, w)
	const n = 64
	msgs := make(chan []byte, n)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range n / 4 {
				msg, err := s.Seal(sealRand, []byte("x"))
				if err != nil {
					t.Error(err)
					return
				}
				msgs <- msg
			}
		})
	}
	wg.Wait()
	close(msgs)
	var all [][]byte
	for m := range msgs {
		all = append(all, m)
	}
	var ok sync.WaitGroup
	errs := make(chan error, 2*n)
	for _, m := range all {
		for range 2 {
			ok.Go(func() {
				_, err := Open(bob.id, nil, lookupOnly(bs), w.verify, innerOf(alice.cert, m))
				errs <- err
			})
		}
		ok.Go(func() { bs.MarshalBinary() })
	}
	ok.Wait()
	close(errs)
	var opened, replays int
	for err := range errs {
		switch {
		case err == nil:
			opened++
		case errors.Is(err, ErrReplay):
			replays++
		default:
			t.Fatal(err)
		}
	}
	if opened != n || replays != n {
		t.Fatalf("%d opened, %d replays; want %d each", opened, replays, n)
	}
}

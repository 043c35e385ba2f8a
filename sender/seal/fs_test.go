package seal

import (
	"errors"
	"testing"
)

// attack is what someone with a copy of Bob's identity, prekeys and
// sessions does with captured fragments: everything Bob would.
func attack(w *world, id *Identity, prekeys *prekeyStore, lookup func([16]byte) (*Session, bool), blobs [][]byte) (*Opened, error) {
	inner, err := reassemble(id, blobs)
	if err != nil {
		return nil, err
	}
	var p Prekeys
	if prekeys != nil {
		p = prekeys
	}
	return Open(id, p, lookup, w.verify, inner)
}

// TestForwardSecrecyInitial (the acceptance test): once Bob has
// opened the initial message and deleted the one-time prekeys Opened
// named, a copy of his identity, his signed prekey and all his remaining
// prekeys does not decrypt it, whichever remaining key is tried in place
// of the deleted ones. The control: a copy taken before does.
func TestForwardSecrecyInitial(t *testing.T) {
	w := newWorld(t)
	alice, bob := w.user("alice"), w.user("bob")
	// Bob has more prekeys than the one Alice gets, and a last-resort key.
	for range 3 {
		bob.bundle(true, PQOneTime)
	}
	bob.bundle(false, PQLastResort)
	s := alice.initiate(bob)
	captured := alice.seal(s, bob, "the secret")

	before := bob.prekeys.clone()
	if o, err := attack(w, bob.id, before, noSessions, captured); err != nil || string(o.Plaintext) != "the secret" {
		t.Fatalf("control: a copy taken before Bob opened does not decrypt: %v", err)
	}

	o := bob.mustReceive(captured, "the secret")
	if o.UsedOneTime == nil || o.UsedPQ == nil {
		t.Fatal("Opened does not name the used one-time prekeys")
	}
	after := bob.prekeys.clone() // what bob.receive left: used keys deleted
	if _, ok := after.oneTime[*o.UsedOneTime]; ok {
		t.Fatal("one-time prekey still held")
	}
	if _, ok := after.pq[*o.UsedPQ]; ok {
		t.Fatal("PQ one-time prekey still held")
	}
	if len(after.signed) == 0 || len(after.oneTime) == 0 || len(after.pq) == 0 {
		t.Fatal("the attacker should hold remaining prekeys")
	}

	_, err := attack(w, bob.id, after, noSessions, captured)
	if !errors.Is(err, ErrUnknownPrekey) {
		t.Fatalf("after deletion: %v", err)
	}
	// Try every remaining X25519 and PQ prekey (and the signed prekeys as
	// one-time keys) in place of the deleted ones.
	var xs []pqKey
	for _, k := range after.pq {
		xs = append(xs, k)
	}
	var ots = after.clone()
	for id, k := range after.signed {
		ots.oneTime[1000+id] = k
	}
	tries := 0
	for _, ot := range ots.oneTime {
		for _, pq := range xs {
			p := after.clone()
			p.oneTime[*o.UsedOneTime] = ot
			p.pq[*o.UsedPQ] = pqKey{pq.dk, PQOneTime}
			if o, err := attack(w, bob.id, p, noSessions, captured); err == nil {
				t.Fatalf("decrypted with remaining keys: %q", o.Plaintext)
			} else if !errors.Is(err, ErrAuth) {
				t.Fatalf("unexpected error: %v", err)
			}
			tries++
		}
	}
	if tries < 4*4 {
		t.Fatalf("only %d combinations tried", tries)
	}
}

// TestNoForwardSecrecyWithoutOneTimePrekeys documents the limit: with a
// bundle of a signed prekey and the last-resort PQ key only, nothing is
// deleted, and a later copy of Bob's keys decrypts the initial message
// (until he replaces the signed and last-resort prekeys).
func TestNoForwardSecrecyWithoutOneTimePrekeys(t *testing.T) {
	w := newWorld(t)
	alice, bob := w.user("alice"), w.user("bob")
	s, err := Initiate(w.rng, alice.id, bob.bundle(false, PQLastResort))
	if err != nil {
		t.Fatal(err)
	}
	captured := alice.seal(s, bob, "the secret")
	o := bob.mustReceive(captured, "the secret")
	if o.UsedOneTime != nil || o.UsedPQ != nil {
		t.Fatal("Opened names a last-resort key as used")
	}
	if o, err := attack(w, bob.id, bob.prekeys.clone(), noSessions, captured); err != nil || string(o.Plaintext) != "the secret" {
		t.Fatalf("expected the documented limit to hold: %v", err)
	}
}

// TestForwardSecrecyFollowUp: the session state Bob keeps after opening a
// follow-up does not decrypt it again, neither through Open nor by running
// the receiving chain forward; the state from before does (the control).
// A message whose key is held as skipped is readable from the state until
// it arrives, and not after.
func TestForwardSecrecyFollowUp(t *testing.T) {
	w := newWorld(t)
	alice, bob, s, bs := established(t, w)
	m1 := mustSeal(t, s, "first")
	m2 := mustSeal(t, s, "second")
	inner1, inner2 := innerOf(alice.cert, m1), innerOf(alice.cert, m2)

	snapshot := cloneSession(t, bs)
	if o, err := Open(bob.id, nil, lookupOnly(snapshot), w.verify, inner1); err != nil || string(o.Plaintext) != "first" {
		t.Fatalf("control: the state from before does not decrypt: %v", err)
	}

	// m2 first: m1's key is now held as skipped, so a copy still reads m1.
	if _, err := bob.open(inner2); err != nil {
		t.Fatal(err)
	}
	held := cloneSession(t, bs)
	if _, err := Open(bob.id, nil, lookupOnly(held), w.verify, inner1); err != nil {
		t.Fatalf("a skipped key should still be held: %v", err)
	}
	// Once m1 arrives its key is gone.
	if _, err := bob.open(inner1); err != nil {
		t.Fatal(err)
	}
	stolen := cloneSession(t, bs)
	for name, in := range map[string][]byte{"first": inner1, "second": inner2} {
		if _, err := Open(bob.id, nil, lookupOnly(stolen), w.verify, in); !errors.Is(err, ErrReplay) {
			t.Fatalf("%s message with the state after: %v", name, err)
		}
	}
	// Run the stolen receiving chain forward and try every key on both
	// messages, and every skipped key.
	msgs := []*message{}
	for _, raw := range [][]byte{m1, m2} {
		m, err := parseMessage(raw)
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, m)
	}
	ck := stolen.st.recvCK
	keys := [][32]byte{ck}
	for range 100 {
		mk, next := chainStep(&ck)
		keys = append(keys, mk, next)
		ck = next
	}
	for _, k := range stolen.st.skipped {
		keys = append(keys, k)
	}
	for _, k := range keys {
		for _, m := range msgs {
			if _, err := decrypt(&k, m, stolen.ad(m.header)); err == nil {
				t.Fatal("a key derived from the later state decrypts an opened message")
			}
		}
	}
}

package seal

import (
	"bytes"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"testing"

	"golang.org/x/crypto/chacha20poly1305"
)

// specMessageKey is MK_n of a chain at ck, per docs/envelope.md §3.2,
// computed with the standard library alone.
func specMessageKey(ck []byte) []byte {
	mac := hmac.New(sha256.New, ck)
	mac.Write([]byte{1})
	return mac.Sum(nil)
}

// TestRestoredSessionDoesNotRepeatKeys: a session state put back from a
// backup seals the same message number again, so the chain gives the same
// MK_n. Each message's AEAD key is derived from MK_n and its own salt
// (§3.2), so the two messages are under different keys: neither the key
// nor the keystream repeats, and the XOR of the ciphertexts says nothing
// about the plaintexts. The control is the version 1 construction (key
// MK_n, nonce zero, what Seal did before): the same two plaintexts under
// it give ciphertexts whose XOR is the XOR of the plaintexts. The peer,
// which has used and deleted MK_n, cannot read the second message.
func TestRestoredSessionDoesNotRepeatKeys(t *testing.T) {
	w := newWorld(t)
	alice, bob, s, _ := established(t, w)
	backup, err := s.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	p1, p2 := []byte("attack the north gate at dawn"), []byte("retreat to the river at once!")
	m1 := mustSeal(t, s, string(p1))
	restored, err := UnmarshalSession(backup)
	if err != nil {
		t.Fatal(err)
	}
	m2 := mustSeal(t, restored, string(p2))
	a, err1 := parseMessage(m1)
	b, err2 := parseMessage(m2)
	if err1 != nil || err2 != nil || a.n != b.n || a.sessionID != b.sessionID {
		t.Fatalf("the restored session did not seal the same message number again: %v %v", err1, err2)
	}

	ck := backup[2+16+4*32 : 2+16+4*32+32] // sending chain key (§3.5)
	mk := specMessageKey(ck)
	key := func(m *message) []byte {
		k, err := hkdf.Expand(sha256.New, mk, messageKeyInfo+string(m.salt[:]), 32)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	k1, k2 := key(a), key(b)
	for i, m := range []*message{a, b} {
		aead, _ := chacha20poly1305.New([][]byte{k1, k2}[i])
		if _, err := aead.Open(nil, make([]byte, 12), m.ciphertext, s.ad(m.header)); err != nil {
			t.Fatalf("message %d is not under the specified key: %v", i+1, err)
		}
	}
	if subtle.ConstantTimeCompare(k1, k2) == 1 {
		t.Fatal("the restored session sealed under the same key and nonce again")
	}
	xor := func(x, y []byte) []byte {
		out := make([]byte, min(len(x), len(y)))
		subtle.XORBytes(out, x, y)
		return out
	}
	if bytes.Equal(xor(a.ciphertext, b.ciphertext)[:len(p1)], xor(p1, p2)) {
		t.Fatal("the two ciphertexts XOR to the plaintexts' XOR: the keystream repeated")
	}

	// Control: version 1 sealed both under MK_n with nonce zero.
	old, _ := chacha20poly1305.New(mk)
	c1 := old.Seal(nil, make([]byte, 12), p1, nil)
	c2 := old.Seal(nil, make([]byte, 12), p2, nil)
	if !bytes.Equal(xor(c1, c2)[:len(p1)], xor(p1, p2)) {
		t.Fatal("control: the version 1 construction did not repeat its keystream")
	}

	// The peer reads the first and cannot read the second: its key is gone.
	bob.mustReceive(alice.envelope(m1, bob), string(p1))
	if _, err := bob.receive(alice.envelope(m2, bob)); !errors.Is(err, ErrReplay) {
		t.Fatalf("second message with a used number: %v, want ErrReplay", err)
	}
}

// TestOpensVersion1: messages sealed by version 1 (types 0x01 and 0x02:
// no salt, the AEAD key is MK_n) in an existing session still open, in
// order and once; changing the type byte of either version to the other's
// is refused.
func TestOpensVersion1(t *testing.T) {
	w := newWorld(t)
	alice, bob := w.user("alice"), w.user("bob")
	s := alice.initiate(bob)
	// sealV1 is Seal as version 1 wrote it, from the session's state.
	sealV1 := func(s *Session, pt string) []byte {
		s.mu.Lock()
		defer s.mu.Unlock()
		out := appendHeader(nil, s.id, &s.self, s.st.pending, s.st.sendN, nil)
		mk, next := chainStep(&s.st.sendCK)
		aead, _ := chacha20poly1305.New(mk[:])
		out = aead.Seal(out, zeroNonce[:], []byte(pt), s.ad(out))
		s.st.sendCK = next
		s.st.sendN++
		return out
	}
	initial := sealV1(s, "version 1 initial")
	if initial[0] != typeInitialV1 || len(initial) != InitialOverhead-saltSize+len("version 1 initial") {
		t.Fatalf("version 1 initial message of type %d, %d bytes", initial[0], len(initial))
	}
	o := bob.mustReceive(alice.envelope(initial, bob), "version 1 initial")
	bs := o.Session
	alice.mustReceive(bob.seal(bs, alice, "a version 2 reply"), "a version 2 reply")
	follow := sealV1(s, "version 1 follow-up")
	if follow[0] != typeFollowUpV1 {
		t.Fatalf("version 1 follow-up of type %d", follow[0])
	}
	later := mustSeal(t, s, "version 2 after it")
	bob.mustReceive(alice.envelope(later, bob), "version 2 after it")
	bob.mustReceive(alice.envelope(follow, bob), "version 1 follow-up") // late, from the skipped keys
	if _, err := bob.receive(alice.envelope(follow, bob)); !errors.Is(err, ErrReplay) {
		t.Fatalf("version 1 message again: %v", err)
	}

	// The type byte is authenticated: a version 2 message relabelled as
	// version 1 (or back) does not open.
	fresh := mustSeal(t, s, "relabelled")
	v1 := append(append([]byte{typeFollowUpV1}, fresh[1:followUpHeaderSize-saltSize]...), fresh[followUpHeaderSize:]...)
	if _, err := bob.open(innerOf(alice.cert, v1)); !errors.Is(err, ErrAuth) {
		t.Fatalf("version 2 message relabelled as version 1: %v", err)
	}
	old := sealV1(s, "relabelled too")
	v2 := append(append([]byte{typeFollowUp}, old[1:followUpHeaderSize-saltSize]...), make([]byte, saltSize)...)
	v2 = append(v2, old[followUpHeaderSize-saltSize:]...)
	if _, err := bob.open(innerOf(alice.cert, v2)); !errors.Is(err, ErrAuth) {
		t.Fatalf("version 1 message relabelled as version 2: %v", err)
	}
	bob.mustReceive(alice.envelope(fresh, bob), "relabelled")
}

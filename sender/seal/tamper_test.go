package seal

import (
	"bytes"
	"testing"
)

// flips yields every single-byte change the tamper tests try: each byte
// XORed with 0x01 (one bit), 0x80 (the top bit) and 0xFF (all bits).
func flips(b []byte, f func(i int, changed []byte)) {
	for i := range b {
		for _, mask := range []byte{0x01, 0x80, 0xff} {
			c := bytes.Clone(b)
			c[i] ^= mask
			f(i, c)
		}
	}
}

// TestTamperInitial: every changed byte of a short initial inner message
// (certificate, length, session message) is refused: an error, never a
// plaintext, never a new session or consumed prekey.
func TestTamperInitial(t *testing.T) {
	w := newWorld(t)
	alice, bob := w.user("alice"), w.user("bob")
	s := alice.initiate(bob)
	inner := innerOf(alice.cert, mustSeal(t, s, "hi"))
	flips(inner, func(i int, c []byte) {
		o, err := Open(bob.id, bob.prekeys, noSessions, w.verify, c)
		if err == nil {
			t.Fatalf("byte %d changed: opened %q", i, o.Plaintext)
		}
		requireSentinel(t, err)
	})
	if o, err := bob.open(inner); err != nil || string(o.Plaintext) != "hi" {
		t.Fatalf("the genuine message after the tampered ones: %v", err)
	}
}

// TestTamperFollowUp: the same for a follow-up, against Bob's session;
// the session does not change on any refusal.
func TestTamperFollowUp(t *testing.T) {
	w := newWorld(t)
	alice, bob, s, bs := established(t, w)
	inner := innerOf(alice.cert, mustSeal(t, s, "follow-up"))
	before, _ := bs.MarshalBinary()
	flips(inner, func(i int, c []byte) {
		o, err := Open(bob.id, bob.prekeys, lookupOnly(bs), w.verify, c)
		if err == nil {
			t.Fatalf("byte %d changed: opened %q", i, o.Plaintext)
		}
		requireSentinel(t, err)
	})
	if after, _ := bs.MarshalBinary(); !bytes.Equal(before, after) {
		t.Fatal("refused messages changed the session")
	}
	if o, err := bob.open(inner); err != nil || string(o.Plaintext) != "follow-up" {
		t.Fatalf("the genuine message after the tampered ones: %v", err)
	}
}

// TestTamperFragment: every changed byte of a fragment blob, including the
// top bit of the ephemeral key (which X25519 ignores), is refused.
func TestTamperFragment(t *testing.T) {
	w := newWorld(t)
	alice, bob, s, _ := established(t, w)
	blobs := alice.seal(s, bob, "short")
	if len(blobs) != 1 {
		t.Fatalf("%d fragments", len(blobs))
	}
	flips(blobs[0], func(i int, c []byte) {
		if f, err := OpenFragment(bob.id, c); err == nil {
			t.Fatalf("byte %d changed: opened fragment %d/%d", i, f.Index, f.Count)
		} else {
			requireSentinel(t, err)
		}
	})
	for _, n := range []int{0, 1, 32, 48, MinFragmentSize - 1, len(blobs[0]) - 1} {
		if _, err := OpenFragment(bob.id, blobs[0][:n]); err == nil {
			t.Fatalf("truncated to %d: opened", n)
		}
	}
	if _, err := OpenFragment(bob.id, append(bytes.Clone(blobs[0]), 0)); err == nil {
		t.Fatal("extended by a byte: opened")
	}
	bob.mustReceive(blobs, "short")
}

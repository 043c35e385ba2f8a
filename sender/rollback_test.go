package sender_test

import (
	"bytes"
	"crypto/subtle"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sealnet/sealnet/internal/testbed/testnet"
	"github.com/sealnet/sealnet/sender"
	"github.com/sealnet/sealnet/sender/seal"
)

// sealedMessage is one message as Alice's client sealed it, seen by
// someone holding Bob's identity key (which opens the fragments, not the
// session messages inside them).
type sealedMessage struct {
	body    string
	session [16]byte
	bodyCT  []byte // the body's bytes of the AEAD ciphertext
	frags   int
}

// sessionMessage opens fragments with me and returns the session message
// of the sealed inner message (docs/envelope.md §4).
func sessionMessage(t *testing.T, me *seal.Identity, blobs [][]byte) []byte {
	t.Helper()
	r := seal.NewReassembler()
	for _, b := range blobs {
		f, err := seal.OpenFragment(me, b)
		if err != nil {
			t.Fatal(err)
		}
		inner, complete, err := r.Add(f)
		if err != nil {
			t.Fatal(err)
		}
		if complete {
			cl := int(binary.BigEndian.Uint16(inner[1:3]))
			return inner[3+cl:]
		}
	}
	t.Fatal("fragments do not make a message")
	return nil
}

// conversation follows what Alice seals for Bob and fails the test when
// two of her messages share a keystream: their ciphertexts XOR to the XOR
// of their plaintexts, which happens exactly when the same key and nonce
// sealed both (what a state restored from a backup did before version 2
// of the session message). The client's plaintext ends with the body, so
// the body's ciphertext is the len(body) bytes before the 16-byte tag,
// whatever the header.
type conversation struct {
	t     *testing.T
	alice *user
	bobID *seal.Identity
	all   []sealedMessage
}

// seal queues body from Alice to Bob and checks it against every earlier
// message; it does not wait for the delivery.
func (cv *conversation) seal(body string) (string, sealedMessage) {
	cv.t.Helper()
	id := cv.alice.send("bob@b", body)
	blobs := sealedFragments(cv.t, cv.alice, id)
	sm := sessionMessage(cv.t, cv.bobID, blobs)
	m := sealedMessage{body: body, session: [16]byte(sm[1:17]), bodyCT: sm[len(sm)-16-len(body) : len(sm)-16], frags: len(blobs)}
	for _, p := range cv.all {
		l := min(len(p.body), len(body))
		x, y := make([]byte, l), make([]byte, l)
		subtle.XORBytes(x, p.bodyCT[:l], m.bodyCT[:l])
		subtle.XORBytes(y, []byte(p.body[:l]), []byte(body[:l]))
		if bytes.Equal(x, y) {
			cv.t.Fatalf("%q was sealed under the key and nonce of %q: their ciphertexts XOR to their plaintexts' XOR", body, p.body)
		}
	}
	cv.all = append(cv.all, m)
	return id, m
}

// send seals body and waits until Bob has it.
func (cv *conversation) send(bob *user, body string) sealedMessage {
	cv.t.Helper()
	id, m := cv.seal(body)
	if e := cv.alice.waitOutcome(id, time.Minute); e.Kind != sender.EventDelivered {
		cv.t.Fatalf("%q: %s: %s", body, e.Kind, e.Text)
	}
	bob.waitMessage(body, 30*time.Second)
	return m
}

// copyFiles copies the named files (every file, recursively, if names is
// empty) from src to dst.
func copyFiles(t *testing.T, src, dst string, names ...string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if len(names) > 0 && !strings.Contains(" "+strings.Join(names, " ")+" ", " "+rel+" ") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dst, rel)), 0o700); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestRestoredStateStartsFreshSession: Alice's client state is backed up,
// she sends, the backup is put back, and she sends again.
//
//  1. The vault's files (state and history) are put back, the marker beside
//     them stays: her client notices at once, warns, and its next message
//     is on a new session from a fresh bundle, which Bob reads; once Bob
//     answers on it, Alice's messages are follow-ups on it.
//  2. The whole directory is put back, marker included: her client cannot
//     tell, and seals message numbers it used already. Bob's client
//     notices (a used number, an unknown message ID), warns Bob, and
//     Bob's next message starts a new session, on which Alice's client then
//     sends, and Bob reads her again.
//
// In both, no two of the messages Alice sealed share a key and nonce. On
// the code before version 2 of the session message, the first message
// after each restore repeats the keystream of one sealed after the
// backup, and the test fails there.
func TestRestoredStateStartsFreshSession(t *testing.T) {
	n := startNetwork(t, testnet.InProcessOptions{})
	alice := n.newUser(t, "alice@a", sender.Options{})
	bob := n.newUser(t, "bob@b", sender.Options{})
	cv := &conversation{t: t, alice: alice, bobID: bob.c.Steal().ID}

	first := cv.send(bob, "the first message, before any backup")
	bob.waitOutcome(bob.send("alice@a", "a reply, before the backup"), time.Minute)
	alice.waitMessage("a reply, before the backup", 30*time.Second)
	cv.send(bob, "a follow-up, before the backup")

	// 1. The vault's files put back; the marker stays.
	alice.stop()
	backup := t.TempDir()
	copyFiles(t, alice.dir, backup, "state.sealnet", "history.sealnet")
	alice.open(sender.Options{})
	alice.start()
	cv.send(bob, "sent after the backup was made")
	cv.send(bob, "also sent after the backup was made")
	alice.stop()
	copyFiles(t, backup, alice.dir)
	alice.open(sender.Options{})
	alice.start()
	_, fresh := cv.seal("the first message after the restore")
	if fresh.session == first.session {
		t.Fatal("after the restore Alice's client still sends on the old session")
	}
	if _, ok := alice.waitEvent(time.Second, func(e sender.Event) bool {
		return e.Kind == sender.EventWarning && strings.Contains(e.Text, "older than the last one saved")
	}); !ok {
		t.Fatal("Alice was not told that her state was restored")
	}
	bob.waitMessage("the first message after the restore", time.Minute)
	bob.waitOutcome(bob.send("alice@a", "a reply on the new session"), time.Minute)
	alice.waitMessage("a reply on the new session", 30*time.Second)
	if m := cv.send(bob, "a follow-up on the new session"); m.session != fresh.session || m.frags != 1 {
		t.Fatalf("Alice's next message: session %x (new session %x), %d fragments", m.session[:4], fresh.session[:4], m.frags)
	}

	// 2. The whole directory put back, marker included.
	alice.stop()
	whole := t.TempDir()
	copyFiles(t, alice.dir, whole)
	alice.open(sender.Options{})
	alice.start()
	cv.send(bob, "sent after the second backup")
	alice.stop()
	if err := os.RemoveAll(alice.dir); err != nil {
		t.Fatal(err)
	}
	copyFiles(t, whole, alice.dir)
	alice.open(sender.Options{})
	alice.start()
	id, reused := cv.seal("sealed again on a used number")
	if reused.session != fresh.session {
		t.Fatal("the directory's restore was noticed by Alice's client: the test no longer shows the peer's side")
	}
	alice.waitOutcome(id, time.Minute)
	if _, ok := bob.waitEvent(30*time.Second, func(e sender.Event) bool {
		return e.Kind == sender.EventWarning && e.To == "alice@a" && strings.Contains(e.Text, "reused a message number")
	}); !ok {
		t.Fatal("Bob was not told that Alice's message reused a number")
	}
	bob.waitOutcome(bob.send("alice@a", "Bob starts a new session"), time.Minute)
	alice.waitMessage("Bob starts a new session", 30*time.Second)
	if m := cv.send(bob, "Alice on Bob's new session"); m.session == fresh.session || m.frags != 1 {
		t.Fatalf("Alice's message after Bob's new session: session %x (old %x), %d fragments", m.session[:4], fresh.session[:4], m.frags)
	}
	for _, m := range bob.received() {
		if m.Body == "sealed again on a used number" {
			t.Fatal("Bob read a message sealed on a used number")
		}
	}
}

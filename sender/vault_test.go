package sender_test

import (
	"bytes"
	"crypto/ecdh"
	"crypto/mlkem"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sealnet/sealnet/sender"
	"github.com/sealnet/sealnet/sender/seal"
)

// encodings returns the forms in which b would appear in a file if it were
// written unencrypted: raw (binary formats), hex (map keys, names), and
// standard base64 (JSON's []byte) at each of the three alignments b can
// have inside a longer encoded value.
func encodings(b []byte) map[string][]byte {
	out := map[string][]byte{"raw": b, "hex": []byte(hex.EncodeToString(b))}
	for k := range 3 {
		part := b[min(k, len(b)):]
		if part = part[:len(part)/3*3]; len(part) >= 3 {
			out[fmt.Sprint("base64+", k)] = []byte(base64.StdEncoding.EncodeToString(part))
		}
	}
	return out
}

// findSecrets returns which of secrets occur, in any of their encodings,
// in b.
func findSecrets(b []byte, secrets map[string][]byte) []string {
	var found []string
	for what, s := range secrets {
		for enc, e := range encodings(s) {
			if bytes.Contains(b, e) {
				found = append(found, what+" ("+enc+")")
				break
			}
		}
	}
	return found
}

// offlineBundle is a prekey bundle of a new identity, made here (no
// provider needed).
func offlineBundle(t *testing.T) *seal.PrekeyBundle {
	t.Helper()
	id, err := seal.GenerateIdentity(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	spk, _ := ecdh.X25519().GenerateKey(rand.Reader)
	opk, _ := ecdh.X25519().GenerateKey(rand.Reader)
	dk, _ := mlkem.GenerateKey768()
	pub := id.Public()
	b := &seal.PrekeyBundle{IdentityX25519: pub.X25519, IdentityEd25519: pub.Ed25519,
		Signed:  seal.NewSignedPrekey(id.Ed25519, 1, spk.PublicKey()),
		OneTime: &seal.OneTimePrekey{ID: 2},
		PQ:      seal.NewPQPrekey(id.Ed25519, 3, seal.PQOneTime, dk.EncapsulationKey())}
	copy(b.OneTime.Public[:], opk.PublicKey().Bytes())
	return b
}

// TestStateEncryptedAtRest: the state directory holds none of the secrets
// a client keeps (identity private keys, prekeys' private halves, session
// chain keys, the delivery token, the key derived from the passphrase, the
// passphrase) and no address, public key or message text, in any form an
// unencrypted file would hold them; its files are 0600 in a 0700
// directory; a wrong passphrase opens nothing; a second process cannot
// open it at once. The control: the same search over the state as the
// vault would write it without encryption finds every secret the state
// holds.
func TestStateEncryptedAtRest(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "home")
	o := sender.InitOptions{Address: "alice@a", Authorities: []sender.AuthorityState{{URL: "http://127.0.0.1:1", Key: strings.Repeat("ab", 32)}}, Threshold: 1, KDF: &fastKDF}
	if err := sender.Init(dir, pass, o); err != nil {
		t.Fatal(err)
	}
	if err := sender.Init(dir, pass, o); err == nil {
		t.Fatal("a second init over an existing identity succeeded")
	}
	if _, err := sender.Open(dir, []byte("wrong passphrase"), sender.Options{}); !errors.Is(err, sender.ErrPassphrase) {
		t.Fatalf("wrong passphrase: %v", err)
	}
	c, err := sender.Open(dir, pass, sender.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sender.Open(dir, pass, sender.Options{}); !errors.Is(err, sender.ErrLocked) {
		t.Fatalf("second open while the first holds the directory: %v", err)
	}
	// A session with Bob, a message sealed on it (in the history), and one
	// to Carol waiting for her keys (its text in the outbox).
	const sealedText, waitingText, spooledText = "the secret plan for tuesday", "the other plan, for wednesday", "and the plan for thursday"
	if err := c.SealOffline("bob@b", []byte(sealedText), offlineBundle(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Queue("carol@c", []byte(waitingText), sender.RouteMix); err != nil {
		t.Fatal(err)
	}
	pub := c.Public()
	secrets := c.Secrets()
	plain := c.PlainState()
	c.Close()
	// A message in the spool, for a daemon.
	if _, err := sender.Spool(dir, pass, "dave@d", []byte(spooledText), sender.RouteMix); err != nil {
		t.Fatal(err)
	}
	sessions := 0
	for what := range secrets {
		if strings.Contains(what, "chain key") {
			sessions++
		}
	}
	if sessions != 2 || len(secrets) < 9 {
		t.Fatalf("the client holds %d chain keys, %d secrets: the state lacks what this test looks for", sessions, len(secrets))
	}
	secrets["passphrase"] = pass
	for what, s := range map[string]string{"address": "alice@a", "recipient": "bob@b", "contact waiting": "carol@c", "spooled recipient": "dave@d",
		"sealed message": sealedText, "waiting message": waitingText, "spooled message": spooledText} {
		secrets[what] = []byte(s)
	}
	secrets["X25519 public key"], secrets["Ed25519 public key"] = pub.X25519[:], pub.Ed25519[:]

	// Control: unencrypted, the state shows every secret it holds.
	for what := range secrets {
		if what == "passphrase-derived key" || what == "passphrase" || strings.HasPrefix(what, "spooled") || what == "sealed message" {
			continue // never in the state itself (the history and spool hold the messages)
		}
		if len(findSecrets(plain, map[string][]byte{what: secrets[what]})) == 0 {
			t.Errorf("control: the unencrypted state does not show the %s: the search would miss it", what)
		}
	}

	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("state directory mode %v, %v", fi.Mode().Perm(), err)
	}
	n := 0
	err = filepath.Walk(dir, func(path string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		n++
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v", path, fi.Mode().Perm())
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, what := range findSecrets(b, secrets) {
			t.Errorf("%s holds the %s in the clear", path, what)
		}
		return nil
	})
	if err != nil || n < 4 {
		t.Fatalf("walked %d files: %v", n, err)
	}
}

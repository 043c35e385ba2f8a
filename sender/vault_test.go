package sender_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sealnet/sealnet/sender"
)

// TestStateEncryptedAtRest: the state directory holds no address, key or
// message in the clear, its files are 0600 in a 0700 directory, a wrong
// passphrase opens nothing, and a second process cannot open it at once.
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
	pub := c.Public()
	c.Close()
	// A message in the history, written through the spool path.
	const secret = "the secret plan for tuesday"
	if _, err := sender.Spool(dir, pass, "bob@b", []byte(secret)); err != nil {
		t.Fatal(err)
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
		for what, s := range map[string][]byte{"address": []byte("alice@a"), "recipient": []byte("bob@b"), "message": []byte(secret),
			"X25519 key": pub.X25519[:], "Ed25519 key": pub.Ed25519[:]} {
			if bytes.Contains(b, s) {
				t.Errorf("%s holds the %s in the clear", path, what)
			}
		}
		return nil
	})
	if err != nil || n < 2 {
		t.Fatalf("walked %d files: %v", n, err)
	}
}

package keystore

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestIdentityPersists(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	k1, created, err := Identity(dir)
	if err != nil || !created {
		t.Fatalf("first: created=%v err=%v", created, err)
	}
	k2, created, err := Identity(dir)
	if err != nil || created || !bytes.Equal(k1, k2) {
		t.Fatalf("second load: created=%v err=%v same=%v", created, err, bytes.Equal(k1, k2))
	}
	st, err := os.Stat(filepath.Join(dir, "identity.key"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v", st.Mode().Perm(), err)
	}
	if dst, _ := os.Stat(dir); dst.Mode().Perm() != 0o700 {
		t.Fatalf("dir mode %v", dst.Mode().Perm())
	}
	if err := os.Chmod(filepath.Join(dir, "identity.key"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Identity(dir); !errors.Is(err, ErrPermissions) {
		t.Fatalf("world-readable key: got %v", err)
	}
}

func TestLinkKeyPair(t *testing.T) {
	dir := t.TempDir()
	k, _, err := Link(dir)
	if err != nil {
		t.Fatal(err)
	}
	k2, _, err := Link(dir)
	if err != nil || !bytes.Equal(k.Public, k2.Public) || len(k.Private) != 32 {
		t.Fatal("link key not stable")
	}
}

func TestMalformedKeyFile(t *testing.T) {
	dir := t.TempDir()
	for _, body := range []string{"", "garbage", "# sealnet identity key: secret, keep mode 0600\n!!!\n", "# sealnet link key: secret, keep mode 0600\nAAAA\n"} {
		os.WriteFile(filepath.Join(dir, "identity.key"), []byte(body), 0o600)
		if _, _, err := Identity(dir); err == nil {
			t.Fatalf("accepted %q", body)
		}
	}
}

func TestMixKeysEraseAndList(t *testing.T) {
	m := NewMixKeys(t.TempDir())
	a, _, err := m.Get(10)
	if err != nil {
		t.Fatal(err)
	}
	m.Get(11)
	if a2, created, _ := m.Get(10); created || !bytes.Equal(a, a2) {
		t.Fatal("epoch key changed on reload")
	}
	eps, _ := m.Epochs()
	if len(eps) != 2 {
		t.Fatalf("epochs %v", eps)
	}
	if err := m.Erase(10); err != nil {
		t.Fatal(err)
	}
	if err := m.Erase(10); err != nil {
		t.Fatal("erasing a missing key failed")
	}
	if a3, created, _ := m.Get(10); !created || bytes.Equal(a, a3) {
		t.Fatal("an erased key came back")
	}
}

// Package keystore keeps a node's long-term and per-epoch keys in files.
//
// Key files are created with mode 0600 in directories with mode 0700,
// written atomically (temporary file, fsync, rename), and refused on load
// if anyone but the owner can read them, as ssh does. Per-epoch mix keys
// are overwritten before they are removed; on journaling or
// copy-on-write file systems and SSDs that is a best effort, which is why
// mix keys also live only one epoch and a little longer.
package keystore

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/flynn/noise"
	"golang.org/x/crypto/curve25519"

	"github.com/sealnet/sealnet/internal/atomicfile"
)

// ErrPermissions: a key file is readable by others than its owner.
var ErrPermissions = errors.New("keystore: key file is readable by group or others")

const header = "# sealnet %s key: secret, keep mode 0600\n"

func encode(kind string, key []byte) []byte {
	return []byte(fmt.Sprintf(header, kind) + base64.StdEncoding.EncodeToString(key) + "\n")
}

func decode(path, kind string, size int, data []byte) ([]byte, error) {
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != 2 || lines[0] != strings.TrimSpace(fmt.Sprintf(header, kind)) {
		return nil, fmt.Errorf("keystore: %s is not a sealnet %s key file", path, kind)
	}
	key, err := base64.StdEncoding.DecodeString(lines[1])
	if err != nil || len(key) != size {
		return nil, fmt.Errorf("keystore: %s holds a malformed %s key", path, kind)
	}
	return key, nil
}

// writeFile writes data to path atomically with mode 0600.
func writeFile(path string, data []byte) error { return atomicfile.Write(path, data) }

// loadOrCreate returns the key in path, creating it with gen if the file
// does not exist.
func loadOrCreate(path, kind string, size int, gen func() ([]byte, error)) ([]byte, bool, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		key, err := gen()
		if err != nil {
			return nil, false, err
		}
		if err := writeFile(path, encode(kind, key)); err != nil {
			return nil, false, fmt.Errorf("keystore: write %s: %w", path, err)
		}
		return key, true, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("keystore: %w", err)
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, false, fmt.Errorf("keystore: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, false, fmt.Errorf("%w: %s has mode %v; run chmod 600 %s", ErrPermissions, path, st.Mode().Perm(), path)
	}
	key, err := decode(path, kind, size, data)
	return key, false, err
}

// Identity returns the Ed25519 identity key in dir/identity.key, creating
// it on first use. created reports a new key.
func Identity(dir string) (priv ed25519.PrivateKey, created bool, err error) {
	return ed25519Key(filepath.Join(dir, "identity.key"), "identity")
}

// ed25519Key loads or creates an Ed25519 key kept as its seed.
func ed25519Key(path, kind string) (ed25519.PrivateKey, bool, error) {
	seed, created, err := loadOrCreate(path, kind, ed25519.SeedSize, func() ([]byte, error) {
		s := make([]byte, ed25519.SeedSize)
		_, err := rand.Read(s)
		return s, err
	})
	if err != nil {
		return nil, false, err
	}
	return ed25519.NewKeyFromSeed(seed), created, nil
}

// Onion returns the Ed25519 key of the node's Tor onion service in
// dir/onion.key, creating it on first use. It is not the identity key:
// the onion address must not be derivable from the directory identity, and
// losing one key must not cost the other.
func Onion(dir string) (ed25519.PrivateKey, bool, error) {
	return ed25519Key(filepath.Join(dir, "onion.key"), "onion")
}

// Link returns the X25519 link key pair in dir/link.key, creating it on
// first use.
func Link(dir string) (noise.DHKey, bool, error) {
	priv, created, err := loadOrCreate(filepath.Join(dir, "link.key"), "link", 32, func() ([]byte, error) {
		s := make([]byte, 32)
		_, err := rand.Read(s)
		return s, err
	})
	if err != nil {
		return noise.DHKey{}, false, err
	}
	pub, err := curve25519.X25519(priv, curve25519.Basepoint)
	if err != nil {
		return noise.DHKey{}, false, fmt.Errorf("keystore: link key: %w", err)
	}
	return noise.DHKey{Private: priv, Public: pub}, created, nil
}

// MixKeys stores one X25519 mix key per epoch in dir/mix/epoch-N.key.
type MixKeys struct{ dir string }

// NewMixKeys returns the mix key store under dir.
func NewMixKeys(dir string) *MixKeys { return &MixKeys{dir: filepath.Join(dir, "mix")} }

func (m *MixKeys) path(epoch uint64) string {
	return filepath.Join(m.dir, "epoch-"+strconv.FormatUint(epoch, 10)+".key")
}

// Get returns the private mix key for epoch, creating it if absent.
func (m *MixKeys) Get(epoch uint64) ([]byte, bool, error) {
	return loadOrCreate(m.path(epoch), "mix", 32, func() ([]byte, error) {
		s := make([]byte, 32)
		_, err := rand.Read(s)
		return s, err
	})
}

// Epochs lists the epochs that have a key file, in no particular order.
func (m *MixKeys) Epochs() ([]uint64, error) {
	entries, err := os.ReadDir(m.dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []uint64
	for _, e := range entries {
		n, ok := strings.CutPrefix(e.Name(), "epoch-")
		if !ok {
			continue
		}
		n, ok = strings.CutSuffix(n, ".key")
		if !ok {
			continue
		}
		if v, err := strconv.ParseUint(n, 10, 64); err == nil {
			out = append(out, v)
		}
	}
	return out, nil
}

// Erase overwrites and removes the key of epoch. It is not an error if
// the key does not exist.
func (m *MixKeys) Erase(epoch uint64) error {
	return Erase(m.path(epoch))
}

// Erase overwrites a file with zeros, syncs it and removes it.
func Erase(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if st, err := f.Stat(); err == nil {
		f.Write(make([]byte, st.Size()))
		f.Sync()
	}
	f.Close()
	return os.Remove(path)
}

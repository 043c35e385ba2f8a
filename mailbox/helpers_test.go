package mailbox

import (
	"crypto/sha256"
	"testing"
	"time"

	"github.com/sealnet/sealnet/internal/clock"
	"github.com/sealnet/sealnet/mailbox/store"
	"github.com/sealnet/sealnet/mailbox/store/badger"
)

// The service's tests run on the real store; these helpers are the
// store's own test helpers (mailbox/store/badger/db_test.go) that they use.

// stClock is a settable clock for tests.
type stClock struct{ *clock.Manual }

func newStClock() *stClock {
	return &stClock{clock.NewManual(time.Date(2031, 3, 4, 5, 6, 7, 0, time.UTC))}
}

func (c *stClock) Add(d time.Duration) { c.Advance(d) }

// stOpen opens a store in dir (a new temporary directory if empty) and
// closes it when the test ends.
func stOpen(t testing.TB, dir string, cfg badger.Config) *badger.DB {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	s, err := badger.Open(dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func stAccount(name string) store.Account {
	return store.Account{
		Address:         name + "@provider.example",
		IdentityX25519:  sha256.Sum256([]byte("x25519 " + name)),
		IdentityEd25519: sha256.Sum256([]byte("ed25519 " + name)),
	}
}

package relay

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/sealnet/sealnet/internal/keystore"
	"github.com/sealnet/sealnet/mixnet"
	"github.com/sealnet/sealnet/mixnet/directory"
)

// epochKey is the mix key of one epoch and the replay cache that goes with
// it.
type epochKey struct {
	epoch uint64
	key   *mixnet.MixKey
	rc    *mixnet.ReplayCache
}

// epochKeys holds the node's mix keys. Invariant: a key is usable from
// grace before its epoch starts until grace after it ends; after that its
// file is erased and its replay journal removed, so packets for it can no
// longer be unwrapped (they fail header authentication) and the key no
// longer exists to be stolen.
type epochKeys struct {
	geo      mixnet.Geometry
	store    *keystore.MixKeys
	dir      string // replay journals
	capacity int
	period   time.Duration
	grace    time.Duration

	mu   sync.RWMutex
	keys map[uint64]*epochKey
}

func newEpochKeys(dataDir string, geo mixnet.Geometry, capacity int, period, grace time.Duration) *epochKeys {
	return &epochKeys{
		geo: geo, store: keystore.NewMixKeys(filepath.Join(dataDir, "keys")),
		dir: filepath.Join(dataDir, "replay"), capacity: capacity,
		period: period, grace: grace, keys: make(map[uint64]*epochKey),
	}
}

func (k *epochKeys) journal(e uint64) string {
	return filepath.Join(k.dir, "epoch-"+strconv.FormatUint(e, 10)+".journal")
}

// ensure loads or creates the keys (and opens the replay journals) of the
// given epochs.
func (k *epochKeys) ensure(epochs ...uint64) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, e := range epochs {
		if k.keys[e] != nil {
			continue
		}
		priv, _, err := k.store.Get(e)
		if err != nil {
			return err
		}
		mk, err := mixnet.NewMixKey(k.geo, priv)
		clear(priv)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(k.dir, 0o700); err != nil {
			return err
		}
		rc, err := mixnet.OpenReplayCache(k.journal(e), e, mk.PublicKey(), k.capacity)
		if err != nil {
			return fmt.Errorf("replay journal for epoch %d: %w", e, err)
		}
		k.keys[e] = &epochKey{epoch: e, key: mk, rc: rc}
	}
	return nil
}

// public returns the public mix key of epoch e, if held.
func (k *epochKeys) public(e uint64) ([32]byte, bool) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	ek := k.keys[e]
	if ek == nil {
		return [32]byte{}, false
	}
	return ek.key.PublicKey(), true
}

// candidates returns the keys that may unwrap a packet arriving at now:
// the current epoch's first, then the previous epoch's within grace after
// the boundary, or the next epoch's within grace before it.
func (k *epochKeys) candidates(now time.Time, dst []*epochKey) []*epochKey {
	e := directory.EpochAt(now, k.period)
	k.mu.RLock()
	defer k.mu.RUnlock()
	if ek := k.keys[e]; ek != nil {
		dst = append(dst, ek)
	}
	if now.Sub(directory.EpochStart(e, k.period)) < k.grace {
		if ek := k.keys[e-1]; ek != nil {
			dst = append(dst, ek)
		}
	}
	if directory.EpochStart(e+1, k.period).Sub(now) < k.grace {
		if ek := k.keys[e+1]; ek != nil {
			dst = append(dst, ek)
		}
	}
	return dst
}

// retire erases every key whose usable window has ended at now.
func (k *epochKeys) retire(now time.Time) []uint64 {
	e := directory.EpochAt(now, k.period)
	k.mu.Lock()
	var gone []*epochKey
	for x, ek := range k.keys {
		if x+1 < e || (x+1 == e && now.Sub(directory.EpochStart(e, k.period)) >= k.grace) {
			gone = append(gone, ek)
			delete(k.keys, x)
		}
	}
	k.mu.Unlock()
	// Keys on disk that were never loaded (a node down for a while).
	if eps, err := k.store.Epochs(); err == nil {
		for _, x := range eps {
			if x+1 < e {
				k.store.Erase(x)
				os.Remove(k.journal(x))
			}
		}
	}
	var out []uint64
	for _, ek := range gone {
		ek.rc.Close()
		k.store.Erase(ek.epoch)
		os.Remove(k.journal(ek.epoch))
		out = append(out, ek.epoch)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// sync flushes every replay journal to disk.
func (k *epochKeys) sync() error {
	k.mu.RLock()
	defer k.mu.RUnlock()
	var errs []error
	for _, ek := range k.keys {
		if err := ek.rc.Sync(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// close syncs and closes every replay journal.
func (k *epochKeys) close() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	var errs []error
	for _, ek := range k.keys {
		errs = append(errs, ek.rc.Close())
	}
	return errors.Join(errs...)
}

// replayTags returns the tags held per epoch (for metrics).
func (k *epochKeys) replayTags() int {
	k.mu.RLock()
	defer k.mu.RUnlock()
	n := 0
	for _, ek := range k.keys {
		n += ek.rc.Len()
	}
	return n
}

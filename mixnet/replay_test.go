package mixnet

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
)

func tagN(i int) ReplayTag {
	var t ReplayTag
	t[0], t[1], t[2], t[15] = byte(i), byte(i>>8), byte(i>>16), 0xa5
	return t
}

func TestReplayCacheBounded(t *testing.T) {
	c, err := NewReplayCache(7, 100)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		if err := c.Add(tagN(i)); err != nil {
			t.Fatalf("tag %d: %v", i, err)
		}
	}
	if err := c.Add(tagN(100)); !errors.Is(err, ErrReplayCacheFull) {
		t.Fatalf("full cache: got %v, want ErrReplayCacheFull", err)
	}
	// Full does not mean forgetful: old tags are still replays.
	if err := c.Add(tagN(0)); !errors.Is(err, ErrReplay) {
		t.Fatalf("old tag in a full cache: got %v, want ErrReplay", err)
	}
	if c.Len() != 100 || c.Capacity() != 100 || c.Epoch() != 7 {
		t.Fatalf("Len %d Capacity %d Epoch %d", c.Len(), c.Capacity(), c.Epoch())
	}
	if _, err := NewReplayCache(1, 0); err == nil {
		t.Fatal("zero capacity accepted")
	}
}

func TestReplayCacheConcurrent(t *testing.T) {
	c, err := NewReplayCache(1, 10_000)
	if err != nil {
		t.Fatal(err)
	}
	var accepted atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for i := range 1000 {
				if c.Add(tagN(i)) == nil {
					accepted.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if accepted.Load() != 1000 {
		t.Fatalf("%d adds accepted for 1000 distinct tags", accepted.Load())
	}
}

func TestReplayCachePersists(t *testing.T) {
	path := filepath.Join(t.TempDir(), "replay.journal")
	key := [32]byte{1, 2, 3}
	c, err := OpenReplayCache(path, 3, key, 1000)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if err := c.Add(tagN(i)); err != nil {
			t.Fatal(err)
		}
	}
	// A crash after Sync: the process dies without Close.
	if err := c.Sync(); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("journal mode %v, want 0600", st.Mode().Perm())
	}

	c2, err := OpenReplayCache(path, 3, key, 1000)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if err := c2.Add(tagN(i)); !errors.Is(err, ErrReplay) {
			t.Fatalf("tag %d after restart: got %v, want ErrReplay", i, err)
		}
	}
	if err := c2.Add(tagN(10)); err != nil {
		t.Fatal(err)
	}
	if err := c2.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c2.Add(tagN(11)); err == nil {
		t.Fatal("closed cache accepted a tag")
	}

	// Another epoch or another key: refused, not silently mixed.
	if _, err := OpenReplayCache(path, 4, key, 1000); err == nil {
		t.Fatal("journal opened for the wrong epoch")
	}
	if _, err := OpenReplayCache(path, 3, [32]byte{9}, 1000); err == nil {
		t.Fatal("journal opened for the wrong key")
	}
	// More tags than the capacity allows: refused, not loaded unbounded.
	if _, err := OpenReplayCache(path, 3, key, 5); err == nil {
		t.Fatal("journal with 11 tags opened with capacity 5")
	}
}

func TestReplayJournalTornRecord(t *testing.T) {
	path := filepath.Join(t.TempDir(), "replay.journal")
	key := [32]byte{4}
	c, err := OpenReplayCache(path, 1, key, 100)
	if err != nil {
		t.Fatal(err)
	}
	c.Add(tagN(1))
	c.Add(tagN(2))
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	// A crash in the middle of appending a third record.
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte{0xde, 0xad, 0xbe})
	f.Close()

	c, err = OpenReplayCache(path, 1, key, 100)
	if err != nil {
		t.Fatal(err)
	}
	if c.Len() != 2 {
		t.Fatalf("loaded %d tags, want 2", c.Len())
	}
	c.Add(tagN(3))
	c.Close()
	c, err = OpenReplayCache(path, 1, key, 100)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, i := range []int{1, 2, 3} {
		if err := c.Add(tagN(i)); !errors.Is(err, ErrReplay) {
			t.Fatalf("tag %d: got %v, want ErrReplay (torn record not dropped?)", i, err)
		}
	}
}

func TestReplayJournalGarbage(t *testing.T) {
	dir := t.TempDir()
	for i, b := range [][]byte{
		[]byte("short"),
		bytes.Repeat([]byte{0}, journalHeaderSize),
		append([]byte("SNRJ\x02\x00\x00\x00"), make([]byte, 40)...),
	} {
		path := filepath.Join(dir, "j")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := OpenReplayCache(path, 0, [32]byte{}, 10); !errors.Is(err, ErrMalformed) {
			t.Fatalf("case %d: got %v, want ErrMalformed", i, err)
		}
	}
}

// TestUnwrapReplayAcrossRestart ties the cache to the packet: a relay that
// restarts within the epoch still refuses a packet it forwarded before.
func TestUnwrapReplayAcrossRestart(t *testing.T) {
	g := DefaultGeometry()
	nodes := newTestNodes(t, g, 2, 70)
	path := filepath.Join(t.TempDir(), "replay.journal")
	keyID := nodes[0].key.PublicKey()
	rc, err := OpenReplayCache(path, 1, keyID, 1000)
	if err != nil {
		t.Fatal(err)
	}
	pkt := mustPacket(t, detRand(71), g, nodes, nil)
	replay := bytes.Clone(pkt)
	if _, err := nodes[0].key.Unwrap(pkt, rc); err != nil {
		t.Fatal(err)
	}
	if err := rc.Close(); err != nil {
		t.Fatal(err)
	}
	rc, err = OpenReplayCache(path, 1, keyID, 1000)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if _, err := nodes[0].key.Unwrap(replay, rc); !errors.Is(err, ErrReplay) {
		t.Fatalf("replay after restart: got %v, want ErrReplay", err)
	}
}

// TestReplayCacheLargeExact: a cache large enough to be sharded still
// holds exactly its capacity, finds every tag it took through every
// growth of its tables, and refuses rather than forgets when full.
func TestReplayCacheLargeExact(t *testing.T) {
	const capacity = 200_000
	c, err := NewReplayCache(1, capacity)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.set.shards) != maxShards {
		t.Fatalf("%d shards, want %d", len(c.set.shards), maxShards)
	}
	for i := range uint64(capacity) {
		if err := c.Add(randTag(i)); err != nil {
			t.Fatalf("tag %d of %d: %v", i, capacity, err)
		}
	}
	if err := c.Add(randTag(capacity)); !errors.Is(err, ErrReplayCacheFull) {
		t.Fatalf("tag past capacity: got %v, want ErrReplayCacheFull", err)
	}
	for i := range uint64(capacity) {
		if err := c.Add(randTag(i)); !errors.Is(err, ErrReplay) {
			t.Fatalf("tag %d again: got %v, want ErrReplay", i, err)
		}
	}
	if c.Len() != capacity {
		t.Fatalf("Len %d, want %d", c.Len(), capacity)
	}
	for i := range c.set.shards {
		sh := &c.set.shards[i]
		if len(sh.slots) > sh.maxSlots || sh.n*8 > len(sh.slots)*7+8 {
			t.Fatalf("shard %d: %d of %d slots (most %d)", i, sh.n, len(sh.slots), sh.maxSlots)
		}
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Add(randTag(capacity + 1)); err == nil {
		t.Fatal("closed cache accepted a tag")
	}
}

// TestReplayFingerprintKeyed: fingerprints are keyed per cache, so a
// sender who knows its own tags cannot know where they land or what they
// collide with.
func TestReplayFingerprintKeyed(t *testing.T) {
	a, b := newTagSet(10), newTagSet(10)
	same := 0
	for i := range uint64(64) {
		tag := randTag(i)
		if a.fingerprint(&tag) == b.fingerprint(&tag) {
			same++
		}
	}
	if same != 0 {
		t.Fatalf("%d of 64 tags have the same fingerprint in two caches", same)
	}
}

// TestReplayCacheSyncWhileAdding: Adds, Syncs and a Close race; every tag
// accepted is in the journal afterwards, and none after Close.
func TestReplayCacheSyncWhileAdding(t *testing.T) {
	path := filepath.Join(t.TempDir(), "replay.journal")
	key := [32]byte{5}
	c, err := OpenReplayCache(path, 2, key, 1<<17)
	if err != nil {
		t.Fatal(err)
	}
	var accepted atomic.Int64
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range uint64(20_000) {
				if c.Add(randTag(uint64(w)<<32|i)) == nil {
					accepted.Add(1)
				}
			}
		})
	}
	wg.Go(func() {
		for range 5 {
			if err := c.Sync(); err != nil {
				t.Error(err)
				return
			}
		}
		if err := c.Close(); err != nil {
			t.Error(err)
		}
	})
	wg.Wait()
	c.Close()
	c, err = OpenReplayCache(path, 2, key, 1<<17)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if int64(c.Len()) != accepted.Load() {
		t.Fatalf("journal holds %d tags, %d were accepted", c.Len(), accepted.Load())
	}
	t.Logf("%d of 80000 tags accepted before Close", accepted.Load())
}

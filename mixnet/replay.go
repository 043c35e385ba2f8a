package mixnet

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
)

const replayTagSize = 16

// ReplayTag identifies a packet at one hop. It is derived from the hop's
// shared secret, so only that hop can compute it, and a replayed packet
// (same ephemeral key, same hop key) always yields the same tag.
type ReplayTag [replayTagSize]byte

// ReplayCache remembers the replay tags a hop has seen under one mix key
// (one key epoch). Its memory is bounded by its capacity: when full it
// refuses new packets with ErrReplayCacheFull rather than forgetting old
// tags, because forgetting would let those packets be replayed. Keys, and
// with them caches, rotate every epoch, so the capacity must cover the
// most packets a hop can unwrap while the key is usable: its unwrap rate
// times the key's lifetime (relay.ReplayCapacityFor). Anyone can make
// valid packets, so anything less lets a flood at line rate fill the
// cache and stop the hop until the key rotates.
//
// The cache holds keyed 64-bit fingerprints of the tags, not the tags
// (see tagSet): about 9.3 bytes per tag of capacity when full, less while
// filling. It never forgets a tag it accepted; a tag it never saw is
// taken for a replay with probability n/2^64 when it holds n tags (the
// expected number of honest packets so dropped over an epoch of N packets
// is N²/2^65).
//
// A cache opened with OpenReplayCache also appends every tag to a journal
// file, so that after a restart within the epoch it still refuses packets
// it saw before. A tag is on disk once Sync returns; a relay calls Sync
// before it releases the packets whose tags it added, so that a crash
// cannot forget a tag whose packet already left.
//
// A ReplayCache is safe for concurrent use.
type ReplayCache struct {
	epoch    uint64
	capacity int
	set      *tagSet

	syncMu sync.Mutex // one Sync or Close at a time; taken before mu
	mu     sync.Mutex // w, err, and closed's changes
	file   *os.File   // nil for a memory-only cache
	w      *bufio.Writer
	err    error // sticky journal write or sync error
	closed atomic.Bool
}

// ReplayCacheMemory returns the bytes of memory that a full cache of the
// given capacity holds: about 9.3 per tag for large caches.
func ReplayCacheMemory(capacity int) int64 {
	nshards, _, maxSlots := tagSetGeometry(max(capacity, 1))
	return int64(nshards) * int64(maxSlots) * 8
}

// NewReplayCache returns a memory-only cache for the given epoch that holds
// at most capacity tags.
func NewReplayCache(epoch uint64, capacity int) (*ReplayCache, error) {
	if capacity < 1 {
		return nil, fmt.Errorf("mixnet: replay cache capacity %d must be positive", capacity)
	}
	return &ReplayCache{epoch: epoch, capacity: capacity, set: newTagSet(capacity)}, nil
}

// Journal file layout (all integers big endian):
//
//	magic "SNRJ" (4) | format version 1 (1) | zero (3) | epoch (8) | key ID (32)
//	then one 16-byte tag per record.
//
// A record cut short by a crash is discarded on open.
const (
	journalMagic      = "SNRJ"
	journalVersion    = 1
	journalHeaderSize = 48
)

func journalHeader(epoch uint64, keyID *[32]byte) []byte {
	h := make([]byte, journalHeaderSize)
	copy(h, journalMagic)
	h[4] = journalVersion
	binary.BigEndian.PutUint64(h[8:], epoch)
	copy(h[16:], keyID[:])
	return h
}

// OpenReplayCache opens (or creates, with mode 0600) the journal at path for
// the given epoch and key ID (the mix public key the tags belong to), loads
// the tags it holds, and appends new ones to it. A journal written for
// another epoch or key is refused.
func OpenReplayCache(path string, epoch uint64, keyID [32]byte, capacity int) (*ReplayCache, error) {
	c, err := NewReplayCache(epoch, capacity)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("mixnet: open replay journal: %w", err)
	}
	fail := func(err error) (*ReplayCache, error) {
		f.Close()
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		return fail(fmt.Errorf("mixnet: replay journal: %w", err))
	}
	if st.Size() == 0 {
		if _, err := f.Write(journalHeader(epoch, &keyID)); err != nil {
			return fail(fmt.Errorf("mixnet: write replay journal header: %w", err))
		}
		if err := f.Sync(); err != nil {
			return fail(fmt.Errorf("mixnet: sync replay journal: %w", err))
		}
	} else {
		valid, err := readJournal(bufio.NewReader(f), epoch, &keyID, c.set.add)
		if err != nil {
			return fail(fmt.Errorf("replay journal %s: %w", path, err))
		}
		if valid != st.Size() {
			// Drop a torn final record so appends stay aligned.
			if err := f.Truncate(valid); err != nil {
				return fail(fmt.Errorf("mixnet: truncate replay journal: %w", err))
			}
		}
		if _, err := f.Seek(valid, io.SeekStart); err != nil {
			return fail(fmt.Errorf("mixnet: seek replay journal: %w", err))
		}
	}
	c.file = f
	c.w = bufio.NewWriterSize(f, 64*replayTagSize)
	return c, nil
}

// readJournal passes the tags of a journal to add and returns the length
// of its valid prefix (header and whole records). A tag add finds held
// already is skipped; any other error from add (a full cache: more
// records than the capacity) is returned, never unbounded memory.
func readJournal(r io.Reader, epoch uint64, keyID *[32]byte, add func(*ReplayTag) error) (int64, error) {
	hdr := make([]byte, journalHeaderSize)
	if _, err := io.ReadFull(r, hdr); err != nil {
		return 0, fmt.Errorf("%w: journal header: %v", ErrMalformed, err)
	}
	if string(hdr[:4]) != journalMagic || hdr[4] != journalVersion || hdr[5]|hdr[6]|hdr[7] != 0 {
		return 0, fmt.Errorf("%w: not a version %d replay journal", ErrMalformed, journalVersion)
	}
	if e := binary.BigEndian.Uint64(hdr[8:]); e != epoch {
		return 0, fmt.Errorf("journal is for epoch %d, not %d", e, epoch)
	}
	if !bytes.Equal(hdr[16:48], keyID[:]) {
		return 0, errors.New("journal belongs to another mix key")
	}
	valid := int64(journalHeaderSize)
	var tag ReplayTag
	for {
		_, err := io.ReadFull(r, tag[:])
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return valid, nil
		}
		if err != nil {
			return 0, fmt.Errorf("read journal: %w", err)
		}
		if err := add(&tag); err != nil && !errors.Is(err, ErrReplay) {
			return 0, fmt.Errorf("journal record at offset %d: %w", valid, err)
		}
		valid += replayTagSize
	}
}

// Epoch returns the key epoch the cache belongs to.
func (c *ReplayCache) Epoch() uint64 { return c.epoch }

// Len returns the number of tags held.
func (c *ReplayCache) Len() int { return c.set.len() }

// Capacity returns the most tags the cache will hold.
func (c *ReplayCache) Capacity() int { return c.capacity }

// Add records tag. It returns ErrReplay if the tag was already present and
// ErrReplayCacheFull if the cache is full; in both cases the packet must be
// dropped.
func (c *ReplayCache) Add(tag ReplayTag) error {
	if c.closed.Load() {
		return errSetClosed
	}
	if err := c.set.add(&tag); err != nil {
		return err
	}
	if c.file != nil {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.closed.Load() {
			// Closed meanwhile: the tag is not journaled, so the packet
			// must not go on.
			return errSetClosed
		}
		if c.err == nil {
			_, c.err = c.w.Write(tag[:])
		}
	}
	return nil
}

// Sync writes buffered tags to the journal and flushes it to stable
// storage: every tag whose Add returned before Sync was called is on disk
// when it returns. It reports any earlier write error. It is a no-op for
// a memory-only cache. The file is flushed to disk without holding the
// lock that Add takes, so workers go on adding tags meanwhile.
func (c *ReplayCache) Sync() error {
	c.syncMu.Lock()
	defer c.syncMu.Unlock()
	return c.sync(false)
}

// sync writes out the buffer under mu and then syncs the file without it;
// with closing, it also marks the cache closed before letting go of mu.
// The caller holds syncMu, so no other sync or Close runs meanwhile.
func (c *ReplayCache) sync(closing bool) error {
	c.mu.Lock()
	if c.closed.Load() || c.file == nil {
		err := c.err
		c.closed.Store(c.closed.Load() || closing)
		c.mu.Unlock()
		return err
	}
	if c.err == nil {
		c.err = c.w.Flush()
	}
	err := c.err
	if closing {
		c.closed.Store(true)
	}
	c.mu.Unlock()
	if err == nil {
		if err = c.file.Sync(); err != nil {
			c.mu.Lock()
			c.err = err
			c.mu.Unlock()
		}
	}
	if err != nil {
		return fmt.Errorf("mixnet: replay journal: %w", err)
	}
	return nil
}

// Close syncs and closes the journal and frees the cache's memory. The
// cache refuses further tags.
func (c *ReplayCache) Close() error {
	c.syncMu.Lock()
	defer c.syncMu.Unlock()
	if c.closed.Load() {
		return nil
	}
	err := c.sync(true)
	c.set.close()
	if c.file != nil {
		if cerr := c.file.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("mixnet: close replay journal: %w", cerr)
		}
	}
	return err
}

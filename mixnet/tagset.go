package mixnet

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"math"
	"math/bits"
	"sync"
	"sync/atomic"
)

// tagSet is the memory of a ReplayCache: a set of 64-bit fingerprints of
// replay tags, in open-addressed tables that grow with the tags held, up
// to a size fixed by the capacity.
//
// Fingerprint. A tag's fingerprint is the first 8 bytes of AES-128(k, tag)
// under a key k drawn at random for this set (0 is mapped to 1: 0 marks an
// empty slot). Senders choose their packets and so know their own tags;
// under a secret key they cannot choose fingerprints, so they can neither
// aim at an honest tag's fingerprint nor crowd one shard or one run of
// slots. AES is a pseudo-random permutation, and truncated to 64 bits it
// is a pseudo-random function (the switching term, q²/2^129 for q tags,
// is negligible); it is used rather than HMAC-SHA256 because it costs
// about 26 ns against 400 (measured; one hardware-accelerated block, the
// buffers pooled, against four SHA-256 compressions), and the key never
// leaves the process: a restart
// draws a new one and recomputes the fingerprints from the journal.
//
// Errors. Every tag added is found again: no false negatives. A tag never
// added is taken for a replay only if its fingerprint equals that of a tag
// held, which for a set holding n tags happens with probability n/2^64;
// over a key epoch in which N tags arrive, the expected number of honest
// packets dropped so is N²/2^65 (for N = 92,160,000 tags, the default
// capacity of a two-core relay, 2.3e-4 per epoch).
//
// Layout. The fingerprint's low bits pick one of the shards (each with its
// own lock, so workers rarely meet); its high bits pick a bucket of eight
// slots (one 64-byte cache line) in that shard's table, scanned onward
// until the fingerprint or an empty slot is found (linear probing by
// bucket). Nothing is ever removed, so a fingerprint held lies before the
// first empty slot of its probe run. A table is kept at most 7/8 full;
// past that it doubles (rehashed from the fingerprints themselves) until
// it reaches its largest size. The largest size holds the shard's share of
// the capacity plus a margin of 16 standard deviations of that share (the
// fingerprints spread the tags evenly), so a shard refuses a tag before the
// whole set is full only with negligible probability; the set as a whole
// refuses past its capacity exactly.
//
// Memory: 8 bytes per slot, at most about 9.3 bytes per tag of capacity
// when the set is full (slots ≥ 8/7 of the entries, plus the margin), and
// between 9.1 and 18.3 bytes per tag held before; while a shard doubles it
// also holds its previous table, 1/64 of the set at most.
type tagSet struct {
	prf    cipher.Block // AES-128 under a random key, used as a PRF
	limit  int64        // most tags, all shards
	held   atomic.Int64 // tags held, all shards
	shards []tagShard
}

const (
	bucketSlots  = 8  // slots per bucket: one cache line of uint64
	maxShards    = 64 // shards of a large set
	shardMinSize = 64 // slots of a new shard table
)

type tagShard struct {
	mu       sync.Mutex
	slots    []uint64 // len a multiple of bucketSlots; 0 is empty
	n        int      // fingerprints held
	limit    int      // most fingerprints held
	maxSlots int      // largest table
	closed   bool
	_        [64]byte // keeps neighbouring shards' locks off one cache line
}

var errSetClosed = errors.New("mixnet: replay cache is closed")

// newTagSet returns an empty set that holds at most capacity tags (≥ 1).
func newTagSet(capacity int) *tagSet {
	s := &tagSet{limit: int64(capacity)}
	var key [16]byte
	rand.Read(key[:])                // never fails (crypto/rand)
	s.prf, _ = aes.NewCipher(key[:]) // a 16-byte key is always valid
	clear(key[:])
	nshards, per, maxSlots := tagSetGeometry(capacity)
	s.shards = make([]tagShard, nshards)
	for i := range s.shards {
		sh := &s.shards[i]
		sh.limit, sh.maxSlots = per, maxSlots
		sh.slots = make([]uint64, min(shardMinSize, maxSlots))
	}
	return s
}

// tagSetGeometry returns the shards of a set of the given capacity, the
// most tags each holds and the slots of each at its largest.
func tagSetGeometry(capacity int) (nshards, per, maxSlots int) {
	nshards, per = 1, capacity
	if capacity >= 1<<16 {
		nshards = maxShards
		mean := float64(capacity) / float64(nshards)
		per = int(math.Ceil(mean + 16*math.Sqrt(mean) + 64))
	}
	return nshards, per, roundUp(per+per/7+bucketSlots, bucketSlots)
}

func roundUp(n, m int) int { return (n + m - 1) / m * m }

// fpBufs hold a tag and its encryption: buffers passed to the
// cipher.Block interface would otherwise escape to the heap, one
// allocation per packet.
var fpBufs = sync.Pool{New: func() any { return new([2 * aes.BlockSize]byte) }}

// fingerprint returns the keyed fingerprint of tag, never 0.
func (s *tagSet) fingerprint(tag *ReplayTag) uint64 {
	b := fpBufs.Get().(*[2 * aes.BlockSize]byte)
	copy(b[:aes.BlockSize], tag[:])
	s.prf.Encrypt(b[aes.BlockSize:], b[:aes.BlockSize])
	f := binary.LittleEndian.Uint64(b[aes.BlockSize:])
	clear(b[:])
	fpBufs.Put(b)
	if f == 0 {
		f = 1
	}
	return f
}

// add records tag: ErrReplay if its fingerprint is held, ErrReplayCacheFull
// if the set (or, improbably, the tag's shard) is full.
func (s *tagSet) add(tag *ReplayTag) error {
	f := s.fingerprint(tag)
	sh := &s.shards[f&uint64(len(s.shards)-1)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.closed {
		return errSetClosed
	}
	i, found := probe(sh.slots, f)
	if found {
		return ErrReplay
	}
	if sh.n >= sh.limit || !s.reserve() {
		return ErrReplayCacheFull
	}
	if (sh.n+1)*8 > len(sh.slots)*7 && len(sh.slots) < sh.maxSlots {
		sh.grow()
		i, _ = probe(sh.slots, f)
	}
	sh.slots[i] = f
	sh.n++
	return nil
}

// reserve counts one more tag if the set is under its limit.
func (s *tagSet) reserve() bool {
	for {
		v := s.held.Load()
		if v >= s.limit {
			return false
		}
		if s.held.CompareAndSwap(v, v+1) {
			return true
		}
	}
}

// probe returns the index of f in slots, or of the empty slot where f
// belongs. slots must have an empty slot.
func probe(slots []uint64, f uint64) (int, bool) {
	nb := uint64(len(slots) / bucketSlots)
	b, _ := bits.Mul64(f, nb) // the high bits of f: the low ones chose the shard
	for {
		bucket := slots[b*bucketSlots : (b+1)*bucketSlots : (b+1)*bucketSlots]
		for j, v := range bucket {
			if v == f {
				return int(b)*bucketSlots + j, true
			}
			if v == 0 {
				return int(b)*bucketSlots + j, false
			}
		}
		if b++; b == nb {
			b = 0
		}
	}
}

// grow doubles the shard's table (up to maxSlots) and re-inserts every
// fingerprint.
func (sh *tagShard) grow() {
	old := sh.slots
	sh.slots = make([]uint64, min(2*len(old), sh.maxSlots))
	for _, f := range old {
		if f != 0 {
			i, _ := probe(sh.slots, f)
			sh.slots[i] = f
		}
	}
}

// len returns the tags held.
func (s *tagSet) len() int { return int(s.held.Load()) }

// close frees the tables; add then fails.
func (s *tagSet) close() {
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		sh.closed, sh.slots = true, nil
		sh.mu.Unlock()
	}
}

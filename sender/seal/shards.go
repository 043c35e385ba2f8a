package seal

import (
	"crypto/mlkem"
	"fmt"
	"sync"

	"github.com/klauspost/reedsolomon"
	"golang.org/x/crypto/cryptobyte"
)

// Erasure-coded shards of the PQ epoch ratchet (docs/ratchet-plan.md §2).
// An ML-KEM-768 encapsulation key (1,184 bytes) or ciphertext (1,088) is
// split into shardData data shards and Reed–Solomon coded to shardTotal
// shards. The code is systematic: shards 0–7 are the value itself, in
// order. Any shardData distinct shards decode it.
//
// A shard section (inside the AEAD plaintext of a message, so
// authenticated and hidden) is
//
//	count (1) ‖ count × (kind (1) ‖ epoch (4) ‖ index (1) ‖ data)
//
// with kind shardKindEK (data 148 bytes) or shardKindCT (136), epoch the
// epoch the step creates (E+1 for the step E → E+1), index < shardTotal.
//
// Reed–Solomon detects nothing: a decoder holding exactly shardData
// shards reconstructs whatever they say. That is enough here because the
// shards are authenticated by the message they ride in; a wrong shard can
// only come from the peer itself, and then the two sides derive different
// epoch keys and the next message under the new epoch fails to
// authenticate (pqratchet.go, receive).
const (
	shardData   = 8
	shardParity = 24
	shardTotal  = shardData + shardParity

	shardKindEK = 1
	shardKindCT = 2

	shardEKSize = mlkem.EncapsulationKeySize768 / shardData // 148
	shardCTSize = mlkem.CiphertextSize768 / shardData       // 136

	// shardHeaderSize: kind, epoch, index.
	shardHeaderSize = 1 + 4 + 1
)

// The sizes divide exactly; a change of parameter set would break this.
var _ = [1]struct{}{}[mlkem.EncapsulationKeySize768%shardData+mlkem.CiphertextSize768%shardData]

// shardSize is the data size of one shard of kind, 0 for an unknown kind.
func shardSize(kind byte) int {
	switch kind {
	case shardKindEK:
		return shardEKSize
	case shardKindCT:
		return shardCTSize
	}
	return 0
}

// shardWireSize is the encoded size of one shard of kind in a section.
func shardWireSize(kind byte) int { return shardHeaderSize + shardSize(kind) }

// shardCoder is the (8, 24) Reed–Solomon code; safe for concurrent use.
var shardCoder = sync.OnceValues(func() (reedsolomon.Encoder, error) {
	return reedsolomon.New(shardData, shardParity)
})

// shardEncode splits whole (an encapsulation key or a ciphertext, by kind)
// into shardTotal shards, the first shardData being whole itself. The
// shards share one new buffer, not whole.
func shardEncode(kind byte, whole []byte) ([][]byte, error) {
	size := shardSize(kind)
	if size == 0 || len(whole) != size*shardData {
		return nil, fmt.Errorf("%w: %d bytes to shard as kind %d", ErrMalformed, len(whole), kind)
	}
	rs, err := shardCoder()
	if err != nil {
		return nil, err
	}
	buf := make([]byte, size*shardTotal)
	copy(buf, whole)
	shards := make([][]byte, shardTotal)
	for i := range shards {
		shards[i] = buf[i*size : (i+1)*size : (i+1)*size]
	}
	if err := rs.Encode(shards); err != nil {
		return nil, err
	}
	return shards, nil
}

// shardDecoder collects the shards of one value (kind, epoch) until it
// can decode it. It holds at most shardData-1 shards between calls (at
// shardData it decodes), duplicates are ignored, and it is a value: a
// copy is independent of the original as long as add is the only method
// that changes it (it never writes into a held slice), which receive
// relies on to work on a copy.
type shardDecoder struct {
	kind  byte
	epoch uint32
	n     int               // shards held, < shardData between calls
	index [shardData]byte   // indices held, strictly increasing in [:n]
	data  [shardData][]byte // their data, each shardSize(kind) bytes
}

// has reports whether the decoder holds shard i.
func (d *shardDecoder) has(i byte) bool {
	for _, j := range d.index[:d.n] {
		if j == i {
			return true
		}
	}
	return false
}

// add takes one shard (copying data) unless it is for another value, a
// duplicate, or the decoder is full. It reports whether the decoder now
// holds shardData shards (then decode).
func (d *shardDecoder) add(s shard) bool {
	if s.kind != d.kind || s.epoch != d.epoch || d.n == shardData || d.has(s.index) || len(s.data) != shardSize(d.kind) {
		return d.n == shardData
	}
	// Keep indices sorted: the encoding is canonical.
	at := d.n
	for at > 0 && d.index[at-1] > s.index {
		d.index[at], d.data[at] = d.index[at-1], d.data[at-1]
		at--
	}
	d.index[at], d.data[at] = s.index, append([]byte(nil), s.data...)
	d.n++
	return d.n == shardData
}

// decode reconstructs the value from the shardData shards held.
func (d *shardDecoder) decode() ([]byte, error) {
	size := shardSize(d.kind)
	if d.n != shardData || size == 0 {
		return nil, fmt.Errorf("%w: %d of %d shards", ErrMalformed, d.n, shardData)
	}
	rs, err := shardCoder()
	if err != nil {
		return nil, err
	}
	shards := make([][]byte, shardTotal)
	for k, i := range d.index {
		if len(d.data[k]) != size {
			return nil, fmt.Errorf("%w: shard of %d bytes", ErrMalformed, len(d.data[k]))
		}
		shards[i] = append(make([]byte, 0, size), d.data[k]...)
	}
	if err := rs.ReconstructData(shards); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	out := make([]byte, 0, size*shardData)
	for _, s := range shards[:shardData] {
		out = append(out, s...)
	}
	return out, nil
}

// wipe forgets the shards held (they are public values, but this keeps
// a finished step from holding memory).
func (d *shardDecoder) wipe() {
	*d = shardDecoder{kind: d.kind, epoch: d.epoch}
}

// shard is one decoded shard of a section; data aliases the section.
type shard struct {
	kind  byte
	epoch uint32
	index byte
	data  []byte
}

// readShardSection reads a shard section (see above) from s, strictly:
// a known kind, an index below shardTotal, data of the kind's size. It
// appends the shards to dst (their data aliasing s) and reports whether
// the section was well formed; on false dst's new entries are garbage.
func readShardSection(s *cryptobyte.String, dst []shard) ([]shard, bool) {
	var count uint8
	if !s.ReadUint8(&count) {
		return dst, false
	}
	for range count {
		var sh shard
		var data []byte
		if !s.ReadUint8(&sh.kind) || !s.ReadUint32(&sh.epoch) || !s.ReadUint8(&sh.index) {
			return dst, false
		}
		size := shardSize(sh.kind)
		if size == 0 || sh.index >= shardTotal || !s.ReadBytes(&data, size) {
			return dst, false
		}
		sh.data = data
		dst = append(dst, sh)
	}
	return dst, true
}

// parseShardSection decodes a whole shard section; trailing bytes are
// refused (ErrMalformed).
func parseShardSection(b []byte) ([]shard, error) {
	s := cryptobyte.String(b)
	shards, ok := readShardSection(&s, make([]shard, 0, 8))
	if err := readWhole(ok, s, "shard section"); err != nil {
		return nil, err
	}
	return shards, nil
}

// appendShard appends the encoding of one shard (without the count).
func appendShard(dst []byte, kind byte, epoch uint32, index byte, data []byte) []byte {
	dst = append(dst, kind, byte(epoch>>24), byte(epoch>>16), byte(epoch>>8), byte(epoch), index)
	return append(dst, data...)
}

package seal

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"
)

// TestShardsAnyEightDecode: any 8 distinct of the 32 shards, in any order
// and with duplicates, decode to the value; 7 do not.
func TestShardsAnyEightDecode(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, kind := range []byte{shardKindEK, shardKindCT} {
		whole := make([]byte, shardSize(kind)*shardData)
		for i := range whole {
			whole[i] = byte(rng.Uint32())
		}
		shards, err := shardEncode(kind, whole)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(bytes.Join(shards[:shardData], nil), whole) {
			t.Fatal("code is not systematic")
		}
		for trial := range 200 {
			d := shardDecoder{kind: kind, epoch: 7}
			perm := rng.Perm(shardTotal)
			full := false
			for k, i := range perm[:shardData] {
				s := shard{kind: kind, epoch: 7, index: byte(i), data: shards[i]}
				full = d.add(s)
				if d.add(s) != full || d.n != k+1 { // a duplicate changes nothing
					t.Fatalf("trial %d: duplicate taken", trial)
				}
				if full != (k == shardData-1) {
					t.Fatalf("trial %d: full after %d shards", trial, k+1)
				}
			}
			got, err := d.decode()
			if err != nil || !bytes.Equal(got, whole) {
				t.Fatalf("trial %d: decode from %v: %v", trial, perm[:shardData], err)
			}
			if d.add(shard{kind: kind, epoch: 7, index: byte(perm[shardData]), data: shards[perm[shardData]]}) != true || d.n != shardData {
				t.Fatal("a full decoder took a ninth shard")
			}
		}
		short := shardDecoder{kind: kind}
		if _, err := short.decode(); !errors.Is(err, ErrMalformed) {
			t.Fatalf("decode of 0 shards: %v", err)
		}
	}
}

// TestShardsWrongSizesRefused: values and shards of the wrong size, and
// shards of another kind or epoch, are refused or ignored.
func TestShardsWrongSizesRefused(t *testing.T) {
	for _, n := range []int{0, 1183, 1185, 1088} {
		if _, err := shardEncode(shardKindEK, make([]byte, n)); !errors.Is(err, ErrMalformed) {
			t.Errorf("ek of %d bytes: %v", n, err)
		}
	}
	if _, err := shardEncode(3, make([]byte, 1088)); !errors.Is(err, ErrMalformed) {
		t.Error("kind 3 accepted")
	}
	d := shardDecoder{kind: shardKindCT, epoch: 1}
	for _, s := range []shard{
		{kind: shardKindCT, epoch: 1, index: 0, data: make([]byte, 135)},
		{kind: shardKindEK, epoch: 1, index: 0, data: make([]byte, 148)},
		{kind: shardKindCT, epoch: 2, index: 0, data: make([]byte, 136)},
	} {
		if d.add(s); d.n != 0 {
			t.Fatalf("took %+v", s)
		}
	}
}

// TestShardSectionStrict: the section parser refuses unknown kinds,
// indices ≥ 32, short data, a count beyond the content and trailing
// bytes; what it accepts re-encodes to the input.
func TestShardSectionStrict(t *testing.T) {
	good := appendShard([]byte{1}, shardKindCT, 9, 31, make([]byte, shardCTSize))
	if sh, err := parseShardSection(good); err != nil || len(sh) != 1 || sh[0].index != 31 || sh[0].epoch != 9 {
		t.Fatalf("%v %+v", err, sh)
	}
	bad := [][]byte{
		nil,
		append(append([]byte(nil), good...), 0),
		good[:len(good)-1],
		append([]byte{2}, good[1:]...),
		appendShard([]byte{1}, 3, 9, 0, make([]byte, shardCTSize)),
		appendShard([]byte{1}, shardKindCT, 9, 32, make([]byte, shardCTSize)),
		appendShard([]byte{1}, shardKindEK, 9, 0, make([]byte, shardCTSize)),
	}
	for i, b := range bad {
		if _, err := parseShardSection(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("case %d accepted: %v", i, err)
		}
	}
}

package seal

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/sealnet/sealnet/internal/testkit/fuzzcheck"
)

// The seeds of FuzzParsePQ and FuzzParseShards are not written by
// internal/cmd/testdatagen: the PQ state is unexported, and its ML-KEM
// keys come from the system's generator (crypto/mlkem takes no reader),
// so they could not be reproduced byte for byte anyway. They were
// written once by TestPQWriteSeeds (SEALNET_PQ_WRITE_SEEDS=1); until the
// session carries the state, this is the one place they come from.

// FuzzParsePQ: a sentinel error, or a state that re-encodes to exactly
// the input and whose openEpoch and appendShards work.
func FuzzParsePQ(f *testing.F) {
	fuzzcheck.RequireCorpus(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := pqParseWhole(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error without its sentinel: %v", err)
			}
			return
		}
		if again := pqState(p); !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs:\n got %x\nwant %x", again, b)
		}
		if _, err := p.openEpoch(p.epoch); err != nil {
			t.Fatal(err)
		}
		sec := p.appendShards(nil, pqRoom(2))
		if _, err := parseShardSection(sec); err != nil {
			t.Fatalf("own section: %v", err)
		}
	})
}

// FuzzParseShards: a sentinel error, or shards that re-encode to exactly
// the input; and receive of it by a fresh peer either errs leaving the
// state unchanged or succeeds.
func FuzzParseShards(f *testing.F) {
	fuzzcheck.RequireCorpus(f)
	_, b0 := pqPair(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		sh, err := parseShardSection(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error without its sentinel: %v", err)
			}
		} else {
			again := []byte{byte(len(sh))}
			for _, s := range sh {
				again = appendShard(again, s.kind, s.epoch, s.index, s.data)
			}
			if !bytes.Equal(again, b) {
				t.Fatalf("re-encoding differs")
			}
		}
		p := *b0
		before := pqState(&p)
		if err := p.receive(0, bytes.Clone(b)); err != nil && !bytes.Equal(before, pqState(&p)) {
			t.Fatal("state changed on error")
		}
	})
}

// TestPQWriteSeeds writes the seed corpora of FuzzParsePQ and
// FuzzParseShards (see above); skipped unless SEALNET_PQ_WRITE_SEEDS=1.
func TestPQWriteSeeds(t *testing.T) {
	if os.Getenv("SEALNET_PQ_WRITE_SEEDS") != "1" {
		t.Skip("set SEALNET_PQ_WRITE_SEEDS=1 to rewrite the PQ seed corpora")
	}
	write := func(target string, seeds [][]byte) {
		dir := filepath.Join("testdata", "fuzz", target)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for i, s := range seeds {
			b, err := fuzzcheck.Encode(s)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%d", i)), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	a, b := pqPair(t)
	states := [][]byte{pqState(a), pqState(b)}
	sections := [][]byte{{0}}
	seen := map[pqPhase]int{}
	for i := 0; i < 200 && b.epoch < 5; i++ {
		from, to := a, b
		if i%2 == 1 {
			from, to = b, a
		}
		m := pqSend(from, pqRoom(1+i%3))
		if len(sections) < 5 && len(m.shards) > 1 {
			sections = append(sections, m.shards)
		}
		if err := pqDeliver(to, m); err != nil {
			t.Fatal(err)
		}
		for _, p := range []*pqRatchet{a, b} {
			if seen[p.phase] < 2 && p.epoch > 0 {
				seen[p.phase]++
				states = append(states, pqState(p))
			}
		}
	}
	write("FuzzParsePQ", states)
	write("FuzzParseShards", sections)
}

package authority

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/sealnet/sealnet/internal/testkit/fuzzcheck"
	"github.com/sealnet/sealnet/mixnet/directory"
)

// The seed corpus under testdata/fuzz is written by writeSeeds;
// TestFuzzSeedsCurrent fails if it is stale. Regenerate with
// SEALNET_WRITE_SEEDS=1 go test ./mixnet/directory/authority -run TestFuzzSeedsCurrent
// (or make testdata, which runs the one generator, internal/cmd/testdatagen).

// listSeeds are the seeds of FuzzParseDescriptorList, each with whether
// parseDescriptorList accepts it.
func listSeeds() (map[string][]byte, map[string]bool, error) {
	var descs [][]byte
	for _, n := range testNodes() {
		b, err := n.signedDescriptor(1000)
		if err != nil {
			return nil, nil, err
		}
		descs = append(descs, b)
	}
	two := appendDescriptorList(nil, descs)
	length := func(n uint32) []byte { return binary.BigEndian.AppendUint32(nil, n) }
	tooMany := appendDescriptorList(nil, bytes.Split(bytes.Repeat([]byte("x,"), directory.MaxNodes+1)[:2*directory.MaxNodes+1], []byte(",")))
	seeds := map[string][]byte{
		"two-descriptors":   two,
		"empty":             {},
		"one-byte-entry":    append(length(1), 'x'),
		"max-size-entry":    append(length(directory.MaxDescriptorSize), bytes.Repeat([]byte("x"), directory.MaxDescriptorSize)...),
		"trailing-byte":     append(bytes.Clone(two), 0),
		"cut-short":         two[:len(two)-1],
		"short-length":      {0, 0, 1},
		"zero-length":       length(0),
		"over-max-length":   append(length(directory.MaxDescriptorSize+1), bytes.Repeat([]byte("x"), directory.MaxDescriptorSize+1)...),
		"length-4gib":       append(length(0xffffffff), 'x'),
		"max-entries-plus1": tooMany,
	}
	ok := map[string]bool{"two-descriptors": true, "empty": true, "one-byte-entry": true, "max-size-entry": true}
	return seeds, ok, nil
}

func writeSeeds(root string) error {
	seeds, _, err := listSeeds()
	if err != nil {
		return err
	}
	for name, b := range seeds {
		if err := fuzzcheck.WriteSeed(root, "FuzzParseDescriptorList", name, b); err != nil {
			return err
		}
	}
	return nil
}

func TestFuzzSeedsCurrent(t *testing.T) {
	fuzzcheck.CheckSeeds(t, "mixnet/directory/authority", writeSeeds)
}

// TestFuzzCorpusReachesDeep: every committed seed meets the fate its
// name promises, so the fuzzer starts from valid lists (of real signed
// descriptors) and from lists refused at each check.
func TestFuzzCorpusReachesDeep(t *testing.T) {
	seeds, ok, err := listSeeds()
	if err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(filepath.Join("testdata", "fuzz", "FuzzParseDescriptorList"))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != len(seeds) {
		t.Errorf("%d seeds committed, %d generated", len(entries), len(seeds))
	}
	for _, e := range entries {
		b, err := fuzzcheck.ReadBytesSeed("FuzzParseDescriptorList", e.Name())
		if err != nil {
			t.Fatal(err)
		}
		list, err := parseDescriptorList(b)
		if (err == nil) != ok[e.Name()] || err != nil && !errors.Is(err, errDescriptorList) {
			t.Errorf("%s: %v; want accepted %v", e.Name(), err, ok[e.Name()])
		}
		if e.Name() == "two-descriptors" {
			for _, d := range list {
				if _, err := directory.ParseDescriptor(d); err != nil {
					t.Errorf("%s: an entry is not a valid descriptor: %v", e.Name(), err)
				}
			}
		}
	}
}

// FuzzParseDescriptorList: whatever a peer sends, parseDescriptorList
// returns errDescriptorList, or at most MaxNodes entries of 1 to
// MaxDescriptorSize bytes that encode back to exactly the input.
func FuzzParseDescriptorList(f *testing.F) {
	fuzzcheck.RequireCorpus(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		list, err := parseDescriptorList(b)
		if err != nil {
			if !errors.Is(err, errDescriptorList) {
				t.Fatalf("error wraps no sentinel: %v", err)
			}
			return
		}
		if len(list) > directory.MaxNodes {
			t.Fatalf("%d entries", len(list))
		}
		for _, d := range list {
			if len(d) == 0 || len(d) > directory.MaxDescriptorSize {
				t.Fatalf("an entry of %d bytes", len(d))
			}
		}
		if again := appendDescriptorList(nil, list); !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs from the input")
		}
	})
}

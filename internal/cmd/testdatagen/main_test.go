package main

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/sealnet/sealnet/internal/testkit/fuzzcheck"
)

// TestCommittedTestdataIsCurrent regenerates the vectors and corpora and
// requires the committed files to match byte for byte.
func TestCommittedTestdataIsCurrent(t *testing.T) {
	fuzzcheck.CheckGenerated(t, filepath.Join("..", "..", ".."), run, "`make testdata`",
		"mixnet/testdata/fuzz", "internal/crypto/lioness/testdata/fuzz", "mixnet/link/testdata/fuzz",
		"mixnet/directory/testdata/fuzz", "mailbox/store/badger/testdata/fuzz")
}

// TestFindsSeedWritingPackages: the generator finds the packages that
// write their own seeds (so make testdata regenerates them too), and
// refuses a CheckSeeds call that names the wrong package, which would
// make its regeneration hint point elsewhere.
func TestFindsSeedWritingPackages(t *testing.T) {
	pkgs, err := seedWritingPackages(filepath.Join("..", "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"sender", "mixnet/directory/authority", "internal/testbed/capture"} {
		if !slices.Contains(pkgs, want) {
			t.Errorf("%s not found among %v", want, pkgs)
		}
	}
	tmp := t.TempDir()
	if err := os.MkdirAll(filepath.Join(tmp, "a", "b"), 0o755); err != nil {
		t.Fatal(err)
	}
	src := "package b\nfunc TestFuzzSeedsCurrent(t *testing.T) { fuzzcheck.CheckSeeds(t, \"a/c\", w) }\n"
	if err := os.WriteFile(filepath.Join(tmp, "a", "b", "x_test.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := seedWritingPackages(tmp); err == nil {
		t.Fatal("a CheckSeeds call naming another package was accepted")
	}
}

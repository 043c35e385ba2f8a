package main

import (
	"path/filepath"
	"testing"

	"github.com/sealnet/sealnet/internal/testkit/fuzzcheck"
)

// TestCommittedTestdataIsCurrent regenerates the vectors and corpora and
// requires the committed files to match byte for byte.
func TestCommittedTestdataIsCurrent(t *testing.T) {
	fuzzcheck.CheckGenerated(t, filepath.Join("..", "..", ".."), run, "`make testdata`",
		"mixnet/testdata/fuzz", "internal/crypto/lioness/testdata/fuzz", "mixnet/link/testdata/fuzz",
		"mixnet/directory/testdata/fuzz")
}

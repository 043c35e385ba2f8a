package main

import (
	"path/filepath"
	"testing"

	"github.com/sealnet/sealnet/internal/testkit/fuzzcheck"
)

// TestCommittedCorporaAreCurrent regenerates the corpora and requires the
// committed ones to match byte for byte, with nothing left over.
func TestCommittedCorporaAreCurrent(t *testing.T) {
	fuzzcheck.CheckGenerated(t, filepath.Join("..", ".."), run, "`go generate ./mixnet/directory`", "testdata/fuzz")
}

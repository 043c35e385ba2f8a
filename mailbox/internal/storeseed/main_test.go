package main

import (
	"path/filepath"
	"testing"

	"github.com/sealnet/sealnet/internal/testkit/fuzzcheck"
)

// TestCommittedCorporaAreCurrent regenerates the corpora and requires the
// committed ones to match byte for byte, with nothing left over.
func TestCommittedCorporaAreCurrent(t *testing.T) {
	var owned []string
	for _, target := range targets {
		owned = append(owned, filepath.Join("testdata", "fuzz", target))
	}
	fuzzcheck.CheckGenerated(t, filepath.Join("..", ".."), run, "`go generate ./mailbox`", owned...)
}

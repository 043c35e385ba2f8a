package main

import (
	"path/filepath"
	"testing"

	"github.com/sealnet/sealnet/internal/testkit/fuzzcheck"
)

func TestCommittedCorporaAreCurrent(t *testing.T) {
	fuzzcheck.CheckGenerated(t, filepath.Join("..", "..", "proto"), func(root string) error { return run(root) },
		"`go generate ./mailbox`",
		"testdata/fuzz/FuzzUnmarshal", "testdata/fuzz/FuzzParseMixRequest", "testdata/fuzz/FuzzParseReply")
}

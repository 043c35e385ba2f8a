package main

import (
	"path/filepath"
	"testing"

	"github.com/sealnet/sealnet/internal/testkit/fuzzcheck"
)

// TestSealCorporaAreCurrent: the committed corpora of sender/seal are
// what writeSealSeeds makes, byte for byte, with nothing left over (the
// generator owns the package's whole testdata/fuzz).
func TestSealCorporaAreCurrent(t *testing.T) {
	fuzzcheck.CheckGenerated(t, filepath.Join("..", "..", ".."), writeSealSeeds, "`make testdata`",
		"sender/seal/testdata/fuzz")
}

// TestProtoCorporaAreCurrent: the same for mailbox/proto's corpora.
func TestProtoCorporaAreCurrent(t *testing.T) {
	fuzzcheck.CheckGenerated(t, filepath.Join("..", "..", ".."), writeProtoSeeds, "`make testdata`",
		"mailbox/proto/testdata/fuzz/FuzzUnmarshal", "mailbox/proto/testdata/fuzz/FuzzParseMixRequest",
		"mailbox/proto/testdata/fuzz/FuzzParseReply")
}

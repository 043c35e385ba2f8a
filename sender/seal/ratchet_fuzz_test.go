package seal

import (
	"bytes"
	"errors"
	"testing"

	"golang.org/x/crypto/cryptobyte"

	"github.com/sealnet/sealnet/internal/testkit/fuzzcheck"
)

// FuzzParseRatchet: ErrMalformed, or a state that re-encodes to exactly
// the input and keeps its invariants.
func FuzzParseRatchet(f *testing.F) {
	fuzzcheck.RequireCorpus(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := parseRatchet(cryptobyte.String(b))
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error without its sentinel: %v", err)
			}
			return
		}
		if again := r.appendRatchet(nil); !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs:\n got %x\nwant %x", again, b)
		}
		if len(r.skipped) > drMaxSkipped || r.skippedChains(0) > drMaxSkippedChains || len(r.chains) > drMaxChains ||
			r.hasSend && !r.hasDHs || !r.hasDHs && len(r.chains) == 0 {
			t.Fatal("invariants broken")
		}
	})
}

// FuzzParseDRHeader: ErrMalformed, or exactly drHeaderSize bytes that
// re-encode to the input.
func FuzzParseDRHeader(f *testing.F) {
	fuzzcheck.RequireCorpus(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := parseDRHeader(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error without its sentinel: %v", err)
			}
			return
		}
		if len(b) != drHeaderSize || !bytes.Equal(h.append(nil), b) {
			t.Fatalf("%x re-encodes to %x", b, h.append(nil))
		}
	})
}

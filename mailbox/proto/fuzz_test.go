package proto

import (
	"bytes"
	"errors"
	"testing"

	"github.com/sealnet/sealnet/internal/testkit/fuzzcheck"
)

// Every decoder of bytes from the network has a fuzz target that asserts a
// round trip: anything accepted re-encodes to exactly the input.

func FuzzUnmarshal(f *testing.F) {
	fuzzcheck.RequireCorpus(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Unmarshal(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error without ErrMalformed: %v", err)
			}
			return
		}
		if !bytes.Equal(Marshal(m), b) {
			t.Fatalf("%T re-encodes differently", m)
		}
	})
}

func FuzzParseMixRequest(f *testing.F) {
	fuzzcheck.RequireCorpus(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseMixRequest(geo, b)
		if err != nil {
			return
		}
		again, err := MarshalMixRequest(geo, r)
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("mix request re-encodes differently: %v", err)
		}
	})
}

func FuzzParseReply(f *testing.F) {
	fuzzcheck.RequireCorpus(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseReply(b)
		if err != nil {
			return
		}
		again := make([]byte, len(b))
		copy(again, Marshal(m))
		if !bytes.Equal(again, b) {
			t.Fatalf("reply re-encodes differently")
		}
	})
}

package mailbox

import (
	"bytes"
	"errors"
	"testing"

	"github.com/sealnet/sealnet/internal/fuzzcheck"
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

func FuzzParseCertificate(f *testing.F) {
	fuzzcheck.RequireCorpus(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseCertificate(b)
		if err != nil {
			return
		}
		if !bytes.Equal(c.marshalWith(b[len(b)-64:]), b) {
			t.Fatalf("certificate re-encodes differently")
		}
	})
}

func FuzzParseBundle(f *testing.F) {
	fuzzcheck.RequireCorpus(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		pb, err := ParseBundle(b)
		if err != nil {
			return
		}
		if !bytes.Equal(pb.Marshal(), b) {
			t.Fatalf("bundle re-encodes differently")
		}
		pb.Verify() // must not panic whatever the keys
	})
}

func FuzzParsePrekeys(f *testing.F) {
	fuzzcheck.RequireCorpus(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		if p, err := ParseSignedPrekey(b); err == nil && !bytes.Equal(p.Marshal(), b) {
			t.Fatal("signed prekey re-encodes differently")
		}
		if p, err := ParseOneTimePrekey(b); err == nil && !bytes.Equal(p.Marshal(), b) {
			t.Fatal("one-time prekey re-encodes differently")
		}
		if p, err := ParsePQPrekey(b); err == nil {
			if !bytes.Equal(p.Marshal(), b) {
				t.Fatal("PQ prekey re-encodes differently")
			}
			p.Verify(make([]byte, 32))
		}
	})
}

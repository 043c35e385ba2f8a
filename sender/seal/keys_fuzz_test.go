package seal

import (
	"bytes"
	"testing"

	"github.com/sealnet/sealnet/internal/testkit/fuzzcheck"
)

// The certificate, bundle and prekey decoders read bytes a provider sends
// (and a provider reads uploads with them): anything accepted re-encodes
// to exactly the input.

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

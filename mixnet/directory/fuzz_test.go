package directory

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/sealnet/sealnet/internal/testkit/fuzzcheck"
)

// The seed corpora under testdata/fuzz are written by the module's one
// generator, internal/cmd/testdatagen (make testdata); its test fails if
// they are stale.

// FuzzParseDescriptor: whatever the input, ParseDescriptor returns a
// sentinel error or a valid descriptor whose canonical encoding, with the
// input's signature, is exactly the input.
func FuzzParseDescriptor(f *testing.F) {
	fuzzcheck.RequireCorpus(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := ParseDescriptor(b)
		if err != nil {
			requireSentinel(t, err)
			return
		}
		if err := d.Validate(); err != nil {
			t.Fatalf("parsed an invalid descriptor: %v", err)
		}
		body, err := encodeDescriptor(d)
		if err != nil {
			t.Fatal(err)
		}
		sig := b[len(b)-ed25519.SignatureSize:]
		if again := appendDescriptorEnvelope(body, sig); !bytes.Equal(again, b) {
			t.Fatalf("re-marshal differs from the input:\n got %q\nwant %q", again, b)
		}
		if !ed25519.Verify(d.IdentityKey, withContext(descriptorContext, body), sig) {
			t.Fatal("accepted a descriptor whose signature does not verify")
		}
	})
}

// FuzzParseSignedDocument: whatever the input, ParseSignedDocument returns
// a sentinel error or a valid document that re-marshals to exactly the
// input, and Verify agrees with it about the structure.
func FuzzParseSignedDocument(f *testing.F) {
	fuzzcheck.RequireCorpus(f)
	auths := authorityKeys(3) // the keys the seed documents are signed with
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseSignedDocument(b)
		if err != nil {
			requireSentinel(t, err)
			if v, err := Verify(b, auths, 1); err == nil {
				t.Fatalf("Verify accepted what ParseSignedDocument refused: %v", v.Doc.Epoch)
			}
			return
		}
		if err := s.Doc.Validate(); err != nil {
			t.Fatalf("parsed an invalid document: %v", err)
		}
		again, err := s.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("re-marshal differs from the input")
		}
		raw, err := s.Doc.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(raw, s.Raw) {
			t.Fatalf("document re-marshal differs from Raw")
		}
		if _, err := Verify(b, auths, 1); err != nil {
			requireSentinel(t, err)
		}
	})
}

// TestFuzzCorpusReachesDeep: every seed meets the fate its name promises,
// so the corpora hold valid, correctly signed inputs (the fuzzers start
// past the envelope and signature checks) and inputs that fail at each
// stage of decoding. A seed not listed here fails the test.
func TestFuzzCorpusReachesDeep(t *testing.T) {
	type want struct{ parse, verify error } // nil: accepted
	expect := map[string]map[string]want{
		"FuzzParseDescriptor": {
			"mix":                    {},
			"provider-ipv6":          {},
			"empty":                  {parse: ErrMalformed},
			"truncated":              {parse: ErrMalformed},
			"trailing-byte":          {parse: ErrMalformed},
			"version-2":              {parse: ErrMalformed},
			"length-4gib":            {parse: ErrMalformed},
			"non-canonical-space":    {parse: ErrMalformed},
			"bad-signature":          {parse: ErrSignature},
			"signed-invalid-layer-0": {parse: ErrInvalid},
		},
		"FuzzParseSignedDocument": {
			"signed-2-of-3":               {},
			"one-layer":                   {},
			"unsigned":                    {verify: ErrThreshold},
			"unknown-signer":              {verify: ErrThreshold},
			"empty":                       {ErrMalformed, ErrMalformed},
			"truncated":                   {ErrMalformed, ErrMalformed},
			"trailing-byte":               {ErrMalformed, ErrMalformed},
			"version-2":                   {ErrMalformed, ErrMalformed},
			"count-33":                    {ErrMalformed, ErrMalformed},
			"non-canonical-space":         {ErrMalformed, ErrMalformed},
			"raw-flipped":                 {ErrInvalid, ErrThreshold},
			"signed-invalid-no-providers": {ErrInvalid, ErrInvalid},
			"with-parameters":             {},
			"parameters-tampered":         {verify: ErrThreshold},
			"parameters-null":             {ErrMalformed, ErrMalformed},
			"signed-invalid-ack-timeout":  {ErrInvalid, ErrInvalid},
		},
	}
	for target, seeds := range expect {
		entries, err := os.ReadDir(filepath.Join("testdata", "fuzz", target))
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != len(seeds) {
			t.Errorf("%s: %d seeds, %d expected", target, len(entries), len(seeds))
		}
		for _, e := range entries {
			w, ok := seeds[e.Name()]
			if !ok {
				t.Errorf("%s/%s: seed with no expectation", target, e.Name())
				continue
			}
			b, err := fuzzcheck.ReadBytesSeed(target, e.Name())
			if err != nil {
				t.Fatal(err)
			}
			check := func(what string, err, want error) {
				if want == nil && err != nil || want != nil && !errors.Is(err, want) {
					t.Errorf("%s/%s: %s: got %v, want %v", target, e.Name(), what, err, want)
				}
			}
			if target == "FuzzParseDescriptor" {
				_, err := ParseDescriptor(b)
				check("ParseDescriptor", err, w.parse)
				continue
			}
			_, err = ParseSignedDocument(b)
			check("ParseSignedDocument", err, w.parse)
			_, err = Verify(b, authorityKeys(3), 1)
			check("Verify", err, w.verify)
		}
	}
}

package directory

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestVerifyThreshold(t *testing.T) {
	net := newTestNet(t, 2, 2, 1)
	auths := authorityKeys(3)
	s, _ := signedBy(t, net.doc)
	raw := s.Raw
	sign := func(i int) Signature { return SignDocument(raw, authority(i)) }
	outsider := ed25519.NewKeyFromSeed(seed("outsider"))
	otherRaw := func() []byte {
		// Another document: the same nodes with another epoch length.
		d := cloneDocument(net.doc)
		d.Period *= 2
		b, err := d.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}()
	if bytes.Equal(otherRaw, raw) {
		t.Fatal("the other document is the same")
	}

	cases := []struct {
		name      string
		sigs      []Signature
		auths     []ed25519.PublicKey
		threshold int
		ok        bool
		msg       string
	}{
		{"2 of 3, k=2", []Signature{sign(0), sign(2)}, auths, 2, true, ""},
		{"3 of 3, k=2", []Signature{sign(2), sign(1), sign(0)}, auths, 2, true, ""},
		{"3 of 3, k=3", []Signature{sign(0), sign(1), sign(2)}, auths, 3, true, ""},
		{"1 of 1, k=1", []Signature{sign(0)}, auths[:1], 1, true, ""},
		{"2 valid and an outsider", []Signature{SignDocument(raw, outsider), sign(0), sign(1)}, auths, 2, true, ""},
		{"1 valid + unknown key", []Signature{sign(0), SignDocument(raw, outsider)}, auths, 2, false, "1 of 3 valid, need 2"},
		{"1 valid, same key twice", []Signature{sign(1), sign(1)}, auths, 2, false, "1 of 3 valid, need 2"},
		{"1 valid + 1 over other bytes", []Signature{sign(0), SignDocument(otherRaw, authority(1))}, auths, 2, false, "1 of 3 valid, need 2"},
		{"1 valid + 1 garbage", []Signature{sign(0), {Key: auths[1], Sig: make([]byte, 64)}}, auths, 2, false, "1 of 3 valid, need 2"},
		{"1 valid + 1 by the key of another authority", []Signature{sign(0), {Key: auths[2], Sig: sign(1).Sig}}, auths, 2, false, "1 of 3 valid, need 2"},
		{"none", nil, auths, 1, false, "0 of 3 valid, need 1"},
		{"2 of 3, k=3", []Signature{sign(0), sign(1)}, auths, 3, false, "2 of 3 valid, need 3"},
		{"threshold 0", []Signature{sign(0)}, auths, 0, false, "threshold 0"},
		{"threshold above n", []Signature{sign(0), sign(1), sign(2)}, auths, 4, false, "threshold 4"},
		{"duplicate authority keys do not raise n", []Signature{sign(0)}, []ed25519.PublicKey{auths[0], auths[0]}, 2, false, "threshold 2"},
		{"short authority key", []Signature{sign(0)}, []ed25519.PublicKey{auths[0][:31]}, 1, false, "authority key 0"},
		{"no authorities", []Signature{sign(0)}, nil, 1, false, "threshold 1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := envelope(raw, c.sigs...)
			got, err := Verify(b, c.auths, c.threshold)
			if c.ok {
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(got.Doc, net.doc) || !bytes.Equal(got.Raw, raw) || len(got.Signatures) != len(c.sigs) {
					t.Fatal("Verify returned another document")
				}
				return
			}
			if !errors.Is(err, ErrThreshold) {
				t.Fatalf("got %v, want ErrThreshold", err)
			}
			if !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("error %q does not say %q", err, c.msg)
			}
			if got != nil {
				t.Fatal("a document came back with the error")
			}
		})
	}
}

// TestVerifySignedInvalidDocument: authorities that sign bytes that are
// not a valid document do not make them one.
func TestVerifySignedInvalidDocument(t *testing.T) {
	net := newTestNet(t, 2, 2, 1)
	d := cloneDocument(net.doc)
	d.Layers[1] = d.Layers[1][:0]
	d.Layers[1] = append(d.Layers[1], d.Layers[0][0]) // a layer-1 mix in layer 2
	raw, err := d.encode()
	if err != nil {
		t.Fatal(err)
	}
	b := envelope(raw, SignDocument(raw, authority(0)), SignDocument(raw, authority(1)))
	if _, err := Verify(b, authorityKeys(3), 2); !errors.Is(err, ErrInvalid) {
		t.Fatalf("got %v, want ErrInvalid", err)
	}
	junk := []byte("{}")
	b = envelope(junk, SignDocument(junk, authority(0)))
	if _, err := Verify(b, authorityKeys(1), 1); !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrInvalid) {
		t.Fatalf("got %v, want ErrMalformed or ErrInvalid", err)
	}
}

// TestVerifyChecksSignaturesFirst: a document with too few signatures is
// refused for that reason even when its bytes do not decode, so the
// decoder only ever sees authenticated input.
func TestVerifyChecksSignaturesFirst(t *testing.T) {
	b := envelope([]byte("not a document"))
	if _, err := Verify(b, authorityKeys(1), 1); !errors.Is(err, ErrThreshold) {
		t.Fatalf("got %v, want ErrThreshold", err)
	}
	if _, err := ParseSignedDocument(b); !errors.Is(err, ErrMalformed) {
		t.Fatalf("ParseSignedDocument: got %v, want ErrMalformed", err)
	}
}

// TestSignatureDomainSeparation: a document signature is over the
// document context, so neither a bare Ed25519 signature over Raw nor a
// descriptor-context one counts.
func TestSignatureDomainSeparation(t *testing.T) {
	net := newTestNet(t, 1, 1, 1)
	s, _ := signedBy(t, net.doc)
	priv := authority(0)
	for name, msg := range map[string][]byte{
		"bare":       s.Raw,
		"descriptor": withContext(descriptorContext, s.Raw),
	} {
		sig := Signature{Key: authorityKeys(1)[0], Sig: ed25519.Sign(priv, msg)}
		if _, err := Verify(envelope(s.Raw, sig), authorityKeys(1), 1); !errors.Is(err, ErrThreshold) {
			t.Fatalf("%s signature: got %v, want ErrThreshold", name, err)
		}
		if err := s.AddSignature(sig); !errors.Is(err, ErrSignature) {
			t.Fatalf("%s signature added: %v", name, err)
		}
	}
	good := SignDocument(s.Raw, priv)
	if !ed25519.Verify(good.Key, append([]byte("sealnet document v1\x00"), s.Raw...), good.Sig) {
		t.Fatal("document signatures are not over the documented message")
	}
}

func TestAddSignature(t *testing.T) {
	net := newTestNet(t, 1, 2, 1)
	s, _ := signedBy(t, net.doc)
	if err := s.AddSignature(SignDocument(s.Raw, authority(0))); err != nil {
		t.Fatal(err)
	}
	// A second signature by the same key is ignored.
	if err := s.AddSignature(SignDocument(s.Raw, authority(0))); err != nil || len(s.Signatures) != 1 {
		t.Fatalf("duplicate: %v, %d signatures", err, len(s.Signatures))
	}
	// Invalid ones are refused.
	bad := SignDocument(s.Raw, authority(1))
	bad.Sig[5] ^= 1
	if err := s.AddSignature(bad); !errors.Is(err, ErrSignature) {
		t.Fatalf("bad signature: %v", err)
	}
	if err := s.AddSignature(Signature{Key: bad.Key[:31], Sig: bad.Sig}); !errors.Is(err, ErrSignature) {
		t.Fatalf("short key: %v", err)
	}
	if err := s.AddSignature(Signature{}); !errors.Is(err, ErrSignature) {
		t.Fatalf("empty signature: %v", err)
	}
	if err := s.AddSignature(SignDocument(append(bytes.Clone(s.Raw), ' '), authority(1))); !errors.Is(err, ErrSignature) {
		t.Fatalf("signature over other bytes: %v", err)
	}
	if len(s.Signatures) != 1 {
		t.Fatalf("%d signatures", len(s.Signatures))
	}
	// A valid signature replaces an invalid one by the same key (as parsed
	// from the wire).
	s.Signatures = append(s.Signatures, bad)
	good := SignDocument(s.Raw, authority(1))
	if err := s.AddSignature(good); err != nil || len(s.Signatures) != 2 || !bytes.Equal(s.Signatures[1].Sig, good.Sig) {
		t.Fatalf("replace invalid: %v", err)
	}
	// The caller's slices are not retained.
	good.Sig[0] ^= 1
	if !s.Signatures[1].valid(s.Raw) {
		t.Fatal("AddSignature kept the caller's slice")
	}
	// At most MaxSignatures.
	for i := 2; i < MaxSignatures; i++ {
		if err := s.AddSignature(SignDocument(s.Raw, authority(i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.AddSignature(SignDocument(s.Raw, authority(MaxSignatures))); !errors.Is(err, ErrInvalid) {
		t.Fatalf("signature %d: %v", MaxSignatures+1, err)
	}
	b, err := s.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, err := Verify(b, authorityKeys(MaxSignatures), MaxSignatures)
	if err != nil || len(got.Signatures) != MaxSignatures {
		t.Fatalf("%d of %d: %v", MaxSignatures, MaxSignatures, err)
	}
}

func TestSignedDocumentMarshalRejects(t *testing.T) {
	net := newTestNet(t, 1, 1, 1)
	s, _ := signedBy(t, net.doc, 0)
	cases := map[string]func(s *SignedDocument){
		"empty raw":           func(s *SignedDocument) { s.Raw = nil },
		"oversized raw":       func(s *SignedDocument) { s.Raw = make([]byte, MaxDocumentSize+1) },
		"short key":           func(s *SignedDocument) { s.Signatures[0].Key = s.Signatures[0].Key[:31] },
		"long signature":      func(s *SignedDocument) { s.Signatures[0].Sig = append(s.Signatures[0].Sig, 0) },
		"too many signatures": func(s *SignedDocument) { s.Signatures = make([]Signature, MaxSignatures+1) },
	}
	for name, edit := range cases {
		c := *s
		c.Signatures = []Signature{{Key: bytes.Clone(s.Signatures[0].Key), Sig: bytes.Clone(s.Signatures[0].Sig)}}
		edit(&c)
		if _, err := c.Marshal(); !errors.Is(err, ErrInvalid) {
			t.Fatalf("%s: got %v, want ErrInvalid", name, err)
		}
	}
}

// TestParseDoesNotAlias: the parsed document does not share memory with
// the input buffer.
func TestParseDoesNotAlias(t *testing.T) {
	net := newTestNet(t, 1, 1, 1)
	_, b := signedBy(t, net.doc, 0)
	s, err := ParseSignedDocument(b)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := s.Marshal()
	clear(b)
	got, _ := s.Marshal()
	if !bytes.Equal(got, want) {
		t.Fatal("parsed document aliases the input")
	}
}

// TestSignDocumentKey: the signature names the key the seed derives, even
// when the private key's cached public half is corrupt.
func TestSignDocumentKey(t *testing.T) {
	net := newTestNet(t, 1, 1, 1)
	s, _ := signedBy(t, net.doc)
	priv := authority(0)
	corrupt := append(bytes.Clone(priv[:32]), authorityKeys(2)[1]...)
	sig := SignDocument(s.Raw, corrupt)
	if !sig.Key.Equal(priv.Public()) || !sig.valid(s.Raw) {
		t.Fatal("signature by a key with a corrupt public half")
	}
	defer func() {
		if recover() == nil {
			t.Fatal("no panic for a short key")
		}
	}()
	SignDocument(s.Raw, priv[:32])
}

package main

// The seed corpora of package directory's fuzz targets
// (mixnet/directory/testdata/fuzz/FuzzParseDescriptor and
// FuzzParseSignedDocument). Every key is derived from a fixed seed and
// Ed25519 signatures are deterministic, so the files are reproduced byte
// for byte. Valid inputs come from the package's API; the broken ones
// are written from the format in docs/directory.md, not through the
// package's encoder.

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sealnet/sealnet/internal/testkit/fuzzcheck"
	"github.com/sealnet/sealnet/mixnet"
	"github.com/sealnet/sealnet/mixnet/directory"
)

// seed must match seed() in the package's helpers_test.go: the fuzz target
// verifies the seed documents with authority keys derived the same way.
func seed(format string, args ...any) []byte {
	s := sha256.Sum256([]byte("sealnet directory test " + fmt.Sprintf(format, args...)))
	return s[:]
}

func authority(i int) ed25519.PrivateKey { return ed25519.NewKeyFromSeed(seed("authority %d", i)) }

func x25519Public(priv []byte) ([32]byte, error) {
	k, err := ecdh.X25519().NewPrivateKey(priv)
	if err != nil {
		return [32]byte{}, err
	}
	return [32]byte(k.PublicKey().Bytes()), nil
}

type dirNode struct {
	priv ed25519.PrivateKey
	desc *directory.Descriptor
}

func newDirNode(name string, role directory.Role, layer int, epoch uint64) (*dirNode, error) {
	priv := ed25519.NewKeyFromSeed(seed("identity %s", name))
	d := &directory.Descriptor{
		Name:         name,
		Role:         role,
		Layer:        layer,
		Address:      name + ".nodes.example:4433",
		IdentityKey:  priv.Public().(ed25519.PublicKey),
		Epoch:        epoch,
		MixKeys:      map[uint64][32]byte{},
		GeometryHash: mixnet.DefaultGeometry().Hash(),
	}
	if role == directory.RoleProvider {
		d.Domain = name + ".example"
	}
	var err error
	if d.LinkKey, err = x25519Public(seed("link %s", name)); err != nil {
		return nil, err
	}
	for _, e := range []uint64{epoch, epoch + 1} {
		if d.MixKeys[e], err = x25519Public(seed("mix %s %d", name, e)); err != nil {
			return nil, err
		}
	}
	return &dirNode{priv: priv, desc: d}, nil
}

// network returns a document for epoch with the given shape.
func network(epoch uint64, layers, perLayer, providers int) (*directory.Document, error) {
	doc := &directory.Document{Epoch: epoch, Period: 20 * time.Minute, Geometry: mixnet.DefaultGeometry()}
	for l := 1; l <= layers; l++ {
		var layer []*directory.Descriptor
		for i := range perLayer {
			n, err := newDirNode(fmt.Sprintf("mix-%d-%d", l, i), directory.RoleMix, l, epoch)
			if err != nil {
				return nil, err
			}
			layer = append(layer, n.desc)
		}
		doc.Layers = append(doc.Layers, layer)
	}
	for i := range providers {
		n, err := newDirNode(fmt.Sprintf("provider-%d", i), directory.RoleProvider, 0, epoch)
		if err != nil {
			return nil, err
		}
		doc.Providers = append(doc.Providers, n.desc)
	}
	return doc, nil
}

// Envelopes written from docs/directory.md.

func descriptorEnvelope(body []byte, priv ed25519.PrivateKey) []byte {
	sig := ed25519.Sign(priv, append([]byte("sealnet descriptor v1\x00"), body...))
	out := append([]byte("SNDESC1\n"), binary.BigEndian.AppendUint32(nil, uint32(len(body)))...)
	return append(append(out, body...), sig...)
}

func documentEnvelope(raw []byte, signers ...ed25519.PrivateKey) []byte {
	out := append([]byte("SNDOC1\n"), binary.BigEndian.AppendUint32(nil, uint32(len(raw)))...)
	out = append(append(out, raw...), byte(len(signers)))
	for _, priv := range signers {
		sig := ed25519.Sign(priv, append([]byte("sealnet document v1\x00"), raw...))
		out = append(append(out, priv.Public().(ed25519.PublicKey)...), sig...)
	}
	return out
}

// body returns the body of a signed descriptor or document (after the
// header, before the signatures).
func body(b []byte, headerSize int) []byte {
	n := binary.BigEndian.Uint32(b[headerSize-4:])
	return b[headerSize : headerSize+int(n)]
}

func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 1
	return c
}

func writeDirectorySeeds(root string) error {
	dir := filepath.Join(root, "mixnet", "directory")
	seeds := map[string]map[string][]byte{
		"FuzzParseDescriptor":     {},
		"FuzzParseSignedDocument": {},
	}
	desc := seeds["FuzzParseDescriptor"]

	mix, err := newDirNode("mix-1-0", directory.RoleMix, 1, 1000)
	if err != nil {
		return err
	}
	prov, err := newDirNode("provider-0", directory.RoleProvider, 0, 1000)
	if err != nil {
		return err
	}
	prov.desc.Address = "[2001:db8::1]:443"
	mixB, err := directory.SignDescriptor(mix.desc, mix.priv)
	if err != nil {
		return err
	}
	provB, err := directory.SignDescriptor(prov.desc, prov.priv)
	if err != nil {
		return err
	}
	mixBody := body(mixB, 12)
	desc["mix"] = mixB
	desc["provider-ipv6"] = provB
	desc["empty"] = nil
	desc["truncated"] = mixB[:len(mixB)-1]
	desc["trailing-byte"] = append(bytes.Clone(mixB), 0)
	desc["version-2"] = append([]byte("SNDESC2\n"), mixB[8:]...)
	desc["length-4gib"] = append(append([]byte("SNDESC1\n"), 0xff, 0xff, 0xff, 0xff), mixB[12:]...)
	desc["bad-signature"] = flip(mixB, len(mixB)-1)
	desc["non-canonical-space"] = descriptorEnvelope(bytes.Replace(mixBody, []byte(`"layer":1`), []byte(`"layer": 1`), 1), mix.priv)
	desc["signed-invalid-layer-0"] = descriptorEnvelope(bytes.Replace(mixBody, []byte(`"layer":1`), []byte(`"layer":0`), 1), mix.priv)

	docs := seeds["FuzzParseSignedDocument"]
	doc, err := network(1000, 2, 2, 2)
	if err != nil {
		return err
	}
	raw, err := doc.Marshal()
	if err != nil {
		return err
	}
	small, err := network(5, 1, 1, 1)
	if err != nil {
		return err
	}
	smallRaw, err := small.Marshal()
	if err != nil {
		return err
	}
	signed := documentEnvelope(raw, authority(0), authority(1))
	docs["signed-2-of-3"] = signed
	docs["one-layer"] = documentEnvelope(smallRaw, authority(2))
	docs["unsigned"] = documentEnvelope(smallRaw)
	docs["unknown-signer"] = documentEnvelope(smallRaw, ed25519.NewKeyFromSeed(seed("outsider")))
	docs["empty"] = nil
	docs["truncated"] = signed[:len(signed)-1]
	docs["trailing-byte"] = append(bytes.Clone(signed), 0)
	docs["version-2"] = append([]byte("SNDOC2\n"), signed[7:]...)
	count := bytes.Clone(docs["unsigned"])
	count[len(count)-1] = directory.MaxSignatures + 1
	docs["count-33"] = count
	docs["raw-flipped"] = flip(signed, 7+4+len(raw)/2)
	docs["non-canonical-space"] = documentEnvelope([]byte(strings.Replace(string(smallRaw), `"epoch":5,`, `"epoch": 5,`, 1)), authority(0))
	docs["signed-invalid-no-providers"] = documentEnvelope(append(bytes.Clone(smallRaw[:bytes.Index(smallRaw, []byte(`"providers":`))]), `"providers":[]}`...), authority(0))

	// Documents that publish parameters: measurement-like values (no
	// client stream, so a zero that must not read as absent), then the
	// same bytes with one parameter changed under the old signatures, a
	// null object, and an acknowledgement timeout below its bound.
	withParams, err := network(2000, 2, 1, 1)
	if err != nil {
		return err
	}
	withParams.Parameters = directory.Parameters{
		MeanDelay: 50 * time.Millisecond, MaxDelay: 10 * time.Second, ClientRate: 0, ProviderHold: 0,
		FetchInterval: 1500 * time.Millisecond, AckTimeout: 20 * time.Second, RetryJitter: 2 * time.Second,
		MaxAttempts: 3, RelayLoopRate: 0.125,
	}
	paramsRaw, err := withParams.Marshal()
	if err != nil {
		return err
	}
	replace := func(raw []byte, old, new string) ([]byte, error) {
		if !bytes.Contains(raw, []byte(old)) {
			return nil, fmt.Errorf("seedgen: %q not in the document", old)
		}
		return bytes.Replace(raw, []byte(old), []byte(new), 1), nil
	}
	signedParams := documentEnvelope(paramsRaw, authority(0), authority(2))
	docs["with-parameters"] = signedParams
	if docs["parameters-tampered"], err = replace(signedParams, `"max_delay_us":10000000`, `"max_delay_us":90000000`); err != nil {
		return err
	}
	obj := paramsRaw[bytes.Index(paramsRaw, []byte(`"parameters":`)):bytes.Index(paramsRaw, []byte(`,"layers":`))]
	nullRaw, err := replace(paramsRaw, string(obj), `"parameters":null`)
	if err != nil {
		return err
	}
	docs["parameters-null"] = documentEnvelope(nullRaw, authority(0))
	shortRaw, err := replace(paramsRaw, `"ack_timeout_us":20000000`, `"ack_timeout_us":2000000`)
	if err != nil {
		return err
	}
	docs["signed-invalid-ack-timeout"] = documentEnvelope(shortRaw, authority(0))

	for target, files := range seeds {
		if err := os.RemoveAll(filepath.Join(dir, "testdata", "fuzz", target)); err != nil {
			return err
		}
		for name, b := range files {
			if err := fuzzcheck.WriteSeed(dir, target, name, b); err != nil {
				return err
			}
		}
	}
	return nil
}

package directory

import (
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/sealnet/sealnet/mixnet"
)

// Test networks are derived from fixed seeds, so every test sees the same
// keys and documents.

const testEpoch = 1000

var testPeriod = 20 * time.Minute

// seed returns SHA-256("sealnet directory test " + Sprintf(format, args)).
// internal/cmd/testdatagen derives the fuzz corpus keys the same way.
func seed(format string, args ...any) []byte {
	s := sha256.Sum256([]byte("sealnet directory test " + fmt.Sprintf(format, args...)))
	return s[:]
}

// testNode is a node of a test network with its private keys.
type testNode struct {
	priv ed25519.PrivateKey
	mix  map[uint64]*mixnet.MixKey
	desc *Descriptor
}

func x25519Public(t testing.TB, priv []byte) [32]byte {
	t.Helper()
	k, err := ecdh.X25519().NewPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return [32]byte(k.PublicKey().Bytes())
}

// newTestNode returns a valid node named name for epoch. Providers get the
// domain name + ".example"; every node's address is derived from its name.
func newTestNode(t testing.TB, g mixnet.Geometry, name string, role Role, layer int, epoch uint64) *testNode {
	t.Helper()
	n := &testNode{
		priv: ed25519.NewKeyFromSeed(seed("identity %s", name)),
		mix:  map[uint64]*mixnet.MixKey{},
	}
	d := &Descriptor{
		Name:         name,
		Role:         role,
		Layer:        layer,
		Address:      name + ".nodes.example:4433",
		IdentityKey:  n.priv.Public().(ed25519.PublicKey),
		LinkKey:      x25519Public(t, seed("link %s", name)),
		Epoch:        epoch,
		MixKeys:      map[uint64][32]byte{},
		GeometryHash: g.Hash(),
	}
	if role == RoleProvider {
		d.Domain = name + ".example"
	}
	for _, e := range []uint64{epoch, epoch + 1} {
		k, err := mixnet.NewMixKey(g, seed("mix %s %d", name, e))
		if err != nil {
			t.Fatal(err)
		}
		n.mix[e] = k
		d.MixKeys[e] = k.PublicKey()
	}
	n.desc = d
	return n
}

// testNet is a document and the private keys of its nodes.
type testNet struct {
	doc   *Document
	nodes map[mixnet.NodeID]*testNode
}

// newTestNet builds a valid document for testEpoch with the default
// geometry, nodes named mix-<layer>-<i> and provider-<i>.
func newTestNet(t testing.TB, layers, perLayer, providers int) *testNet {
	t.Helper()
	g := mixnet.DefaultGeometry()
	net := &testNet{
		doc:   &Document{Epoch: testEpoch, Period: testPeriod, Geometry: g},
		nodes: map[mixnet.NodeID]*testNode{},
	}
	for l := 1; l <= layers; l++ {
		var layer []*Descriptor
		for i := range perLayer {
			n := newTestNode(t, g, fmt.Sprintf("mix-%d-%d", l, i), RoleMix, l, testEpoch)
			net.nodes[n.desc.ID()] = n
			layer = append(layer, n.desc)
		}
		net.doc.Layers = append(net.doc.Layers, sortedByID(layer))
	}
	var provs []*Descriptor
	for i := range providers {
		n := newTestNode(t, g, fmt.Sprintf("provider-%d", i), RoleProvider, 0, testEpoch)
		net.nodes[n.desc.ID()] = n
		provs = append(provs, n.desc)
	}
	net.doc.Providers = sortedByID(provs)
	if err := net.doc.Validate(); err != nil {
		t.Fatalf("test network is invalid: %v", err)
	}
	return net
}

func authority(i int) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(seed("authority %d", i))
}

func authorityKeys(n int) []ed25519.PublicKey {
	keys := make([]ed25519.PublicKey, n)
	for i := range keys {
		keys[i] = authority(i).Public().(ed25519.PublicKey)
	}
	return keys
}

// signedBy marshals doc and signs it with the given authorities.
func signedBy(t testing.TB, doc *Document, auths ...int) (*SignedDocument, []byte) {
	t.Helper()
	s, err := NewSignedDocument(doc)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range auths {
		if err := s.AddSignature(SignDocument(s.Raw, authority(a))); err != nil {
			t.Fatal(err)
		}
	}
	b, err := s.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return s, b
}

func cloneDescriptor(d *Descriptor) *Descriptor {
	c := *d
	c.IdentityKey = append(ed25519.PublicKey(nil), d.IdentityKey...)
	c.MixKeys = maps.Clone(d.MixKeys)
	return &c
}

// cloneDocument deep-copies d, so that a test can break the copy.
func cloneDocument(d *Document) *Document {
	c := *d
	c.Layers = make([][]*Descriptor, len(d.Layers))
	for i, l := range d.Layers {
		for _, n := range l {
			c.Layers[i] = append(c.Layers[i], cloneDescriptor(n))
		}
	}
	c.Providers = nil
	for _, n := range d.Providers {
		c.Providers = append(c.Providers, cloneDescriptor(n))
	}
	return &c
}

var sentinels = []error{ErrMalformed, ErrInvalid, ErrSignature, ErrThreshold, ErrPath}

// requireSentinel fails unless err wraps one of the package's sentinels.
func requireSentinel(t testing.TB, err error) {
	t.Helper()
	for _, s := range sentinels {
		if errors.Is(err, s) {
			return
		}
	}
	t.Fatalf("error wraps no sentinel: %v", err)
}

// signBody wraps an arbitrary descriptor body in a correctly signed
// envelope, to test what the decoder does with bodies SignDescriptor would
// never write.
func signBody(body []byte, priv ed25519.PrivateKey) []byte {
	return appendDescriptorEnvelope(body, ed25519.Sign(priv, withContext(descriptorContext, body)))
}

// envelope wraps an arbitrary document body and signatures.
func envelope(raw []byte, sigs ...Signature) []byte {
	s := &SignedDocument{Raw: raw, Signatures: sigs}
	b, err := s.Marshal()
	if err != nil {
		panic(err)
	}
	return b
}

package directory_test

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ed25519"
	"errors"
	"fmt"
	"time"

	"github.com/sealnet/sealnet/mixnet"
	"github.com/sealnet/sealnet/mixnet/directory"
)

// Keys from fixed seeds keep the examples' output stable; real nodes and
// authorities generate theirs with crypto/rand.
func exampleKey(b byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{b}, ed25519.SeedSize))
}

func exampleX25519(b byte) [32]byte {
	k, err := ecdh.X25519().NewPrivateKey(bytes.Repeat([]byte{b}, 32))
	if err != nil {
		panic(err)
	}
	return [32]byte(k.PublicKey().Bytes())
}

func exampleNode(name string, role directory.Role, layer int, epoch uint64, b byte) (*directory.Descriptor, ed25519.PrivateKey) {
	priv := exampleKey(b)
	d := &directory.Descriptor{
		Name:        name,
		Role:        role,
		Layer:       layer,
		Address:     name + ".example.net:4433",
		IdentityKey: priv.Public().(ed25519.PublicKey),
		LinkKey:     exampleX25519(b),
		Epoch:       epoch,
		MixKeys: map[uint64][32]byte{
			epoch:     exampleX25519(b + 100),
			epoch + 1: exampleX25519(b + 200),
		},
		GeometryHash: mixnet.DefaultGeometry().Hash(),
	}
	if role == directory.RoleProvider {
		d.Domain = "example.org"
	}
	return d, priv
}

// A node signs its descriptor for the coming epoch and publishes the
// bytes; an authority parses them, which checks the signature against the
// identity key inside.
func ExampleSignDescriptor() {
	epoch := directory.EpochAt(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), 20*time.Minute)
	d, priv := exampleNode("mix-1", directory.RoleMix, 1, epoch+1, 1)

	signed, err := directory.SignDescriptor(d, priv)
	if err != nil {
		fmt.Println(err)
		return
	}
	got, err := directory.ParseDescriptor(signed)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%s, layer %d, epoch %d, id %v\n", got.Name, got.Layer, got.Epoch, got.ID())

	// Any change to the signed bytes is refused.
	signed[len(signed)-1] ^= 1
	_, err = directory.ParseDescriptor(signed)
	fmt.Println(errors.Is(err, directory.ErrSignature))
	// Output:
	// mix-1, layer 1, epoch 1476973, id 34750f98bd59fcfc
	// true
}

// Three authorities publish a document; clients accept it with two valid
// signatures among the three keys they are configured with.
func ExampleVerify() {
	const epoch = 1476973
	mix, _ := exampleNode("mix-1", directory.RoleMix, 1, epoch, 1)
	provider, _ := exampleNode("provider", directory.RoleProvider, 0, epoch, 2)
	doc := &directory.Document{
		Epoch:     epoch,
		Period:    20 * time.Minute,
		Geometry:  mixnet.DefaultGeometry(),
		Layers:    [][]*directory.Descriptor{{mix}},
		Providers: []*directory.Descriptor{provider},
	}
	authorities := []ed25519.PrivateKey{exampleKey(10), exampleKey(11), exampleKey(12)}
	var keys []ed25519.PublicKey
	for _, a := range authorities {
		keys = append(keys, a.Public().(ed25519.PublicKey))
	}

	// Each authority signs the same canonical bytes.
	s, err := directory.NewSignedDocument(doc)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, a := range authorities[:2] {
		if err := s.AddSignature(directory.SignDocument(s.Raw, a)); err != nil {
			fmt.Println(err)
			return
		}
	}
	published, err := s.Marshal()
	if err != nil {
		fmt.Println(err)
		return
	}

	// A client.
	got, err := directory.Verify(published, keys, 2)
	if err != nil {
		fmt.Println(err)
		return
	}
	p, _ := got.Doc.Provider("example.org")
	fmt.Printf("epoch %d: %d layer(s), provider %s at %s\n", got.Doc.Epoch, len(got.Doc.Layers), p.Name, p.Address)

	// With all three required, two signatures are not enough.
	_, err = directory.Verify(published, keys, 3)
	fmt.Println(err)
	// Output:
	// epoch 1476973: 1 layer(s), provider provider at provider.example.net:4433
	// directory: signature threshold not met: 2 of 3 valid, need 3
}

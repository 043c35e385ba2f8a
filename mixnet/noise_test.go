package mixnet

import (
	"bytes"
	"errors"
	"testing"

	"github.com/flynn/noise"
)

var flynnSuite = noise.NewCipherSuite(noise.DH25519, noise.CipherChaChaPoly, noise.HashSHA256)

func flynnKeypair(k *MixKey) noise.DHKey {
	pub := k.PublicKey()
	return noise.DHKey{Private: k.Bytes(), Public: pub[:]}
}

// TestHeaderLayerIsNoiseN checks, at every hop of a 5-hop path, that the
// header layer addressed to that hop (ephemeral key, encrypted routing
// information and tag) is a Noise_N_25519_ChaChaPoly_SHA256 handshake
// message that flynn/noise, an implementation nobody here wrote, accepts as
// the responder, decrypting it to the same routing information, and that
// its Split keys equal our T1 and T2.
func TestHeaderLayerIsNoiseN(t *testing.T) {
	g := DefaultGeometry()
	nodes := newTestNodes(t, g, g.MaxHops, 11)
	pkt := mustPacket(t, detRand(12), g, nodes, testMessage(g, 13))
	for i, nd := range nodes {
		hs, err := noise.NewHandshakeState(noise.Config{
			CipherSuite:   flynnSuite,
			Pattern:       noise.HandshakeN,
			Initiator:     false,
			Prologue:      noisePrologue(g),
			StaticKeypair: flynnKeypair(nd.key),
		})
		if err != nil {
			t.Fatal(err)
		}
		layer := pkt[versionSize:g.HeaderSize()]
		plain, cs1, cs2, err := hs.ReadMessage(nil, layer)
		if err != nil {
			t.Fatalf("hop %d: flynn/noise rejects the header layer: %v", i, err)
		}
		var rt routing
		if err := decodeRouting(plain[:g.RoutingInfoSize], &rt); err != nil {
			t.Fatalf("hop %d: %v", i, err)
		}
		if last := i == len(nodes)-1; rt.deliver != last {
			t.Fatalf("hop %d: deliver=%v", i, rt.deliver)
		}

		// Our own key schedule for the same message.
		dh, err := x25519(nd.key.priv, layer[:ephemeralSize])
		if err != nil {
			t.Fatal(err)
		}
		var k hopKeys
		if err := deriveHopKeys(&nd.key.hs, layer[:ephemeralSize], dh, &k); err != nil {
			t.Fatal(err)
		}
		k1, k2 := cs1.UnsafeKey(), cs2.UnsafeKey()
		var want hopKeys
		expandPayloadKey(&k1, &want.payload)
		copy(want.tag[:], k2[:])
		if want.payload != k.payload || want.tag != k.tag {
			t.Fatalf("hop %d: payload key or replay tag not derived from flynn/noise's Split keys", i)
		}
		// h after MixHash(ciphertext) is flynn's channel binding.
		h := k.ad
		mixHash(&h, layer[ephemeralSize:])
		if !bytes.Equal(h[:], hs.ChannelBinding()) {
			t.Fatalf("hop %d: handshake hash differs from flynn/noise's", i)
		}

		res, err := nd.key.Unwrap(pkt, nd.rc)
		if err != nil {
			t.Fatal(err)
		}
		pkt = res.Packet
	}
}

// TestNoiseInitiatorMatchesSender checks the sender side the other way
// round: flynn/noise as the initiator, given the same ephemeral key and
// plaintext, produces exactly the single-hop header layer we build.
func TestNoiseInitiatorMatchesSender(t *testing.T) {
	g := DefaultGeometry()
	nodes := newTestNodes(t, g, 1, 14)
	pub := nodes[0].key.PublicKey()
	// Record the randomness NewPacket consumes: ephemeral, then padding.
	rnd := make([]byte, 32+(g.MaxHops-1)*g.RoutingInfoSize)
	detRand(15).Read(rnd)
	pkt, err := NewPacket(bytes.NewReader(rnd), g, pathOf(nodes, 0), RecipientID{9}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The plaintext a single-hop header encrypts: slot, then padding.
	pt := make([]byte, g.MaxHops*g.RoutingInfoSize)
	rt := routing{deliver: true, recipient: RecipientID{9}}
	if err := rt.encode(pt[:g.RoutingInfoSize]); err != nil {
		t.Fatal(err)
	}
	copy(pt[g.RoutingInfoSize:], rnd[32:])
	hs, err := noise.NewHandshakeState(noise.Config{
		CipherSuite: flynnSuite,
		Pattern:     noise.HandshakeN,
		Initiator:   true,
		Prologue:    noisePrologue(g),
		PeerStatic:  pub[:],
		Random:      bytes.NewReader(rnd[:32]),
	})
	if err != nil {
		t.Fatal(err)
	}
	msg, _, _, err := hs.WriteMessage(nil, pt)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(msg, pkt[versionSize:g.HeaderSize()]) {
		t.Fatal("flynn/noise's N message differs from our header layer")
	}
}

func TestPrologueBindsGeometry(t *testing.T) {
	a := DefaultGeometry()
	b := a
	b.PayloadSize++
	if bytes.Equal(noisePrologue(a), noisePrologue(b)) {
		t.Fatal("two geometries share a prologue")
	}
}

// TestOtherGeometryRefused: {4 hops, 120-byte slots} has the same packet
// size as the default geometry, so only the key agreement's prologue keeps
// a packet built for one from unwrapping under the other.
func TestOtherGeometryRefused(t *testing.T) {
	a := DefaultGeometry()
	b := Geometry{Version: VersionX25519, MaxHops: 4, RoutingInfoSize: 120, PayloadSize: a.PayloadSize}
	if a.PacketSize() != b.PacketSize() || a.Hash() == b.Hash() {
		t.Fatal("test needs two geometries of one packet size")
	}
	nodes := newTestNodes(t, a, 1, 16)
	kb, err := NewMixKey(b, nodes[0].key.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	pkt := mustPacket(t, detRand(17), a, nodes, nil)
	if _, err := kb.Unwrap(pkt, nodes[0].rc); !errors.Is(err, ErrHeaderAuth) {
		t.Fatalf("got %v, want ErrHeaderAuth", err)
	}
}

package mixnet

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"math/rand/v2"
	"testing"
	"time"
)

// detRand returns a deterministic io.Reader for reproducible packets.
func detRand(seed uint64) *rand.ChaCha8 {
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	return rand.NewChaCha8(s)
}

// testNode is a mix node for tests: a key, an ID and a replay cache.
type testNode struct {
	id  NodeID
	key *MixKey
	rc  *ReplayCache
}

func newTestNodes(t testing.TB, g Geometry, n int, seed uint64) []*testNode {
	t.Helper()
	rng := detRand(seed)
	nodes := make([]*testNode, n)
	for i := range nodes {
		k, err := GenerateMixKey(rng, g)
		if err != nil {
			t.Fatal(err)
		}
		rc, err := NewReplayCache(1, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		pub := k.PublicKey()
		nodes[i] = &testNode{id: NodeID(sha256.Sum256(pub[:])), key: k, rc: rc}
	}
	return nodes
}

func pathOf(nodes []*testNode, delay time.Duration) []Hop {
	path := make([]Hop, len(nodes))
	for i, nd := range nodes {
		path[i] = Hop{ID: nd.id, PublicKey: nd.key.PublicKey(), Delay: delay}
	}
	return path
}

// route unwraps pkt at each node in turn, checking that every intermediate
// packet keeps the geometry's size and names the right next hop, and
// returns the final hop's result.
func route(t testing.TB, nodes []*testNode, pkt []byte) Result {
	t.Helper()
	size := len(pkt)
	for i, nd := range nodes {
		res, err := nd.key.Unwrap(pkt, nd.rc)
		if err != nil {
			t.Fatalf("hop %d: %v", i, err)
		}
		if i == len(nodes)-1 {
			if !res.Final {
				t.Fatalf("hop %d is the last but the packet continues to %v", i, res.NextHop)
			}
			return res
		}
		if res.Final {
			t.Fatalf("hop %d of %d delivered early", i, len(nodes))
		}
		if res.NextHop != nodes[i+1].id {
			t.Fatalf("hop %d forwards to %v, want %v", i, res.NextHop, nodes[i+1].id)
		}
		if len(res.Packet) != size {
			t.Fatalf("hop %d output is %d bytes, want %d", i, len(res.Packet), size)
		}
		pkt = res.Packet
	}
	panic("unreachable")
}

func testMessage(g Geometry, seed uint64) []byte {
	m := make([]byte, g.MessageSize())
	detRand(seed).Read(m)
	return m
}

func mustPacket(t testing.TB, rng *rand.ChaCha8, g Geometry, nodes []*testNode, msg []byte) []byte {
	t.Helper()
	pkt, err := NewPacket(rng, g, pathOf(nodes, 0), RecipientID{1}, msg)
	if err != nil {
		t.Fatal(err)
	}
	return pkt
}

func equalMessage(t testing.TB, got, want []byte) {
	t.Helper()
	if len(got) < len(want) || !bytes.Equal(got[:len(want)], want) {
		t.Fatalf("message differs after the round trip")
	}
	for _, b := range got[len(want):] {
		if b != 0 {
			t.Fatalf("padding after the message is not zero")
		}
	}
}

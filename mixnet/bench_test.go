package mixnet

import (
	"crypto/ecdh"
	"testing"
	"time"
)

// BenchmarkX25519 is the baseline: one raw X25519 operation, the only
// public-key operation an unwrap needs.
func BenchmarkX25519(b *testing.B) {
	a, pub := x25519Pair(b, 1)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.ECDH(pub); err != nil {
			b.Fatal(err)
		}
	}
}

// x25519Pair returns a private key and another key's public half, for
// timing the raw X25519 operation.
func x25519Pair(b *testing.B, seed uint64) (*ecdh.PrivateKey, *ecdh.PublicKey) {
	rng := detRand(seed)
	var s1, s2 [32]byte
	rng.Read(s1[:])
	rng.Read(s2[:])
	a, err := ecdh.X25519().NewPrivateKey(s1[:])
	if err != nil {
		b.Fatal(err)
	}
	p, err := ecdh.X25519().NewPrivateKey(s2[:])
	if err != nil {
		b.Fatal(err)
	}
	return a, p.PublicKey()
}

// benchPackets builds count distinct packets for a path through nodes.
func benchPackets(b *testing.B, nodes []*testNode, count int) [][]byte {
	g := nodes[0].key.Geometry()
	rng := detRand(2)
	pkts := make([][]byte, count)
	for i := range pkts {
		pkts[i] = mustPacket(b, rng, g, nodes, nil)
	}
	return pkts
}

// BenchmarkUnwrap measures one hop's work on a packet in the middle of a
// path, replay check included.
func BenchmarkUnwrap(b *testing.B) {
	g := DefaultGeometry()
	nodes := newTestNodes(b, g, 3, 3)
	pkts := benchPackets(b, nodes, 1024)
	work := make([]byte, g.PacketSize())
	b.SetBytes(int64(g.PacketSize()))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if i%len(pkts) == 0 {
			nodes[0].rc, _ = NewReplayCache(1, 1<<20)
		}
		copy(work, pkts[i%len(pkts)])
		i++
		if _, err := nodes[0].key.Unwrap(work, nodes[0].rc); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkUnwrapVsX25519 interleaves one unwrap and one raw X25519 per
// iteration and reports their ratio, so that both figures come from the
// same run under the same conditions. The goal is ratio <= 1.25.
func BenchmarkUnwrapVsX25519(b *testing.B) {
	g := DefaultGeometry()
	nodes := newTestNodes(b, g, 3, 4)
	pkts := benchPackets(b, nodes, 1024)
	work := make([]byte, g.PacketSize())
	a, pub := x25519Pair(b, 5)
	var tu, tx time.Duration
	i := 0
	for b.Loop() {
		if i%len(pkts) == 0 {
			nodes[0].rc, _ = NewReplayCache(1, 1<<20)
		}
		copy(work, pkts[i%len(pkts)])
		i++
		t0 := time.Now()
		if _, err := nodes[0].key.Unwrap(work, nodes[0].rc); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if _, err := a.ECDH(pub); err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		tu += t1.Sub(t0)
		tx += t2.Sub(t1)
	}
	n := float64(i)
	b.ReportMetric(float64(tu.Nanoseconds())/n, "unwrap-ns")
	b.ReportMetric(float64(tx.Nanoseconds())/n, "x25519-ns")
	b.ReportMetric(float64(tu)/float64(tx), "unwrap/x25519")
}

// BenchmarkNewPacket measures building a packet for a full-length path.
func BenchmarkNewPacket(b *testing.B) {
	g := DefaultGeometry()
	nodes := newTestNodes(b, g, g.MaxHops, 6)
	path := pathOf(nodes, time.Millisecond)
	msg := testMessage(g, 7)
	rng := detRand(8)
	b.SetBytes(int64(g.PacketSize()))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := NewPacket(rng, g, path, RecipientID{}, msg); err != nil {
			b.Fatal(err)
		}
	}
}

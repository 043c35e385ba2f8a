package mixnet

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/sealnet/sealnet/internal/stats"
)

// sharesWindow reports whether a and b have any 16-byte substring in
// common, at any offsets.
func sharesWindow(a, b []byte) bool {
	const w = 16
	seen := make(map[[w]byte]struct{}, len(a))
	for i := 0; i+w <= len(a); i++ {
		seen[[w]byte(a[i:i+w])] = struct{}{}
	}
	for i := 0; i+w <= len(b); i++ {
		if _, ok := seen[[w]byte(b[i:i+w])]; ok {
			return true
		}
	}
	return false
}

// TestUnlinkableBits: a hop's output shares no 16-byte window with its
// input, at any hop of a full-length path.
func TestUnlinkableBits(t *testing.T) {
	g := DefaultGeometry()
	nodes := newTestNodes(t, g, g.MaxHops, 20)
	rng := detRand(21)
	msg := testMessage(g, 22)
	for p := range 100 {
		pkt := mustPacket(t, rng, g, nodes, msg)
		for i, nd := range nodes[:len(nodes)-1] {
			in := bytes.Clone(pkt)
			res, err := nd.key.Unwrap(pkt, nd.rc)
			if err != nil {
				t.Fatal(err)
			}
			if sharesWindow(in, res.Packet) {
				t.Fatalf("packet %d, hop %d: input and output share a 16-byte window", p, i)
			}
			pkt = res.Packet
		}
	}
	// Controls: the check catches the leaks a hop could have. A hop that
	// forwards the payload without its LIONESS layer, or that forgets to
	// blind the ephemeral key, or that passes the routing information on
	// without re-encrypting it, shares bytes with its input.
	leaks := map[string]func(in, out []byte){
		"payload not re-encrypted": func(in, out []byte) { copy(out[g.HeaderSize():], in[g.HeaderSize():]) },
		"ephemeral not blinded": func(in, out []byte) {
			copy(out[versionSize:versionSize+ephemeralSize], in[versionSize:versionSize+ephemeralSize])
		},
		"routing information passed on": func(in, out []byte) {
			off := versionSize + ephemeralSize + g.RoutingInfoSize
			copy(out[off:g.HeaderSize()-headerTagSize], in[off:g.HeaderSize()-headerTagSize])
		},
	}
	for name, leak := range leaks {
		pkt := mustPacket(t, rng, g, nodes, msg)
		in := bytes.Clone(pkt)
		res, err := nodes[0].key.Unwrap(pkt, nodes[0].rc)
		if err != nil {
			t.Fatal(err)
		}
		out := bytes.Clone(res.Packet)
		if sharesWindow(in, out) {
			t.Fatalf("control %q: the honest output already shares a window", name)
		}
		leak(in, out)
		if !sharesWindow(in, out) {
			t.Fatalf("control %q: the leak goes unnoticed", name)
		}
	}
}

// TestOutputUniform: over 10,000 packets the bytes a hop sends on pass a
// chi-square uniformity test, and no byte position is stuck. The version
// byte (public and constant) is left out; the last byte of the ephemeral
// key always has its top bit clear (an X25519 key is below 2^255), which
// the per-position bound allows for.
func TestOutputUniform(t *testing.T) {
	g := DefaultGeometry()
	nodes := newTestNodes(t, g, 2, 23)
	rng := detRand(24)
	const packets = 10_000
	msg := make([]byte, g.MessageSize()) // all zeros: the most structured input
	outs := make([][]byte, packets)
	for i := range outs {
		pkt := mustPacket(t, rng, g, nodes, msg)
		res, err := nodes[0].key.Unwrap(pkt, nodes[0].rc)
		if err != nil {
			t.Fatal(err)
		}
		outs[i] = res.Packet
	}
	if err := uniformBytes(t, g, outs); err != nil {
		t.Fatal(err)
	}
	// Controls: the same checks catch a leak: one byte position stuck (a
	// length or flag left in the clear), or a tenth of the payload left
	// unencrypted (zeros).
	stuck := make([][]byte, 0, packets)
	clearText := make([][]byte, 0, packets)
	for _, o := range outs {
		a := bytes.Clone(o)
		a[g.HeaderSize()+7] = 0x42
		stuck = append(stuck, a)
		b := bytes.Clone(o)
		clear(b[g.HeaderSize() : g.HeaderSize()+g.PayloadSize/10])
		clearText = append(clearText, b)
	}
	if uniformBytes(t, g, stuck) == nil {
		t.Fatal("control: a stuck byte position passes")
	}
	if uniformBytes(t, g, clearText) == nil {
		t.Fatal("control: a payload partly in the clear passes")
	}
}

// uniformBytes checks packets (after the public version byte) for uniform
// bytes: a chi-square test over all of them, and a bound per position.
func uniformBytes(t *testing.T, g Geometry, packets [][]byte) error {
	counts := make([]uint64, 256)
	perPos := make([][256]uint16, g.PacketSize())
	for _, p := range packets {
		for i, b := range p[versionSize:] {
			counts[b]++
			perPos[i+versionSize][b]++
		}
	}
	x, crit := stats.ChiSquare(counts), stats.ChiSquareCritical(255, 1e-3)
	t.Logf("chi-square over %d bytes: %.1f (critical %.1f at p=0.001)", len(packets)*(g.PacketSize()-1), x, crit)
	if x > crit {
		return fmt.Errorf("output bytes are not uniform: chi-square %.1f > %.1f", x, crit)
	}
	// Expected count per value per position is 39 for 10,000 packets; a
	// stuck or heavily biased position reaches thousands.
	for pos := versionSize; pos < g.PacketSize(); pos++ {
		for v, c := range perPos[pos] {
			if c > 150 {
				return fmt.Errorf("byte %d takes value %d in %d of %d packets", pos, v, c, len(packets))
			}
		}
	}
	return nil
}

// TestPositionHidden: what a hop learns does not depend on how many hops
// remain after it. For 1 to MaxHops-1 remaining hops, the hop's result has
// the same shape, and every slot-sized chunk of the routing information it
// passes on is uniformly distributed (nothing marks where the real routing
// information ends and the filler begins).
func TestPositionHidden(t *testing.T) {
	g := DefaultGeometry()
	nodes := newTestNodes(t, g, g.MaxHops, 25)
	rng := detRand(26)
	const packets = 2000
	n, r := g.MaxHops, g.RoutingInfoSize
	alpha := 1e-3 / float64(2*(n-1)*n) // Bonferroni over every test below
	crit := stats.ChiSquareCritical(255, alpha)
	for observer := range 2 {
		for remaining := 1; remaining+observer < n; remaining++ {
			path := nodes[:observer+remaining+1]
			chunks := make([][]uint64, n)
			for j := range chunks {
				chunks[j] = make([]uint64, 256)
			}
			for range packets {
				pkt := mustPacket(t, rng, g, path, nil)
				var res Result
				for i := 0; i <= observer; i++ {
					var err error
					if res, err = path[i].key.Unwrap(pkt, path[i].rc); err != nil {
						t.Fatal(err)
					}
					pkt = res.Packet
				}
				if res.Final || res.SURBReply || res.Payload != nil || res.Recipient != (RecipientID{}) || len(res.Packet) != g.PacketSize() {
					t.Fatalf("hop %d with %d hops remaining: result shape differs", observer, remaining)
				}
				beta := res.Packet[versionSize+ephemeralSize:][:n*r]
				for j := range n {
					for _, b := range beta[j*r : (j+1)*r] {
						chunks[j][b]++
					}
				}
			}
			for j := range n {
				if x := stats.ChiSquare(chunks[j]); x > crit {
					t.Fatalf("hop %d, %d hops remaining: routing chunk %d is not uniform (chi-square %.1f > %.1f)", observer, remaining, j, x, crit)
				}
			}
			// Control: a filler of zeros in place of one slot (where the
			// real routing information ends) fails the same test.
			if observer == 0 && remaining == 1 {
				leaky := make([]uint64, 256)
				leaky[0] = uint64(packets * r)
				if x := stats.ChiSquare(leaky); x <= crit {
					t.Fatalf("control: a zero filler slot passes (chi-square %.1f <= %.1f)", x, crit)
				}
			}
		}
	}
}

func TestTamperHeaderEveryBit(t *testing.T) {
	g := DefaultGeometry()
	nodes := newTestNodes(t, g, 3, 27)
	pkt := mustPacket(t, detRand(28), g, nodes, testMessage(g, 29))
	// At the first hop and at a middle hop.
	for hop := range 2 {
		for bit := range 8 * g.HeaderSize() {
			mod := bytes.Clone(pkt)
			mod[bit/8] ^= 1 << (bit % 8)
			_, err := nodes[hop].key.Unwrap(mod, nodes[hop].rc)
			want := ErrHeaderAuth
			if bit/8 == 0 {
				want = ErrUnsupportedVersion
			}
			if !errors.Is(err, want) {
				t.Fatalf("hop %d, header bit %d flipped: got %v, want %v", hop, bit, err, want)
			}
		}
		// Rejected packets left no trace: the intact one still unwraps.
		res, err := nodes[hop].key.Unwrap(pkt, nodes[hop].rc)
		if err != nil {
			t.Fatalf("hop %d: intact packet after tampered copies: %v", hop, err)
		}
		pkt = res.Packet
	}
}

// TestTamperPayloadCaughtOnlyAtEnd: a flipped payload bit passes every
// intermediate hop unnoticed (no tagging oracle) and is caught at the
// final hop.
func TestTamperPayloadCaughtOnlyAtEnd(t *testing.T) {
	g := DefaultGeometry()
	// Every bit, on a one-hop path.
	one := newTestNodes(t, g, 1, 30)
	pkt := mustPacket(t, detRand(31), g, one, testMessage(g, 32))
	for bit := 8 * g.HeaderSize(); bit < 8*g.PacketSize(); bit++ {
		mod := bytes.Clone(pkt)
		mod[bit/8] ^= 1 << (bit % 8)
		if _, err := one[0].key.Unwrap(mod, one[0].rc); !errors.Is(err, ErrPayloadAuth) {
			t.Fatalf("payload bit %d: got %v, want ErrPayloadAuth", bit-8*g.HeaderSize(), err)
		}
		// The header was authentic, so its tag is now in the cache; start
		// afresh for the next flip.
		one[0].rc, _ = NewReplayCache(1, 16)
	}
	// Spread-out bits on a full path: intermediate hops accept.
	nodes := newTestNodes(t, g, g.MaxHops, 33)
	rng := detRand(34)
	for k := range 64 {
		bit := k * (8*g.PayloadSize - 1) / 63
		pkt := mustPacket(t, rng, g, nodes, testMessage(g, 35))
		pkt[g.HeaderSize()+bit/8] ^= 1 << (bit % 8)
		for i, nd := range nodes {
			res, err := nd.key.Unwrap(pkt, nd.rc)
			if i < len(nodes)-1 {
				if err != nil {
					t.Fatalf("payload bit %d: intermediate hop %d noticed: %v", bit, i, err)
				}
				pkt = res.Packet
				continue
			}
			if !errors.Is(err, ErrPayloadAuth) {
				t.Fatalf("payload bit %d: final hop got %v, want ErrPayloadAuth", bit, err)
			}
		}
	}
}

func TestReplay(t *testing.T) {
	g := DefaultGeometry()
	nodes := newTestNodes(t, g, 3, 36)
	pkt := mustPacket(t, detRand(37), g, nodes, nil)
	for i, nd := range nodes {
		first := bytes.Clone(pkt)
		res, err := nd.key.Unwrap(pkt, nd.rc)
		if err != nil {
			t.Fatal(err)
		}
		again := bytes.Clone(first)
		if _, err := nd.key.Unwrap(again, nd.rc); !errors.Is(err, ErrReplay) {
			t.Fatalf("hop %d: second unwrap got %v, want ErrReplay", i, err)
		}
		// The same header with a different payload is the same packet.
		again = bytes.Clone(first)
		again[len(again)-1] ^= 0xff
		if _, err := nd.key.Unwrap(again, nd.rc); !errors.Is(err, ErrReplay) {
			t.Fatalf("hop %d: replay with altered payload got %v, want ErrReplay", i, err)
		}
		if i < len(nodes)-1 {
			pkt = res.Packet
		}
	}
}

func TestWrongKey(t *testing.T) {
	g := DefaultGeometry()
	nodes := newTestNodes(t, g, 2, 38)
	pkt := mustPacket(t, detRand(39), g, nodes[:1], nil)
	if _, err := nodes[1].key.Unwrap(pkt, nodes[1].rc); !errors.Is(err, ErrHeaderAuth) {
		t.Fatalf("got %v, want ErrHeaderAuth", err)
	}
	if nodes[1].rc.Len() != 0 {
		t.Fatal("a rejected packet left a replay tag")
	}
}

func TestBadSizes(t *testing.T) {
	g := DefaultGeometry()
	nodes := newTestNodes(t, g, 1, 40)
	pkt := mustPacket(t, detRand(41), g, nodes, nil)
	for _, b := range [][]byte{nil, {}, pkt[:1], pkt[:g.HeaderSize()], pkt[:len(pkt)-1], append(bytes.Clone(pkt), 0), make([]byte, 1<<20)} {
		if _, err := nodes[0].key.Unwrap(b, nodes[0].rc); !errors.Is(err, ErrPacketSize) {
			t.Fatalf("%d-byte input: got %v, want ErrPacketSize", len(b), err)
		}
	}
	if _, err := nodes[0].key.Unwrap(pkt, nil); err == nil {
		t.Fatal("Unwrap without a replay cache succeeded")
	}
}

// TestLowOrderEphemeral: an ephemeral key that is a low-order point (so
// the X25519 result is zero) is rejected as a header failure, not a panic.
func TestLowOrderEphemeral(t *testing.T) {
	g := DefaultGeometry()
	nodes := newTestNodes(t, g, 1, 42)
	lowOrder := [][32]byte{
		{},  // 0
		{1}, // 1
		{0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f, 0xc4, 0x6a, 0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49, 0xb8, 0x00},
	}
	for i, e := range lowOrder {
		pkt := mustPacket(t, detRand(43), g, nodes, nil)
		copy(pkt[versionSize:], e[:])
		if _, err := nodes[0].key.Unwrap(pkt, nodes[0].rc); !errors.Is(err, ErrHeaderAuth) {
			t.Fatalf("low-order point %d: got %v, want ErrHeaderAuth", i, err)
		}
	}
}

// sealSlot builds a one-hop header around an arbitrary slot, bypassing the
// encoder's checks, to reach the decoder through an authentic header.
func sealSlot(t *testing.T, g Geometry, nd *testNode, slot []byte, seedN uint64) []byte {
	t.Helper()
	pub := nd.key.PublicKey()
	var seed [32]byte
	detRand(seedN).Read(seed[:])
	eph, err := NewMixKey(g, seed[:])
	if err != nil {
		t.Fatal(err)
	}
	ephPub := eph.PublicKey()
	dh, err := x25519(eph.priv, pub[:])
	if err != nil {
		t.Fatal(err)
	}
	var k hopKeys
	hs := staticHash(g, pub[:])
	if err := deriveHopKeys(&hs, ephPub[:], dh, &k); err != nil {
		t.Fatal(err)
	}
	pt := make([]byte, g.MaxHops*g.RoutingInfoSize)
	copy(pt, slot)
	pkt := make([]byte, g.PacketSize())
	pkt[0] = g.Version
	copy(pkt[versionSize:], ephPub[:])
	seal(&k, pkt[versionSize+ephemeralSize:versionSize+ephemeralSize], pt)
	return pkt
}

func TestMalformedRoutingInAuthenticHeader(t *testing.T) {
	g := DefaultGeometry()
	nodes := newTestNodes(t, g, 1, 45)
	for i, slot := range [][]byte{
		{},                        // no command at all
		{0x09},                    // unknown command
		{cmdDelay, 0, 0, 0, 1, 1}, // Delay alone, then junk
	} {
		pkt := sealSlot(t, g, nodes[0], slot, uint64(100+i))
		if _, err := nodes[0].key.Unwrap(pkt, nodes[0].rc); !errors.Is(err, ErrRouting) {
			t.Fatalf("slot %d: got %v, want ErrRouting", i, err)
		}
	}
	// A well-formed slot sealed the same way is accepted, so the cases
	// above fail for their routing commands alone.
	ok := make([]byte, g.RoutingInfoSize)
	if err := (&routing{deliver: true}).encode(ok); err != nil {
		t.Fatal(err)
	}
	pkt := sealSlot(t, g, nodes[0], ok, 99)
	if _, err := nodes[0].key.Unwrap(pkt, nodes[0].rc); !errors.Is(err, ErrPayloadAuth) {
		// The payload is all zeros rather than a LIONESS ciphertext, so the
		// header passes and the payload check is what fails.
		t.Fatalf("well-formed slot: got %v, want ErrPayloadAuth", err)
	}
}

func ExampleMixKey_Unwrap() {
	g := DefaultGeometry()
	rng := detRand(1) // use crypto/rand.Reader outside tests
	a, _ := GenerateMixKey(rng, g)
	b, _ := GenerateMixKey(rng, g)
	path := []Hop{
		{ID: NodeID{'a'}, PublicKey: a.PublicKey()},
		{ID: NodeID{'b'}, PublicKey: b.PublicKey()},
	}
	pkt, _ := NewPacket(rng, g, path, RecipientID{'b', 'o', 'b'}, []byte("hello"))

	rcA, _ := NewReplayCache(1, 1000)
	res, _ := a.Unwrap(pkt, rcA)
	fmt.Printf("hop a forwards %d bytes to %q\n", len(res.Packet), bytes.TrimRight(res.NextHop[:], "\x00"))

	rcB, _ := NewReplayCache(1, 1000)
	res, _ = b.Unwrap(res.Packet, rcB)
	fmt.Printf("hop b delivers %q to %q\n", bytes.TrimRight(res.Payload, "\x00"), bytes.TrimRight(res.Recipient[:], "\x00"))
	// Output:
	// hop a forwards 2577 bytes to "b"
	// hop b delivers "hello" to "bob"
}

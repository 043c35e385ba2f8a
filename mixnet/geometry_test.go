package mixnet

import (
	"errors"
	"testing"
)

// TestDefaultGeometry pins the published sizes (docs/packet.md) and the
// geometry hash: changing either is a change of wire format.
func TestDefaultGeometry(t *testing.T) {
	g := DefaultGeometry()
	if err := g.Validate(); err != nil {
		t.Fatal(err)
	}
	if g.MaxHops < 5 {
		t.Fatalf("MaxHops %d, want at least 5", g.MaxHops)
	}
	checks := []struct {
		name      string
		got, want int
	}{
		{"HeaderSize", g.HeaderSize(), 529},
		{"PacketSize", g.PacketSize(), 2577},
		{"MessageSize", g.MessageSize(), 2032},
		{"SURBSize", g.SURBSize(), 593},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d", c.name, c.got, c.want)
		}
	}
	if g.MessageSize() < 2000 {
		t.Errorf("MessageSize %d < 2000", g.MessageSize())
	}
	const wantHash = "914290eb43194818541c57dc24a64914dcf2d6c75f5f8f075315c923405e9dbc"
	if h := g.Hash().String(); h != wantHash {
		t.Errorf("Hash = %s, want %s", h, wantHash)
	}
}

func TestGeometryValidate(t *testing.T) {
	d := DefaultGeometry()
	bad := []func(*Geometry){
		func(g *Geometry) { g.Version = 0 },
		func(g *Geometry) { g.Version = 2 },
		func(g *Geometry) { g.MaxHops = 0 },
		func(g *Geometry) { g.MaxHops = maxMaxHops + 1 },
		func(g *Geometry) { g.RoutingInfoSize = minRoutingInfoSize - 1 },
		func(g *Geometry) { g.RoutingInfoSize = maxRoutingInfoSize + 1 },
		func(g *Geometry) { g.PayloadSize = minPayloadSize - 1 },
		func(g *Geometry) { g.PayloadSize = maxPayloadSize + 1 },
	}
	for i, f := range bad {
		g := d
		f(&g)
		if err := g.Validate(); !errors.Is(err, ErrInvalidGeometry) {
			t.Errorf("case %d (%+v): got %v, want ErrInvalidGeometry", i, g, err)
		}
		if g.Hash() == d.Hash() {
			t.Errorf("case %d: invalid geometry hashes like the default", i)
		}
		if _, err := g.MarshalBinary(); err == nil {
			t.Errorf("case %d: invalid geometry marshaled", i)
		}
	}
	// The extremes are valid and work end to end.
	for _, g := range []Geometry{
		{Version: VersionX25519, MaxHops: 1, RoutingInfoSize: minRoutingInfoSize, PayloadSize: minPayloadSize},
		{Version: VersionX25519, MaxHops: maxMaxHops, RoutingInfoSize: minRoutingInfoSize, PayloadSize: 4096},
	} {
		if err := g.Validate(); err != nil {
			t.Fatal(err)
		}
		nodes := newTestNodes(t, g, g.MaxHops, 80)
		msg := testMessage(g, 81)
		res := route(t, nodes, mustPacket(t, detRand(82), g, nodes, msg))
		equalMessage(t, res.Payload, msg)
	}
}

func TestGeometryEncoding(t *testing.T) {
	g := DefaultGeometry()
	b, err := g.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var g2 Geometry
	if err := g2.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if g2 != g {
		t.Fatalf("round trip gave %+v", g2)
	}
	for _, bad := range [][]byte{nil, b[:7], append(b, 0), {2, 5, 0, 96, 0, 0, 8, 0}} {
		if err := g2.UnmarshalBinary(bad); !errors.Is(err, ErrInvalidGeometry) {
			t.Fatalf("%x: got %v, want ErrInvalidGeometry", bad, err)
		}
	}
}

// TestGeometryPacketBound: a geometry is valid up to a packet of
// MaxPacketSize bytes, whatever the mix of header and payload, and invalid
// one byte past it, where a link frame would overflow its 2-byte length.
func TestGeometryPacketBound(t *testing.T) {
	if MaxPacketSize+17 != 65535 {
		t.Fatalf("MaxPacketSize %d: a frame of it is %d bytes, want 65,535", MaxPacketSize, MaxPacketSize+17)
	}
	for _, base := range []Geometry{
		{Version: VersionX25519, MaxHops: maxMaxHops, RoutingInfoSize: maxRoutingInfoSize},
		{Version: VersionX25519, MaxHops: 5, RoutingInfoSize: 96},
		{Version: VersionX25519, MaxHops: 1, RoutingInfoSize: minRoutingInfoSize},
	} {
		last := base
		last.PayloadSize = MaxPacketSize - base.HeaderSize()
		if err := last.Validate(); err != nil || last.PacketSize() != MaxPacketSize {
			t.Errorf("last valid geometry %v: %v", last, err)
		}
		first := last
		first.PayloadSize++
		if err := first.Validate(); !errors.Is(err, ErrInvalidGeometry) {
			t.Errorf("first invalid geometry %v: got %v, want ErrInvalidGeometry", first, err)
		}
		enc, _ := last.MarshalBinary()
		enc[len(enc)-1]++ // the same geometry as first, from the wire
		var g Geometry
		if err := g.UnmarshalBinary(enc); !errors.Is(err, ErrInvalidGeometry) {
			t.Errorf("decoded %v: got %v, want ErrInvalidGeometry", first, err)
		}
	}
	// The largest packet still works end to end (a 2-hop path, to keep the
	// test short; the header holds all 16 slots).
	g := Geometry{Version: VersionX25519, MaxHops: maxMaxHops, RoutingInfoSize: maxRoutingInfoSize}
	g.PayloadSize = MaxPacketSize - g.HeaderSize()
	nodes := newTestNodes(t, g, 2, 90)
	msg := testMessage(g, 91)
	res := route(t, nodes, mustPacket(t, detRand(92), g, nodes, msg))
	equalMessage(t, res.Payload, msg)
}

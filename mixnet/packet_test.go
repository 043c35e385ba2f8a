package mixnet

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestRoundTripAllPathLengths(t *testing.T) {
	g := DefaultGeometry()
	nodes := newTestNodes(t, g, g.MaxHops, 1)
	rng := detRand(2)
	for h := 1; h <= g.MaxHops; h++ {
		for _, msgLen := range []int{0, 1, 100, g.MessageSize()} {
			t.Run(fmt.Sprintf("hops=%d/len=%d", h, msgLen), func(t *testing.T) {
				msg := testMessage(g, uint64(h*1000+msgLen))[:msgLen]
				recipient := RecipientID{byte(h), byte(msgLen)}
				path := pathOf(nodes[:h], time.Duration(h)*time.Millisecond)
				pkt, err := NewPacket(rng, g, path, recipient, msg)
				if err != nil {
					t.Fatal(err)
				}
				if len(pkt) != g.PacketSize() {
					t.Fatalf("packet is %d bytes, want %d", len(pkt), g.PacketSize())
				}
				res := route(t, nodes[:h], pkt)
				if res.Recipient != recipient {
					t.Fatalf("recipient %x, want %x", res.Recipient, recipient)
				}
				if res.SURBReply {
					t.Fatal("forward packet delivered as a SURB reply")
				}
				if res.Delay != time.Duration(h)*time.Millisecond {
					t.Fatalf("final delay %v", res.Delay)
				}
				if len(res.Payload) != g.MessageSize() {
					t.Fatalf("payload is %d bytes, want %d", len(res.Payload), g.MessageSize())
				}
				equalMessage(t, res.Payload, msg)
			})
		}
	}
}

func TestDelaysReachEachHop(t *testing.T) {
	g := DefaultGeometry()
	nodes := newTestNodes(t, g, 4, 3)
	path := pathOf(nodes, 0)
	want := []time.Duration{0, 1500 * time.Microsecond, 2 * time.Second, MaxDelay}
	for i := range path {
		path[i].Delay = want[i]
	}
	pkt, err := NewPacket(detRand(4), g, path, RecipientID{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, nd := range nodes {
		res, err := nd.key.Unwrap(pkt, nd.rc)
		if err != nil {
			t.Fatal(err)
		}
		if res.Delay != want[i] {
			t.Fatalf("hop %d: delay %v, want %v", i, res.Delay, want[i])
		}
		pkt = res.Packet
	}
}

func TestNewPacketRejectsBadInput(t *testing.T) {
	g := DefaultGeometry()
	nodes := newTestNodes(t, g, g.MaxHops+1, 5)
	cases := []struct {
		name string
		path []Hop
		msg  []byte
		want error
	}{
		{"empty path", nil, nil, ErrPath},
		{"too many hops", pathOf(nodes, 0), nil, ErrPath},
		{"message too long", pathOf(nodes[:2], 0), make([]byte, g.MessageSize()+1), ErrMessageSize},
		{"negative delay", pathOf(nodes[:2], -time.Second), nil, ErrPath},
		{"delay too long", pathOf(nodes[:2], MaxDelay+time.Microsecond), nil, ErrPath},
		{"low-order key", []Hop{{PublicKey: [32]byte{}}}, nil, ErrInvalidKey},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := NewPacket(detRand(6), g, c.path, RecipientID{}, c.msg)
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
	if _, err := NewPacket(detRand(6), Geometry{}, pathOf(nodes[:1], 0), RecipientID{}, nil); !errors.Is(err, ErrInvalidGeometry) {
		t.Fatalf("zero geometry: got %v, want ErrInvalidGeometry", err)
	}
}

func TestPacketIsReproducible(t *testing.T) {
	g := DefaultGeometry()
	nodes := newTestNodes(t, g, 3, 7)
	msg := testMessage(g, 8)
	a := mustPacket(t, detRand(9), g, nodes, msg)
	b := mustPacket(t, detRand(9), g, nodes, msg)
	c := mustPacket(t, detRand(10), g, nodes, msg)
	if !bytes.Equal(a, b) {
		t.Fatal("same randomness gave different packets")
	}
	if bytes.Equal(a, c) {
		t.Fatal("different randomness gave the same packet")
	}
}

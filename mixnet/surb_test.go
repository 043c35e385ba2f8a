package mixnet

import (
	"bytes"
	"errors"
	"testing"
)

// surbSetup returns a 3-hop reply route whose last node is the creator's
// provider, a SURB for it and the creator's keys.
func surbSetup(t *testing.T, seed uint64) ([]*testNode, *SURB, *SURBKeys) {
	t.Helper()
	g := DefaultGeometry()
	nodes := newTestNodes(t, g, 3, seed)
	s, k, err := NewSURB(detRand(seed+1), g, pathOf(nodes, 0), RecipientID{'a', 'l', 'i', 'c', 'e'})
	if err != nil {
		t.Fatal(err)
	}
	return nodes, s, k
}

func TestSURBReplyReachesCreator(t *testing.T) {
	g := DefaultGeometry()
	nodes, s, keys := surbSetup(t, 50)
	if s.FirstHop != nodes[0].id {
		t.Fatal("SURB names the wrong first hop")
	}
	msg := []byte("delivered: message 7")
	pkt, err := s.NewReply(g, msg)
	if err != nil {
		t.Fatal(err)
	}
	res := route(t, nodes, pkt)
	if !res.SURBReply || res.SURBID != keys.ID {
		t.Fatalf("final hop sees SURBReply=%v id=%x, want the SURB's id %x", res.SURBReply, res.SURBID, keys.ID)
	}
	if res.Recipient != (RecipientID{'a', 'l', 'i', 'c', 'e'}) {
		t.Fatal("reply delivered to the wrong mailbox")
	}
	if bytes.Contains(res.Payload, msg) {
		t.Fatal("the final hop can read the reply")
	}
	got, err := keys.Open(res.Payload)
	if err != nil {
		t.Fatal(err)
	}
	equalMessage(t, got, msg)
}

func TestSURBOnlyCreatorKeysOpen(t *testing.T) {
	g := DefaultGeometry()
	nodes, s, keys := surbSetup(t, 52)
	_, _, otherKeys := surbSetup(t, 54)
	pkt, err := s.NewReply(g, []byte("for the creator"))
	if err != nil {
		t.Fatal(err)
	}
	res := route(t, nodes, pkt)
	payload := bytes.Clone(res.Payload)
	if _, err := otherKeys.Open(res.Payload); !errors.Is(err, ErrPayloadAuth) {
		t.Fatalf("another SURB's keys: got %v, want ErrPayloadAuth", err)
	}
	if !bytes.Equal(res.Payload, payload) {
		t.Fatal("a failed Open modified the payload")
	}
	if otherKeys.Used() {
		t.Fatal("a failed Open used up the keys")
	}
	if _, err := keys.Open(res.Payload); err != nil {
		t.Fatalf("creator's keys: %v", err)
	}
}

func TestSURBSingleUse(t *testing.T) {
	g := DefaultGeometry()
	nodes, s, keys := surbSetup(t, 56)
	first, err := s.NewReply(g, []byte("one"))
	if err != nil {
		t.Fatal(err)
	}
	second, err := s.NewReply(g, []byte("two"))
	if err != nil {
		t.Fatal(err)
	}
	res := route(t, nodes, first)
	if _, err := keys.Open(res.Payload); err != nil {
		t.Fatal(err)
	}
	// The network drops a second use at the first hop ...
	if _, err := nodes[0].key.Unwrap(second, nodes[0].rc); !errors.Is(err, ErrReplay) {
		t.Fatalf("second use of a SURB at the first hop: got %v, want ErrReplay", err)
	}
	// ... and the creator's keys open one reply only.
	if _, err := keys.Open(bytes.Clone(res.Payload)); !errors.Is(err, ErrSURBUsed) {
		t.Fatalf("second Open: got %v, want ErrSURBUsed", err)
	}
	if _, err := keys.MarshalBinary(); !errors.Is(err, ErrSURBUsed) {
		t.Fatalf("marshaling used keys: got %v, want ErrSURBUsed", err)
	}
}

func TestSURBReplyTamperCaughtByCreatorOnly(t *testing.T) {
	g := DefaultGeometry()
	nodes, s, keys := surbSetup(t, 58)
	pkt, err := s.NewReply(g, []byte("ack"))
	if err != nil {
		t.Fatal(err)
	}
	pkt[g.HeaderSize()+100] ^= 0x10
	res := route(t, nodes, pkt) // every hop, the final one too, accepts
	if _, err := keys.Open(res.Payload); !errors.Is(err, ErrPayloadAuth) {
		t.Fatalf("tampered reply: got %v, want ErrPayloadAuth", err)
	}
}

func TestSURBEncodings(t *testing.T) {
	g := DefaultGeometry()
	nodes, s, keys := surbSetup(t, 60)
	sb, err := s.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if len(sb) != g.SURBSize() {
		t.Fatalf("SURB is %d bytes, want %d", len(sb), g.SURBSize())
	}
	s2, err := UnmarshalSURB(g, sb)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := keys.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	keys2, err := UnmarshalSURBKeys(kb)
	if err != nil {
		t.Fatal(err)
	}
	pkt, err := s2.NewReply(g, []byte("via decoded SURB"))
	if err != nil {
		t.Fatal(err)
	}
	res := route(t, nodes, pkt)
	got, err := keys2.Open(res.Payload)
	if err != nil {
		t.Fatal(err)
	}
	equalMessage(t, got, []byte("via decoded SURB"))

	for _, b := range [][]byte{nil, sb[:len(sb)-1], append(bytes.Clone(sb), 0)} {
		if _, err := UnmarshalSURB(g, b); !errors.Is(err, ErrMalformed) {
			t.Fatalf("%d-byte SURB: got %v, want ErrMalformed", len(b), err)
		}
	}
	bad := bytes.Clone(sb)
	bad[64] = 0x7f
	if _, err := UnmarshalSURB(g, bad); !errors.Is(err, ErrUnsupportedVersion) {
		t.Fatalf("SURB with another version: got %v", err)
	}
	for _, b := range [][]byte{nil, kb[:16], kb[:len(kb)-1], append(bytes.Clone(kb), 0)} {
		if _, err := UnmarshalSURBKeys(b); !errors.Is(err, ErrMalformed) {
			t.Fatalf("%d-byte SURB keys: got %v, want ErrMalformed", len(b), err)
		}
	}
	zeroHops := bytes.Clone(kb)
	zeroHops[16] = 0
	if _, err := UnmarshalSURBKeys(zeroHops); !errors.Is(err, ErrMalformed) {
		t.Fatalf("SURB keys for 0 hops: got %v", err)
	}
}

func TestSURBRejectsBadInput(t *testing.T) {
	g := DefaultGeometry()
	if _, _, err := NewSURB(detRand(1), g, nil, RecipientID{}); !errors.Is(err, ErrPath) {
		t.Fatalf("empty path: got %v", err)
	}
	_, s, _ := surbSetup(t, 62)
	if _, err := s.NewReply(g, make([]byte, g.MessageSize()+1)); !errors.Is(err, ErrMessageSize) {
		t.Fatalf("long reply: got %v", err)
	}
	other := Geometry{Version: VersionX25519, MaxHops: 3, RoutingInfoSize: 96, PayloadSize: 1024}
	if _, err := s.NewReply(other, nil); !errors.Is(err, ErrMalformed) {
		t.Fatalf("reply with another geometry: got %v", err)
	}
}

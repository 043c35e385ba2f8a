package mixnet

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

func TestRoutingRoundTrip(t *testing.T) {
	r := DefaultGeometry().RoutingInfoSize
	cases := []routing{
		{next: true, nextHop: NodeID{1}, nextEph: [32]byte{2}, nextTag: [16]byte{3}},
		{next: true, nextHop: NodeID{1}, delayUS: 1},
		{deliver: true, recipient: RecipientID{4}},
		{deliver: true, recipient: RecipientID{4}, surb: true, surbID: SURBID{5}, delayUS: 1<<32 - 1},
	}
	for i, c := range cases {
		slot := make([]byte, r)
		if err := c.encode(slot); err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		var got routing
		if err := decodeRouting(slot, &got); err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		if got != c {
			t.Fatalf("case %d: decoded %+v, want %+v", i, got, c)
		}
		again := make([]byte, r)
		if err := got.encode(again); err != nil || !bytes.Equal(again, slot) {
			t.Fatalf("case %d: re-encoding differs", i)
		}
	}
	if d := (&routing{delayUS: 1500}).delay(); d != 1500*time.Microsecond {
		t.Fatalf("delay %v", d)
	}
}

func TestRoutingEncodeRejects(t *testing.T) {
	for i, c := range []routing{
		{},
		{next: true, deliver: true},
		{next: true, surb: true},
		{surb: true},
	} {
		if err := c.encode(make([]byte, 128)); !errors.Is(err, ErrRouting) {
			t.Fatalf("case %d: got %v, want ErrRouting", i, err)
		}
	}
	if err := (&routing{next: true, delayUS: 1}).encode(make([]byte, nextHopLen)); !errors.Is(err, ErrRouting) {
		t.Fatalf("short slot: got %v", err)
	}
}

func TestRoutingDecodeRejects(t *testing.T) {
	r := DefaultGeometry().RoutingInfoSize
	slot := func(b ...byte) []byte {
		s := make([]byte, r)
		copy(s, b)
		return s
	}
	deliver := append([]byte{cmdDeliver}, make([]byte, 32)...)
	cases := map[string][]byte{
		"empty":              slot(),
		"unknown":            slot(0x05),
		"delay only":         slot(cmdDelay, 0, 0, 0, 1),
		"zero delay":         slot(append(bytes.Clone(deliver), cmdDelay, 0, 0, 0, 0)...),
		"repeated":           slot(append(bytes.Clone(deliver), deliver...)...),
		"out of order":       slot(append([]byte{cmdSURBReply, 15: 0, 16: 0}, deliver...)...),
		"surb without dest":  slot(cmdSURBReply),
		"trailing garbage":   slot(append(bytes.Clone(deliver), 0, 1)...),
		"truncated":          append(make([]byte, r-10), cmdNextHop, 1, 2, 3, 4, 5, 6, 7, 8, 9),
		"next and deliver":   slot(append(append([]byte{cmdNextHop}, make([]byte, nextHopLen-1)...), deliver...)...),
		"truncated in delay": append(append(bytes.Clone(deliver), make([]byte, r-len(deliver)-3)...), cmdDelay, 1, 2),
	}
	for name, s := range cases {
		var rt routing
		if err := decodeRouting(s, &rt); !errors.Is(err, ErrRouting) {
			t.Errorf("%s: got %v, want ErrRouting", name, err)
		}
	}
}

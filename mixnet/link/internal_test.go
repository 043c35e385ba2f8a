package link

import (
	"bytes"
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/sealnet/sealnet/mixnet"
)

func pipePair(t *testing.T, cfgMod func(*Config)) (*Conn, *Conn) {
	t.Helper()
	g := mixnet.DefaultGeometry()
	ck, _ := GenerateKey(nil)
	sk, _ := GenerateKey(nil)
	cc, sc := Config{Geometry: g, Static: ck}, Config{Geometry: g, Static: sk}
	if cfgMod != nil {
		cfgMod(&cc)
		cfgMod(&sc)
	}
	a, b := net.Pipe()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ch := make(chan *Conn, 1)
	go func() {
		c, err := Server(ctx, b, sc, []Kind{KindPeer}, func(Kind, [32]byte, net.Addr) error { return nil })
		if err != nil {
			t.Error(err)
		}
		ch <- c
	}()
	d, err := Client(ctx, a, cc, KindPeer, [32]byte(sk.Public))
	if err != nil {
		t.Fatal(err)
	}
	l := <-ch
	if l == nil {
		t.FailNow()
	}
	t.Cleanup(func() { d.Close(); l.Close() })
	return d, l
}

// TestRekeyInSync: both directions rekey every rekeyFrames frames and stay
// in step; a receiver that missed a rekey cannot read on.
func TestRekeyInSync(t *testing.T) {
	old := rekeyFrames
	rekeyFrames = 3
	defer func() { rekeyFrames = old }()
	d, l := pipePair(t, nil)
	g := mixnet.DefaultGeometry()
	go func() {
		for i := range 20 {
			p := make([]byte, g.PacketSize())
			p[0] = byte(i)
			if i%4 == 3 {
				d.WritePadding()
			}
			d.WritePacket(p)
		}
	}()
	for i := range 20 {
		p, err := l.ReadPacket()
		if err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
		if p[0] != byte(i) {
			t.Fatalf("packet %d arrived as %d", i, p[0])
		}
	}
	// Desynchronise: an extra rekey on the receiving side only.
	l.recv.Rekey()
	go d.WritePacket(make([]byte, g.PacketSize()))
	if _, err := l.ReadPacket(); !errors.Is(err, ErrFrame) {
		t.Fatalf("after a one-sided rekey: got %v, want ErrFrame", err)
	}
}

func TestMaxFramesEndsSession(t *testing.T) {
	d, l := pipePair(t, func(c *Config) { c.MaxFrames = 2 })
	g := mixnet.DefaultGeometry()
	p := make([]byte, g.PacketSize())
	go func() {
		for range 2 {
			if _, err := l.ReadPacket(); err != nil {
				t.Error(err)
			}
		}
	}()
	for range 2 {
		if err := d.WritePacket(p); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.WritePacket(p); !errors.Is(err, ErrSessionExhausted) {
		t.Fatalf("third frame: got %v, want ErrSessionExhausted", err)
	}
	if !bytes.Equal(p, make([]byte, g.PacketSize())) {
		t.Fatal("WritePacket modified its input")
	}
}

package link_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sealnet/sealnet/internal/testkit/linktest"
	"github.com/sealnet/sealnet/mixnet"
	"github.com/sealnet/sealnet/mixnet/link"
)

// firstWrite remembers the first write on a connection: a dialer's
// handshake message 1, which an observer of the link could record.
type firstWrite struct {
	net.Conn
	mu    sync.Mutex
	first []byte
}

func (w *firstWrite) Write(p []byte) (int, error) {
	w.mu.Lock()
	if w.first == nil {
		w.first = bytes.Clone(p)
	}
	w.mu.Unlock()
	return w.Conn.Write(p)
}

// TestReplayedHandshakeCannotLockOut: an attacker who recorded one real
// Noise_IK message 1 of a peer (or of a user) replays it MaxConnsPerPeer+3
// times and keeps the connections open. Each replay is a valid message 1:
// it reaches the listener's authorization with the victim's key and is
// answered (the attack's control). Yet the victim still connects and
// passes a packet, because a link counts against a key only after its
// confirmation frame, which a replayer cannot produce; and the listener
// drops the replays within the handshake timeout.
func TestReplayedHandshakeCannotLockOut(t *testing.T) {
	const (
		maxPerPeer = 2
		replays    = maxPerPeer + 3
		hsTimeout  = 1500 * time.Millisecond
	)
	for _, kind := range []link.Kind{link.KindPeer, link.KindUser} {
		t.Run(kind.String(), func(t *testing.T) {
			t.Parallel()
			victim := linktest.Config(geo, "victim "+kind.String())
			victim.Rand = nil // real, fresh ephemeral keys
			victimKey := linktest.Public(victim.Static)
			var authorized atomic.Int32 // authorizations of the victim's key
			ln := listen(t)
			s := startServer(t, ln, "replayed "+kind.String(), []link.Kind{link.KindPeer, link.KindUser},
				func(_ link.Kind, key [32]byte) error {
					if key == victimKey {
						authorized.Add(1)
					}
					return nil
				}, func(l *link.Listener) {
					l.MaxConnsPerPeer = maxPerPeer
					l.Config.HandshakeTimeout = hsTimeout
				})
			addr, pub := ln.Addr().String(), linktest.Public(s.cfg.Static)

			// The victim's real link, seen by the attacker.
			nc, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			rec := &firstWrite{Conn: nc}
			c, err := link.Client(context.Background(), rec, victim, kind, pub)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.WritePacket(packet(1)); err != nil {
				t.Fatal(err)
			}
			s.expect(t, 1)
			c.Close()
			msg1 := rec.first
			if len(msg1) < 3 || msg1[0] != byte(kind) || int(binary.BigEndian.Uint16(msg1[1:]))+3 != len(msg1) {
				t.Fatalf("recorded %d bytes, not a whole message 1", len(msg1))
			}

			// The replays: each is answered with a message 2.
			var held []net.Conn
			defer func() {
				for _, r := range held {
					r.Close()
				}
			}()
			for i := range replays {
				r, err := net.Dial("tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				held = append(held, r)
				r.SetDeadline(time.Now().Add(5 * time.Second))
				if _, err := r.Write(msg1); err != nil {
					t.Fatal(err)
				}
				var hdr [2]byte
				if _, err := io.ReadFull(r, hdr[:]); err != nil {
					t.Fatalf("replay %d: no message 2: %v", i, err)
				}
				if _, err := io.ReadFull(r, make([]byte, binary.BigEndian.Uint16(hdr[:]))); err != nil {
					t.Fatalf("replay %d: %v", i, err)
				}
			}
			if n := authorized.Load(); n != 1+replays {
				t.Fatalf("control: the victim's key was authorized %d times, want %d (the replays must reach the per-key count)", n, 1+replays)
			}

			// The victim, while every replay is still open.
			start := time.Now()
			nc, err = net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			c, err = link.Client(context.Background(), nc, victim, kind, pub)
			if err != nil {
				t.Fatalf("after %d replays of its message 1, the victim's link: %v", replays, err)
			}
			defer c.Close()
			if err := c.WritePacket(packet(2)); err != nil {
				t.Fatal(err)
			}
			if got := s.expect(t, 1); !bytes.Equal(got[0], packet(2)) {
				t.Fatal("the victim's packet differs")
			}
			// The replays were all still waiting meanwhile.
			for i, r := range held {
				r.SetReadDeadline(time.Now().Add(time.Millisecond))
				_, err := r.Read(make([]byte, 1))
				if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
					t.Fatalf("replay %d was closed before the victim's link was up (%v): the test shows nothing", i, err)
				}
			}

			// The replays hold their connections no longer than the
			// handshake timeout: the listener closes each unconfirmed one.
			for i, r := range held {
				r.SetReadDeadline(time.Now().Add(hsTimeout + 3*time.Second))
				_, err := r.Read(make([]byte, 1))
				if ne, ok := err.(net.Error); err == nil || ok && ne.Timeout() {
					t.Fatalf("replay %d still open %v after its handshake began: %v", i, time.Since(start), err)
				}
			}
			// The listener counts a failure just after it closes.
			for i := 0; s.stats.HandshakesFailed.Load() < replays; i++ {
				if i == 200 {
					t.Fatalf("HandshakesFailed = %d, want at least %d", s.stats.HandshakesFailed.Load(), replays)
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
}

// TestConfirmationRequired: a dialer that completes message 1 but sends
// a confirmation frame that does not decrypt is dropped at once.
func TestConfirmationRequired(t *testing.T) {
	ln := listen(t)
	s := startServer(t, ln, "confirm", []link.Kind{link.KindPeer}, allowAll, nil)
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	rec := &firstWrite{Conn: nc}
	c, err := link.Client(context.Background(), rec, linktest.Config(geo, "confirmer"), link.KindPeer, linktest.Public(s.cfg.Static))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.WritePacket(packet(1)); err != nil {
		t.Fatal(err)
	}
	s.expect(t, 1) // the listener has served (and counted) the real link
	c.Close()
	r, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	r.SetDeadline(time.Now().Add(5 * time.Second))
	r.Write(rec.first)
	var hdr [2]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		t.Fatal(err)
	}
	io.ReadFull(r, make([]byte, binary.BigEndian.Uint16(hdr[:])))
	forged := make([]byte, 2+link.FrameSize(geo))
	binary.BigEndian.PutUint16(forged, uint16(link.FrameSize(geo)))
	start := time.Now()
	r.Write(forged)
	if _, err := r.Read(make([]byte, 1)); err == nil {
		t.Fatal("the listener wrote after a forged confirmation")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("a forged confirmation kept the connection open")
	}
	if time.Since(start) > 2*time.Second {
		t.Fatalf("dropped after %v", time.Since(start))
	}
	// It counts as a failed handshake, never as a link.
	for i := 0; s.stats.HandshakesFailed.Load() < 1; i++ {
		if i == 200 {
			t.Fatal("the forged confirmation was not counted as a failed handshake")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := s.stats.HandshakesOK.Load(); n != 1 {
		t.Fatalf("HandshakesOK = %d, want 1 (the real link only)", n)
	}
}

// TestLargestGeometryLink: a link works at the largest valid geometry,
// whose frames are exactly 65,535 bytes; one payload byte more is an
// invalid geometry, which both ends refuse before any handshake (its frame
// length would wrap to 0).
func TestLargestGeometryLink(t *testing.T) {
	g := mixnet.Geometry{Version: mixnet.VersionX25519, MaxHops: 16, RoutingInfoSize: 1024}
	g.PayloadSize = mixnet.MaxPacketSize - g.HeaderSize()
	if err := g.Validate(); err != nil {
		t.Fatal(err)
	}
	if link.FrameSize(g) != 65535 {
		t.Fatalf("FrameSize %d, want 65,535", link.FrameSize(g))
	}
	s, err := linktest.Pair(g, link.KindPeer, "largest")
	if err != nil {
		t.Fatal(err)
	}
	pkt := bytes.Repeat([]byte{0xa5, 0x5a, 0x01}, g.PacketSize()/3+1)[:g.PacketSize()]
	go func() {
		s.Dialer.WritePadding()
		s.Dialer.WritePacket(pkt)
	}()
	got, err := s.Listener.ReadPacket()
	s.Close()
	if err != nil || !bytes.Equal(got, pkt) {
		t.Fatalf("packet at the largest geometry: %d bytes, %v", len(got), err)
	}

	over := g
	over.PayloadSize++
	a, b := net.Pipe()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	lcfg := linktest.Config(over, "too large listener")
	type result struct {
		c   *link.Conn
		err error
	}
	lres := make(chan result, 1)
	go func() {
		c, err := link.Server(ctx, b, lcfg, []link.Kind{link.KindPeer}, func(link.Kind, [32]byte, net.Addr) error { return nil })
		lres <- result{c, err}
	}()
	d, derr := link.Client(ctx, a, linktest.Config(over, "too large dialer"), link.KindPeer, linktest.Public(lcfg.Static))
	l := <-lres
	if derr == nil && l.err == nil {
		go d.WritePacket(make([]byte, over.PacketSize()))
		_, rerr := l.c.ReadPacket()
		d.Close()
		l.c.Close()
		t.Fatalf("a link with %d-byte frames was set up; a packet on it: %v", link.FrameSize(over), rerr)
	}
	for side, err := range map[string]error{"dialer": derr, "listener": l.err} {
		if !errors.Is(err, mixnet.ErrInvalidGeometry) {
			t.Errorf("%s with an oversized geometry: got %v, want ErrInvalidGeometry", side, err)
		}
	}
}

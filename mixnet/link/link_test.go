package link_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sealnet/sealnet/internal/testkit/linktest"
	"github.com/sealnet/sealnet/mixnet"
	"github.com/sealnet/sealnet/mixnet/link"
)

var geo = mixnet.DefaultGeometry()

func packet(i int) []byte {
	p := make([]byte, geo.PacketSize())
	binary.BigEndian.PutUint32(p, uint32(i))
	p[len(p)-1] = byte(i)
	return p
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// server runs a Listener on ln until the test ends, delivering packets to
// the returned channel.
type server struct {
	cfg   link.Config
	stats *link.Stats
	pkts  chan []byte
	stop  func()
}

func startServer(t *testing.T, ln net.Listener, seed string, kinds []link.Kind, allow func(link.Kind, [32]byte) error, mod func(*link.Listener)) *server {
	t.Helper()
	s := &server{cfg: linktest.Config(geo, seed), stats: new(link.Stats), pkts: make(chan []byte, 4096)}
	s.cfg.Stats = s.stats
	l := &link.Listener{
		Config: s.cfg,
		Kinds:  kinds,
		Authorize: func(k link.Kind, key [32]byte, _ net.Addr) error {
			return allow(k, key)
		},
		Handle: func(ctx context.Context, c *link.Conn) {
			for {
				p, err := c.ReadPacket()
				if err != nil {
					return
				}
				s.pkts <- bytes.Clone(p)
			}
		},
	}
	if mod != nil {
		mod(l)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		l.Serve(ctx, ln)
	}()
	var once sync.Once
	s.stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(s.stop)
	return s
}

func allowAll(link.Kind, [32]byte) error { return nil }

func (s *server) expect(t *testing.T, n int) [][]byte {
	t.Helper()
	var got [][]byte
	timeout := time.After(10 * time.Second)
	for len(got) < n {
		select {
		case p := <-s.pkts:
			got = append(got, p)
		case <-timeout:
			t.Fatalf("received %d of %d packets", len(got), n)
		}
	}
	return got
}

func runOutbound(t *testing.T, o *link.Outbound) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); o.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

func TestPeerLinkCarriesPackets(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // runs after the other cleanups
	ln := listen(t)
	dialer := linktest.Config(geo, "dialer")
	want := linktest.Public(dialer.Static)
	var seen [32]byte
	var mu sync.Mutex
	s := startServer(t, ln, "listener", []link.Kind{link.KindPeer}, func(k link.Kind, key [32]byte) error {
		mu.Lock()
		seen = key
		mu.Unlock()
		if key != want {
			return link.ErrUnauthorized
		}
		return nil
	}, nil)
	o := link.NewOutbound(dialer, link.KindPeer, ln.Addr().String(), linktest.Public(s.cfg.Static), link.OutboundOptions{})
	runOutbound(t, o)
	for i := range 200 {
		if err := o.Send(packet(i)); err != nil {
			t.Fatal(err)
		}
	}
	for i, p := range s.expect(t, 200) {
		if !bytes.Equal(p, packet(i)) {
			t.Fatalf("packet %d differs or is out of order", i)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if seen != want {
		t.Fatal("listener did not learn the dialer's key")
	}
}

func TestClientLinkIsAnonymous(t *testing.T) {
	ln := listen(t)
	var gotKey [32]byte
	s := startServer(t, ln, "entry", []link.Kind{link.KindClient}, func(k link.Kind, key [32]byte) error {
		gotKey = key
		if k != link.KindClient {
			return link.ErrUnauthorized
		}
		return nil
	}, nil)
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c, err := link.Client(context.Background(), nc, link.Config{Geometry: geo}, link.KindClient, linktest.Public(s.cfg.Static))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := range 10 {
		if err := c.WritePacket(packet(i)); err != nil {
			t.Fatal(err)
		}
	}
	s.expect(t, 10)
	if gotKey != ([32]byte{}) {
		t.Fatal("a client link revealed a static key")
	}
}

func dialErr(t *testing.T, addr string, cfg link.Config, kind link.Kind, peer [32]byte) error {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c, err := link.Client(context.Background(), nc, cfg, kind, peer)
	if err == nil {
		c.Close()
	}
	return err
}

func TestRefusals(t *testing.T) {
	ln := listen(t)
	s := startServer(t, ln, "relay", []link.Kind{link.KindPeer}, func(k link.Kind, key [32]byte) error {
		return link.ErrUnauthorized // nobody is in the directory
	}, nil)
	addr, pub := ln.Addr().String(), linktest.Public(s.cfg.Static)

	err := dialErr(t, addr, linktest.Config(geo, "stranger"), link.KindPeer, pub)
	if !errors.Is(err, link.ErrRefused) || !errors.Is(err, link.ErrUnauthorized) {
		t.Fatalf("key not in the directory: got %v", err)
	}
	err = dialErr(t, addr, linktest.Config(geo, "stranger"), link.KindPeer, linktest.Public(linktest.Key("not the relay")))
	if !errors.Is(err, link.ErrHandshake) {
		t.Fatalf("wrong pinned key: got %v", err)
	}
	err = dialErr(t, addr, link.Config{Geometry: geo}, link.KindClient, pub)
	if !errors.Is(err, link.ErrHandshake) {
		t.Fatalf("client link to a peer-only listener: got %v", err)
	}
	// Same packet size, other geometry: refused by name.
	other := mixnet.Geometry{Version: 1, MaxHops: 4, RoutingInfoSize: 120, PayloadSize: geo.PayloadSize}
	ln2 := listen(t)
	s2 := startServer(t, ln2, "relay2", []link.Kind{link.KindPeer}, allowAll, nil)
	cfg := linktest.Config(other, "other geometry")
	err = dialErr(t, ln2.Addr().String(), cfg, link.KindPeer, linktest.Public(s2.cfg.Static))
	if !errors.Is(err, link.ErrGeometry) {
		t.Fatalf("geometry mismatch: got %v", err)
	}
	if n := s.stats.HandshakesFailed.Load(); n < 3 {
		t.Fatalf("listener counted %d failed handshakes, want 3", n)
	}
}

// TestUniformFrames: after the handshake the dialer's byte stream is a run
// of identical-size records, packets and padding alike.
func TestUniformFrames(t *testing.T) {
	s, err := linktest.Pair(geo, link.KindPeer, "uniform")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	go func() {
		for {
			if _, err := s.Listener.ReadPacket(); err != nil {
				return
			}
		}
	}()
	for i := range 6 {
		if i%2 == 0 {
			err = s.Dialer.WritePadding()
		} else {
			err = s.Dialer.WritePacket(packet(i))
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	stream := s.Sent()
	rec := 2 + link.FrameSize(geo)
	if len(stream) != 6*rec {
		t.Fatalf("stream of %d bytes, want 6 records of %d", len(stream), rec)
	}
	for i := 0; i < len(stream); i += rec {
		if n := int(binary.BigEndian.Uint16(stream[i:])); n != link.FrameSize(geo) {
			t.Fatalf("record %d announces %d bytes", i/rec, n)
		}
	}
	if link.FrameSize(geo) != geo.PacketSize()+17 {
		t.Fatalf("frame size %d", link.FrameSize(geo))
	}
}

// replaySession builds the deterministic session for seed and writes raw
// bytes into its listener, returning what ReadPacket makes of them.
func readRaw(t testing.TB, seed string, raw []byte, max int) ([][]byte, error) {
	s, err := linktest.Pair(geo, link.KindPeer, seed)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	go func() {
		s.DialerRaw.Write(raw)
		s.DialerRaw.Close()
	}()
	var got [][]byte
	for range max {
		p, err := s.Listener.ReadPacket()
		if err != nil {
			return got, err
		}
		got = append(got, bytes.Clone(p))
	}
	return got, nil
}

func recordStream(t testing.TB, seed string, write func(c *link.Conn) error) []byte {
	s, err := linktest.Pair(geo, link.KindPeer, seed)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	go io.Copy(io.Discard, readerOf(s.Listener))
	if err := write(s.Dialer); err != nil {
		t.Fatal(err)
	}
	return s.Sent()
}

// readerOf drains a link so the pipe never blocks the writer.
type connReader struct{ c *link.Conn }

func (r connReader) Read(p []byte) (int, error) {
	if _, err := r.c.ReadPacket(); err != nil {
		return 0, err
	}
	return 0, nil
}

func readerOf(c *link.Conn) io.Reader { return connReader{c} }

func TestBadFrames(t *testing.T) {
	valid := recordStream(t, "frames", func(c *link.Conn) error { return c.WritePacket(packet(7)) })
	got, err := readRaw(t, "frames", valid, 1)
	if err != nil || len(got) != 1 || !bytes.Equal(got[0], packet(7)) {
		t.Fatalf("control: valid stream read as %d packets, %v", len(got), err)
	}
	for name, raw := range map[string][]byte{
		"flipped body byte": func() []byte { b := bytes.Clone(valid); b[100] ^= 1; return b }(),
		"flipped tag byte":  func() []byte { b := bytes.Clone(valid); b[len(b)-1] ^= 1; return b }(),
		"length one more":   func() []byte { b := bytes.Clone(valid); b[1]++; return b }(),
		"length 65535":      {0xff, 0xff},
		"length zero":       {0, 0},
	} {
		start := time.Now()
		_, err := readRaw(t, "frames", raw, 1)
		if !errors.Is(err, link.ErrFrame) {
			t.Fatalf("%s: got %v, want ErrFrame", name, err)
		}
		if time.Since(start) > 2*time.Second {
			t.Fatalf("%s: the reader waited for a body it should have refused", name)
		}
	}
}

func TestPaddingWhenIdle(t *testing.T) {
	ln := listen(t)
	s := startServer(t, ln, "padded", []link.Kind{link.KindPeer}, allowAll, nil)
	dcfg := linktest.Config(geo, "padder")
	dstats := new(link.Stats)
	dcfg.Stats = dstats
	o := link.NewOutbound(dcfg, link.KindPeer, ln.Addr().String(), linktest.Public(s.cfg.Static), link.OutboundOptions{Padding: 5 * time.Millisecond})
	runOutbound(t, o)
	deadline := time.Now().Add(5 * time.Second)
	for s.stats.PaddingIn.Load() < 10 {
		if time.Now().After(deadline) {
			t.Fatalf("only %d padding frames arrived", s.stats.PaddingIn.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	o.Send(packet(1))
	if got := s.expect(t, 1); !bytes.Equal(got[0], packet(1)) {
		t.Fatal("packet after padding differs")
	}
	if dstats.PaddingOut.Load() < 10 {
		t.Fatal("dialer did not count its padding")
	}
}

// TestSessionRenewal: a session ends at MaxFrames and the Outbound starts a
// fresh handshake; no packet is lost in the change.
func TestSessionRenewal(t *testing.T) {
	ln := listen(t)
	s := startServer(t, ln, "renew", []link.Kind{link.KindPeer}, allowAll, func(l *link.Listener) { l.Config.MaxFrames = 5 })
	dcfg := linktest.Config(geo, "renewer")
	dcfg.MaxFrames = 5
	dstats := new(link.Stats)
	dcfg.Stats = dstats
	o := link.NewOutbound(dcfg, link.KindPeer, ln.Addr().String(), linktest.Public(s.cfg.Static), link.OutboundOptions{})
	runOutbound(t, o)
	for i := range 23 {
		o.Send(packet(i))
	}
	// Each session is read by its own goroutine, so order across a change
	// of session is not kept (a mix network does not need it); every packet
	// arrives exactly once.
	seen := make(map[uint32]bool)
	for _, p := range s.expect(t, 23) {
		i := binary.BigEndian.Uint32(p)
		if i >= 23 || seen[i] || !bytes.Equal(p, packet(int(i))) {
			t.Fatalf("unexpected or repeated packet %d", i)
		}
		seen[i] = true
	}
	if n := dstats.HandshakesOK.Load(); n < 5 {
		t.Fatalf("%d handshakes for 23 frames at 5 per session", n)
	}
	if dstats.Sessions.Load() < 4 {
		t.Fatalf("%d sessions renewed", dstats.Sessions.Load())
	}
}

func TestConnectionCaps(t *testing.T) {
	ln := listen(t)
	block := make(chan struct{})
	defer close(block)
	entered := make(chan struct{}, 8)
	s := startServer(t, ln, "capped", []link.Kind{link.KindPeer, link.KindClient}, allowAll, func(l *link.Listener) {
		l.MaxConns = 3
		l.MaxConnsPerPeer = 1
		l.Handle = func(ctx context.Context, c *link.Conn) {
			entered <- struct{}{}
			select {
			case <-ctx.Done():
			case <-block:
			}
		}
	})
	addr, pub := ln.Addr().String(), linktest.Public(s.cfg.Static)
	same := linktest.Config(geo, "same peer")
	var open []*link.Conn
	defer func() {
		for _, c := range open {
			c.Close()
		}
	}()
	dial := func(cfg link.Config, kind link.Kind) error {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c, err := link.Client(context.Background(), nc, cfg, kind, pub)
		if err == nil {
			open = append(open, c)
			// A link counts against its key once the listener has read
			// its confirmation frame, just after Client returns: wait
			// for that, so the next dial meets the cap deterministically.
			select {
			case <-entered:
			case <-time.After(5 * time.Second):
				t.Fatal("the listener never served an established link")
			}
		}
		return err
	}
	if err := dial(same, link.KindPeer); err != nil {
		t.Fatal(err)
	}
	if err := dial(same, link.KindPeer); !errors.Is(err, link.ErrTooManyConns) {
		t.Fatalf("second link from one peer: got %v, want ErrTooManyConns", err)
	}
	// The refused connection's place under MaxConns is free once the
	// listener has counted the failure.
	for i := 0; s.stats.HandshakesFailed.Load() < 1; i++ {
		if i == 500 {
			t.Fatal("the refused handshake was never counted")
		}
		time.Sleep(time.Millisecond)
	}
	if err := dial(linktest.Config(geo, "other peer"), link.KindPeer); err != nil {
		t.Fatal(err)
	}
	if err := dial(link.Config{Geometry: geo}, link.KindClient); err != nil {
		t.Fatal(err)
	}
	// Three links are up: the fourth is closed before its handshake.
	if err := dial(linktest.Config(geo, "fourth"), link.KindPeer); !errors.Is(err, link.ErrHandshake) {
		t.Fatalf("fourth link: got %v", err)
	}
	if s.stats.ConnsRefused.Load() != 1 {
		t.Fatalf("ConnsRefused = %d", s.stats.ConnsRefused.Load())
	}
}

func TestHandshakeTimeout(t *testing.T) {
	ln := listen(t)
	startServer(t, ln, "impatient", []link.Kind{link.KindPeer}, allowAll, func(l *link.Listener) {
		l.Config.HandshakeTimeout = 100 * time.Millisecond
	})
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	if _, err := nc.Read(make([]byte, 1)); err == nil {
		t.Fatal("silent connection got data")
	}
	if time.Since(start) > 3*time.Second {
		t.Fatal("a silent connection was held past the handshake timeout")
	}
}

func TestOutboundQueueBounded(t *testing.T) {
	cfg := linktest.Config(geo, "queue")
	stats := new(link.Stats)
	cfg.Stats = stats
	o := link.NewOutbound(cfg, link.KindPeer, "127.0.0.1:1", [32]byte{}, link.OutboundOptions{QueueLen: 2})
	o.Send(packet(1))
	o.Send(packet(2))
	if err := o.Send(packet(3)); !errors.Is(err, link.ErrQueueFull) {
		t.Fatalf("third packet: got %v, want ErrQueueFull", err)
	}
	if stats.Dropped.Load() != 1 || o.Queued() != 2 {
		t.Fatalf("dropped %d, queued %d", stats.Dropped.Load(), o.Queued())
	}
}

// TestOutboundRedials: the listener goes away and comes back on the same
// address; queued packets reach the new one.
func TestOutboundRedials(t *testing.T) {
	ln := listen(t)
	addr := ln.Addr().String()
	s := startServer(t, ln, "flaky", []link.Kind{link.KindPeer}, allowAll, nil)
	o := link.NewOutbound(linktest.Config(geo, "persistent"), link.KindPeer, addr, linktest.Public(s.cfg.Static), link.OutboundOptions{})
	runOutbound(t, o)
	o.Send(packet(1))
	s.expect(t, 1)
	s.stop()
	// The outbound notices the closed link at once (it watches for EOF),
	// so what it sends from now on waits for the next listener.
	time.Sleep(100 * time.Millisecond)
	ln2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot reuse %s: %v", addr, err)
	}
	s2 := startServer(t, ln2, "flaky", []link.Kind{link.KindPeer}, allowAll, nil)
	for i := 2; i < 12; i++ {
		o.Send(packet(i))
	}
	got := s2.expect(t, 10)
	for i, p := range got {
		if !bytes.Equal(p, packet(i+2)) {
			t.Fatalf("packet %d after redial differs", i+2)
		}
	}
}

// TestShutdownLeavesNoGoroutine: Serve and Run return on cancel, with links
// up, and every goroutine they started is gone.
func TestShutdownLeavesNoGoroutine(t *testing.T) {
	defer goleak.VerifyNone(t)
	ln := listen(t)
	s := startServer(t, ln, "shutdown", []link.Kind{link.KindPeer}, allowAll, nil)
	o := link.NewOutbound(linktest.Config(geo, "d"), link.KindPeer, ln.Addr().String(), linktest.Public(s.cfg.Static), link.OutboundOptions{Padding: time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); o.Run(ctx) }()
	o.Send(packet(1))
	s.expect(t, 1)
	cancel()
	<-done
	s.stop()
}

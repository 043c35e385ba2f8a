package link_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/sealnet/sealnet/internal/testkit/fuzzcheck"
	"github.com/sealnet/sealnet/internal/testkit/linktest"
	"github.com/sealnet/sealnet/mixnet/link"
)

// Seeds shared with internal/cmd/testdatagen, which writes the corpora.
const (
	fuzzFrameSeed     = "fuzz frames"
	fuzzHandshakeSeed = "fuzz handshake"
)

// FuzzFrames feeds an established link's listener arbitrary bytes as the
// stream from the dialer. Every packet it yields has the packet size; every
// failure is a frame error or the end of the stream. The corpus holds real
// streams of the deterministic session, so the fuzzer starts past the
// length and authentication checks.
func FuzzFrames(f *testing.F) {
	fuzzcheck.RequireCorpus(f)
	f.Fuzz(func(t *testing.T, stream []byte) {
		max := len(stream)/(2+link.FrameSize(geo)) + 1
		got, err := readRaw(t, fuzzFrameSeed, stream, max)
		for _, p := range got {
			if len(p) != geo.PacketSize() {
				t.Fatalf("packet of %d bytes", len(p))
			}
		}
		if err != nil && !errors.Is(err, link.ErrFrame) && !errors.Is(err, io.EOF) &&
			!errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.ErrClosedPipe) {
			t.Fatalf("unexpected error: %v", err)
		}
	})
}

func TestFuzzFramesCorpusIsValid(t *testing.T) {
	raw, err := fuzzcheck.ReadBytesSeed("FuzzFrames", "packet-padding-packet")
	if err != nil {
		t.Fatal(err)
	}
	got, err := readRaw(t, fuzzFrameSeed, raw, 2)
	if err != nil || len(got) != 2 {
		t.Fatalf("corpus stream gave %d packets, %v", len(got), err)
	}
}

// FuzzHandshake feeds a listener arbitrary bytes as a dialer's handshake
// (message 1, then the confirmation frame). Every input ends within the
// handshake timeout, never hangs or panics, and ends in success exactly
// when it begins with one of the corpus's real handshakes (the "peer" and
// "client" seeds: the listener's ephemeral key is deterministic, so a
// recorded confirmation frame decrypts again); any other input fails with
// ErrHandshake.
func FuzzHandshake(f *testing.F) {
	fuzzcheck.RequireCorpus(f)
	var real [][]byte
	for _, name := range []string{"peer", "client"} {
		b, err := fuzzcheck.ReadBytesSeed("FuzzHandshake", name)
		if err != nil {
			f.Fatal(err)
		}
		real = append(real, b)
	}
	const timeout = 200 * time.Millisecond
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { ln.Close() })
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		dc := d.(*net.TCPConn)
		dc.SetLinger(0) // no TIME_WAIT per input
		defer dc.Close()
		b, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		// The dialer's side writes the input and then half-closes, while
		// it takes whatever the listener answers. A short input so ends in
		// EOF at once rather than at the deadline (TestHandshakeTimeout
		// covers a silent dialer), which keeps the fuzzer and its
		// minimizer fast.
		go func() {
			dc.Write(data)
			dc.CloseWrite()
		}()
		go io.Copy(io.Discard, dc)
		cfg := linktest.Config(geo, fuzzHandshakeSeed+" listener")
		cfg.HandshakeTimeout = timeout
		type result struct {
			c   *link.Conn
			err error
		}
		done := make(chan result, 1)
		start := time.Now()
		go func() {
			c, err := link.Server(context.Background(), b, cfg, []link.Kind{link.KindPeer, link.KindClient},
				func(link.Kind, [32]byte, net.Addr) error { return nil })
			done <- result{c, err}
		}()
		var r result
		select {
		case r = <-done:
		case <-time.After(timeout + 2*time.Second):
			b.Close()
			t.Fatalf("no result %v after the start; the handshake timeout is %v", time.Since(start), timeout)
		}
		isReal := slices.ContainsFunc(real, func(h []byte) bool { return bytes.HasPrefix(data, h) })
		switch {
		case r.err == nil:
			r.c.Close()
			if !isReal {
				t.Fatal("a handshake that is not a recorded one succeeded")
			}
		case isReal:
			t.Fatalf("a recorded real handshake failed: %v", r.err)
		case !errors.Is(r.err, link.ErrHandshake):
			t.Fatalf("error without ErrHandshake: %v", r.err)
		}
	})
}

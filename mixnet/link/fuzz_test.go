package link_test

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/sealnet/sealnet/internal/fuzzcheck"
	"github.com/sealnet/sealnet/internal/linktest"
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

// FuzzHandshake feeds a listener arbitrary bytes as a dialer's handshake.
// It must fail with a handshake error (or succeed, for the corpus's real
// handshake) within the handshake timeout, never panic.
func FuzzHandshake(f *testing.F) {
	fuzzcheck.RequireCorpus(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		a, b := net.Pipe()
		defer a.Close()
		go func() {
			a.Write(data)
			io.Copy(io.Discard, a)
		}()
		cfg := linktest.Config(geo, fuzzHandshakeSeed+" listener")
		cfg.HandshakeTimeout = 200 * time.Millisecond
		c, err := link.Server(context.Background(), b, cfg, []link.Kind{link.KindPeer, link.KindClient},
			func(link.Kind, [32]byte, net.Addr) error { return nil })
		if err == nil {
			c.Close()
			return
		}
		b.Close()
	})
}

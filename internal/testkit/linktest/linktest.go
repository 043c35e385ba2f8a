// Package linktest builds deterministic link pairs for tests and for the
// generator of the link fuzz corpora, which must agree on every key.
package linktest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"time"

	"github.com/flynn/noise"

	"github.com/sealnet/sealnet/mixnet"
	"github.com/sealnet/sealnet/mixnet/link"
)

// Rand returns a deterministic reader for seed.
func Rand(seed string) *rand.ChaCha8 { return rand.NewChaCha8(sha256.Sum256([]byte(seed))) }

// Key returns a deterministic link key pair.
func Key(seed string) noise.DHKey {
	k, err := link.GenerateKey(Rand("key " + seed))
	if err != nil {
		panic(err) // a ChaCha8 reader never fails
	}
	return k
}

// Config returns a link configuration with a deterministic key and
// handshake randomness.
func Config(g mixnet.Geometry, seed string) link.Config {
	return link.Config{Geometry: g, Static: Key(seed), Rand: Rand("handshake " + seed)}
}

// Public returns the public half of a key as an array.
func Public(k noise.DHKey) [32]byte { return [32]byte(k.Public) }

// Session is a link over net.Pipe whose every byte is derived from a seed:
// two sessions with the same seed are byte-identical.
type Session struct {
	Dialer, Listener *link.Conn
	// DialerRaw is the dialing end's pipe, for writing arbitrary bytes to
	// the listener as if the dialer had sent them.
	DialerRaw net.Conn
	// Handshake holds the bytes the dialer sent during the handshake.
	Handshake []byte
	rec       *recorder
}

// Sent returns the bytes the dialer has written since the handshake.
func (s *Session) Sent() []byte { return s.rec.since(len(s.Handshake)) }

// Close closes both ends.
func (s *Session) Close() {
	s.Dialer.Close()
	s.Listener.Close()
}

type recorder struct {
	net.Conn
	mu  sync.Mutex
	buf bytes.Buffer
}

func (r *recorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	r.buf.Write(p)
	r.mu.Unlock()
	return r.Conn.Write(p)
}

func (r *recorder) since(off int) []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return bytes.Clone(r.buf.Bytes()[off:])
}

// Pair returns a session of the given kind.
func Pair(g mixnet.Geometry, kind link.Kind, seed string) (*Session, error) {
	a, b := net.Pipe()
	rec := &recorder{Conn: a}
	cc := Config(g, seed+" dialer")
	sc := Config(g, seed+" listener")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	type res struct {
		c   *link.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := link.Server(ctx, b, sc, []link.Kind{kind}, func(link.Kind, [32]byte, net.Addr) error { return nil })
		ch <- res{c, err}
	}()
	d, derr := link.Client(ctx, rec, cc, kind, Public(sc.Static))
	r := <-ch
	if derr != nil || r.err != nil {
		a.Close()
		b.Close()
		return nil, fmt.Errorf("linktest: handshake: dialer %v, listener %v", derr, r.err)
	}
	return &Session{Dialer: d, Listener: r.c, DialerRaw: a, Handshake: rec.since(0), rec: rec}, nil
}

package link

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"syscall"
	"time"
)

// Listener accepts links, enforces connection caps, runs the handshakes and
// hands each established link to Handle on its own goroutine. Serve owns
// every goroutine it starts and returns only after all of them are done.
type Listener struct {
	Config Config
	// Kinds of link accepted.
	Kinds []Kind
	// Authorize approves each handshaking peer (required).
	Authorize Authorizer
	// MaxConns caps established and handshaking links together. Default 1024.
	MaxConns int
	// MaxConnsPerPeer caps established links per static key (peer and
	// user links) or per remote IP (client links). Default 4. A link
	// counts against its key only once Server has returned it, that is
	// after the dialer's confirmation frame proved the handshake fresh: a
	// replayed first message carries a real key but never gets that far,
	// so replays cannot fill a key's slots and lock its owner out. Until
	// then a connection counts only against MaxConns, for at most the
	// handshake timeout.
	MaxConnsPerPeer int
	// Handle serves one link; the link is closed when Handle returns. It
	// must return when ctx is done.
	Handle func(ctx context.Context, c *Conn)
	// Logger for refused and failed links; nil discards.
	Logger *slog.Logger

	mu      sync.Mutex
	total   int
	perPeer map[string]int
	conns   map[net.Conn]struct{}
}

// Serve accepts on ln until ctx is done, then closes ln and every link and
// waits for their goroutines. It returns early only if ln fails for good:
// running out of file descriptors or buffers only pauses accepting (with
// backoff, up to 1 s), so that a flood cannot end the accept loop.
func (l *Listener) Serve(ctx context.Context, ln net.Listener) error {
	if l.MaxConns <= 0 {
		l.MaxConns = 1024
	}
	if l.MaxConnsPerPeer <= 0 {
		l.MaxConnsPerPeer = 4
	}
	if l.Config.Stats == nil {
		l.Config.Stats = new(Stats)
	}
	log := l.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	l.mu.Lock()
	l.perPeer = make(map[string]int)
	l.conns = make(map[net.Conn]struct{})
	l.mu.Unlock()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	stop := context.AfterFunc(ctx, func() {
		ln.Close()
		l.mu.Lock()
		for c := range l.conns {
			c.Close()
		}
		l.mu.Unlock()
	})
	defer stop()

	var err error
	var backoff time.Duration
	for {
		var nc net.Conn
		nc, err = ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				err = ctx.Err()
				break
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			if exhausted(err) {
				// Out of file descriptors or buffers (a flood, a low
				// ulimit): the accept loop must outlive it. Wait as
				// net/http does, 5 ms doubling to 1 s, and accept again.
				if backoff == 0 {
					log.Warn("link listener: cannot accept, retrying until it can", "err", err)
				}
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				select {
				case <-ctx.Done():
				case <-time.After(backoff):
				}
				continue
			}
			break
		}
		backoff = 0
		if !l.admit(nc) {
			l.Config.Stats.ConnsRefused.Add(1)
			log.Debug("link refused: connection cap", "total", l.MaxConns)
			nc.Close()
			continue
		}
		wg.Go(func() { l.serveConn(ctx, nc, log) })
	}
	cancel()
	wg.Wait()
	return err
}

// exhausted reports whether an accept error is a shortage that passes
// (descriptors, kernel buffers or memory), not a dead listener.
func exhausted(err error) bool {
	for _, e := range []error{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func (l *Listener) admit(nc net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.total >= l.MaxConns {
		return false
	}
	l.total++
	l.conns[nc] = struct{}{}
	return true
}

func (l *Listener) release(nc net.Conn, peer string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if peer != "" {
		if l.perPeer[peer]--; l.perPeer[peer] <= 0 {
			delete(l.perPeer, peer)
		}
		return
	}
	l.total--
	delete(l.conns, nc)
}

// serveConn runs the handshake on nc and serves the link; it frees nc's
// place under MaxConns when it returns.
func (l *Listener) serveConn(ctx context.Context, nc net.Conn, log *slog.Logger) {
	// The handshake refuses a key whose established links are at the cap
	// ("busy"), but reserves nothing: the dialer has not yet shown that it
	// holds the session keys.
	authorize := func(kind Kind, static [32]byte, remote net.Addr) error {
		if err := l.Authorize(kind, static, remote); err != nil {
			return err
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.perPeer[capKey(kind, static, remote)] >= l.MaxConnsPerPeer {
			return ErrTooManyConns
		}
		return nil
	}
	c, err := Server(ctx, nc, l.Config, l.Kinds, authorize)
	if err != nil {
		// Free the place first: once the failure is counted, it is free.
		l.release(nc, "")
		l.Config.Stats.HandshakesFailed.Add(1)
		// The remote address of a refused link is an operator concern,
		// not user metadata: relays and authorities are public nodes, and
		// client links log no address.
		log.Debug("link handshake failed", "err", err)
		return
	}
	defer l.release(nc, "")
	defer c.Close()
	// The link is live: count it against its key now. Links of one key
	// that confirmed at the same moment can find the cap taken after all.
	key := capKey(c.Kind(), c.PeerKey(), c.RemoteAddr())
	if !l.claim(key) {
		l.Config.Stats.HandshakesFailed.Add(1)
		log.Debug("link closed after its handshake: per-peer cap", "max", l.MaxConnsPerPeer)
		return
	}
	l.Config.Stats.HandshakesOK.Add(1)
	defer l.release(nc, key)
	l.Handle(ctx, c)
}

// capKey is what MaxConnsPerPeer counts: the static key of a peer or user
// link, the source IP of a client link.
func capKey(kind Kind, static [32]byte, remote net.Addr) string {
	if kind == KindClient {
		return "ip:" + hostOf(remote)
	}
	return string(static[:])
}

// claim counts an established link against key, unless key is at the cap.
func (l *Listener) claim(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.perPeer[key] >= l.MaxConnsPerPeer {
		return false
	}
	l.perPeer[key]++
	return true
}

func hostOf(a net.Addr) string {
	if a == nil {
		return ""
	}
	h, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return h
}

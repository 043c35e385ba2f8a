package link_test

import (
	"context"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sealnet/sealnet/internal/testkit/linktest"
	"github.com/sealnet/sealnet/mixnet/link"
)

// exhaustedListener fails its first accepts as a process out of file
// descriptors does (accept4: too many open files).
type exhaustedListener struct {
	net.Listener
	failures atomic.Int32
}

func (l *exhaustedListener) Accept() (net.Conn, error) {
	if l.failures.Add(-1) >= 0 {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: l.Addr(), Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	}
	return l.Listener.Accept()
}

// TestServeOutlivesDescriptorExhaustion: a listener that runs out of file
// descriptors (a connection flood, a low ulimit) pauses accepting instead
// of ending Serve, and takes links again once descriptors are back.
func TestServeOutlivesDescriptorExhaustion(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	ln := &exhaustedListener{Listener: listen(t)}
	ln.failures.Store(5)
	cfg := linktest.Config(geo, "exhausted")
	l := &link.Listener{Config: cfg, Kinds: []link.Kind{link.KindClient},
		Authorize: func(link.Kind, [32]byte, net.Addr) error { return nil },
		Handle:    func(ctx context.Context, c *link.Conn) { <-ctx.Done() }}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- l.Serve(ctx, ln) }()

	// Wait until Serve is past the failures (at the real Accept) or has
	// given up.
	for deadline := time.Now().Add(5 * time.Second); ln.failures.Load() >= 0; time.Sleep(5 * time.Millisecond) {
		select {
		case err := <-served:
			t.Fatalf("Serve returned %v after accept ran out of file descriptors; the listener is dead", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("Serve stopped accepting")
		}
	}
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	hctx, hcancel := context.WithTimeout(ctx, 5*time.Second)
	defer hcancel()
	c, err := link.Client(hctx, nc, linktest.Config(geo, "client"), link.KindClient, linktest.Public(cfg.Static))
	select {
	case err := <-served:
		t.Fatalf("Serve returned %v after accept ran out of file descriptors; the listener is dead", err)
	default:
	}
	if err != nil {
		t.Fatalf("no link once descriptors were back: %v", err)
	}
	c.Close()
	cancel()
	if err := <-served; err != context.Canceled {
		t.Fatalf("Serve returned %v, want context.Canceled", err)
	}
}

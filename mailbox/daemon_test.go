package mailbox_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/sealnet/sealnet/internal/testbed/testnet"
	"github.com/sealnet/sealnet/mailbox"
	"github.com/sealnet/sealnet/relay"
)

// TestProviderRunReportsListenerFailure: a provider whose link listener
// dies stops (relay, service and store) and its Run returns the error;
// the store is closed, so a new provider opens the same data directory
// (Badger holds a lock on it while open) and runs.
func TestProviderRunReportsListenerFailure(t *testing.T) {
	nw, err := testnet.Create(t.TempDir(), testnet.Spec{Layers: 1, Width: 1, Providers: 1, LogLevel: "error"})
	if err != nil {
		t.Fatal(err)
	}
	mc, err := nw.MailboxConfig(nw.Nodes[len(nw.Nodes)-1])
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p, err := mailbox.NewProvider(*mc, mailbox.Options{Relay: func(o *relay.Options) { o.Listener = ln }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	for i := 0; ; i++ {
		if c, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
			c.Close()
			break
		}
		if i == 100 {
			t.Fatal("the provider never listened")
		}
		time.Sleep(10 * time.Millisecond)
	}
	ln.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Run returned %v; want the link listener's error", err)
		}
	case <-time.After(5 * time.Second):
		cancel()
		<-done
		t.Fatal("the provider still runs 5 s after its link listener died")
	}
	p2, err := mailbox.NewProvider(*mc, mailbox.Options{})
	if err != nil {
		t.Fatalf("a second provider in the same data directory: %v", err)
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel2()
	if err := p2.Run(ctx2); err != nil {
		t.Fatalf("second provider: %v", err)
	}
}

package authority

import (
	"context"
	"errors"
	"net"
	"net/http"
	"testing"
	"time"
)

// TestRunStopsWhenServeFails: an authority whose HTTP server dies stops
// building and signing documents and reports why, instead of running on
// while it serves nothing. (Run returns only after its schedule stopped.)
func TestRunStopsWhenServeFails(t *testing.T) {
	s, err := New(baseConfig(t, testNodes()), Options{})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, ln) }()
	client := &http.Client{Timeout: time.Second}
	for i := 0; ; i++ {
		resp, err := client.Get("http://" + ln.Addr().String() + "/v1/document/1")
		if err == nil {
			resp.Body.Close()
			break
		}
		if i == 100 {
			t.Fatalf("the authority never answered: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	ln.Close() // the accept loop dies
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Run returned %v, want the HTTP server's accept error", err)
		}
	case <-time.After(5 * time.Second):
		cancel()
		<-done
		t.Fatal("Run still running 5 s after its HTTP server died: the authority would go on signing documents it cannot serve")
	}
	// Stopped by its context, Run reports that, not an error of its own.
	ln2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx2, cancel2 := context.WithCancel(context.Background())
	go func() { done <- s.Run(ctx2, ln2) }()
	time.Sleep(100 * time.Millisecond)
	cancel2()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run stopped by its context returned %v", err)
	}
}

package relay

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// openFilesUnder lists the files this process holds open under dir.
func openFilesUnder(t *testing.T, dir string) []string {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd:", err)
	}
	var out []string
	for _, fd := range fds {
		p, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name()))
		if err == nil && strings.HasPrefix(p, dir+string(filepath.Separator)) {
			out = append(out, p)
		}
	}
	return out
}

// TestRunReportsListenerFailure: when the link listener's accept loop
// dies under a running node (here its listener is closed from outside),
// Run stops the whole node, the directory loop included, and returns that
// error; nothing it opened stays open and no goroutine is left.
func TestRunReportsListenerFailure(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	dir := t.TempDir()
	c := loadMixConfig(t, dir, 2, "127.0.0.1:0", "")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n, err := New(*c, Options{Listener: ln})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	// Wait until the accept loop runs: a connection is accepted (and
	// refused at its handshake, which it never sends).
	for i := 0; ; i++ {
		if conn, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
			conn.Close()
			break
		}
		if i == 100 {
			t.Fatal("the node never listened")
		}
		time.Sleep(10 * time.Millisecond)
	}
	ln.Close() // the accept loop dies
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) || !strings.Contains(err.Error(), "link listener") {
			t.Fatalf("Run returned %v; want the link listener's accept error (net.ErrClosed)", err)
		}
	case <-time.After(5 * time.Second):
		cancel()
		<-done
		t.Fatal("Run still running 5 s after its link listener died: the node would go on publishing itself")
	}
	if open := openFilesUnder(t, dir); len(open) > 0 {
		t.Errorf("files still open after Run: %v", open)
	}
}

// TestRunEarlyFailureReleases: Run failing before it starts (here the
// metrics address is taken) closes the replay journals and the listener
// New and Run opened, and a second node in the same data directory then
// runs and stops cleanly.
func TestRunEarlyFailureReleases(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	dir := t.TempDir()
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	c := loadMixConfig(t, dir, 2, "127.0.0.1:0", "")
	c.Metrics = taken.Addr().String()
	n, err := New(*c, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if open := openFilesUnder(t, dir); len(open) == 0 {
		t.Fatal("control: New holds no replay journal open; the check below sees nothing")
	}
	if err := n.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "metrics listener") {
		t.Fatalf("Run with the metrics address taken returned %v", err)
	}
	if open := openFilesUnder(t, dir); len(open) > 0 {
		t.Fatalf("Run failed early but left open: %v", open)
	}

	c.Metrics = ""
	n2, err := New(*c, Options{})
	if err != nil {
		t.Fatalf("a second node in the same directory: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := n2.Run(ctx); err != nil {
		t.Fatalf("second Run: %v", err)
	}
	if open := openFilesUnder(t, dir); len(open) > 0 {
		t.Fatalf("after the second Run: %v", open)
	}
}

// TestNewFailureReleases: New failing half-way (the third epoch's replay
// journal cannot be opened) closes the journals it had already opened.
func TestNewFailureReleases(t *testing.T) {
	dir := t.TempDir()
	c := loadMixConfig(t, dir, 2, "127.0.0.1:0", "")
	e := epochAt(time.Now(), c.Directory.EpochPeriod.D())
	if err := os.MkdirAll(filepath.Join(dir, "replay", "epoch-"+strconv.FormatUint(e+2, 10)+".journal"), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := New(*c, Options{}); err == nil {
		t.Fatal("New succeeded with a directory in place of a replay journal")
	}
	if open := openFilesUnder(t, dir); len(open) > 0 {
		t.Fatalf("New failed but left open: %v", open)
	}
}

// TestOwner: the first server of the group to stop before the context
// ends cancels it for the others and is the group's error; a server that
// returns because the context ended, whatever it returns, is not a
// failure.
func TestOwner(t *testing.T) {
	o := newOwner(context.Background())
	boom := errors.New("accept: boom")
	o.serve("metrics server", func() error { return boom })
	o.serve("link listener", func() error { <-o.ctx.Done(); return errors.New("closed") })
	o.loop(func() { <-o.ctx.Done() })
	select {
	case <-o.ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("a failed server did not end the group's context")
	}
	o.wait()
	if err := o.err(); !errors.Is(err, boom) || !strings.Contains(err.Error(), "relay: metrics server") {
		t.Fatalf("group error %v; want the metrics server's", err)
	}

	// A server that returns nil early has stopped too.
	o = newOwner(context.Background())
	o.serve("onion listener", func() error { return nil })
	<-o.ctx.Done()
	o.wait()
	if err := o.err(); err == nil || !strings.Contains(err.Error(), "onion listener") {
		t.Fatalf("group error %v; want the onion listener's early return", err)
	}

	// Ended from outside: no failure.
	ctx, cancel := context.WithCancel(context.Background())
	o = newOwner(ctx)
	o.serve("link listener", func() error { <-o.ctx.Done(); return o.ctx.Err() })
	cancel()
	o.wait()
	if err := o.err(); err != nil {
		t.Fatalf("group ended by its parent reports %v", err)
	}
}

package tornet

import (
	"context"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/proxy"
)

func needTor(t *testing.T) {
	t.Helper()
	if _, err := findTor(""); err != nil {
		if os.Getenv("SEALNET_REQUIRE_TOR") == "1" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
}

// TestNetwork starts a private network, reaches a TCP service on
// loopback through an exit, and checks Close stops every tor.
func TestNetwork(t *testing.T) {
	needTor(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	if d := os.Getenv("TORNET_KEEP"); d != "" {
		dir = d
	}
	n, err := Start(ctx, Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	t.Logf("bootstrapped in %v", n.Bootstrap)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	d, err := proxy.SOCKS5("tcp", n.SocksAddr, &proxy.Auth{User: "a", Password: "b"}, proxy.Direct)
	if err != nil {
		t.Fatal(err)
	}
	var c net.Conn
	for i := 0; i < 4; i++ {
		dctx, dcancel := context.WithTimeout(ctx, 20*time.Second)
		c, err = d.(proxy.ContextDialer).DialContext(dctx, "tcp", ln.Addr().String())
		dcancel()
		if err == nil {
			break
		}
		time.Sleep(time.Second)
	}
	if err != nil {
		t.Fatalf("through the exit: %v", err)
	}
	c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo: %q %v", buf, err)
	}
	c.Close()

	procs := append([]*os.Process(nil), func() (ps []*os.Process) {
		for _, p := range n.procs {
			ps = append(ps, p.Process)
		}
		return
	}()...)
	n.Close()
	for _, p := range procs {
		if err := p.Signal(syscall.Signal(0)); err == nil {
			t.Errorf("tor %d still runs after Close", p.Pid)
		}
	}
}

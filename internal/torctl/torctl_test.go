package torctl

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestNoTor(t *testing.T) {
	_, err := Open(context.Background(), Config{Mode: ModeStart, Binary: filepath.Join(t.TempDir(), "no-tor-here"), DataDir: t.TempDir()}, nil)
	if !errors.Is(err, ErrNoTor) {
		t.Fatalf("Open with a missing binary = %v, want ErrNoTor", err)
	}
	if !strings.Contains(err.Error(), "apt-get install tor") {
		t.Fatalf("the error does not say how to install tor: %v", err)
	}
	t.Setenv("PATH", t.TempDir())
	if p, err := FindBinary(""); err == nil {
		// /usr/sbin/tor may exist: then it must be a file.
		if st, serr := os.Stat(p); serr != nil || st.IsDir() {
			t.Fatalf("FindBinary = %q", p)
		}
	}
}

func TestBadMode(t *testing.T) {
	if _, err := Open(context.Background(), Config{Mode: "tor please"}, nil); err == nil || !strings.Contains(err.Error(), "start") {
		t.Fatalf("Open with a bad mode = %v", err)
	}
}

// TestBootstrapFails: a tor whose only directory authority does not
// exist never bootstraps; Open gives up at the deadline with ErrBootstrap,
// names the log, and leaves no tor running.
func TestBootstrapFails(t *testing.T) {
	if _, err := FindBinary(""); err != nil {
		if os.Getenv("SEALNET_REQUIRE_TOR") == "1" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	// A port nothing listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	dir := t.TempDir()
	torrc := filepath.Join(dir, "torrc")
	os.WriteFile(torrc, []byte("TestingTorNetwork 1\n"+
		"DirAuthority nowhere orport=1 no-v2 v3ident=0000000000000000000000000000000000000000 "+dead+" 0000000000000000000000000000000000000000\n"), 0o600)
	began := time.Now()
	_, err = Open(context.Background(), Config{Mode: ModeStart, DataDir: filepath.Join(dir, "tor"), Torrc: torrc, Bootstrap: 8 * time.Second}, nil)
	took := time.Since(began)
	if !errors.Is(err, ErrBootstrap) {
		t.Fatalf("Open = %v, want ErrBootstrap", err)
	}
	if !strings.Contains(err.Error(), filepath.Join(dir, "tor", "notice.log")) {
		t.Fatalf("the error does not name the log: %v", err)
	}
	if took > 30*time.Second {
		t.Fatalf("gave up after %v with an 8 s deadline", took)
	}
	t.Logf("refused after %v: %v", took.Round(time.Millisecond), err)
	// The tor it started is gone.
	time.Sleep(500 * time.Millisecond)
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err == nil && strings.Contains(string(b), filepath.Join(dir, "tor")) {
			t.Fatalf("a tor on %s still runs: %s", dir, strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
}

func TestAttachSocksOnly(t *testing.T) {
	tr, err := Open(context.Background(), Config{Mode: ModeAttach, Socks: "127.0.0.1:1"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if tr.SocksAddr() != "127.0.0.1:1" {
		t.Fatalf("socks = %q", tr.SocksAddr())
	}
	// Nothing listens there: a dial fails at once with ErrDial and does
	// not name the (non-onion) destination.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = tr.Dial(ctx, "tcp", "10.1.2.3:80")
	if !errors.Is(err, ErrDial) {
		t.Fatalf("Dial = %v, want ErrDial", err)
	}
	if strings.Contains(err.Error(), "10.1.2.3") {
		t.Fatalf("the error names the destination: %v", err)
	}
	if _, err := tr.Listen(ctx, nil, 80); !errors.Is(err, ErrControl) {
		t.Fatalf("Listen without a control port = %v, want ErrControl", err)
	}
}

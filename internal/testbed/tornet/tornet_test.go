package tornet

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/proxy"

	"github.com/sealnet/sealnet/internal/torctl"
)

// needTor skips the test when there is no tor binary, unless
// SEALNET_REQUIRE_TOR=1, where a missing tor is a failure.
func needTor(t *testing.T) string {
	t.Helper()
	tor, err := torctl.FindBinary("")
	if err == nil {
		_, err = findGencert(tor)
	}
	if err != nil {
		if os.Getenv("SEALNET_REQUIRE_TOR") == "1" {
			t.Fatalf("SEALNET_REQUIRE_TOR=1 but: %v", err)
		}
		t.Skipf("%v (set SEALNET_REQUIRE_TOR=1 to make this a failure)", err)
	}
	return tor
}

// echoServer serves TCP echo on 127.0.0.1 until the test ends.
func echoServer(t *testing.T) *net.TCPAddr {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(time.Minute))
				io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().(*net.TCPAddr)
}

// dialEcho dials addr through the SOCKS5 proxy socks, retrying until
// within; then checks one echo.
func dialEcho(ctx context.Context, t *testing.T, socks, addr string, within time.Duration) {
	t.Helper()
	d, err := proxy.SOCKS5("tcp", socks, nil, proxy.Direct)
	if err != nil {
		t.Fatal(err)
	}
	dialer := d.(proxy.ContextDialer)
	began := time.Now()
	deadline := began.Add(within)
	var c net.Conn
	for attempt := 1; attempt <= 100; attempt++ {
		actx, cancel := context.WithTimeout(ctx, 15*time.Second)
		c, err = dialer.DialContext(actx, "tcp", addr)
		cancel()
		if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("dial %s through %s: %v (for %v)", addr, socks, err, time.Since(began).Round(time.Millisecond))
	}
	defer c.Close()
	t.Logf("connected to %s through the network after %v", addr, time.Since(began).Round(time.Millisecond))
	c.SetDeadline(time.Now().Add(20 * time.Second))
	msg := "hello through tor " + addr
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatalf("echo from %s: %v", addr, err)
	}
	if string(buf) != msg {
		t.Fatalf("echo from %s: %q, want %q", addr, buf, msg)
	}
}

// dumpLogsOnFailure logs the end of every log file if the test failed.
func dumpLogsOnFailure(t *testing.T, logs func() []string) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for _, l := range logs() {
			t.Logf("%s:%s", l, torctl.LogTail(l, 15))
		}
	})
}

// TestNetwork starts a private network, reaches a TCP service on
// loopback through an exit and an onion service published by one more
// tor that joined with -f Torrc only, and checks that Close stops every
// tor.
func TestNetwork(t *testing.T) {
	tor := needTor(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	n, err := Start(ctx, Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	dumpLogsOnFailure(t, n.Logs)
	t.Logf("private Tor network: client bootstrapped in %v", n.Bootstrap.Round(time.Millisecond))
	for _, f := range []string{n.Torrc, n.CookiePath, filepath.Join(n.Dir, "README")} {
		if _, err := os.Stat(f); err != nil {
			t.Error(err)
		}
	}
	if got := len(n.Logs()); got != 5 {
		t.Errorf("%d logs, want 5 (auth, 3 relays, client)", got)
	}
	torrc, err := os.ReadFile(n.Torrc)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"TestingTorNetwork 1\n", "DirAuthority auth orport="} {
		if !strings.Contains(string(torrc), want) {
			t.Errorf("Torrc lacks %q", want)
		}
	}
	for _, bad := range []string{"SocksPort", "ControlPort", "DataDirectory"} {
		if strings.Contains(string(torrc), bad) {
			t.Errorf("Torrc has a %s line", bad)
		}
	}
	echo := echoServer(t)

	t.Run("exit", func(t *testing.T) {
		dialEcho(ctx, t, n.SocksAddr, echo.String(), 30*time.Second)
		// Exits reach loopback only: 192.0.2.1 (TEST-NET-1) is refused
		// at the exit, which connects from 127.0.0.1.
		d, err := proxy.SOCKS5("tcp", n.SocksAddr, nil, proxy.Direct)
		if err != nil {
			t.Fatal(err)
		}
		dctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		began := time.Now()
		if c, err := d.(proxy.ContextDialer).DialContext(dctx, "tcp", "192.0.2.1:80"); err == nil {
			c.Close()
			t.Error("an exit connected to 192.0.2.1:80")
		} else {
			t.Logf("192.0.2.1:80 through the network: %v (after %v)", err, time.Since(began).Round(time.Millisecond))
		}
	})

	t.Run("onion", func(t *testing.T) {
		began := time.Now()
		d := t.TempDir()
		hs := filepath.Join(d, "hs")
		log := filepath.Join(d, "tor.log")
		cmd := exec.Command(tor, "-f", n.Torrc,
			"--DataDirectory", d, "--SocksPort", "0", "--Log", "notice file "+log,
			"--HiddenServiceDir", hs, "--HiddenServicePort", "80 127.0.0.1:"+strconv.Itoa(echo.Port),
			"--__OwningControllerProcess", strconv.Itoa(os.Getpid()))
		out, err := os.Create(filepath.Join(d, "stdout"))
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		out.Close()
		t.Cleanup(func() {
			cmd.Process.Signal(syscall.SIGTERM)
			done := make(chan struct{})
			go func() { cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				cmd.Process.Kill()
				<-done
			}
		})
		dumpLogsOnFailure(t, func() []string { return []string{log, filepath.Join(d, "stdout")} })
		var host []byte
		for i := 0; i < 100 && len(host) == 0; i++ {
			host, _ = os.ReadFile(filepath.Join(hs, "hostname"))
			if len(host) == 0 {
				time.Sleep(100 * time.Millisecond)
			}
		}
		if len(host) == 0 {
			t.Fatal("the onion service's tor wrote no hostname in 10 s")
		}
		addr := strings.TrimSpace(string(host)) + ":80"
		dialEcho(ctx, t, n.SocksAddr, addr, 60*time.Second)
		t.Logf("onion service reachable %v after its tor started", time.Since(began).Round(time.Millisecond))
	})

	// Close stops every tor.
	var procs []*os.Process
	for _, nd := range n.nodes {
		procs = append(procs, nd.cmd.Process)
	}
	closed := time.Now()
	if err := n.Close(); err != nil {
		t.Error(err)
	}
	t.Logf("Close took %v", time.Since(closed).Round(time.Millisecond))
	if err := n.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	for _, p := range procs {
		q, err := os.FindProcess(p.Pid)
		if err != nil {
			continue // gone
		}
		if err := q.Signal(syscall.Signal(0)); err == nil {
			t.Errorf("tor pid %d still runs after Close", p.Pid)
		} else if !errors.Is(err, os.ErrProcessDone) && !errors.Is(err, syscall.ESRCH) {
			t.Logf("pid %d: %v", p.Pid, err)
		}
	}
}

// TestStartRetry checks that a tor that cannot bind its port makes Start
// try once more on fresh ports, and no more.
func TestStartRetry(t *testing.T) {
	needTor(t)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	calls := 0
	pickPorts = func(count int) ([]int, error) {
		calls++
		ports, err := freePorts(count)
		if err == nil {
			ports[0] = taken.Addr().(*net.TCPAddr).Port // the authority's ORPort
		}
		return ports, err
	}
	defer func() { pickPorts = freePorts }()
	dir := t.TempDir()
	_, err = Start(context.Background(), Options{Dir: dir, Relays: 2, Timeout: 30 * time.Second})
	var early *earlyExit
	if !errors.As(err, &early) {
		t.Fatalf("Start: %v, want an early exit", err)
	}
	t.Log(err)
	if calls != 2 {
		t.Errorf("%d attempts, want 2", calls)
	}
	if early.name != "auth" || !strings.Contains(err.Error(), "bind") {
		t.Errorf("the error does not say the authority could not bind: %v", err)
	}
	noTorIn(t, dir)
}

// noTorIn fails if a process runs with dir on its command line.
func noTorIn(t *testing.T, dir string) {
	t.Helper()
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err == nil && strings.Contains(string(b), dir) {
			t.Errorf("%s still runs: %q", filepath.Dir(p), b)
		}
	}
}

// TestStartFails checks the failure paths: no Dir, and a timeout that
// names the logs and leaves no tor behind.
func TestStartFails(t *testing.T) {
	if _, err := Start(context.Background(), Options{}); err == nil {
		t.Fatal("Start without Dir did not fail")
	}
	needTor(t)
	dir := t.TempDir()
	_, err := Start(context.Background(), Options{Dir: dir, Relays: 2, Timeout: 5 * time.Second})
	if err == nil {
		t.Fatal("bootstrapped within 5 s?")
	}
	t.Log(err)
	if !strings.Contains(err.Error(), filepath.Join(dir, "client", "tor.log")) {
		t.Errorf("the error does not name the client's log: %v", err)
	}
	noTorIn(t, dir)
}

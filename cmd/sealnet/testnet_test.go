package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sealnet/sealnet/internal/testnet"
	"github.com/sealnet/sealnet/mixnet"
)

// TestTestnetUp runs `sealnet testnet up` as users do: a real binary
// starting real processes. Packets injected by a client reach the
// providers (read from their metrics endpoints); SIGINT stops everything
// and leaves no process behind.
func TestTestnetUp(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and starts nine processes")
	}
	exe := filepath.Join(t.TempDir(), "sealnet")
	if out, err := exec.Command("go", "build", "-o", exe, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	dir := filepath.Join(t.TempDir(), "net")
	cmd := exec.Command(exe, "testnet", "up", "--dir", dir, "--epoch", "1m")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var out []string
	wait := func(prefix string, d time.Duration) {
		t.Helper()
		deadline := time.After(d)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("testnet exited before %q; output:\n%s", prefix, strings.Join(out, "\n"))
				}
				out = append(out, l)
				if strings.HasPrefix(l, prefix) {
					return
				}
			case <-deadline:
				t.Fatalf("no %q within %v; output:\n%s", prefix, d, strings.Join(out, "\n"))
			}
		}
	}
	wait("testnet: running", 90*time.Second)

	nw, err := testnet.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	docs, _ := filepath.Glob(filepath.Join(dir, "directory", "document-*.bin"))
	if len(docs) != 1 {
		t.Fatalf("directory documents written: %v", docs)
	}
	for _, n := range nw.Nodes {
		for _, f := range []string{"identity.key", "link.key"} {
			st, err := os.Stat(filepath.Join(dir, n.Name, "data", "keys", f))
			if err != nil || st.Mode().Perm() != 0o600 {
				t.Fatalf("%s %s: %v, mode %v", n.Name, f, err, st.Mode().Perm())
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	doc, err := nw.WaitDocument(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Relays poll the directory every few seconds: wait until a probe
	// goes through, then send the real packets.
	inj := testnet.NewInjector(doc.Doc)
	defer inj.Close()
	delivered := func() float64 {
		var sum float64
		for _, n := range nw.Nodes {
			if n.Role == "provider" {
				sum += scrape(t, n.Metrics, "sealnet_packets_delivered_total")
			}
		}
		return sum
	}
	send := func(i int) {
		t.Helper()
		dest := doc.Doc.Providers[i%len(doc.Doc.Providers)]
		entry, pkt, err := inj.Packet(dest, mixnet.RecipientID{1, byte(i)}, []byte("hello"), 10*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		if err := inj.Send(ctx, entry, pkt); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; delivered() == 0; i++ {
		if ctx.Err() != nil {
			t.Fatal("no probe packet was delivered")
		}
		send(1000 + i)
		time.Sleep(300 * time.Millisecond)
	}
	base := delivered()
	for i := range 20 {
		send(i)
	}
	for delivered() < base+20 {
		if ctx.Err() != nil {
			t.Fatalf("%v of 20 packets delivered", delivered()-base)
		}
		time.Sleep(100 * time.Millisecond)
	}

	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	wait("testnet: stopped", 30*time.Second)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("testnet up exited with %v", err)
	}
	if left := processesMentioning(dir); len(left) > 0 {
		t.Fatalf("processes left running: %v", left)
	}
}

func scrape(t *testing.T, addr, series string) float64 {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, series+" "); ok {
			var f float64
			fmt.Sscan(v, &f)
			return f
		}
	}
	return 0
}

// processesMentioning lists running processes whose command line names
// path.
func processesMentioning(path string) []string {
	entries, _ := os.ReadDir("/proc")
	var out []string
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(b), path) {
			out = append(out, e.Name()+": "+strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
	return out
}

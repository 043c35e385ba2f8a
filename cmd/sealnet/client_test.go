package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sealnet/sealnet/internal/testnet"
	"github.com/sealnet/sealnet/relay"
)

// cli runs one sealnet command in this process and returns its exit
// status and output.
func cli(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

// TestClientCommands drives the user commands as a user would, against an
// in-process network on loopback: init, register, send (waiting for the
// acknowledgement), fetch (with the verified sender), contacts, history,
// --json, and the errors a user meets. Then Alice runs `sealnet daemon` as
// its own process and `send` hands it a message through the spool.
func TestClientCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a network")
	}
	nw, err := testnet.Create(t.TempDir(), testnet.Spec{LogLevel: "error"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := testnet.StartInProcess(nw, testnet.InProcessOptions{
		Relay: func(_ string, c *relay.Config) { c.Directory.Poll.UnmarshalText([]byte("200ms")) },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := nw.WaitDocument(ctx); err != nil {
		t.Fatal(err)
	}
	for _, n := range nw.Nodes {
		for node := p.Nodes[n.Name]; !node.Ready(); time.Sleep(20 * time.Millisecond) {
			if ctx.Err() != nil {
				t.Fatal("network not ready")
			}
		}
	}
	t.Setenv("SEALNET_PASSPHRASE", "a passphrase for the test")
	alice, bob := filepath.Join(t.TempDir(), "alice"), filepath.Join(t.TempDir(), "bob")

	if code, _, errs := cli("send", "--dir", alice, "--to", "bob@b", "hi"); code != 1 || !strings.Contains(errs, "sealnet init") {
		t.Fatalf("send before init: exit %d, %q; want a hint to run sealnet init", code, errs)
	}
	for _, u := range []struct{ dir, addr string }{{alice, "alice@a"}, {bob, "bob@b"}} {
		code, out, errs := cli("init", "--dir", u.dir, "--address", u.addr, "--testnet", nw.Dir)
		if code != 0 || !strings.Contains(out, "Created "+u.addr) || !strings.Contains(out, "sealnet register") {
			t.Fatalf("init %s: exit %d\n%s%s", u.addr, code, out, errs)
		}
		if code, out, errs := cli("register", "--dir", u.dir); code != 0 || !strings.Contains(out, "Registered "+u.addr) {
			t.Fatalf("register %s: exit %d\n%s%s", u.addr, code, out, errs)
		}
	}
	if code, _, _ := cli("send", "--dir", alice, "hi"); code != 2 {
		t.Fatalf("send without --to: exit %d, want 2 (usage)", code)
	}
	code, out, errs := cli("send", "--dir", alice, "--to", "bob@b", "--timeout", "1m", "Hello", "Bob")
	if code != 0 || !strings.Contains(out, "Delivered to bob@b") {
		t.Fatalf("send: exit %d\n%s%s", code, out, errs)
	}
	code, out, errs = cli("fetch", "--dir", bob, "--wait", "20s")
	if code != 0 || !strings.Contains(out, "From: alice@a (verified sender") || !strings.Contains(out, "\nHello Bob\n") {
		t.Fatalf("fetch: exit %d\n%s%s", code, out, errs)
	}
	// The file and stdin forms, and --json.
	f := filepath.Join(t.TempDir(), "msg.txt")
	os.WriteFile(f, []byte("from a file"), 0o600)
	if code, out, errs := cli("send", "--dir", bob, "--to", "alice@a", "--file", f, "--json"); code != 0 || !strings.Contains(out, `"status":"delivered"`) {
		t.Fatalf("send --file --json: exit %d\n%s%s", code, out, errs)
	}
	code, out, _ = cli("fetch", "--dir", alice, "--wait", "20s", "--json")
	var got struct {
		Kind    string `json:"kind"`
		Message struct {
			From     string `json:"from"`
			Body     string `json:"body"`
			Verified bool   `json:"verified"`
		} `json:"message"`
	}
	if code != 0 || json.Unmarshal([]byte(strings.SplitN(out, "\n", 2)[0]), &got) != nil || got.Message.Body != "from a file" || got.Message.From != "bob@b" || !got.Message.Verified {
		t.Fatalf("fetch --json: exit %d\n%s", code, out)
	}
	if code, out, _ := cli("contacts", "--dir", alice); code != 0 || !strings.Contains(out, "bob@b (first seen") {
		t.Fatalf("contacts: exit %d\n%s", code, out)
	}
	if code, out, _ := cli("history", "--dir", alice); code != 0 || !strings.Contains(out, "To: bob@b [delivered]") || !strings.Contains(out, "from a file") {
		t.Fatalf("history: exit %d\n%s", code, out)
	}
	t.Setenv("SEALNET_PASSPHRASE", "not the passphrase")
	if code, _, errs := cli("fetch", "--dir", bob); code != 1 || !strings.Contains(errs, "wrong passphrase") {
		t.Fatalf("fetch with a wrong passphrase: exit %d, %q", code, errs)
	}
	t.Setenv("SEALNET_PASSPHRASE", "a passphrase for the test")

	// A daemon holds Alice's directory; send goes through the spool.
	exe := filepath.Join(t.TempDir(), "sealnet")
	if out, err := exec.Command("go", "build", "-o", exe, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	dlog := filepath.Join(t.TempDir(), "daemon.log")
	dout, err := os.Create(dlog)
	if err != nil {
		t.Fatal(err)
	}
	defer dout.Close()
	d := exec.Command(exe, "daemon", "--dir", alice)
	d.Stdout, d.Stderr = dout, dout
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	defer d.Process.Kill()
	// Wait until the daemon holds the directory.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		log, _ := os.ReadFile(dlog)
		if strings.Contains(string(log), "sealnet daemon for alice@a") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the daemon never started:\n%s", log)
		}
	}
	if code, _, errs := cli("contacts", "--dir", alice); code != 1 || !strings.Contains(errs, "in use by another sealnet process") {
		t.Fatalf("contacts while the daemon runs: exit %d, %q", code, errs)
	}
	code, out, errs = cli("send", "--dir", alice, "--to", "bob@b", "--timeout", "1m", "through the daemon")
	if code != 0 || !strings.Contains(errs, "Handed to the running daemon") || !strings.Contains(out, "Delivered to bob@b") {
		t.Fatalf("send with a daemon: exit %d\n%s%s", code, out, errs)
	}
	d.Process.Signal(syscall.SIGINT)
	if err := d.Wait(); err != nil {
		log, _ := os.ReadFile(dlog)
		t.Fatalf("daemon exit: %v\n%s", err, log)
	}
	if code, out, _ := cli("fetch", "--dir", bob, "--wait", "20s"); code != 0 || !strings.Contains(out, "through the daemon") {
		t.Fatalf("fetch after the daemon: exit %d\n%s", code, out)
	}
}

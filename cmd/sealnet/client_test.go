package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sealnet/sealnet/internal/testbed/testnet"
	"github.com/sealnet/sealnet/relay"
)

// cli runs one sealnet command in this process and returns its exit
// status and output.
func cli(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

// startClientNet starts an in-process network on loopback for the user
// commands and waits until every node has the document.
func startClientNet(t *testing.T) *testnet.Network {
	t.Helper()
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
	t.Cleanup(func() { p.Stop() })
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
	return nw
}

// sealnetBinary builds the binary, for the tests that run it as its own
// process (the build cache makes the second build quick).
func sealnetBinary(t *testing.T) string {
	t.Helper()
	exe := filepath.Join(t.TempDir(), "sealnet")
	if out, err := exec.Command("go", "build", "-o", exe, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return exe
}

// TestClientCommands drives the user commands as a user would, against an
// in-process network on loopback: init, register, send --oneshot
// (waiting for the acknowledgement, with its warning), fetch (with the
// verified sender), contacts, history, --json, and the errors a user
// meets. Then Alice runs `sealnet daemon` as its own process, `send` hands
// it a message through the spool, and `daemon --stop` stops it.
func TestClientCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a network")
	}
	nw := startClientNet(t)
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
	// In this process there is no sealnet binary to start a daemon with:
	// --oneshot, which says what it reveals.
	code, out, errs := cli("send", "--dir", alice, "--to", "bob@b", "--oneshot", "--timeout", "1m", "Hello", "Bob")
	if code != 0 || !strings.Contains(out, "Delivered to bob@b") || !strings.Contains(errs, "sees you come online now, as you write") ||
		!strings.Contains(errs, "link you to bob@b within a few messages") {
		t.Fatalf("send --oneshot: exit %d\n%s%s", code, out, errs)
	}
	code, out, errs = cli("fetch", "--dir", bob, "--wait", "20s")
	if code != 0 || !strings.Contains(out, "From: alice@a (verified sender") || !strings.Contains(out, "\nHello Bob\n") {
		t.Fatalf("fetch: exit %d\n%s%s", code, out, errs)
	}
	// The file and stdin forms, and --json.
	f := filepath.Join(t.TempDir(), "msg.txt")
	os.WriteFile(f, []byte("from a file"), 0o600)
	if code, out, errs := cli("send", "--dir", bob, "--to", "alice@a", "--file", f, "--json", "--oneshot"); code != 0 || !strings.Contains(out, `"status":"delivered"`) {
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
	exe := sealnetBinary(t)
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
		if strings.Contains(string(log), "sealnet daemon for alice@a (pid") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the daemon never started:\n%s", log)
		}
	}
	if code, _, errs := cli("contacts", "--dir", alice); code != 1 || !strings.Contains(errs, "in use by another sealnet process") {
		t.Fatalf("contacts while the daemon runs: exit %d, %q", code, errs)
	}
	code, out, errs = cli("send", "--dir", alice, "--to", "bob@b", "--wait", "1m", "through the daemon")
	if code != 0 || !strings.Contains(out, "Queued message") || !strings.Contains(out, fmt.Sprintf("(pid %d) is running", d.Process.Pid)) ||
		!strings.Contains(out, "Delivered to bob@b") {
		t.Fatalf("send with a daemon: exit %d\n%s%s", code, out, errs)
	}
	if code, out, errs := cli("daemon", "--stop", "--dir", alice); code != 0 || !strings.Contains(out, fmt.Sprintf("Stopped the daemon (pid %d)", d.Process.Pid)) {
		t.Fatalf("daemon --stop: exit %d\n%s%s", code, out, errs)
	}
	if err := d.Wait(); err != nil {
		log, _ := os.ReadFile(dlog)
		t.Fatalf("daemon exit: %v\n%s", err, log)
	}
	if code, out, _ := cli("fetch", "--dir", bob, "--wait", "20s"); code != 0 || !strings.Contains(out, "through the daemon") {
		t.Fatalf("fetch after the daemon: exit %d\n%s", code, out)
	}
}

// TestSendStartsDaemon: with no daemon running, `sealnet send` (its own
// process, as a user runs it) queues the message, starts a background
// daemon for the identity and returns at once; the daemon delivers it
// (history shows "delivered"), got the passphrase neither on its command
// line nor in its environment, and logs to a 0600 file in the state
// directory with no address or text; a second send finds it; `daemon
// --stop` stops it cleanly; and `send --oneshot` still sends by itself,
// saying what that reveals; `daemon --detach` starts one without a
// message.
func TestSendStartsDaemon(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a network and processes")
	}
	nw := startClientNet(t)
	exe := sealnetBinary(t)
	const pass = "a passphrase for the test"
	t.Setenv("SEALNET_PASSPHRASE", pass)
	alice, bob := filepath.Join(t.TempDir(), "alice"), filepath.Join(t.TempDir(), "bob")
	for _, u := range []struct{ dir, addr string }{{alice, "alice@a"}, {bob, "bob@b"}} {
		if code, out, errs := cli("init", "--dir", u.dir, "--address", u.addr, "--testnet", nw.Dir); code != 0 {
			t.Fatalf("init %s: exit %d\n%s%s", u.addr, code, out, errs)
		}
		if code, out, errs := cli("register", "--dir", u.dir); code != 0 {
			t.Fatalf("register %s: exit %d\n%s%s", u.addr, code, out, errs)
		}
	}
	sealnet := func(timeout time.Duration, args ...string) (string, string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		var out, errb bytes.Buffer
		c := exec.CommandContext(ctx, exe, args...)
		c.Stdout, c.Stderr = &out, &errb
		err := c.Run()
		return out.String(), errb.String(), err
	}
	// Whatever happens, stop a daemon the test started.
	t.Cleanup(func() { sealnet(time.Minute, "daemon", "--stop", "--dir", alice) })

	began := time.Now()
	out, errs, err := sealnet(time.Minute, "send", "--dir", alice, "--to", "bob@b", "first, through the background daemon")
	took := time.Since(began)
	if err != nil || !strings.Contains(out, "Queued message") || !strings.Contains(out, "started now, in the background") {
		t.Fatalf("send: %v\n%s%s", err, out, errs)
	}
	t.Logf("send returned after %v:\n%s", took.Round(time.Millisecond), out)
	if took > 20*time.Second {
		t.Errorf("send took %v: it should hand the message over and return", took)
	}
	b, err := os.ReadFile(filepath.Join(alice, daemonPidName))
	if err != nil {
		t.Fatalf("no pid file after send: %v", err)
	}
	var pid int
	fmt.Sscan(string(b), &pid)
	if pid <= 0 || syscall.Kill(pid, 0) != nil {
		t.Fatalf("pid file %q: no such process", b)
	}
	env, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if len(cmdline) == 0 || bytes.Contains(env, []byte("SEALNET_PASSPHRASE")) || bytes.Contains(env, []byte(pass)) || bytes.Contains(cmdline, []byte(pass)) {
		t.Fatalf("the daemon's command line %q or environment holds the passphrase", cmdline)
	}

	// The daemon delivers it: history says so.
	waitHistory := func(want string) string {
		t.Helper()
		deadline := time.Now().Add(90 * time.Second)
		for {
			out, errs, err := sealnet(time.Minute, "history", "--dir", alice)
			if err == nil && strings.Contains(out, want) {
				return out
			}
			if time.Now().After(deadline) {
				log, _ := os.ReadFile(filepath.Join(alice, daemonLogName))
				t.Fatalf("history never showed %q: %v\n%s%s\ndaemon log:\n%s", want, err, out, errs, log)
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
	waitHistory("To: bob@b [delivered]")
	delivered := time.Since(began)
	t.Logf("history shows it delivered after %v", delivered.Round(time.Millisecond))

	// A second send finds the daemon and starts none.
	out, errs, err = sealnet(time.Minute, "send", "--dir", alice, "--to", "bob@b", "--wait", "90s", "second, to the same daemon")
	if err != nil || !strings.Contains(out, fmt.Sprintf("(pid %d) is running", pid)) || !strings.Contains(out, "Delivered to bob@b") {
		t.Fatalf("second send: %v\n%s%s", err, out, errs)
	}
	if out, errs, err := sealnet(time.Minute, "fetch", "--dir", bob, "--wait", "20s"); err != nil ||
		!strings.Contains(out, "first, through the background daemon") || !strings.Contains(out, "second, to the same daemon") {
		t.Fatalf("bob's fetch: %v\n%s%s", err, out, errs)
	}

	// Its log: 0600, no address, no text.
	logPath := filepath.Join(alice, daemonLogName)
	st, err := os.Stat(logPath)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("daemon log %v: %v", st, err)
	}
	log, _ := os.ReadFile(logPath)
	for _, secret := range []string{"alice@a", "bob@b", "first, through", "second, to the same", pass} {
		if strings.Contains(string(log), secret) {
			t.Errorf("the daemon log holds %q:\n%s", secret, log)
		}
	}
	if !strings.Contains(string(log), fmt.Sprintf("sealnet daemon (pid %d)", pid)) || !strings.Contains(string(log), "delivered: message") {
		t.Errorf("daemon log:\n%s", log)
	}

	// SIGTERM stops it cleanly; the pid file goes with it.
	if out, errs, err := sealnet(time.Minute, "daemon", "--stop", "--dir", alice); err != nil || !strings.Contains(out, fmt.Sprintf("Stopped the daemon (pid %d)", pid)) {
		t.Fatalf("daemon --stop: %v\n%s%s", err, out, errs)
	}
	if _, err := os.Stat(filepath.Join(alice, daemonPidName)); !os.IsNotExist(err) {
		t.Errorf("pid file after the daemon stopped: %v", err)
	}
	if log, _ := os.ReadFile(logPath); !strings.Contains(string(log), fmt.Sprintf("sealnet daemon (pid %d) stopped", pid)) {
		t.Errorf("the daemon did not stop cleanly:\n%s", log)
	}

	// --oneshot: this process sends, and says what it reveals.
	out, errs, err = sealnet(2*time.Minute, "send", "--dir", alice, "--to", "bob@b", "--oneshot", "third, one shot")
	if err != nil || !strings.Contains(out, "Delivered to bob@b") || !strings.Contains(errs, "WARNING: --oneshot") ||
		!strings.Contains(errs, "sees you come online now, as you write") || !strings.Contains(errs, "link you to bob@b within a few messages") {
		t.Fatalf("send --oneshot: %v\n%s%s", err, out, errs)
	}
	if _, held := runningDaemon(alice); held {
		t.Errorf("a daemon runs after send --oneshot")
	}
	// daemon --detach: the daemon at login, before anything is written.
	if out, errs, err := sealnet(time.Minute, "daemon", "--detach", "--dir", alice); err != nil || !strings.Contains(out, "Started the daemon (pid") {
		t.Fatalf("daemon --detach: %v\n%s%s", err, out, errs)
	}
	if pid, held := runningDaemon(alice); pid == 0 || !held {
		t.Fatalf("no daemon after daemon --detach")
	}
	if out, errs, err := sealnet(time.Minute, "daemon", "--stop", "--dir", alice); err != nil || !strings.Contains(out, "Stopped the daemon") {
		t.Fatalf("daemon --stop: %v\n%s%s", err, out, errs)
	}
	help, _, err := sealnet(time.Minute, "send", "-h") // asked for, so on stdout with exit 0
	if err != nil || !strings.Contains(help, "-oneshot") || !strings.Contains(help, "REVEALS to an observer") {
		t.Errorf("send -h (%v) does not say what --oneshot reveals:\n%s", err, help)
	}
}

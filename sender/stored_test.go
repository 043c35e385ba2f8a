package sender_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sealnet/sealnet/internal/testnet"
	"github.com/sealnet/sealnet/mailbox"
	"github.com/sealnet/sealnet/mixnet/directory"
	"github.com/sealnet/sealnet/sender"
)

// dirContains reports which of needles occur in any file under dir.
func dirContains(t *testing.T, dir string, needles map[string][]byte) (found map[string]string, files, size int) {
	t.Helper()
	found = map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil // a file Badger just removed
		}
		if err != nil {
			return err
		}
		files++
		size += len(b)
		for what, n := range needles {
			if bytes.Contains(b, n) {
				found[what] = path
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found, files, size
}

// TestProviderStoresNothingOfSender searches every byte Bob's provider
// keeps on disk (its Badger database, keys, journals) after Alice's
// messages reached Bob, for Alice's address and identity keys. The
// control searches Alice's own provider, which holds her account, so the
// search itself is shown to find what is there.
func TestProviderStoresNothingOfSender(t *testing.T) {
	n := startNetwork(t, testnet.InProcessOptions{})
	alice := n.newUser(t, "alice@a", sender.Options{})
	bob := n.newUser(t, "bob@b", sender.Options{})
	long := strings.Repeat("a longer message in several fragments. ", 150) // ~6 KB
	for _, body := range []string{"first contact from Alice", long} {
		if e := alice.waitOutcome(alice.send("bob@b", body), time.Minute); e.Kind != "delivered" {
			t.Fatalf("outcome %s: %s", e.Kind, e.Text)
		}
		bob.waitMessage(body, 30*time.Second)
	}
	pub := alice.c.Public()
	mbA := mailbox.MailboxOf("alice@a")
	needles := map[string][]byte{
		"Alice's address": []byte("alice@a"), "Alice's X25519 key": pub.X25519[:],
		"Alice's Ed25519 key": pub.Ed25519[:], "Alice's mailbox ID": mbA[:],
	}
	dataDir := func(name string) string {
		for _, node := range n.nw.Nodes {
			if node.Name == name {
				cfg, err := n.nw.RelayConfig(node)
				if err != nil {
					t.Fatal(err)
				}
				return cfg.DataDir
			}
		}
		t.Fatalf("no node %s", name)
		return ""
	}
	found, files, size := dirContains(t, dataDir("provider-b"), needles)
	for what, path := range found {
		t.Errorf("Bob's provider stores %s, in %s", what, path)
	}
	t.Logf("searched %d files, %d bytes, at Bob's provider", files, size)
	// Control: Alice's provider has her account, keys and address.
	ctl, _, _ := dirContains(t, dataDir("provider-a"), map[string][]byte{"key": pub.X25519[:], "address": []byte("alice@a")})
	if len(ctl) != 2 {
		t.Fatalf("control: Alice's own provider shows only %v of her key and address; the search does not see stored data", ctl)
	}
	// And Bob's provider does hold Bob's (so it has data at all).
	bp := bob.c.Public()
	if own, _, _ := dirContains(t, dataDir("provider-b"), map[string][]byte{"key": bp.X25519[:]}); len(own) != 1 {
		t.Fatal("control: Bob's provider shows no trace of Bob's own account")
	}
}

// TestRelayKilledInFlight runs one mix of the middle layer as its own
// `sealnet relay` process, sends ten messages, kills the mix with SIGKILL
// while they cross the network, and restarts it two seconds later: every
// message is still delivered and shown exactly once.
func TestRelayKilledInFlight(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the sealnet binary")
	}
	exe := filepath.Join(t.TempDir(), "sealnet")
	if out, err := exec.Command("go", "build", "-o", exe, "../cmd/sealnet").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	const victim = "mix-2a"
	var (
		mu   sync.Mutex
		cmd  *exec.Cmd
		logf *os.File
	)
	startVictim := func(nw *testnet.Network) {
		for _, node := range nw.Nodes {
			if node.Name != victim {
				continue
			}
			mu.Lock()
			cmd = exec.Command(exe, "relay", "--config", nw.Path(node.Config))
			cmd.Stdout, cmd.Stderr = logf, logf
			err := cmd.Start()
			mu.Unlock()
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	var err error
	if logf, err = os.Create(filepath.Join(t.TempDir(), victim+".log")); err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		if cmd != nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	n := startNetwork(t, testnet.InProcessOptions{Skip: map[string]bool{victim: true}}, startVictim)
	// The victim must be in the document the clients route by.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		doc, err := n.nw.WaitDocument(ctx)
		if err != nil {
			t.Fatal(err)
		}
		inDoc := false
		for _, d := range doc.Doc.Layers[1] {
			inDoc = inDoc || d.Name == victim
		}
		if inDoc {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	slow := func(p *directory.Parameters) { p.MeanDelay = 100 * time.Millisecond } // packets linger in the mixes
	alice := n.newUser(t, "alice@a", sender.Options{}, slow)
	bob := n.newUser(t, "bob@b", sender.Options{}, slow)
	// A first message and Bob's answer set up the session and give Alice
	// Bob's delivery token, so the ten go out at once, one packet each.
	if e := alice.waitOutcome(alice.send("bob@b", "hello"), time.Minute); e.Kind != "delivered" {
		t.Fatalf("outcome %s: %s", e.Kind, e.Text)
	}
	bob.waitMessage("hello", 30*time.Second)
	bob.waitOutcome(bob.send("alice@a", "hello back"), time.Minute)
	alice.waitMessage("hello back", 30*time.Second)
	var ids, bodies []string
	for i := range 10 {
		body := "message " + string(rune('A'+i)) + " in flight"
		ids = append(ids, alice.send("bob@b", body))
		bodies = append(bodies, body)
	}
	time.Sleep(300 * time.Millisecond)
	mu.Lock()
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	cmd = nil
	mu.Unlock()
	t.Logf("killed %s with SIGKILL", victim)
	time.Sleep(2 * time.Second)
	startVictim(n.nw)
	t.Logf("restarted %s", victim)
	for i, id := range ids {
		if e := alice.waitOutcome(id, 3*time.Minute); e.Kind != "delivered" {
			log, _ := os.ReadFile(logf.Name())
			t.Fatalf("message %d: outcome %s: %s\n%s's log:\n%s", i, e.Kind, e.Text, victim, log)
		}
	}
	for _, b := range bodies {
		bob.waitMessage(b, time.Minute)
	}
	time.Sleep(2 * time.Second) // room for late duplicates to show up
	for _, b := range bodies {
		if k := countReceived(bob, b); k != 1 {
			t.Errorf("%q shown %d times", b, k)
		}
	}
}

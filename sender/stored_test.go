package sender_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sealnet/sealnet/internal/config"
	"github.com/sealnet/sealnet/internal/testbed/testnet"
	"github.com/sealnet/sealnet/mailbox/proto"
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
		if e := alice.waitOutcome(alice.send("bob@b", body), time.Minute); e.Kind != sender.EventDelivered {
			t.Fatalf("outcome %s: %s", e.Kind, e.Text)
		}
		bob.waitMessage(body, 30*time.Second)
	}
	pub := alice.c.Public()
	mbA := proto.MailboxOf("alice@a")
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
// while it holds some of them, and restarts it two seconds later: every
// message is still delivered and shown exactly once, and each packet the
// mix held at the kill was made good by a retransmission. For the kill
// the mix runs a threshold mix that never fills, in a network without
// cover (relays' and clients'), so the packets its metrics show held at
// the kill are the test's and cannot leave before it; it is restarted with
// its Poisson mixing.
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
		mu      sync.Mutex
		cmd     *exec.Cmd
		logf    *os.File
		metrics string // the victim's metrics address
	)
	// victimConfig writes the victim's relay.toml: metrics on, and a
	// threshold mix that holds every packet (hold) or its own Poisson mix.
	victimConfig := func(nw *testnet.Network, node testnet.Node, hold bool) {
		cfg, err := nw.RelayConfig(node)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Metrics = metrics
		if hold {
			cfg.Mixing.Strategy, cfg.Mixing.Threshold = "threshold", 1000
		}
		var buf bytes.Buffer
		if err := config.Encode(&buf, cfg); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(nw.Path(node.Config)+".victim", buf.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	startVictim := func(nw *testnet.Network, hold bool) {
		for _, node := range nw.Nodes {
			if node.Name != victim {
				continue
			}
			victimConfig(nw, node, hold)
			mu.Lock()
			cmd = exec.Command(exe, "relay", "--config", nw.Path(node.Config)+".victim")
			cmd.Stdout, cmd.Stderr = logf, logf
			err := cmd.Start()
			mu.Unlock()
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	stopVictim := func(sig syscall.Signal) {
		mu.Lock()
		defer mu.Unlock()
		cmd.Process.Signal(sig)
		cmd.Wait()
		cmd = nil
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
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	metrics = ln.Addr().String()
	ln.Close()
	nw, err := testnet.Create(t.TempDir(), testnet.Spec{Parameters: testParams(), NoCover: true})
	if err != nil {
		t.Fatal(err)
	}
	n := startCreated(t, nw, testnet.InProcessOptions{Skip: map[string]bool{victim: true}}, 60*time.Second,
		func(nw *testnet.Network) { startVictim(nw, false) })
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
	// No cover from the clients either: a queued message leaves at once.
	noCover := func(p *directory.Parameters) { p.ClientRate = 0 }
	alice := n.newUser(t, "alice@a", sender.Options{}, noCover)
	bob := n.newUser(t, "bob@b", sender.Options{}, noCover)
	// A first message and Bob's answer set up the session and give Alice
	// Bob's delivery token, so the ten go out at once, one packet each.
	if e := alice.waitOutcome(alice.send("bob@b", "hello"), time.Minute); e.Kind != sender.EventDelivered {
		t.Fatalf("outcome %s: %s", e.Kind, e.Text)
	}
	bob.waitMessage("hello", 30*time.Second)
	bob.waitOutcome(bob.send("alice@a", "hello back"), time.Minute)
	alice.waitMessage("hello back", 30*time.Second)

	// The victim now holds what it gets.
	stopVictim(syscall.SIGTERM)
	startVictim(n.nw, true)
	held := func() float64 {
		var sum float64
		for _, q := range []string{"sealnet_input_queue_depth", "sealnet_mix_queue_depth", "sealnet_release_queue_depth", "sealnet_output_queue_depth"} {
			sum += scrapeMetric(metrics, q)
		}
		return sum
	}
	for deadline := time.Now().Add(10 * time.Second); scrapeMetric(metrics, "sealnet_epoch") == 0; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(logf.Name())
			t.Fatalf("the victim's metrics never answered\n%s", log)
		}
	}
	var ids, bodies []string
	for i := range 10 {
		body := "message " + string(rune('A'+i)) + " in flight"
		ids = append(ids, alice.send("bob@b", body))
		bodies = append(bodies, body)
	}
	// Each message crosses the victim with probability 1/2; wait for
	// what it holds to settle (the others are delivered meanwhile).
	var inside float64
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		inside = held()
		if inside > 0 && len(alice.c.Outbox()) <= int(inside) {
			break
		}
	}
	if inside == 0 {
		t.Fatalf("no packet is inside %s; the kill would test nothing", victim)
	}
	stopVictim(syscall.SIGKILL)
	t.Logf("killed %s with SIGKILL holding %v packets", victim, inside)
	// The messages not yet settled: what the victim held.
	pending := map[string]int{}
	for _, o := range alice.c.Outbox() {
		pending[hex.EncodeToString(o.ID)] = 0
	}
	time.Sleep(2 * time.Second)
	startVictim(n.nw, false)
	t.Logf("restarted %s", victim)
	// Watch the outbox for retransmissions until every message settles.
	watchDone := make(chan struct{})
	var watch sync.WaitGroup
	var wmu sync.Mutex
	watch.Go(func() {
		for {
			for _, o := range alice.c.Outbox() {
				id := hex.EncodeToString(o.ID)
				for _, f := range o.Fragments {
					wmu.Lock()
					if a, ok := pending[id]; ok && f.Attempts > a {
						pending[id] = f.Attempts
					}
					wmu.Unlock()
				}
			}
			select {
			case <-watchDone:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	})
	for i, id := range ids {
		if e := alice.waitOutcome(id, 3*time.Minute); e.Kind != sender.EventDelivered {
			close(watchDone)
			watch.Wait()
			log, _ := os.ReadFile(logf.Name())
			t.Fatalf("message %d: outcome %s: %s\n%s's log:\n%s", i, e.Kind, e.Text, victim, log)
		}
	}
	close(watchDone)
	watch.Wait()
	retransmitted := 0
	for _, a := range pending {
		if a >= 2 {
			retransmitted++
		}
	}
	t.Logf("%d messages unsettled at the kill, %d of them retransmitted", len(pending), retransmitted)
	if float64(retransmitted) < inside {
		t.Errorf("%v packets were inside %s at the kill, but only %d messages were retransmitted", inside, victim, retransmitted)
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

// scrapeMetric reads one series from a metrics endpoint (0 if absent or
// unreachable).
func scrapeMetric(addr, series string) float64 {
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, series+" "); ok {
			f, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f
		}
	}
	return 0
}

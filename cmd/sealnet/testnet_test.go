package main

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sealnet/sealnet/internal/testbed/testnet"
	"github.com/sealnet/sealnet/mailbox/proto"
	"github.com/sealnet/sealnet/mixnet"
	"github.com/sealnet/sealnet/mixnet/directory"
	"github.com/sealnet/sealnet/mixnet/link"
)

// TestTestnetUp runs `sealnet testnet up` as users do: a real binary
// starting real processes. A user registers at a provider process over a
// user link; envelopes sent to it through the mix layers come out of its
// mailbox; the provider's metrics count them; SIGINT stops everything and
// leaves no process behind.
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
	// A user of provider-a, registered over a user link to the provider
	// process; mail to it goes through the mix layers and comes back out of
	// the mailbox.
	prov, _ := doc.Doc.Provider("a")
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	x, _ := link.GenerateKey(rand.Reader)
	var token [32]byte
	rand.Read(token[:])
	owner, err := proto.Dial(ctx, doc.Doc.Geometry, prov.Address, prov.LinkKey, proto.DialOptions{Identity: x})
	if err != nil {
		t.Fatal(err)
	}
	defer owner.Close()
	if err := owner.Register(ctx, "bob@a", [32]byte(x.Public), ed, sha256.Sum256(token[:]), false); err != nil {
		t.Fatal(err)
	}
	inj := testnet.NewInjector(doc.Doc)
	defer inj.Close()
	mb := proto.MailboxOf("bob@a")
	send := func(i int) {
		t.Helper()
		if err := sendDelivery(ctx, inj, doc, prov, mb, [16]byte{byte(i), byte(i >> 8), 1}, token, []byte("hello")); err != nil {
			t.Fatal(err)
		}
	}
	sealed := map[[16]byte]bool{}
	drain := func() {
		t.Helper()
		p, err := owner.Fetch(ctx, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range p.Records {
			if r.Kind == proto.EnvelopeSealed {
				sealed[r.ID] = true
			}
		}
		if len(p.Records) > 0 {
			if err := owner.Ack(ctx, p.Records[len(p.Records)-1].Seq); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Relays poll the directory every few seconds: probe until the first
	// envelope comes through, then send twenty.
	for i := 1000; len(sealed) == 0; i++ {
		if ctx.Err() != nil {
			t.Fatal("no probe envelope came through the network")
		}
		send(i)
		drain()
	}
	base := len(sealed)
	for i := range 20 {
		send(i)
	}
	for len(sealed) < base+20 {
		if ctx.Err() != nil {
			t.Fatalf("%d of 20 envelopes came through", len(sealed)-base)
		}
		drain()
	}

	if n := scrape(t, nw.Nodes[len(nw.Nodes)-2].Metrics, `sealnet_mailbox_deliveries_total{outcome="stored"}`); n < 21 {
		t.Fatalf("provider-a's metrics count %v stored envelopes", n)
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

// TestTestnetParameters: `testnet up --parameters FILE` reads a
// [parameters] section as dirauth.toml has it, keys left out keep their
// defaults, --mean-delay and --client-rate override it (0 included), and
// a misspelt key is refused by name.
func TestTestnetParameters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "params.toml")
	if err := os.WriteFile(path, []byte("[parameters]\nmax_delay = \"10s\"\nmean_delay = \"1s\"\nrelay_loop_rate = 0.5\nack_timeout = \"1m\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	zero, rate := time.Duration(0), 0.0
	got, err := testnetParameters(path, &zero, &rate)
	if err != nil {
		t.Fatal(err)
	}
	want := directory.DefaultParameters()
	want.MaxDelay, want.MeanDelay, want.RelayLoopRate, want.AckTimeout, want.ClientRate = 10*time.Second, 0, 0.5, time.Minute, 0
	if got != want {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	if got, err := testnetParameters("", nil, nil); err != nil || got != directory.DefaultParameters() {
		t.Fatalf("no file, no flags: %+v, %v; want the defaults", got, err)
	}
	if err := os.WriteFile(path, []byte("[parameters]\nmean_dealy = \"1s\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := testnetParameters(path, nil, nil); err == nil || !strings.Contains(err.Error(), "parameters.mean_dealy") {
		t.Fatalf("misspelt key: got %v, want an error naming parameters.mean_dealy", err)
	}
}

// sendDelivery sends one tokened delivery for mailbox mb at prov into
// the mix network through inj, as a client does (with a SURB for its
// acknowledgement, which a test without the owner's reply key never
// sees stored).
func sendDelivery(ctx context.Context, inj *testnet.Injector, doc *directory.SignedDocument, prov *directory.Descriptor,
	mb proto.MailboxID, id [16]byte, token [32]byte, data []byte) error {
	var seed [32]byte
	rand.Read(seed[:])
	back, err := doc.Doc.SelectPath(mrand.New(mrand.NewChaCha8(seed)), prov, doc.Doc.Epoch, 10*time.Millisecond)
	if err != nil {
		return err
	}
	surb, _, err := mixnet.NewSURB(rand.Reader, doc.Doc.Geometry, back, mixnet.RecipientID(mb))
	if err != nil {
		return err
	}
	sb, _ := surb.MarshalBinary()
	msg, err := proto.MarshalMixRequest(doc.Doc.Geometry, &proto.MixRequest{SURB: sb,
		Deliver: &proto.MixDeliver{EnvelopeID: id, Token: token, Data: data}})
	if err != nil {
		return err
	}
	entry, pkt, err := inj.Packet(prov, mixnet.RecipientID(mb), msg, 10*time.Millisecond)
	if err != nil {
		return err
	}
	return inj.Send(ctx, entry, pkt)
}

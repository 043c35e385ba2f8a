package mailbox_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sealnet/sealnet/internal/config"
	"github.com/sealnet/sealnet/internal/keystore"
	"github.com/sealnet/sealnet/internal/testbed/testnet"
	"github.com/sealnet/sealnet/mailbox/proto"
)

// process runs `sealnet mailbox` for the provider of nw.
type process struct {
	t    *testing.T
	exe  string
	nw   *testnet.Network
	node testnet.Node
	cmd  *exec.Cmd
	log  *os.File
}

func (p *process) start() {
	p.t.Helper()
	p.cmd = exec.Command(p.exe, "mailbox", "--config", p.nw.Path(p.node.Config))
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
}

func (p *process) kill() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	p.cmd.Wait()
}

// dial waits until the provider answers on a link; on the test goroutine
// only.
func (p *process) dial(u *user) *proto.Client {
	p.t.Helper()
	c, err := p.tryDial(u, 30*time.Second)
	if err != nil {
		p.t.Fatal(err)
	}
	return c
}

// tryDial waits up to d for the provider to answer on a link.
func (p *process) tryDial(u *user, d time.Duration) (*proto.Client, error) {
	cfg, err := p.nw.RelayConfig(p.node)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		lk, _, err := keystore.Link(filepath.Join(cfg.DataDir, "keys"))
		if err == nil {
			var o proto.DialOptions
			if u != nil {
				o.Identity = u.x
			}
			c, err := proto.Dial(context.Background(), geo, p.node.Address, [32]byte(lk.Public), o)
			if err == nil {
				return c, nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil, errors.New("the provider never answered")
}

// TestProviderSurvivesKill9 delivers envelopes concurrently to a provider
// running as its own process, kills it with SIGKILL at a random moment,
// restarts it, and requires every envelope it acknowledged before the
// kill, exactly once. Then, as senders do, it re-sends after the restart
// what each loader had sent without seeing the acknowledgement (the same
// ID and bytes; the provider may or may not have stored it), and the last
// envelope each had acknowledged (an acknowledgement lost on the way back
// looks the same to the provider, and this one is certainly on disk): the
// mailbox must hold each of them exactly once. Three rounds.
func TestProviderSurvivesKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and kills it three times")
	}
	exe := filepath.Join(t.TempDir(), "sealnet")
	if out, err := exec.Command("go", "build", "-o", exe, "../cmd/sealnet").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	nw, err := testnet.Create(t.TempDir(), testnet.Spec{EpochPeriod: time.Hour, Layers: 1, Width: 1, Providers: 1, LogLevel: "warn"})
	if err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(t.TempDir(), "provider.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	p := &process{t: t, exe: exe, nw: nw, node: nw.Nodes[len(nw.Nodes)-1], log: logf}
	// A load test: lift the per-mailbox and per-link rate limits.
	mc, err := nw.MailboxConfig(p.node)
	if err != nil {
		t.Fatal(err)
	}
	mc.Mailbox.DeliveriesPerMinute, mc.Mailbox.RequestsPerSecond = 100_000_000, 1_000_000
	// And the quota: a fast round can deliver more than the default 10,000
	// envelopes, and a loader's last delivery refused as over quota would
	// then fail the re-send below for a reason this test is not about.
	mc.Mailbox.MaxEnvelopes, mc.Mailbox.MaxBytes = 1_000_000, 1<<30
	mc.Limits.MaxConnsPerPeer = 64 // eight loaders and the owner, all from 127.0.0.1
	var buf bytes.Buffer
	if err := config.Encode(&buf, mc); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(nw.Path(p.node.Config), buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	p.start()
	defer p.kill()

	bob := newUser(t, "bob@a")
	owner := p.dial(bob)
	if err := owner.Register(context.Background(), bob.addr, [32]byte(bob.x.Public), bob.ed, sha256.Sum256(bob.token[:]), true); err != nil {
		t.Fatal(err)
	}
	owner.Close()

	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, seed>>7))
	next := 0
	for round := range 3 {
		var mu sync.Mutex
		acked := map[[16]byte]bool{}
		var resend [][16]byte // sent, acknowledgement not seen; and the last acknowledged
		var wg sync.WaitGroup
		for g := range 8 {
			first := next + g*1_000_000
			wg.Go(func() {
				c, err := p.tryDial(nil, 5*time.Second)
				if err != nil {
					t.Error(err)
					return
				}
				defer c.Close()
				var last [16]byte
				for i := first; ; i++ {
					id := envID(i)
					code, err := c.Deliver(context.Background(), bob.mb(), id, bob.token, envData(id))
					if err != nil {
						// The provider died with this one sent and its
						// acknowledgement not seen.
						mu.Lock()
						resend = append(resend, id)
						if i > first {
							resend = append(resend, last)
						}
						mu.Unlock()
						return
					}
					if code == proto.StatusOK || code == proto.StatusDuplicate {
						mu.Lock()
						acked[id] = true
						mu.Unlock()
						last = id
					}
				}
			})
		}
		next += 8_000_000
		time.Sleep(300*time.Millisecond + time.Duration(rng.Int64N(int64(1200*time.Millisecond))))
		p.kill()
		wg.Wait()

		p.start()
		// The senders retransmit: same ID, same bytes, after the restart.
		c, err := p.tryDial(nil, 30*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range resend {
			code, err := c.Deliver(context.Background(), bob.mb(), id, bob.token, envData(id))
			if err != nil || (code != proto.StatusOK && code != proto.StatusDuplicate) {
				t.Fatalf("round %d: re-sending after the restart: status %v, %v", round, code, err)
			}
			acked[id] = true
		}
		c.Close()
		if len(resend) == 0 {
			t.Fatalf("round %d: no loader saw the provider die; nothing was re-sent", round)
		}
		owner := p.dial(bob)
		got := map[[16]byte]int{}
		for _, id := range fetchAll(t, owner) {
			got[id]++
		}
		owner.Close()
		for _, id := range resend {
			if got[id] != 1 {
				t.Fatalf("round %d: an envelope re-sent after the restart is stored %d times; want once", round, got[id])
			}
		}
		for _, n := range got {
			if n != 1 {
				t.Fatalf("round %d: an envelope stored %d times", round, n)
			}
		}
		for id := range acked {
			if got[id] != 1 {
				t.Fatalf("round %d: an envelope acknowledged before the kill, or re-sent after it, is missing", round)
			}
		}
		t.Logf("round %d: %d acknowledged before SIGKILL or re-sent after (%d re-sent), %d found after restart (the difference was written but not yet acknowledged)", round, len(acked), len(resend), len(got))
		if len(acked) == 0 {
			t.Fatalf("round %d: nothing was acknowledged before the kill; the test did not test", round)
		}
	}
}

// envData is the payload of envelope id: its own bytes, so that a re-send
// carries the same bytes as the first send.
func envData(id [16]byte) []byte { return bytes.Repeat(id[:], 1024/len(id)) }

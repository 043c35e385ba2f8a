package badger

import (
	"bufio"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/sealnet/sealnet/mailbox/proto"
	"github.com/sealnet/sealnet/mailbox/store"
)

// crashDirEnv selects the child role of TestStoreCrash and names its
// store directory.
const crashDirEnv = "SEALNET_STORE_CRASH_DIR"

func stCrashConfig() Config {
	return Config{Limits: store.Limits{MaxEnvelopes: 1 << 30, MaxBytes: 1 << 40}}
}

// TestCrashChild is the child of TestStoreCrash: it delivers envelopes from
// 8 goroutines and prints each envelope ID the moment Deliver returned it
// durable, until it is killed. Run on its own it does nothing.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("the child of TestStoreCrash")
	}
	s, err := Open(dir, stCrashConfig())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	mb := proto.MailboxOf("crash@provider.example")
	var out sync.Mutex
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1_000_000 { // the parent kills the child long before
				e := store.Envelope{Kind: proto.EnvelopeSealed, Data: make([]byte, 256)}
				crand.Read(e.ID[:])
				crand.Read(e.Data)
				if _, err := s.Deliver(context.Background(), mb, e); err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(2)
				}
				line := []byte(hex.EncodeToString(e.ID[:]) + "\n")
				out.Lock()
				os.Stdout.Write(line) // one write, unbuffered
				out.Unlock()
			}
		})
	}
	wg.Wait()
	os.Exit(3)
}

// TestStoreCrash kills a child process that is delivering envelopes with
// SIGKILL at a random moment (200 ms to 1.5 s after its first
// acknowledgement, so that every round kills deliveries in flight; the
// seed is logged), reopens its store and checks that every envelope the
// child saw acknowledged is there exactly once. Three rounds.
func TestStoreCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, seed>>1))
	for round := range 3 {
		dir := t.TempDir()
		s, err := Open(dir, stCrashConfig())
		if err != nil {
			t.Fatal(err)
		}
		mb, err := s.Register(stAccount("crash"))
		if err != nil {
			t.Fatal(err)
		}
		if mb != proto.MailboxOf("crash@provider.example") {
			t.Fatal("unexpected mailbox")
		}
		s.Close()

		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashDirEnv+"="+dir)
		cmd.Stderr = os.Stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		acked := make(chan []string, 1)
		first := make(chan struct{})
		go func() {
			var ids []string
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				if len(sc.Text()) == 32 {
					if ids == nil {
						close(first)
					}
					ids = append(ids, sc.Text())
				}
			}
			if ids == nil {
				close(first)
			}
			acked <- ids
		}()
		delay := 200*time.Millisecond + time.Duration(rng.Int64N(int64(1300*time.Millisecond)))
		select {
		case <-first:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			t.Fatal("the child acknowledged nothing in 30 s")
		}
		time.Sleep(delay)
		if err := cmd.Process.Kill(); err != nil { // SIGKILL
			t.Fatal(err)
		}
		cmd.Wait()
		ids := <-acked
		if len(ids) == 0 {
			t.Fatalf("round %d: the child died before acknowledging anything", round)
		}

		s, err = Open(dir, stCrashConfig())
		if err != nil {
			t.Fatalf("round %d: reopen after the kill: %v", round, err)
		}
		held := map[string]int{}
		var all []proto.Record
		var after uint64
		for range 1 << 16 {
			page, more, err := s.Page(mb, store.MaxPage)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range page {
				if r.Seq <= after {
					t.Fatalf("sequence %d after %d", r.Seq, after)
				}
				after = r.Seq
				held[hex.EncodeToString(r.ID[:])]++
			}
			all = append(all, page...)
			if !more {
				break
			}
			if err := s.Ack(mb, after); err != nil {
				t.Fatal(err)
			}
		}
		s.Close()
		for _, id := range ids {
			if held[id] != 1 {
				t.Fatalf("round %d: acknowledged envelope %s held %d times", round, id, held[id])
			}
		}
		for id, n := range held {
			if n != 1 {
				t.Fatalf("round %d: envelope %s held %d times", round, id, n)
			}
		}
		t.Logf("round %d: killed %v after the first acknowledgement; %d acknowledged, %d held", round, delay, len(ids), len(all))
	}
}

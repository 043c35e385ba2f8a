package mailbox

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sealnet/sealnet/mailbox/proto"
	"github.com/sealnet/sealnet/mailbox/store"
	"github.com/sealnet/sealnet/mailbox/store/badger"
	"github.com/sealnet/sealnet/sender/seal"
)

// phService is a service over a store of its own, with a settable clock
// shared by both.
func phService(t *testing.T, dir string, cfg badger.Config, clock *stClock) *Service {
	t.Helper()
	cfg.Clock = clock
	st := stOpen(t, dir, cfg)
	set := Settings{}
	if err := set.validate(); err != nil {
		t.Fatal(err)
	}
	set.OneTimePerHour, set.BundlesPerHour = 1000, 1000
	return NewService(set, ServiceOptions{Domain: "provider.example", Store: st, Secret: [32]byte{7}, Clock: clock})
}

func phBundle(t *testing.T, s *Service, mb proto.MailboxID) *seal.PrekeyBundle {
	t.Helper()
	m := s.bundle(mb)
	r, ok := m.(*proto.BundleResponse)
	if !ok {
		t.Fatalf("bundle request answered %#v", m)
	}
	b, err := seal.ParseBundle(r.Bundle)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Verify(); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestPhantomHandsOutLikeAnAccount: a fake bundle hands out one-time
// prekeys as a fresh account does (IDs 3 to 52, post-quantum 53 to 62 and
// then the last-resort key 2, then none), each once, also across a
// restart of the store; a bundle request without a take shows none.
func TestPhantomHandsOutLikeAnAccount(t *testing.T) {
	dir := t.TempDir()
	clock := newStClock()
	s := phService(t, dir, badger.Config{}, clock)
	mb := proto.MailboxOf("nobody@provider.example")
	first := phBundle(t, s, mb)
	for i := range clientOneTime + 2 {
		if i == 20 { // the store restarts in the middle
			s.store.Close()
			s = phService(t, dir, badger.Config{}, clock)
		}
		b := first
		if i > 0 {
			b = phBundle(t, s, mb)
		}
		if b.IdentityEd25519 != first.IdentityEd25519 || b.IdentityX25519 != first.IdentityX25519 || b.Signed != first.Signed {
			t.Fatalf("take %d: identity or signed prekey changed", i)
		}
		if b.Signed.ID != 1 {
			t.Fatalf("take %d: signed prekey ID %d, a fresh account's is 1", i, b.Signed.ID)
		}
		switch {
		case i < clientOneTime && (b.OneTime == nil || b.OneTime.ID != uint32(3+i)):
			t.Fatalf("take %d: one-time prekey %+v, want ID %d", i, b.OneTime, 3+i)
		case i >= clientOneTime && b.OneTime != nil:
			t.Fatalf("take %d: one-time prekey %d after all %d were handed out", i, b.OneTime.ID, clientOneTime)
		case i < clientPQ && (b.PQ.Kind != seal.PQOneTime || b.PQ.ID != uint32(53+i)):
			t.Fatalf("take %d: post-quantum prekey %d of kind %d, want one-time %d", i, b.PQ.ID, b.PQ.Kind, 53+i)
		case i >= clientPQ && (b.PQ.Kind != seal.PQLastResort || b.PQ.ID != 2):
			t.Fatalf("take %d: post-quantum prekey %d of kind %d, want the last resort 2", i, b.PQ.ID, b.PQ.Kind)
		}
	}
	// No take (the one-time rate limit refused it): signed and last resort.
	b, err := s.phantomBundle(proto.MailboxOf("other@provider.example"), false, clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if b.OneTime != nil || b.PQ.Kind != seal.PQLastResort || b.PQ.ID != 2 {
		t.Fatalf("bundle without a take: %+v", b)
	}
	if n := s.store.Phantoms(); n != 1 {
		t.Fatalf("%d phantom records, want 1 (only hand-outs write one)", n)
	}
}

// TestPhantomRotatesWeekly: over a year a phantom's signed prekey ID
// moves as a client's rotation does (1, then 63, 65, …: by two, at most
// once a week), its last-resort key with it, a key shown under one ID is
// always the same, and phantoms differ in how often they rotated.
func TestPhantomRotatesWeekly(t *testing.T) {
	clock := newStClock()
	s := phService(t, "", badger.Config{}, clock)
	const weeks, mailboxes = 52, 40
	created := s.store.Created()
	counts := map[int]int{}
	for m := range mailboxes {
		mb := proto.MailboxOf(fmt.Sprintf("nobody%d@provider.example", m))
		k, last := 0, -7
		keys := map[uint32][32]byte{}
		for d := 0; d <= weeks*7; d++ {
			now := created.Add(time.Duration(d)*24*time.Hour + time.Duration(m)*time.Hour)
			switch r := s.phantomRotations(mb, now); {
			case r == k:
			case r == k+1 && d-last >= 7:
				k, last = r, d
			default:
				t.Fatalf("%d, day %d: %d rotations after %d on day %d", m, d, r, k, last)
			}
			if d%7 != 0 {
				continue
			}
			b, err := s.phantomBundle(mb, false, now)
			if err != nil {
				t.Fatal(err)
			}
			want := uint32(1)
			if k > 0 {
				want = uint32(clientRotatedID + 2*(k-1))
			}
			if b.Signed.ID != want || b.PQ.ID != want+1 || b.PQ.Kind != seal.PQLastResort {
				t.Fatalf("%d, day %d, %d rotations: signed prekey %d, last resort %d", m, d, k, b.Signed.ID, b.PQ.ID)
			}
			if key, ok := keys[want]; ok && key != b.Signed.Public {
				t.Fatalf("%d: signed prekey %d shown with two keys", m, want)
			}
			keys[want] = b.Signed.Public
		}
		counts[k/10]++
	}
	if len(counts) < 3 {
		t.Errorf("rotations in a year, by tens: %v: phantoms all look alike", counts)
	}
	t.Logf("phantoms by rotations in a year (tens): %v", counts)
}

// TestPhantomCap: beyond MaxPhantoms records a new phantom's take is
// served as a take the rate limit refused; existing ones go on.
func TestPhantomCap(t *testing.T) {
	clock := newStClock()
	s := phService(t, "", badger.Config{Limits: store.Limits{MaxPhantoms: 2}}, clock)
	for i := range 3 {
		b := phBundle(t, s, proto.MailboxOf(fmt.Sprintf("nobody%d@provider.example", i)))
		if got := b.OneTime != nil; got != (i < 2) {
			t.Fatalf("phantom %d: one-time prekey %v beyond a cap of 2", i, b.OneTime)
		}
	}
	if b := phBundle(t, s, proto.MailboxOf("nobody0@provider.example")); b.OneTime == nil || b.OneTime.ID != 4 {
		t.Fatalf("a phantom under the cap: one-time prekey %+v, want 4", b.OneTime)
	}
	if n := s.store.Phantoms(); n != 2 {
		t.Fatalf("%d phantom records, want 2", n)
	}
}

// TestStrangerAnswerTime: a stranger's request is answered exactly at the
// answer time whether its work takes a moment or most of it; work beyond
// it is answered late (and waited for by the link); work that the token
// authorizes is answered when done; and with no worker free, busy.
func TestStrangerAnswerTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		set := Settings{}
		if err := set.validate(); err != nil {
			t.Fatal(err)
		}
		set.DeliveryWorkers = 1
		s := NewService(set, ServiceOptions{})
		late, busy := &proto.Status{Code: proto.StatusAccepted}, &proto.Status{Code: proto.StatusUnavailable}
		sleep := func(d time.Duration, auth bool) func(context.Context, func()) proto.Message {
			return func(_ context.Context, authorized func()) proto.Message {
				if auth {
					authorized()
				}
				time.Sleep(d)
				return &proto.Status{Code: proto.StatusOK}
			}
		}
		var stragglers sync.WaitGroup
		for _, c := range []struct {
			name  string
			work  time.Duration
			auth  bool
			after time.Duration
			want  proto.Message
		}{
			{"quick", time.Millisecond, false, StrangerAnswerTime, nil},
			{"most of it", StrangerAnswerTime - time.Millisecond, false, StrangerAnswerTime, nil},
			{"authorized", 3 * time.Millisecond, true, 3 * time.Millisecond, nil},
			{"authorized and slow", 2 * StrangerAnswerTime, true, 2 * StrangerAnswerTime, nil},
			{"overrun", 2 * StrangerAnswerTime, false, StrangerAnswerTime, late},
		} {
			start := time.Now()
			m := s.answerAt(context.Background(), start, &stragglers, sleep(c.work, c.auth), late, busy)
			if got := time.Since(start); got != c.after {
				t.Errorf("%s: answered after %v, want %v", c.name, got, c.after)
			}
			if want := c.want; want == nil && m.(*proto.Status).Code != proto.StatusOK || want != nil && m != want {
				t.Errorf("%s: answered %v", c.name, m)
			}
			if c.name == "overrun" {
				// The overrun's work still holds the only worker.
				start := time.Now()
				if m := s.answerAt(context.Background(), start, &stragglers, sleep(0, true), late, busy); m != busy || time.Since(start) != StrangerAnswerTime {
					t.Errorf("no worker free: %v after %v", m, time.Since(start))
				}
			}
			stragglers.Wait()
		}
	})
}

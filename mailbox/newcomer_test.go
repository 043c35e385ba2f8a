package mailbox_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"testing"
	"time"

	"github.com/sealnet/sealnet/internal/config"
	"github.com/sealnet/sealnet/internal/testbed/testnet"
	"github.com/sealnet/sealnet/mailbox"
	"github.com/sealnet/sealnet/mailbox/proto"
)

// linkOpen reports whether c's link still answers: an unregistered key's
// fetch is refused with a status, a closed link fails to carry it.
func linkOpen(c *proto.Client) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_, err := c.Fetch(ctx, 0)
	return err == nil || statusOf(err) != 255
}

// TestNewcomerLinksBounded: anyone can make a key and open a user link
// with it, so links of keys with no account hold at most newcomer_links
// places and only until register_within, while the accounts' links are
// not affected. Control: with the bounds lifted (as before), links of
// made-up keys stay open, each holding a connection slot of the node.
// Once the network is up its clock moves only where the test moves it
// (testnet.RunningClock): register_within passes in a jump, not a sleep.
func TestNewcomerLinksBounded(t *testing.T) {
	const within = 1500 * time.Millisecond
	for _, bounded := range []bool{true, false} {
		t.Run(fmt.Sprintf("bounded=%v", bounded), func(t *testing.T) {
			clk := testnet.NewRunningClock(time.Now())
			t.Cleanup(clk.Stop) // after the network's cleanup, which stops on a running clock
			e := startOn(t, testnet.Spec{EpochPeriod: time.Hour, Layers: 1, Width: 1, Providers: 1}, clk, nil, func(_ string, s *mailbox.Settings) {
				if bounded {
					s.NewcomerLinks, s.RegisterWithin = 3, config.Duration(within)
				} else {
					s.NewcomerLinks, s.RegisterWithin = 1000, config.Duration(time.Hour)
				}
			})
			bob := newUser(t, "bob@a")
			e.register(t, bob, true)
			clk.Hold()

			var made []*proto.Client
			for i := range 4 {
				made = append(made, e.dial(t, "a", newUser(t, fmt.Sprintf("made-up%d@a", i))))
			}
			open := 0
			for _, c := range made {
				if linkOpen(c) {
					open++
				}
			}
			if bounded && open != 3 {
				t.Fatalf("%d of 4 made-up keys' links open, want newcomer_links = 3", open)
			}
			if !bounded && open != 4 {
				t.Fatalf("control: %d of 4 made-up keys' links open, want all", open)
			}
			// An account's link is not a newcomer's: it opens while every
			// newcomer place is taken.
			if owner := e.dial(t, "a", bob); !linkOpen(owner) {
				t.Fatal("bob's link refused while made-up keys hold the newcomer places")
			}
			// A newcomer that registers in time keeps its link.
			carol := newUser(t, "carol@a")
			var cl *proto.Client
			if bounded {
				clk.Advance(within + 500*time.Millisecond) // the made-up keys' deadline passes, freeing their places
			}
			// A place is free once the handler of a closed link has
			// returned, just after the link is seen closed.
			deadline := time.Now().Add(10 * time.Second)
			for cl = e.dial(t, "a", carol); !linkOpen(cl); cl = e.dial(t, "a", carol) {
				if time.Now().After(deadline) {
					t.Fatal("no newcomer place free 10 s after the made-up keys' register_within")
				}
			}
			if err := cl.Register(context.Background(), carol.addr, [32]byte(carol.x.Public), carol.ed, sha256.Sum256(carol.token[:]), true); err != nil {
				t.Fatalf("a newcomer registering: %v", err)
			}
			clk.Advance(within + 500*time.Millisecond)
			if !linkOpen(cl) {
				t.Fatal("a link that registered in time was closed at register_within")
			}
			open = 0
			for _, c := range made {
				if linkOpen(c) {
					open++
				}
			}
			if bounded && open != 0 {
				t.Fatalf("%d made-up keys' links still open after register_within", open)
			}
			if !bounded && open != 4 {
				t.Fatalf("control: %d of 4 made-up keys' links open after the wait, want all (they hold their slots)", open)
			}
		})
	}
}

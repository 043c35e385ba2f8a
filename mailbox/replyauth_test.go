package mailbox_test

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"fmt"
	mrand "math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/sealnet/sealnet/internal/metrics"
	"github.com/sealnet/sealnet/internal/testbed/testnet"
	"github.com/sealnet/sealnet/mailbox"
	"github.com/sealnet/sealnet/mailbox/proto"
	"github.com/sealnet/sealnet/mixnet"
)

// counter reads one series of a registry, 0 if absent.
func counter(t *testing.T, r *metrics.Registry, series string) uint64 {
	t.Helper()
	var b bytes.Buffer
	if _, err := r.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(b.String()) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), series+" "); ok {
			var n uint64
			if _, err := fmt.Sscan(v, &n); err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return n
		}
	}
	return 0
}

// surbWithID builds a SURB to u's mailbox at its provider with the given ID.
func (e *env) surbWithID(t *testing.T, u *user, id mixnet.SURBID) *mixnet.SURB {
	t.Helper()
	var seed [32]byte
	rand.Read(seed[:])
	path, err := e.doc.Doc.SelectPath(mrand.New(mrand.NewChaCha8(seed)), e.provider(u.domain()), e.doc.Doc.Epoch, 10*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	s, _, err := mixnet.NewSURBWithID(rand.Reader, geo, path, mixnet.RecipientID(u.mb()), id)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// replyKey is the key u's SURB IDs are made with, or, for another
// identity key x, the key someone who is not u would make them with.
func (e *env) replyKey(t *testing.T, u *user, x []byte) proto.ReplyKey {
	t.Helper()
	priv, err := ecdh.X25519().NewPrivateKey(x)
	if err != nil {
		t.Fatal(err)
	}
	k, err := proto.OwnerReplyKey(priv, e.provider(u.domain()).LinkKey, u.mb())
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// sendReply sends a reply through s into the network.
func sendReply(t *testing.T, inj *testnet.Injector, s *mixnet.SURB, msg string) []byte {
	t.Helper()
	pkt, err := s.NewReply(geo, []byte(msg))
	if err != nil {
		t.Fatal(err)
	}
	if err := inj.Send(context.Background(), s.FirstHop, pkt); err != nil {
		t.Fatal(err)
	}
	return pkt
}

// TestForgedSURBReplyRefused (issue 16): a stranger who knows only the
// public directory and alice's address builds SURB replies to her
// mailbox, one with a random SURB ID, one with an ID made under a key of
// its own; alice's provider stores neither (they count as forged_reply)
// and stores a reply to a SURB alice made. That reply, replayed, is
// dropped by the first hop's replay cache and stored once. The control,
// a provider that does not check SURB IDs (as before issue 16), stores
// the forgeries: the attack works there.
func TestForgedSURBReplyRefused(t *testing.T) {
	for _, check := range []bool{true, false} {
		t.Run(map[bool]string{true: "checked", false: "control_unchecked"}[check], func(t *testing.T) {
			e := start(t, testnet.Spec{EpochPeriod: time.Hour, Layers: 2, Width: 1, Providers: 1, NoCover: true}, func(s *mailbox.Settings) {
				if !check {
					mailbox.DisableReplyAuth(s)
				}
			})
			alice, mallory := newUser(t, "alice@a"), newUser(t, "mallory@a")
			ac := e.register(t, alice, true)
			prov := e.p.Providers[e.provider("a").Name]
			inj := testnet.NewInjector(e.doc.Doc)
			defer inj.Close()

			var random mixnet.SURBID
			rand.Read(random[:])
			wrongKey := e.replyKey(t, alice, mallory.x.Private)
			wrong, err := wrongKey.NewReplyID(rand.Reader, alice.mb())
			if err != nil {
				t.Fatal(err)
			}
			ownKey := e.replyKey(t, alice, alice.x.Private)
			genuine, err := ownKey.NewReplyID(rand.Reader, alice.mb())
			if err != nil {
				t.Fatal(err)
			}
			sendReply(t, inj, e.surbWithID(t, alice, random), "forged, random ID")
			sendReply(t, inj, e.surbWithID(t, alice, wrong), "forged, wrong key")
			realSURB := e.surbWithID(t, alice, genuine)
			pkt := sendReply(t, inj, realSURB, "genuine")
			first := e.p.Nodes[func() string { d, _ := e.doc.Doc.Node(realSURB.FirstHop); return d.Name }()]
			replaysBefore := counter(t, first.Metrics(), `sealnet_packets_dropped_total{reason="replay"}`)
			if err := inj.Send(context.Background(), realSURB.FirstHop, pkt); err != nil {
				t.Fatal(err)
			}

			reg := prov.Node.Metrics()
			forged := `sealnet_mailbox_rejected_total{reason="forged_reply"}`
			stored := `sealnet_mailbox_deliveries_total{outcome="surb_reply"}`
			wantForged, wantStored := uint64(2), uint64(1)
			if !check {
				wantForged, wantStored = 0, 3
			}
			deadline := time.Now().Add(30 * time.Second)
			for counter(t, reg, forged) < wantForged || counter(t, reg, stored) < wantStored ||
				counter(t, first.Metrics(), `sealnet_packets_dropped_total{reason="replay"}`) == replaysBefore {
				if n := counter(t, reg, stored); n > wantStored {
					t.Fatalf("%d replies stored, want %d", n, wantStored)
				}
				if time.Now().After(deadline) {
					t.Fatalf("after 30 s: forged %d (want %d), stored %d (want %d), replays dropped at the first hop %d (before %d)",
						counter(t, reg, forged), wantForged, counter(t, reg, stored), wantStored,
						counter(t, first.Metrics(), `sealnet_packets_dropped_total{reason="replay"}`), replaysBefore)
				}
				time.Sleep(20 * time.Millisecond)
			}
			got := fetchAll(t, ac)
			t.Logf("records in alice's mailbox: %d; forged_reply %d", len(got), counter(t, reg, forged))
			want := map[[16]byte]bool{genuine: true}
			if !check {
				want[random], want[wrong] = true, true
			}
			if len(got) != len(want) {
				t.Fatalf("alice's mailbox holds %d records, want %d (%v)", len(got), len(want), got)
			}
			for _, id := range got {
				if !want[id] {
					t.Fatalf("alice's mailbox holds the forged reply %x", id)
				}
			}
			if n := counter(t, reg, stored); n != wantStored {
				t.Fatalf("%d replies stored, want %d", n, wantStored)
			}
		})
	}
}

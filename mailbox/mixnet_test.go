package mailbox_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	mrand "math/rand/v2"
	"testing"
	"time"

	"github.com/sealnet/sealnet/internal/testbed/testnet"
	"github.com/sealnet/sealnet/mailbox"
	"github.com/sealnet/sealnet/mailbox/proto"
	"github.com/sealnet/sealnet/mixnet"
	"github.com/sealnet/sealnet/sender/seal"
)

// surbTo builds a SURB that brings a reply to u's mailbox at its provider,
// with a SURB ID made as u's client makes them (its provider stores only
// those replies: replyauth_test.go).
func (e *env) surbTo(t *testing.T, u *user) (*mixnet.SURB, *mixnet.SURBKeys) {
	t.Helper()
	var seed [32]byte
	rand.Read(seed[:])
	path, err := e.doc.Doc.SelectPath(mrand.New(mrand.NewChaCha8(seed)), e.provider(u.domain()), e.doc.Doc.Epoch, 10*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	k := e.replyKey(t, u, u.x.Private)
	id, err := k.NewReplyID(rand.Reader, u.mb())
	if err != nil {
		t.Fatal(err)
	}
	s, sk, err := mixnet.NewSURBWithID(rand.Reader, geo, path, mixnet.RecipientID(u.mb()), id)
	if err != nil {
		t.Fatal(err)
	}
	return s, sk
}

// sendMix sends a mix request to u's mailbox through the network.
func (e *env) sendMix(t *testing.T, inj *testnet.Injector, to *user, r *proto.MixRequest) {
	t.Helper()
	msg, err := proto.MarshalMixRequest(geo, r)
	if err != nil {
		t.Fatal(err)
	}
	entry, pkt, err := inj.Packet(e.provider(to.domain()), mixnet.RecipientID(to.mb()), msg, 10*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if err := inj.Send(context.Background(), entry, pkt); err != nil {
		t.Fatal(err)
	}
}

// waitRecord long-polls u's mailbox for one record and acknowledges it.
func waitRecord(t *testing.T, c *proto.Client) proto.Record {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		p, err := c.Fetch(context.Background(), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Records) > 0 {
			r := p.Records[0]
			if err := c.Ack(context.Background(), r.Seq); err != nil {
				t.Fatal(err)
			}
			return r
		}
	}
	t.Fatal("no record arrived")
	return proto.Record{}
}

// TestMixnetDeliveryAcknowledged: alice@a delivers to bob@b through the
// mix network; bob's provider stores the envelope and acknowledges it
// through alice's SURB, and the acknowledgement reaches alice's mailbox at
// her own provider, readable only with her SURB keys.
func TestMixnetDeliveryAcknowledged(t *testing.T) {
	e := start(t, testnet.Spec{EpochPeriod: time.Hour, Layers: 2, Width: 1, Providers: 2}, nil)
	alice, bob := newUser(t, "alice@a"), newUser(t, "bob@b")
	ac, bc := e.register(t, alice, true), e.register(t, bob, true)
	inj := testnet.NewInjector(e.doc.Doc)
	defer inj.Close()

	surb, keys := e.surbTo(t, alice)
	sb, _ := surb.MarshalBinary()
	body := bytes.Repeat([]byte("sealed "), 150)
	id := envID(42)
	e.sendMix(t, inj, bob, &proto.MixRequest{SURB: sb, Deliver: &proto.MixDeliver{EnvelopeID: id, Token: bob.token, Data: body}})

	got := waitRecord(t, bc)
	if got.Kind != proto.EnvelopeSealed || got.ID != id || !bytes.Equal(got.Data, body) {
		t.Fatalf("bob received %+v", got)
	}
	ack := waitRecord(t, ac)
	if ack.Kind != proto.EnvelopeSURBReply || ack.ID != [16]byte(keys.ID) {
		t.Fatalf("alice received kind %d id %x, want the SURB reply %x", ack.Kind, ack.ID, keys.ID)
	}
	_, otherKeys := e.surbTo(t, alice)
	if _, err := otherKeys.Open(bytes.Clone(ack.Data)); err == nil {
		t.Fatal("another SURB's keys opened the acknowledgement")
	}
	msg, err := keys.Open(ack.Data)
	if err != nil {
		t.Fatal(err)
	}
	reply, err := proto.ParseReply(msg)
	if err != nil {
		t.Fatal(err)
	}
	st, ok := reply.(*proto.Status)
	if !ok || st.Code != proto.StatusOK || st.EnvelopeID != id {
		t.Fatalf("acknowledgement says %+v", reply)
	}
}

// TestMixnetBundle: a sender fetches a user's bundle through the mix
// network, anonymously, with the reply coming back through its SURB.
func TestMixnetBundle(t *testing.T) {
	e := start(t, testnet.Spec{EpochPeriod: time.Hour, Layers: 2, Width: 1, Providers: 2}, nil)
	alice, bob := newUser(t, "alice@a"), newUser(t, "bob@b")
	ac, bc := e.register(t, alice, true), e.register(t, bob, true)
	if err := bc.Upload(context.Background(), prekeys(t, bob, 1, 5, 1)); err != nil {
		t.Fatal(err)
	}
	inj := testnet.NewInjector(e.doc.Doc)
	defer inj.Close()
	surb, keys := e.surbTo(t, alice)
	sb, _ := surb.MarshalBinary()
	e.sendMix(t, inj, bob, &proto.MixRequest{SURB: sb, Bundle: true})
	rec := waitRecord(t, ac)
	msg, err := keys.Open(rec.Data)
	if err != nil {
		t.Fatal(err)
	}
	reply, err := proto.ParseReply(msg)
	if err != nil {
		t.Fatal(err)
	}
	br, ok := reply.(*proto.BundleResponse)
	if !ok {
		t.Fatalf("reply %T", reply)
	}
	b, err := seal.ParseBundle(br.Bundle)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Verify(); err != nil {
		t.Fatal(err)
	}
	if b.IdentityEd25519 != [32]byte(bob.ed.Public().(ed25519.PublicKey)) || b.OneTime == nil || b.PQ.Kind != seal.PQOneTime {
		t.Fatalf("bundle is not bob's, or lacks one-time keys")
	}
}

// TestMixnetAckAfterDurable checks a running provider: the acknowledgement
// of a delivery through the mix network is handed to the provider's relay
// only once the envelope is durable (after its hold, DefaultReplyHold). It
// measures, at bob's provider, from the store's notification that the
// envelope is durable (as seen by a goroutine waiting for it, so a few
// microseconds late: the figure may be slightly negative) to the call of
// the service's send function (the relay's Send, wrapped to note the
// time), and checks the acknowledgement still reaches alice. TestRepliesHeld
// measures from the relay's hand-off instead, an upper bound.
func TestMixnetAckAfterDurable(t *testing.T) {
	e := start(t, testnet.Spec{EpochPeriod: time.Hour, Layers: 2, Width: 1, Providers: 2, NoCover: true}, nil)
	alice, bob := newUser(t, "alice@a"), newUser(t, "bob@b")
	ac, _ := e.register(t, alice, true), e.register(t, bob, true)
	prov := e.p.Providers[e.provider(bob.domain()).Name]
	if prov == nil {
		t.Fatal("no provider for bob")
	}

	stored, stop, err := prov.Store.Notify(bob.mb())
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	durable, stop2, err := prov.Store.Notify(bob.mb()) // checked by the send wrapper
	if err != nil {
		t.Fatal(err)
	}
	defer stop2()
	storedAt := make(chan time.Time, 1)
	go func() {
		if _, ok := <-stored; ok {
			storedAt <- time.Now()
		}
	}()
	type sendCall struct {
		at      time.Time
		durable bool
	}
	sentAt := make(chan sendCall, 1)
	node := prov.Node
	// Set before the request is sent; the service reads it only when it
	// replies. The wrapper is the service's outlet, not part of it.
	prov.Service.SetSend(func(next mixnet.NodeID, pkt []byte) error {
		c := sendCall{at: time.Now()}
		select {
		case <-durable:
			c.durable = true
		default:
		}
		select {
		case sentAt <- c:
		default:
		}
		return node.Send(next, pkt)
	})

	inj := testnet.NewInjector(e.doc.Doc)
	defer inj.Close()
	surb, keys := e.surbTo(t, alice)
	sb, _ := surb.MarshalBinary()
	injected := time.Now()
	e.sendMix(t, inj, bob, &proto.MixRequest{SURB: sb, Deliver: &proto.MixDeliver{EnvelopeID: envID(7), Token: bob.token, Data: []byte("sealed")}})

	var st time.Time
	var sd sendCall
	timeout := time.After(20 * time.Second)
	for st.IsZero() || sd.at.IsZero() {
		select {
		case st = <-storedAt:
		case sd = <-sentAt:
		case <-timeout:
			t.Fatalf("stored %v, acknowledgement sent %v: timed out", !st.IsZero(), !sd.at.IsZero())
		}
	}
	if !sd.durable {
		t.Fatal("the acknowledgement was sent before the envelope was durable")
	}
	t.Logf("request injected -> envelope durable at bob's provider: %v; durable -> acknowledgement handed to the relay: %v (held, mean %v)", st.Sub(injected), sd.at.Sub(st), mailbox.DefaultReplyHold)

	ack := waitRecord(t, ac)
	if ack.Kind != proto.EnvelopeSURBReply || ack.ID != [16]byte(keys.ID) {
		t.Fatalf("alice received kind %d id %x, want the SURB reply %x", ack.Kind, ack.ID, keys.ID)
	}
}

package mailbox

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/sealnet/sealnet/mixnet"
)

// TestAckNotHeld checks AckHold against the service, from the relay's
// hand-off (Deliver) to the service's outlet into the mix network (its send
// function, here a fake that notes the time): a delivery's acknowledgement
// leaves once the envelope is durable and no later, and so does the answer
// to a bundle request. The measured time includes the store's fsync, so it
// is an upper bound on any hold. TestMixnetAckNotHeld measures the same
// through a running network.
func TestAckNotHeld(t *testing.T) {
	const (
		rounds = 5
		bound  = 200 * time.Millisecond // generous under -race; the hold is AckHold
	)
	geo := mixnet.DefaultGeometry()
	st := stOpen(t, StoreConfig{})
	var token [32]byte
	rand.Read(token[:])
	acct := stAccount("bob")
	acct.TokenHash = sha256.Sum256(token[:])
	mb, err := st.Register(acct)
	if err != nil {
		t.Fatal(err)
	}
	durable, stop, err := st.Notify(mb)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()

	type sendCall struct {
		at      time.Time
		durable bool // the store had told of a durable delivery by then
	}
	sent := make(chan sendCall, 1)
	var set Settings
	if err := set.validate(); err != nil {
		t.Fatal(err)
	}
	svc := NewService(set, ServiceOptions{Domain: "provider.example", Store: st, Geometry: geo,
		Send: func(mixnet.NodeID, []byte) error {
			c := sendCall{at: time.Now()}
			select {
			case <-durable:
				c.durable = true
			default:
			}
			sent <- c
			return nil
		}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { svc.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	surb := func() []byte {
		var path []mixnet.Hop
		for i := range 3 {
			k, err := ecdh.X25519().GenerateKey(rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			path = append(path, mixnet.Hop{ID: mixnet.NodeID{byte(i + 1)}, PublicKey: [32]byte(k.PublicKey().Bytes()), Delay: time.Second})
		}
		s, _, err := mixnet.NewSURB(rand.Reader, geo, path, mixnet.RecipientID{9})
		if err != nil {
			t.Fatal(err)
		}
		b, err := s.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// handOff delivers r as the relay's final hop would and returns how
	// long the service took to hand the reply to its send function.
	handOff := func(r *MixRequest) (time.Duration, bool) {
		t.Helper()
		msg, err := MarshalMixRequest(geo, r)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if err := svc.Deliver(&mixnet.Result{Final: true, Recipient: mixnet.RecipientID(mb), Payload: msg}); err != nil {
			t.Fatal(err)
		}
		select {
		case c := <-sent:
			return c.at.Sub(start), c.durable
		case <-time.After(10 * time.Second):
			t.Fatal("no reply was sent")
			return 0, false
		}
	}
	check := func(what string, hold time.Duration) {
		t.Helper()
		if AckHold == 0 && hold >= bound {
			t.Fatalf("%s: the reply left %v after the hand-off, with AckHold 0: the provider holds replies; update mailbox.AckHold and the simulator's workload.ack_delay", what, hold)
		}
		if AckHold > 0 && hold < AckHold {
			t.Fatalf("%s: the reply left %v after the hand-off, before AckHold %v", what, hold, AckHold)
		}
	}

	var maxAck, maxBundle time.Duration
	for i := range rounds {
		var id [16]byte
		id[0] = byte(i)
		hold, wasDurable := handOff(&MixRequest{SURB: surb(), Deliver: &MixDeliver{EnvelopeID: id, Token: token, Data: []byte("sealed")}})
		if !wasDurable {
			t.Fatalf("delivery %d: the acknowledgement left before the envelope was durable", i)
		}
		check("acknowledgement", hold)
		maxAck = max(maxAck, hold)

		hold, _ = handOff(&MixRequest{SURB: surb(), Bundle: true})
		check("bundle answer", hold)
		maxBundle = max(maxBundle, hold)
	}
	t.Logf("Deliver -> reply sent, the most of %d: acknowledgement (fsync included) %v, bundle answer %v (AckHold %v)", rounds, maxAck, maxBundle, AckHold)
}

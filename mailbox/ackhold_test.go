package mailbox

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/sealnet/sealnet/mailbox/proto"
	"github.com/sealnet/sealnet/mailbox/store/badger"
	"github.com/sealnet/sealnet/mixnet"
)

// TestRepliesHeld checks DefaultReplyHold's promise against the service,
// from the relay's hand-off (Deliver) to the service's outlet into the mix
// network (its send function, here a fake that notes the time): every
// reply, to a delivery, a bundle request or cover, leaves after an
// exponential hold of the published mean counted from the hand-off, and
// an acknowledgement only once the envelope is durable. The control,
// with a mean of 0, shows the measurement sees a reply that is not held:
// it leaves within milliseconds, as every reply did before holds.
func TestRepliesHeld(t *testing.T) {
	const (
		rounds = 12 // of each kind
		mean   = 100 * time.Millisecond
		fast   = 10 * time.Millisecond // P(Exp(mean) < fast) ≈ 9.5 %
	)
	held := measureReplies(t, mean, rounds)
	ctl := measureReplies(t, 0, rounds)
	var sum time.Duration
	quick := 0
	for _, h := range held {
		sum += h
		if h < fast {
			quick++
		}
	}
	got := sum / time.Duration(len(held))
	ctlQuick := 0
	var ctlMax time.Duration
	for _, h := range ctl {
		ctlMax = max(ctlMax, h)
		if h < 200*time.Millisecond {
			ctlQuick++
		}
	}
	t.Logf("hold of mean %v: %d replies, mean %v, %d under %v; control (mean 0): the most %v", mean, len(held), got.Round(time.Millisecond), quick, fast, ctlMax.Round(time.Millisecond))
	// The sample mean of 36 exponentials has a standard deviation of
	// mean/6: [0.4, 1.8]·mean is beyond four of them on either side (plus
	// the store's fsync on the high side).
	if got < mean*4/10 || got > mean*18/10 {
		t.Fatalf("replies held %v on average, want about %v", got, mean)
	}
	if quick > len(held)/3 {
		t.Fatalf("%d of %d replies left within %v: they are not held", quick, len(held), fast)
	}
	if ctlQuick != len(ctl) {
		t.Fatalf("control: %d of %d replies left within 200ms with no hold", ctlQuick, len(ctl))
	}
}

// measureReplies runs a service whose replies are held with the given
// mean and returns, for rounds requests of each kind (a delivery with the
// token, a bundle request, cover), the time from the hand-off to the reply.
func measureReplies(t *testing.T, mean time.Duration, rounds int) []time.Duration {
	t.Helper()
	geo := mixnet.DefaultGeometry()
	st := stOpen(t, "", badger.Config{})
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
		ReplyHold: func() time.Duration { return mean },
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
	handOff := func(r *proto.MixRequest) (time.Duration, bool) {
		t.Helper()
		msg, err := proto.MarshalMixRequest(geo, r)
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
	var out []time.Duration
	for i := range rounds {
		var id [16]byte
		id[0] = byte(i)
		hold, wasDurable := handOff(&proto.MixRequest{SURB: surb(), Deliver: &proto.MixDeliver{EnvelopeID: id, Token: token, Data: []byte("sealed")}})
		if !wasDurable {
			t.Fatalf("delivery %d: the acknowledgement left before the envelope was durable", i)
		}
		out = append(out, hold)
		hold, _ = handOff(&proto.MixRequest{SURB: surb(), Bundle: true})
		out = append(out, hold)
		hold, _ = handOff(&proto.MixRequest{SURB: surb(), Cover: true})
		out = append(out, hold)
	}
	return out
}

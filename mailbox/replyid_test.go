package mailbox

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"testing"
	"time"

	"github.com/flynn/noise"

	"github.com/sealnet/sealnet/mailbox/proto"
	"github.com/sealnet/sealnet/mailbox/store"
	"github.com/sealnet/sealnet/mailbox/store/badger"
	"github.com/sealnet/sealnet/mixnet"
)

// replyFixture is a provider's service on a real store, with one account
// whose owner holds a real identity key, and the provider's link key.
type replyFixture struct {
	svc   *Service
	st    *badger.DB
	mb    proto.MailboxID
	token [32]byte
	owner proto.ReplyKey // the key the owner's client makes SURB IDs with
}

func newReplyFixture(t *testing.T, storeCfg badger.Config, mod func(*Settings)) *replyFixture {
	t.Helper()
	linkKey, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	identity, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	f := &replyFixture{st: stOpen(t, "", storeCfg)}
	rand.Read(f.token[:])
	acct := stAccount("alice")
	acct.IdentityX25519 = [32]byte(identity.PublicKey().Bytes())
	acct.TokenHash = sha256.Sum256(f.token[:])
	if f.mb, err = f.st.Register(acct); err != nil {
		t.Fatal(err)
	}
	if f.owner, err = proto.OwnerReplyKey(identity, [32]byte(linkKey.PublicKey().Bytes()), f.mb); err != nil {
		t.Fatal(err)
	}
	var set Settings
	if mod != nil {
		mod(&set)
	}
	if err := set.validate(); err != nil {
		t.Fatal(err)
	}
	f.svc = NewService(set, ServiceOptions{Domain: "provider.example", Store: f.st, Geometry: mixnet.DefaultGeometry(),
		LinkDH: func(peer [32]byte) ([]byte, error) { return noise.DH25519.DH(linkKey.Bytes(), peer[:]) }})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { f.svc.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return f
}

// reply hands the service a SURB reply for the mailbox, as the relay's
// final hop does.
func (f *replyFixture) reply(t *testing.T, id mixnet.SURBID) {
	t.Helper()
	if err := f.svc.Deliver(&mixnet.Result{Final: true, SURBReply: true, SURBID: id, Recipient: mixnet.RecipientID(f.mb), Payload: make([]byte, 1024)}); err != nil {
		t.Fatal(err)
	}
}

// settle waits until the service has dealt with n SURB replies.
func (f *replyFixture) settle(t *testing.T, n uint64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		m := f.svc.m
		done := m.rejected("forged_reply").Load() + m.rejected("rate_limited").Load() + m.rejected("reply_not_stored").Load() + m.deliveries("surb_reply").Load()
		if done >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the service dealt with %d of %d replies in 10 s", done, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// deliverSealed delivers n envelopes with the mailbox's token, as a
// contact does, and returns how many were stored.
func (f *replyFixture) deliverSealed(t *testing.T, n int) int {
	t.Helper()
	ok := 0
	for i := range n {
		env := store.Envelope{Kind: proto.EnvelopeSealed, ID: [16]byte{0xee, byte(i)}, Data: []byte("sealed")}
		if code := f.svc.deliver(context.Background(), f.mb, env, f.token); code == proto.StatusOK {
			ok++
		}
	}
	return ok
}

// TestReplyIDTamper: an ID made with the owner's key verifies; any bit
// flipped in it, another mailbox, or another key does not.
func TestReplyIDTamper(t *testing.T) {
	var k, other proto.ReplyKey
	rand.Read(k[:])
	rand.Read(other[:])
	mb := proto.MailboxOf("alice@provider.example")
	id, err := k.NewReplyID(rand.Reader, mb)
	if err != nil {
		t.Fatal(err)
	}
	if !k.VerifyReplyID(mb, id) {
		t.Fatal("a genuine ID does not verify")
	}
	for bit := range len(id) * 8 {
		bad := id
		bad[bit/8] ^= 1 << (bit % 8)
		if k.VerifyReplyID(mb, bad) {
			t.Fatalf("ID with bit %d flipped verifies", bit)
		}
	}
	if k.VerifyReplyID(proto.MailboxOf("bob@provider.example"), id) {
		t.Fatal("the ID verifies for another mailbox")
	}
	if other.VerifyReplyID(mb, id) {
		t.Fatal("the ID verifies under another key")
	}
	if id2, _ := k.NewReplyID(rand.Reader, mb); id2 == id {
		t.Fatal("two IDs are equal")
	}
}

// TestOwnerAndProviderShareReplyKey: the key the owner derives from its
// identity key and the provider's link key is the one the provider
// derives from its link key and the account's identity key, and it
// differs per mailbox.
func TestOwnerAndProviderShareReplyKey(t *testing.T) {
	f := newReplyFixture(t, badger.Config{}, nil)
	acct, err := f.st.Account(f.mb)
	if err != nil {
		t.Fatal(err)
	}
	k, err := f.svc.replyKeys.key(f.mb, acct.IdentityX25519)
	if err != nil {
		t.Fatal(err)
	}
	if k != f.owner {
		t.Fatal("owner and provider derive different reply keys")
	}
	if k2, _ := f.svc.replyKeys.key(proto.MailboxOf("bob@provider.example"), acct.IdentityX25519); k2 == k {
		t.Fatal("two mailboxes share a reply key")
	}
	id, _ := f.owner.NewReplyID(rand.Reader, f.mb)
	if err := f.svc.replyKeys.verify(f.mb, [32]byte{9}, id); !errors.Is(err, proto.ErrForgedReply) {
		t.Fatal("an ID verifies against another identity key")
	}
}

// TestForgedRepliesSpendNothing (issue 16): a flood of forged SURB replies
// (random IDs) to a mailbox with a quota of 8 envelopes leaves it empty,
// so a contact's 8 deliveries are all stored; a genuine reply is still
// stored, and the same reply again is stored once. The control, a
// provider that does not check the IDs (as before issue 16), stores
// forgeries up to the replies' share of the quota (half: 4) and the
// contact's deliveries beyond the rest are refused.
func TestForgedRepliesSpendNothing(t *testing.T) {
	const quota, flood = 8, 200
	for _, check := range []bool{true, false} {
		t.Run(map[bool]string{true: "checked", false: "control_unchecked"}[check], func(t *testing.T) {
			f := newReplyFixture(t, badger.Config{Limits: store.Limits{MaxEnvelopes: quota}}, func(s *Settings) {
				s.DeliveriesPerMinute = quota
				if !check {
					DisableReplyAuth(s)
				}
			})
			for range flood {
				var id mixnet.SURBID
				rand.Read(id[:])
				f.reply(t, id)
			}
			f.settle(t, flood)
			forged := f.svc.m.rejected("forged_reply").Load()
			if check {
				genuine, err := f.owner.NewReplyID(rand.Reader, f.mb)
				if err != nil {
					t.Fatal(err)
				}
				f.reply(t, genuine)
				f.reply(t, genuine) // a replay past the relays: the store keeps one
				f.settle(t, flood+2)
			}
			page, _, err := f.st.Page(f.mb, quota+1)
			if err != nil {
				t.Fatal(err)
			}
			stored := f.deliverSealed(t, quota)
			t.Logf("after %d forged replies: forged_reply %d, %d records held, %d of %d contact deliveries stored", flood, forged, len(page), stored, quota)
			if check {
				if forged != flood || len(page) != 1 {
					t.Fatalf("forged_reply %d of %d, %d records held (want the genuine reply only)", forged, flood, len(page))
				}
				if stored != quota-1 {
					t.Fatalf("%d of the contact's %d deliveries stored beside one reply, want %d", stored, quota, quota-1)
				}
				return
			}
			if len(page) != quota/store.ReplyShare || stored != quota-quota/store.ReplyShare {
				t.Fatalf("control: %d forged replies held, %d deliveries stored; want %d and %d", len(page), stored, quota/store.ReplyShare, quota-quota/store.ReplyShare)
			}
		})
	}
}

// TestRepliesFillHalfTheQuota: genuine replies beyond the replies' share
// of the quota (store.ReplyShare) are not stored, so the rest stays for sealed
// deliveries; sealed deliveries may fill the whole quota.
func TestRepliesFillHalfTheQuota(t *testing.T) {
	const quota = 8
	f := newReplyFixture(t, badger.Config{Limits: store.Limits{MaxEnvelopes: quota}}, nil)
	for range 3 * quota {
		id, err := f.owner.NewReplyID(rand.Reader, f.mb)
		if err != nil {
			t.Fatal(err)
		}
		f.reply(t, id)
	}
	f.settle(t, 3*quota)
	if n := f.svc.m.deliveries("surb_reply").Load(); n != quota/store.ReplyShare {
		t.Fatalf("%d genuine replies stored in a quota of %d, want %d", n, quota, quota/store.ReplyShare)
	}
	if n := f.deliverSealed(t, quota); n != quota-quota/store.ReplyShare {
		t.Fatalf("%d deliveries stored beside the replies, want %d", n, quota-quota/store.ReplyShare)
	}

	g := newReplyFixture(t, badger.Config{Limits: store.Limits{MaxEnvelopes: quota}}, nil)
	if n := g.deliverSealed(t, quota); n != quota {
		t.Fatalf("%d of %d deliveries stored in an empty mailbox", n, quota)
	}
	id, _ := g.owner.NewReplyID(rand.Reader, g.mb)
	g.reply(t, id)
	g.settle(t, 1)
	if n := g.svc.m.rejected("reply_not_stored").Load(); n != 1 {
		t.Fatalf("a reply to a full mailbox: reply_not_stored %d, want 1", n)
	}
}

// TestReplyKeyFollowsIdentity: once a mailbox's identity key is replaced
// (store.Store.ReplaceIdentity), IDs made under the old owner's key no longer
// verify and the new owner's do, although the old key was cached.
func TestReplyKeyFollowsIdentity(t *testing.T) {
	f := newReplyFixture(t, badger.Config{}, nil)
	acct, err := f.st.Account(f.mb)
	if err != nil {
		t.Fatal(err)
	}
	old, _ := f.owner.NewReplyID(rand.Reader, f.mb)
	if err := f.svc.replyKeys.verify(f.mb, acct.IdentityX25519, old); err != nil {
		t.Fatal(err)
	}
	next, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.st.ReplaceIdentity(f.mb, [32]byte(next.PublicKey().Bytes()), [32]byte{1}); err != nil {
		t.Fatal(err)
	}
	f.reply(t, old)
	f.settle(t, 1)
	if n := f.svc.m.rejected("forged_reply").Load(); n != 1 {
		t.Fatalf("a reply under the replaced identity's key: forged_reply %d, want 1", n)
	}
	acct, _ = f.st.Account(f.mb)
	k, err := f.svc.replyKeys.key(f.mb, acct.IdentityX25519)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := k.NewReplyID(rand.Reader, f.mb)
	f.reply(t, id)
	f.settle(t, 2)
	if n := f.svc.m.deliveries("surb_reply").Load(); n != 1 {
		t.Fatalf("a reply under the new identity's key: stored %d, want 1", n)
	}
}

// BenchmarkReplyVerify is the provider's cost of checking one SURB ID:
// cached (an HMAC) and uncached (an X25519 and an HKDF first).
func BenchmarkReplyVerify(b *testing.B) {
	link, _ := ecdh.X25519().GenerateKey(rand.Reader)
	owner, _ := ecdh.X25519().GenerateKey(rand.Reader)
	mb := proto.MailboxOf("alice@provider.example")
	k, _ := proto.OwnerReplyKey(owner, [32]byte(link.PublicKey().Bytes()), mb)
	id, _ := k.NewReplyID(rand.Reader, mb)
	dh := func(peer [32]byte) ([]byte, error) { return noise.DH25519.DH(link.Bytes(), peer[:]) }
	pub := [32]byte(owner.PublicKey().Bytes())
	b.Run("cached", func(b *testing.B) {
		r := newReplyKeys(dh)
		for b.Loop() {
			if r.verify(mb, pub, id) != nil {
				b.Fatal("genuine ID refused")
			}
		}
	})
	b.Run("uncached", func(b *testing.B) {
		r := newReplyKeys(dh)
		for b.Loop() {
			clear(r.m)
			if r.verify(mb, pub, id) != nil {
				b.Fatal("genuine ID refused")
			}
		}
	})
}

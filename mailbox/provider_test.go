package mailbox_test

import (
	"context"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/mlkem"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/flynn/noise"

	"github.com/sealnet/sealnet/internal/clock"
	"github.com/sealnet/sealnet/internal/testbed/testnet"
	"github.com/sealnet/sealnet/mailbox"
	"github.com/sealnet/sealnet/mailbox/proto"
	"github.com/sealnet/sealnet/mixnet"
	"github.com/sealnet/sealnet/mixnet/directory"
	"github.com/sealnet/sealnet/mixnet/link"
	"github.com/sealnet/sealnet/relay"
	"github.com/sealnet/sealnet/sender/seal"
)

var geo = mixnet.DefaultGeometry()

// env is an in-process network whose providers run their mailboxes.
type env struct {
	nw  *testnet.Network
	p   *testnet.InProcess
	doc *directory.SignedDocument
}

func start(t *testing.T, spec testnet.Spec, mod func(*mailbox.Settings)) *env {
	t.Helper()
	return startWith(t, spec, nil, func(_ string, s *mailbox.Settings) {
		if mod != nil {
			mod(s)
		}
	})
}

// startWith is start with changes to each relay's configuration and to
// each provider's settings, by node name.
func startWith(t *testing.T, spec testnet.Spec, relayMod func(string, *relay.Config), mod func(string, *mailbox.Settings)) *env {
	t.Helper()
	return startOn(t, spec, nil, relayMod, mod)
}

// startOn is startWith on the clock c (nil: clock.System()).
func startOn(t *testing.T, spec testnet.Spec, c clock.Clock, relayMod func(string, *relay.Config), mod func(string, *mailbox.Settings)) *env {
	t.Helper()
	nw, err := testnet.Create(t.TempDir(), spec)
	if err != nil {
		t.Fatal(err)
	}
	p, err := testnet.StartInProcess(nw, testnet.InProcessOptions{
		Relay: func(name string, c *relay.Config) {
			c.Directory.Poll.UnmarshalText([]byte("200ms"))
			if relayMod != nil {
				relayMod(name, c)
			}
		},
		Mailbox: mod,
		Clock:   c,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Stop(); err != nil {
			t.Errorf("network stopped with: %v", err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	doc, err := p.WaitDocument(ctx)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{nw: nw, p: p, doc: doc}
	for _, n := range nw.Nodes {
		node := p.Nodes[n.Name]
		for !node.Ready() {
			if ctx.Err() != nil {
				t.Fatalf("%s never got the document", n.Name)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return e
}

func (e *env) provider(domain string) *directory.Descriptor {
	d, _ := e.doc.Doc.Provider(domain)
	return d
}

// user is a test user with identity keys and a delivery token.
type user struct {
	addr  string
	ed    ed25519.PrivateKey
	x     noise.DHKey
	token [32]byte
}

func newUser(t *testing.T, addr string) *user {
	t.Helper()
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	x, err := link.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	u := &user{addr: addr, ed: ed, x: x}
	rand.Read(u.token[:])
	return u
}

func (u *user) mb() proto.MailboxID { return proto.MailboxOf(u.addr) }

func (u *user) domain() string {
	for i := range u.addr {
		if u.addr[i] == '@' {
			return u.addr[i+1:]
		}
	}
	return ""
}

// dial opens a user link (owner) or, with anon, a client link.
func (e *env) dial(t *testing.T, domain string, u *user) *proto.Client {
	t.Helper()
	d := e.provider(domain)
	var o proto.DialOptions
	if u != nil {
		o.Identity = u.x
	}
	c, err := proto.Dial(context.Background(), geo, d.Address, d.LinkKey, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// register registers u with its token and allows unsolicited mail.
func (e *env) register(t *testing.T, u *user, allowUnsolicited bool) *proto.Client {
	t.Helper()
	c := e.dial(t, u.domain(), u)
	if err := c.Register(context.Background(), u.addr, [32]byte(u.x.Public), u.ed, sha256.Sum256(u.token[:]), allowUnsolicited); err != nil {
		t.Fatal(err)
	}
	return c
}

// prekeys uploads n one-time X25519 prekeys (IDs from first) and pq
// post-quantum ones, with a signed and a last-resort prekey.
func prekeys(t *testing.T, u *user, first uint32, n, pq int) proto.PrekeyUpload {
	t.Helper()
	sp, _ := ecdh.X25519().GenerateKey(rand.Reader)
	s := seal.NewSignedPrekey(u.ed, first, sp.PublicKey())
	lrk, _ := mlkem.GenerateKey768()
	lr := seal.NewPQPrekey(u.ed, first+1, seal.PQLastResort, lrk.EncapsulationKey())
	up := proto.PrekeyUpload{Signed: &proto.Prekey{ID: s.ID, Data: s.Marshal()}, LastResort: &proto.Prekey{ID: lr.ID, Data: lr.Marshal()}}
	id := first + 2
	for range n {
		k, _ := ecdh.X25519().GenerateKey(rand.Reader)
		ot := seal.OneTimePrekey{ID: id}
		copy(ot.Public[:], k.PublicKey().Bytes())
		up.OneTime = append(up.OneTime, proto.Prekey{ID: id, Data: ot.Marshal()})
		id++
	}
	for range pq {
		k, _ := mlkem.GenerateKey768()
		p := seal.NewPQPrekey(u.ed, id, seal.PQOneTime, k.EncapsulationKey())
		up.PQOneTime = append(up.PQOneTime, proto.Prekey{ID: id, Data: p.Marshal()})
		id++
	}
	return up
}

func envID(i int) [16]byte {
	var id [16]byte
	copy(id[:], "envelope")
	binary.BigEndian.PutUint64(id[8:], uint64(i))
	return id
}

// fetchAll drains a mailbox, acknowledging page by page, and returns the
// envelope IDs in order.
func fetchAll(t *testing.T, c *proto.Client) [][16]byte {
	t.Helper()
	var ids [][16]byte
	for range 100_000 {
		p, err := c.Fetch(context.Background(), 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range p.Records {
			ids = append(ids, r.ID)
		}
		if len(p.Records) > 0 {
			if err := c.Ack(context.Background(), p.Records[len(p.Records)-1].Seq); err != nil {
				t.Fatal(err)
			}
		}
		if !p.More {
			return ids
		}
	}
	t.Fatal("mailbox never emptied")
	return nil
}

func statusOf(err error) proto.StatusCode {
	var se *proto.StatusError
	if errors.As(err, &se) {
		return se.Status.Code
	}
	return 255
}

func TestDirectDeliveryAndFetch(t *testing.T) {
	e := start(t, testnet.Spec{EpochPeriod: time.Hour, Layers: 1, Width: 1, Providers: 1}, nil)
	bob := newUser(t, "bob@a")
	owner := e.register(t, bob, true)
	anon := e.dial(t, "a", nil)
	ctx := context.Background()
	for i := range 10 {
		code, err := anon.Deliver(ctx, bob.mb(), envID(i), bob.token, []byte(fmt.Sprintf("message %d", i)))
		if err != nil || code != proto.StatusOK {
			t.Fatalf("delivery %d: %v %v", i, code, err)
		}
	}
	// A retransmission is stored once.
	if code, err := anon.Deliver(ctx, bob.mb(), envID(3), bob.token, []byte("again")); err != nil || code != proto.StatusDuplicate {
		t.Fatalf("retransmission: %v %v", code, err)
	}
	ids := fetchAll(t, owner)
	if len(ids) != 10 {
		t.Fatalf("fetched %d envelopes, want 10", len(ids))
	}
	for i, id := range ids {
		if id != envID(i) {
			t.Fatalf("envelope %d out of order", i)
		}
	}
	// Acknowledged pages are gone.
	if p, err := owner.Fetch(ctx, 0); err != nil || len(p.Records) != 0 {
		t.Fatalf("after acknowledging everything: %d records, %v", len(p.Records), err)
	}
	cert, err := owner.Certificate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c, err := seal.VerifyCertificate(cert, e.provider("a").IdentityKey, "a", time.Now())
	if err != nil || c.Address != "bob@a" || c.IdentityX25519 != [32]byte(bob.x.Public) {
		t.Fatalf("certificate: %+v, %v", c, err)
	}
}

// TestOnlyOwnerFetches: fetching needs a user link whose key is the
// mailbox owner's; nothing else reaches a mailbox's contents.
func TestOnlyOwnerFetches(t *testing.T) {
	e := start(t, testnet.Spec{EpochPeriod: time.Hour, Layers: 1, Width: 1, Providers: 1}, nil)
	bob := newUser(t, "bob@a")
	e.register(t, bob, true)
	anon := e.dial(t, "a", nil)
	if _, err := anon.Deliver(context.Background(), bob.mb(), envID(1), bob.token, []byte("for bob")); err != nil {
		t.Fatal(err)
	}
	if _, err := anon.Fetch(context.Background(), 0); statusOf(err) != proto.StatusUnauthorized {
		t.Fatalf("fetch on an anonymous link: %v", err)
	}
	stranger := newUser(t, "eve@a")
	if _, err := e.dial(t, "a", stranger).Fetch(context.Background(), 0); statusOf(err) != proto.StatusUnauthorized {
		t.Fatalf("fetch by an unregistered key: %v", err)
	}
	eve := newUser(t, "eve@a")
	evec := e.register(t, eve, true)
	if p, err := evec.Fetch(context.Background(), 0); err != nil || len(p.Records) != 0 {
		t.Fatalf("another user's fetch saw %d records, %v", len(p.Records), err)
	}
	// Registering bob's address with another identity is refused.
	mallory := newUser(t, "bob@a")
	c := e.dial(t, "a", mallory)
	err := c.Register(context.Background(), "bob@a", [32]byte(mallory.x.Public), mallory.ed, [32]byte{}, true)
	if statusOf(err) != proto.StatusExists {
		t.Fatalf("taking bob's address: %v", err)
	}
	// A registration whose signature is by another Ed25519 key is refused.
	c2 := e.dial(t, "a", newUser(t, "x@a"))
	other := newUser(t, "x@a")
	if err := c2.Register(context.Background(), "x@a", [32]byte(mallory.x.Public), other.ed, [32]byte{}, true); statusOf(err) != proto.StatusUnauthorized {
		t.Fatalf("registration with a proof for another key: %v", err)
	}
}

func TestQuota(t *testing.T) {
	e := start(t, testnet.Spec{EpochPeriod: time.Hour, Layers: 1, Width: 1, Providers: 1}, func(s *mailbox.Settings) { s.MaxEnvelopes = 5 })
	bob := newUser(t, "bob@a")
	owner := e.register(t, bob, true)
	anon := e.dial(t, "a", nil)
	ctx := context.Background()
	for i := range 5 {
		if code, err := anon.Deliver(ctx, bob.mb(), envID(i), bob.token, []byte("x")); err != nil || code != proto.StatusOK {
			t.Fatalf("delivery %d: %v %v", i, code, err)
		}
	}
	_, err := anon.Deliver(ctx, bob.mb(), envID(5), bob.token, []byte("x"))
	if statusOf(err) != proto.StatusQuotaFull {
		t.Fatalf("sixth delivery to a 5-envelope mailbox: %v", err)
	}
	// Without the token the provider does not say (enumeration).
	if code, err := anon.Deliver(ctx, bob.mb(), envID(6), [32]byte{}, []byte("x")); err != nil || code != proto.StatusAccepted {
		t.Fatalf("tokenless delivery to a full mailbox: %v %v", code, err)
	}
	ids := fetchAll(t, owner)
	if len(ids) != 5 {
		t.Fatalf("%d envelopes stored in a 5-envelope mailbox", len(ids))
	}
	if code, err := anon.Deliver(ctx, bob.mb(), envID(7), bob.token, []byte("x")); err != nil || code != proto.StatusOK {
		t.Fatalf("delivery after the owner emptied the mailbox: %v %v", code, err)
	}
}

// TestNotEnumerable: from outside, an unknown address answers like a known
// one: tokenless deliveries are "accepted", bundles are well-formed,
// verify, and stay stable, and rate limits apply alike.
func TestNotEnumerable(t *testing.T) {
	e := start(t, testnet.Spec{EpochPeriod: time.Hour, Layers: 1, Width: 1, Providers: 1}, func(s *mailbox.Settings) { s.BundlesPerHour = 3 })
	bob := newUser(t, "bob@a")
	owner := e.register(t, bob, true)
	// The public client's first upload: signed prekey 1, last resort 2,
	// one-time prekeys 3 to 52, post-quantum ones 53 to 62 (the layout
	// TestPhantomIsAFreshClient ties to package sender).
	if err := owner.Upload(context.Background(), prekeys(t, bob, 1, 50, 10)); err != nil {
		t.Fatal(err)
	}
	anon := e.dial(t, "a", nil)
	ctx := context.Background()
	nobody := proto.MailboxOf("nobody@a")
	for _, mb := range []proto.MailboxID{bob.mb(), nobody} {
		code, err := anon.Deliver(ctx, mb, envID(1), [32]byte{7}, []byte("hello"))
		if err != nil || code != proto.StatusAccepted {
			t.Fatalf("tokenless delivery: %v %v", code, err)
		}
	}
	// Two bundles of each, interleaved: what a stranger compares is their
	// form and every prekey identifier in them, the sequence included.
	var reals, fakes []*seal.PrekeyBundle
	for range 2 {
		real, err := anon.Bundle(ctx, bob.mb())
		if err != nil {
			t.Fatal(err)
		}
		fake, err := anon.Bundle(ctx, nobody)
		if err != nil {
			t.Fatalf("bundle for an unknown address: %v", err)
		}
		reals, fakes = append(reals, real), append(fakes, fake)
	}
	ids := func(b *seal.PrekeyBundle) string {
		ot := "none"
		if b.OneTime != nil {
			ot = fmt.Sprint(b.OneTime.ID)
		}
		return fmt.Sprintf("%d bytes, signed %d, one-time %s, post-quantum %d (kind %d)", len(b.Marshal()), b.Signed.ID, ot, b.PQ.ID, b.PQ.Kind)
	}
	for i := range reals {
		if r, f := ids(reals[i]), ids(fakes[i]); r != f {
			t.Fatalf("bundle %d: real %s, fake %s: a stranger tells them apart", i+1, r, f)
		}
	}
	if fakes[1].IdentityEd25519 != fakes[0].IdentityEd25519 || fakes[1].Signed != fakes[0].Signed {
		t.Fatal("the fake identity is not stable")
	}
	// Both have used part of their 3 requests an hour (2 each); each runs
	// out after exactly 3, known or not.
	for _, c := range []struct {
		mb   proto.MailboxID
		used int
	}{{bob.mb(), 2}, {nobody, 2}} {
		ok := c.used
		for range 10 {
			if _, err := anon.Bundle(ctx, c.mb); err != nil {
				if statusOf(err) != proto.StatusRateLimited {
					t.Fatal(err)
				}
				break
			}
			ok++
		}
		if ok != 3 {
			t.Fatalf("%d bundle requests allowed in an hour, want 3", ok)
		}
	}
}

// TestPagesHaveOneSize: on the wire a fetch answer has the same size
// whether the mailbox is empty or full.
func TestPagesHaveOneSize(t *testing.T) {
	e := start(t, testnet.Spec{EpochPeriod: time.Hour, Layers: 1, Width: 1, Providers: 1}, nil)
	bob := newUser(t, "bob@a")
	owner := e.register(t, bob, true)
	empty, err := owner.Fetch(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	anon := e.dial(t, "a", nil)
	for i := range proto.PageRecords + 2 {
		anon.Deliver(context.Background(), bob.mb(), envID(i), bob.token, make([]byte, 100*i))
	}
	full, err := owner.Fetch(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(empty.Records) != 0 || len(full.Records) != proto.PageRecords || !full.More {
		t.Fatalf("pages: %d and %d records", len(empty.Records), len(full.Records))
	}
	if a, b := len(proto.Marshal(empty)), len(proto.Marshal(full)); a != b {
		t.Fatalf("empty page %d bytes, full page %d", a, b)
	}
}

// TestLongPoll: a waiting fetch returns as soon as mail arrives.
func TestLongPoll(t *testing.T) {
	e := start(t, testnet.Spec{EpochPeriod: time.Hour, Layers: 1, Width: 1, Providers: 1}, nil)
	bob := newUser(t, "bob@a")
	owner := e.register(t, bob, true)
	anon := e.dial(t, "a", nil)
	go func() {
		time.Sleep(300 * time.Millisecond)
		anon.Deliver(context.Background(), bob.mb(), envID(1), bob.token, []byte("late"))
	}()
	start := time.Now()
	p, err := owner.Fetch(context.Background(), 20*time.Second)
	if err != nil || len(p.Records) != 1 {
		t.Fatalf("long poll: %v, %d records", err, len(p.Records))
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("long poll returned after %v", d)
	}
}

// TestOneTimePrekeysOnce: 100 concurrent bundle fetches, with the provider
// restarted in the middle, never hand out a one-time prekey twice. (Each
// link is held for mailbox.StrangerAnswerTime, so the per-address cap on
// links is raised for the hundred fetchers on loopback.)
func TestOneTimePrekeysOnce(t *testing.T) {
	e := startWith(t, testnet.Spec{EpochPeriod: time.Hour, Layers: 1, Width: 1, Providers: 1},
		func(_ string, c *relay.Config) { c.Limits.MaxConnsPerPeer = 128 },
		func(_ string, s *mailbox.Settings) {
			s.BundlesPerHour, s.OneTimePerHour, s.RequestsPerSecond = 100000, 100000, 100000
		})
	bob := newUser(t, "bob@a")
	owner := e.register(t, bob, true)
	if err := owner.Upload(context.Background(), prekeys(t, bob, 1000, 50, 20)); err != nil {
		t.Fatal(err)
	}
	owner.Close()
	var mu sync.Mutex
	seen, pqSeen := map[uint32]int{}, map[uint32]int{}
	var wg sync.WaitGroup
	restart := make(chan struct{})
	// The restart comes once 40 of the first 50 fetchers have their
	// bundle: the other ten are in flight, and their answers wait for the
	// answer time.
	var before sync.WaitGroup
	before.Add(40)
	for g := range 100 {
		wg.Go(func() {
			if g < 40 {
				defer before.Done()
			}
			for attempt := 0; attempt < 50; attempt++ {
				if g >= 50 && attempt == 0 {
					<-restart // half of the fetches run after the restart
				}
				c, err := proto.Dial(context.Background(), geo, e.provider("a").Address, e.provider("a").LinkKey, proto.DialOptions{Timeout: 5 * time.Second})
				if err != nil {
					time.Sleep(50 * time.Millisecond)
					continue
				}
				b, err := c.Bundle(context.Background(), bob.mb())
				c.Close()
				if err != nil {
					time.Sleep(50 * time.Millisecond)
					continue
				}
				mu.Lock()
				if b.OneTime != nil {
					seen[b.OneTime.ID]++
				}
				if b.PQ.Kind == seal.PQOneTime {
					pqSeen[b.PQ.ID]++
				}
				mu.Unlock()
				return
			}
			t.Error("a fetcher never got a bundle")
		})
	}
	before.Wait()
	if err := e.p.StopNode("provider-a"); err != nil {
		t.Fatal(err)
	}
	if err := e.p.StartNode("provider-a"); err != nil {
		t.Fatal(err)
	}
	close(restart)
	wg.Wait()
	for id, n := range seen {
		if n > 1 {
			t.Fatalf("one-time prekey %d handed out %d times", id, n)
		}
	}
	for id, n := range pqSeen {
		if n > 1 {
			t.Fatalf("post-quantum prekey %d handed out %d times", id, n)
		}
	}
	// At most once, not exactly once: a request that took a prekey just as
	// the provider stopped loses its reply, and that prekey is spent
	// unused. Never more than the ten requests in flight at the restart.
	t.Logf("%d of 50 one-time and %d of 20 post-quantum prekeys reached fetchers", len(seen), len(pqSeen))
	if len(seen) < 40 || len(seen) > 50 || len(pqSeen) < 10 || len(pqSeen) > 20 {
		t.Fatalf("handed out %d of 50 one-time and %d of 20 post-quantum prekeys to 100 fetchers", len(seen), len(pqSeen))
	}
}

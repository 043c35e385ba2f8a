package mailbox

import (
	"context"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/sealnet/sealnet/internal/clock"
	"github.com/sealnet/sealnet/internal/metrics"
	"github.com/sealnet/sealnet/mailbox/proto"
	"github.com/sealnet/sealnet/mailbox/store"
	"github.com/sealnet/sealnet/mixnet"
	"github.com/sealnet/sealnet/mixnet/directory"
	"github.com/sealnet/sealnet/mixnet/link"
	"github.com/sealnet/sealnet/mixnet/mix"
	"github.com/sealnet/sealnet/sender/seal"
)

// Service is a provider's mailbox: the protocol of docs/mailbox.md on top
// of a Store. It serves direct links (client and user kinds) and the
// requests that reach the provider through the mix network.
type Service struct {
	cfg      Settings
	domain   string
	store    store.Store
	geo      mixnet.Geometry
	identity ed25519.PrivateKey
	secret   [32]byte // derives the fake bundles of unknown mailboxes
	log      *slog.Logger
	clock    clock.Clock
	limits   *limiter
	m        *serviceMetrics

	// Answers to strangers (stranger.go, phantom.go).
	answerTime    time.Duration // StrangerAnswerTime; 0: answer at once (the defence off, tests)
	strangerSlots chan struct{} // the work of those requests in progress

	// User links of keys with no account here (newcomers, come to
	// register) in progress: anyone can make such a key, so they are
	// bounded apart from the accounts' links and live only until
	// RegisterWithin.
	newcomers chan struct{}
	fake      func(mb proto.MailboxID, take bool, now time.Time) (*seal.PrekeyBundle, error)

	send func(mixnet.NodeID, []byte) error // into the mix network (SURB replies)

	replyKeys *replyKeys // checks that a SURB reply's ID is its mailbox owner's (replyid.go)

	jobs chan func() // mix-network requests waiting for a worker
	wg   sync.WaitGroup

	// Replies through SURBs wait here for their hold (ReplyHold).
	held     *mix.Mixer[*heldReply]
	holdMean func() time.Duration
	holdMu   sync.Mutex
	holdRng  *mrand.Rand
}

// heldReply is a reply waiting for its hold: the packet and its first hop.
type heldReply struct {
	first mixnet.NodeID
	pkt   []byte
}

// ServiceOptions are what a Service needs besides its settings.
type ServiceOptions struct {
	Domain   string
	Store    store.Store
	Geometry mixnet.Geometry
	Identity ed25519.PrivateKey // the provider's directory identity key
	Secret   [32]byte
	Logger   *slog.Logger
	Registry *metrics.Registry
	Clock    clock.Clock // nil: clock.System()
	// Send puts a packet into the mix network towards a node.
	Send func(mixnet.NodeID, []byte) error
	// ReplyHold returns the mean of the exponential hold every reply
	// through a SURB waits before it leaves: the network's published
	// value for the current epoch. Nil means DefaultReplyHold; a mean of 0
	// sends replies as soon as they are ready (measurement controls only).
	ReplyHold func() time.Duration
	// LinkDH is the X25519 function of the provider's link key
	// (relay.Node.LinkDH): the reply keys it shares with its users derive
	// from it (replyid.go). Nil refuses every SURB reply.
	LinkDH func(peer [32]byte) ([]byte, error)
}

// now is the time by the service's clock (ServiceOptions.Clock).
func (s *Service) now() time.Time { return s.clock.Now() }

// NewService returns a service; Run starts its workers.
func NewService(cfg Settings, o ServiceOptions) *Service {
	s := &Service{
		cfg: cfg, domain: o.Domain, store: o.Store, geo: o.Geometry, identity: o.Identity,
		secret: o.Secret, log: o.Logger, clock: clock.Or(o.Clock), send: o.Send,
		limits:    newLimiter(cfg.LimiterEntries),
		jobs:      make(chan func(), cfg.DeliveryQueue),
		holdMean:  o.ReplyHold,
		replyKeys: newReplyKeys(o.LinkDH),

		answerTime:    StrangerAnswerTime,
		strangerSlots: make(chan struct{}, max(cfg.DeliveryWorkers, 1)),
		newcomers:     make(chan struct{}, max(cfg.NewcomerLinks, 1)),
	}
	s.fake = s.phantomBundle
	if cfg.strangerAnswerTime != 0 {
		s.answerTime = max(cfg.strangerAnswerTime, 0)
	}
	if cfg.strangerDefenceOff && legacyStranger != nil {
		legacyStranger(s)
	}
	if s.holdMean == nil {
		s.holdMean = func() time.Duration { return DefaultReplyHold }
	}
	var seed [32]byte
	rand.Read(seed[:])
	s.holdRng = mrand.New(mrand.NewChaCha8(seed))
	strat, err := mix.New[*heldReply](mix.Config{Kind: mix.Poisson, Capacity: max(cfg.HeldReplies, 1), MaxDelay: mixnet.MaxDelay}, mrand.New(mrand.NewChaCha8(seed)))
	if err != nil {
		panic(err) // the configuration is constant
	}
	s.held = mix.NewMixer(strat, s.clock, s.releaseReplies)
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	reg := o.Registry
	if reg == nil {
		reg = metrics.NewRegistry()
	}
	s.m = newServiceMetrics(reg, s)
	return s
}

// SetSend sets how replies enter the mix network (the provider's relay).
func (s *Service) SetSend(send func(mixnet.NodeID, []byte) error) { s.send = send }

// Run runs the workers that handle mix-network requests until ctx is done,
// then waits for them.
func (s *Service) Run(ctx context.Context) {
	s.wg.Go(func() { s.held.Run(ctx) })
	for range s.cfg.DeliveryWorkers {
		s.wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case job := <-s.jobs:
					job()
				}
			}
		})
	}
	s.wg.Wait()
	if n := len(s.held.Drain()); n > 0 {
		// Their senders retransmit (or, for cover, count a lost loop).
		s.m.rejected("reply_not_sent").Add(uint64(n))
	}
}

// --- delivery -----------------------------------------------------------

// deliver applies the delivery policy. With the mailbox's delivery token it
// reports exactly what happened; without one it reports StatusAccepted
// whatever happened (stored, dropped by the mailbox's policy or quota, or
// no such mailbox), so that a stranger cannot learn whether an address
// exists. Rate limits apply per mailbox ID, existing or not.
func (s *Service) deliver(ctx context.Context, mb proto.MailboxID, env store.Envelope, token [32]byte) proto.StatusCode {
	return s.deliverAs(ctx, mb, env, token, nil).Code
}

// deliverAs is deliver, calling authorized (if not nil) as soon as it
// knows that the token is the mailbox's, and answering a whole Status:
// a transient refusal says when to come back (RetryAfter: from the rate
// limiter's bucket, or RetryQuotaFull, RetryUnavailable). Without a valid
// token the answer is Accepted also when storing the envelope failed,
// since an error only a mailbox that exists can meet would tell that it
// exists; the unsolicited bucket is keyed by the mailbox ID whether it
// exists or not, so its RetryAfter tells nothing of that either.
func (s *Service) deliverAs(ctx context.Context, mb proto.MailboxID, env store.Envelope, token [32]byte, authorized func()) *proto.Status {
	st := func(c proto.StatusCode) *proto.Status {
		r := &proto.Status{Code: c, EnvelopeID: env.ID}
		switch c {
		case proto.StatusQuotaFull:
			r.RetryAfter = RetryQuotaFull
		case proto.StatusUnavailable:
			r.RetryAfter = RetryUnavailable
		}
		return r
	}
	acct, err := s.store.Account(mb)
	known := err == nil
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		s.m.rejected("unavailable").Inc()
		return st(proto.StatusUnavailable)
	}
	th := sha256.Sum256(token[:])
	var want [32]byte
	if known {
		want = acct.TokenHash
	}
	tokenOK := token != [32]byte{} && want != [32]byte{} && subtle.ConstantTimeCompare(th[:], want[:]) == 1
	if tokenOK {
		if authorized != nil {
			authorized()
		}
		if ok, wait := s.limits.allowWait("deliver", mb, s.cfg.DeliveriesPerMinute, time.Minute, s.now()); !ok {
			s.m.rejected("rate_limited").Inc()
			return &proto.Status{Code: proto.StatusRateLimited, EnvelopeID: env.ID, RetryAfter: wait}
		}
		res, err := s.store.Deliver(ctx, mb, env)
		switch {
		case err == nil && res == store.Duplicate:
			s.m.deliveries("duplicate").Inc()
			return st(proto.StatusDuplicate)
		case err == nil:
			s.m.deliveries("stored").Inc()
			s.m.storedBytes.Add(uint64(len(env.Data)))
			return st(proto.StatusOK)
		case errors.Is(err, store.ErrQuota):
			s.m.rejected("quota").Inc()
			return st(proto.StatusQuotaFull)
		case errors.Is(err, store.ErrTooLarge):
			s.m.rejected("bad_request").Inc()
			return st(proto.StatusBadRequest)
		default:
			s.m.rejected("unavailable").Inc()
			return st(proto.StatusUnavailable)
		}
	}
	if ok, wait := s.limits.allowWait("unsolicited", mb, s.cfg.UnsolicitedPerMinute, time.Minute, s.now()); !ok {
		s.m.rejected("rate_limited").Inc()
		return &proto.Status{Code: proto.StatusRateLimited, EnvelopeID: env.ID, RetryAfter: wait}
	}
	if !known || !acct.AllowUnsolicited {
		s.m.deliveries("discarded").Inc()
		return st(proto.StatusAccepted)
	}
	res, err := s.store.Deliver(ctx, mb, env)
	switch {
	case err == nil && res == store.Duplicate:
		s.m.deliveries("duplicate").Inc()
	case err == nil:
		s.m.deliveries("stored").Inc()
		s.m.storedBytes.Add(uint64(len(env.Data)))
	case errors.Is(err, store.ErrQuota), errors.Is(err, store.ErrTooLarge):
		s.m.deliveries("discarded").Inc()
	default:
		s.m.rejected("unavailable").Inc()
	}
	return st(proto.StatusAccepted)
}

// What a refusal the rate limiter did not make asks of the sender: a full
// mailbox has room again once its owner fetches, which the provider
// cannot foresee; a provider that cannot store now (shutting down,
// overloaded, a storage error) usually can a little later.
const (
	RetryQuotaFull   = time.Minute
	RetryUnavailable = 10 * time.Second
)

// Deliver is the relay's final-hop hand-off: a packet for one of this
// provider's mailboxes. It must not block, so the work is queued for the
// workers; a full queue drops the packet (the sender's retransmission
// recovers it).
func (s *Service) Deliver(res *mixnet.Result) error {
	mb := proto.MailboxID(res.Recipient)
	if res.SURBReply {
		// A reply to a SURB: no token, but its ID must be one this
		// mailbox's owner made (replyid.go), or anyone could fill the
		// mailbox with replies.
		env := store.Envelope{Kind: proto.EnvelopeSURBReply, ID: res.SURBID, Data: append([]byte(nil), res.Payload...)}
		return s.enqueue(func() { s.storeReply(mb, env) })
	}
	if res.Recipient == (mixnet.RecipientID{}) && allZero(res.Payload) {
		s.m.deliveries("cover").Inc() // a node's drop cover
		return nil
	}
	req, err := proto.ParseMixRequest(s.geo, res.Payload)
	if err != nil {
		s.m.rejected("malformed").Inc()
		return err
	}
	// The hold is counted from now, the moment the packet is handed over
	// after its final-hop delay, not from when the work is done: the reply
	// leaves at arrival + hold whether the request needed a commit, a
	// bundle or nothing, so its timing says nothing about what it was.
	due := s.replyDue()
	if req.Cover {
		s.m.deliveries("cover").Inc()
		s.replyThrough(req.SURB, &proto.Status{Code: proto.StatusOK}, due)
		return nil
	}
	return s.enqueue(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		var reply proto.Message
		if req.Bundle {
			reply = s.bundle(mb)
		} else {
			d := req.Deliver
			reply = s.deliverAs(ctx, mb, store.Envelope{Kind: proto.EnvelopeSealed, ID: d.EnvelopeID, Data: d.Data}, d.Token, nil)
		}
		s.replyThrough(req.SURB, reply, due)
	})
}

// storeReply stores a reply through a SURB in mb: only if the mailbox's
// owner made the SURB (its ID verifies; a forgery spends nothing of the
// mailbox's), within the mailbox's reply budget (a client's own cover and
// acknowledgements must not spend its contacts' deliveries), and within
// the replies' share of the quota (store.ReplyShare).
func (s *Service) storeReply(mb proto.MailboxID, env store.Envelope) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	acct, err := s.store.Account(mb)
	if err != nil {
		s.m.deliveries("discarded").Inc()
		return
	}
	if !s.cfg.replyAuthOff {
		if err := s.replyKeys.verify(mb, acct.IdentityX25519, mixnet.SURBID(env.ID)); err != nil {
			s.m.rejected("forged_reply").Inc()
			return
		}
	}
	if !s.limits.allow("reply", mb, s.cfg.RepliesPerMinute, time.Minute, s.now()) {
		s.m.rejected("rate_limited").Inc()
		return
	}
	if _, err := s.store.Deliver(ctx, mb, env); err != nil {
		s.m.rejected("reply_not_stored").Inc()
		return
	}
	s.m.deliveries("surb_reply").Inc()
}

func allZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}

// replyDue is when a reply to a request handed over now may leave: now
// plus an exponential hold of the published mean.
func (s *Service) replyDue() time.Time {
	now := s.now()
	mean := s.holdMean()
	if mean <= 0 {
		return now
	}
	s.holdMu.Lock()
	h := time.Duration(s.holdRng.ExpFloat64() * float64(mean))
	s.holdMu.Unlock()
	return now.Add(min(h, mixnet.MaxDelay))
}

func (s *Service) enqueue(job func()) error {
	select {
	case s.jobs <- job:
		return nil
	default:
		s.m.rejected("queue_full").Inc()
		return errors.New("mailbox: delivery queue full")
	}
}

// DefaultReplyHold is the mean of the exponential hold of a reply through
// a SURB (the acknowledgement of a delivery, the answer to a bundle
// request or to cover) when the network publishes none: the moment a
// message is stored says nothing about the moment its reply leaves. A
// provider uses the directory's ProviderHold (ServiceOptions.ReplyHold).
// The simulator's workload.ack_delay models it, and TestRepliesHeld checks
// it.
const DefaultReplyHold = directory.DefaultProviderHold

// replyThrough sends a reply back along the requester's SURB, no earlier
// than due. For a delivery it is called only once the envelope is
// durable: the acknowledgement means "stored".
func (s *Service) replyThrough(surbBytes []byte, m proto.Message, due time.Time) {
	surb, err := mixnet.UnmarshalSURB(s.geo, surbBytes)
	if err != nil {
		s.m.rejected("bad_surb").Inc()
		return
	}
	msg, err := proto.MarshalReply(s.geo, m)
	if err != nil {
		return
	}
	pkt, err := surb.NewReply(s.geo, msg)
	if err != nil || s.send == nil {
		s.m.rejected("bad_surb").Inc()
		return
	}
	now := s.now()
	it := mix.Item[*heldReply]{Value: &heldReply{first: surb.FirstHop, pkt: pkt}, Arrived: now, Delay: max(due.Sub(now), 0)}
	if err := s.held.Add(it); err != nil {
		s.m.rejected("reply_not_sent").Inc()
	}
}

// releaseReplies is the hold queue's output.
func (s *Service) releaseReplies(batch []*heldReply) {
	for _, r := range batch {
		if err := s.send(r.first, r.pkt); err != nil {
			s.m.rejected("reply_not_sent").Inc()
			continue
		}
		s.m.replies.Inc()
	}
}

// --- prekey bundles -------------------------------------------------------

// bundle answers a bundle request for mb. One-time prekeys are handed out
// only within a per-mailbox rate, so nobody can drain them cheaply; beyond
// it the bundle carries the signed and last-resort keys only. A mailbox
// that does not exist (or has uploaded no prekeys) gets a fake bundle of
// the same form and behaviour: its phantom's (phantom.go).
func (s *Service) bundle(mb proto.MailboxID) proto.Message {
	now := s.now()
	if ok, wait := s.limits.allowWait("bundle", mb, s.cfg.BundlesPerHour, time.Hour, now); !ok {
		s.m.rejected("rate_limited").Inc()
		return &proto.Status{Code: proto.StatusRateLimited, RetryAfter: wait}
	}
	take := s.limits.allow("onetime", mb, s.cfg.OneTimePerHour, time.Hour, now)
	s.m.bundles.Inc()
	acct, err := s.store.Account(mb)
	if err == nil {
		sb, err := s.store.TakeBundle(mb, take)
		if err != nil {
			return &proto.Status{Code: proto.StatusUnavailable}
		}
		if b, ok := assembleBundle(&acct, &sb); ok {
			return &proto.BundleResponse{Bundle: b.Marshal()}
		}
	} else if !errors.Is(err, store.ErrNotFound) {
		return &proto.Status{Code: proto.StatusUnavailable}
	}
	b, err := s.fake(mb, take, now)
	if err != nil {
		return &proto.Status{Code: proto.StatusUnavailable}
	}
	return &proto.BundleResponse{Bundle: b.Marshal()}
}

func assembleBundle(a *store.Account, sb *store.Bundle) (*seal.PrekeyBundle, bool) {
	if sb.Signed == nil {
		return nil, false
	}
	b := &seal.PrekeyBundle{IdentityX25519: a.IdentityX25519, IdentityEd25519: a.IdentityEd25519}
	sp, err := seal.ParseSignedPrekey(sb.Signed.Data)
	if err != nil {
		return nil, false
	}
	b.Signed = *sp
	if sb.OneTime != nil {
		if ot, err := seal.ParseOneTimePrekey(sb.OneTime.Data); err == nil {
			b.OneTime = ot
		}
	}
	pq := sb.PQOneTime
	if pq == nil {
		pq = sb.LastResort
	}
	if pq == nil {
		return nil, false
	}
	p, err := seal.ParsePQPrekey(pq.Data)
	if err != nil {
		return nil, false
	}
	b.PQ = *p
	return b, true
}

// --- links ------------------------------------------------------------------

// HandleLink serves one client or user link: a request, a response, until
// the link fails or ctx ends.
func (s *Service) HandleLink(ctx context.Context, c *link.Conn) {
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	var owner *session
	var nc *newcomerLink
	if c.Kind() == link.KindUser {
		owner = &session{key: c.PeerKey()}
		s.m.links("user").Inc()
		if !s.owner(owner) {
			if nc = s.admitNewcomer(c); nc == nil {
				return
			}
			defer nc.end()
		}
	} else {
		s.m.links("client").Inc()
	}
	perLink := newBucket(float64(s.cfg.RequestsPerSecond), float64(2*s.cfg.RequestsPerSecond), s.now())
	var stragglers sync.WaitGroup // requests' work that outlived its answer (answerAt)
	defer stragglers.Wait()
	for {
		m, err := proto.ReadMessage(c)
		if err != nil {
			return
		}
		arrived := s.now()
		var reply proto.Message
		if !perLink.take(s.now()) {
			reply = &proto.Status{Code: proto.StatusRateLimited, Detail: "too many requests on this link"}
		} else if r := s.anyones(ctx, arrived, &stragglers, m); r != nil {
			reply = r
		} else {
			reply = s.handle(ctx, c.Kind(), owner, m)
		}
		if _, ok := m.(*proto.RegisterRequest); ok && nc != nil && s.owner(owner) {
			nc.end() // an account's link from now on
			nc = nil
		}
		if err := proto.WriteMessage(c, s.geo, reply); err != nil {
			return
		}
	}
}

// newcomerLink is a user link whose key has no account here: it holds one
// of the NewcomerLinks places, and is closed at RegisterWithin unless it
// registers first. Anyone can make a key and link with it; without this,
// made-up keys could hold every connection slot of the node (MaxConns)
// for the links' whole idle timeout, away from its peers and its users.
type newcomerLink struct {
	s     *Service
	timer clock.Timer
	ended chan struct{} // closed by end, which stops the deadline's goroutine
	held  bool
}

// admitNewcomer takes a place for c, or closes c and returns nil when
// every place is taken.
func (s *Service) admitNewcomer(c *link.Conn) *newcomerLink {
	select {
	case s.newcomers <- struct{}{}:
	default:
		s.m.rejected("newcomers").Inc()
		c.Close()
		return nil
	}
	n := &newcomerLink{s: s, held: true, timer: s.clock.NewTimer(s.cfg.RegisterWithin.D()), ended: make(chan struct{})}
	// The link's handler is blocked reading requests, so the deadline has a
	// goroutine of its own; it lives until end, which the handler always
	// calls before it returns.
	go func() {
		select {
		case <-n.timer.C():
			c.Close()
		case <-n.ended:
		}
	}()
	return n
}

// end stops the deadline and gives the place back (idempotent).
func (n *newcomerLink) end() {
	if n.held {
		n.held = false
		n.timer.Stop()
		close(n.ended)
		<-n.s.newcomers
	}
}

// session is a user link's owner, looked up lazily.
type session struct {
	key  [32]byte
	mb   proto.MailboxID
	acct store.Account
	ok   bool
}

func (s *Service) owner(o *session) bool {
	if o == nil {
		return false
	}
	if o.ok {
		return true
	}
	mb, acct, err := s.store.AccountByKey(o.key)
	if err != nil {
		return false
	}
	o.mb, o.acct, o.ok = mb, acct, true
	return true
}

func (s *Service) handle(ctx context.Context, kind link.Kind, o *session, m proto.Message) proto.Message {
	switch r := m.(type) {
	case *proto.DeliverRequest:
		return s.deliverAs(ctx, r.Mailbox, store.Envelope{Kind: proto.EnvelopeSealed, ID: r.EnvelopeID, Data: r.Data}, r.Token, nil)
	case *proto.BundleRequest:
		return s.bundle(r.Mailbox)
	}
	if kind != link.KindUser {
		return &proto.Status{Code: proto.StatusUnauthorized, Detail: "this request needs a user link"}
	}
	if r, ok := m.(*proto.RegisterRequest); ok {
		return s.register(o, r)
	}
	if !s.owner(o) {
		return &proto.Status{Code: proto.StatusUnauthorized, Detail: "this key is not registered here; register first"}
	}
	switch r := m.(type) {
	case *proto.CertificateRequest:
		return s.certificate(&o.acct)
	case *proto.UploadRequest:
		return s.upload(o, &r.Upload)
	case *proto.FetchRequest:
		return s.fetch(ctx, o.mb, r.Wait)
	case *proto.PullRequest:
		return s.pull(ctx, o.mb, r.Through, s.now())
	case *proto.AckRequest:
		if err := s.store.Ack(o.mb, r.Through); err != nil {
			if errors.Is(err, store.ErrBadAck) {
				return &proto.Status{Code: proto.StatusBadRequest, Detail: "nothing to acknowledge up to that sequence"}
			}
			return &proto.Status{Code: proto.StatusUnavailable}
		}
		s.m.acks.Inc()
		return &proto.Status{Code: proto.StatusOK}
	case *proto.SetTokenRequest:
		if err := s.store.SetDeliveryToken(o.mb, r.TokenHash, r.AllowUnsolicited); err != nil {
			return &proto.Status{Code: proto.StatusUnavailable}
		}
		o.ok = false // reload the account
		return &proto.Status{Code: proto.StatusOK}
	}
	return &proto.Status{Code: proto.StatusBadRequest, Detail: "not a request"}
}

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

func (s *Service) register(o *session, r *proto.RegisterRequest) proto.Message {
	if !s.limits.allow("register", proto.MailboxID{}, s.cfg.RegistrationsPerMinute, time.Minute, s.now()) {
		return &proto.Status{Code: proto.StatusRateLimited}
	}
	addr := strings.ToLower(r.Address)
	name, domain, ok := strings.Cut(addr, "@")
	if !ok || domain != s.domain || !nameRE.MatchString(name) {
		return &proto.Status{Code: proto.StatusBadRequest, Detail: fmt.Sprintf("an address here is name@%s, name of [a-z0-9._-]", s.domain)}
	}
	if !ed25519.Verify(ed25519.PublicKey(r.IdentityEd25519[:]), proto.RegistrationMessage(addr, o.key, r.IdentityEd25519), r.Signature[:]) {
		return &proto.Status{Code: proto.StatusUnauthorized, Detail: "bad proof of possession of the identity key"}
	}
	_, err := s.store.Register(store.Account{
		Address: addr, IdentityX25519: o.key, IdentityEd25519: r.IdentityEd25519,
		TokenHash: r.TokenHash, AllowUnsolicited: r.AllowUnsolicited,
	})
	switch {
	case errors.Is(err, store.ErrExists):
		return &proto.Status{Code: proto.StatusExists, Detail: "this address is registered to another identity"}
	case err != nil:
		return &proto.Status{Code: proto.StatusUnavailable}
	}
	s.m.registrations.Inc()
	o.ok = false
	return &proto.Status{Code: proto.StatusOK}
}

func (s *Service) certificate(a *store.Account) proto.Message {
	cert, err := seal.SignCertificate(seal.Certificate{
		Address: a.Address, IdentityX25519: a.IdentityX25519, IdentityEd25519: a.IdentityEd25519,
		Expires: s.now().Add(s.cfg.CertificateTTL.D()).Truncate(time.Hour),
	}, s.identity)
	if err != nil {
		return &proto.Status{Code: proto.StatusUnavailable}
	}
	return &proto.CertificateResponse{Certificate: cert}
}

// upload verifies every prekey against the owner's identity key before
// storing any.
func (s *Service) upload(o *session, u *proto.PrekeyUpload) proto.Message {
	id := ed25519.PublicKey(o.acct.IdentityEd25519[:])
	bad := func(what string, err error) proto.Message {
		return &proto.Status{Code: proto.StatusBadRequest, Detail: fmt.Sprintf("%s: %v", what, err)}
	}
	if p := u.Signed; p != nil {
		sp, err := seal.ParseSignedPrekey(p.Data)
		if err == nil && sp.ID != p.ID {
			err = errors.New("ID mismatch")
		}
		if err == nil {
			err = sp.Verify(id)
		}
		if err != nil {
			return bad("signed prekey", err)
		}
	}
	checkPQ := func(p *proto.Prekey, kind byte) error {
		pq, err := seal.ParsePQPrekey(p.Data)
		if err != nil {
			return err
		}
		if pq.ID != p.ID || pq.Kind != kind {
			return errors.New("ID or kind mismatch")
		}
		return pq.Verify(id)
	}
	if u.LastResort != nil {
		if err := checkPQ(u.LastResort, seal.PQLastResort); err != nil {
			return bad("last-resort prekey", err)
		}
	}
	for i := range u.PQOneTime {
		if err := checkPQ(&u.PQOneTime[i], seal.PQOneTime); err != nil {
			return bad("post-quantum prekey", err)
		}
	}
	for i := range u.OneTime {
		ot, err := seal.ParseOneTimePrekey(u.OneTime[i].Data)
		if err == nil && ot.ID != u.OneTime[i].ID {
			err = errors.New("ID mismatch")
		}
		if err == nil {
			if _, kerr := ecdh.X25519().NewPublicKey(ot.Public[:]); kerr != nil || ot.Public == ([32]byte{}) {
				err = errors.New("bad key")
			}
		}
		if err != nil {
			return bad("one-time prekey", err)
		}
	}
	if err := s.store.UploadPrekeys(o.mb, *u); err != nil {
		if errors.Is(err, store.ErrPrekeyReused) {
			return &proto.Status{Code: proto.StatusPrekeyReused, Detail: "a one-time prekey ID was used before; pick new IDs"}
		}
		return &proto.Status{Code: proto.StatusBadRequest, Detail: err.Error()}
	}
	return &proto.Status{Code: proto.StatusOK}
}

// fetch returns the next page, waiting up to wait for mail if there is none.
func (s *Service) fetch(ctx context.Context, mb proto.MailboxID, wait time.Duration) proto.Message {
	s.m.fetches.Inc()
	recs, more, err := s.store.Page(mb, proto.PageRecords)
	if err != nil {
		return &proto.Status{Code: proto.StatusUnavailable}
	}
	if len(recs) == 0 && wait > 0 {
		ch, stop, err := s.store.Notify(mb)
		if err == nil {
			// Mail may have arrived between Page and Notify: look again.
			if recs, more, err = s.store.Page(mb, proto.PageRecords); err == nil && len(recs) == 0 {
				t := s.clock.NewTimer(min(wait, proto.MaxFetchWait))
				select {
				case <-ch:
				case <-t.C():
				case <-ctx.Done():
				}
				t.Stop()
				recs, more, err = s.store.Page(mb, proto.PageRecords)
			}
			stop()
			if err != nil {
				return &proto.Status{Code: proto.StatusUnavailable}
			}
		}
	}
	p := &proto.Page{More: more, Records: recs}
	if sb, err := s.store.TakeBundle(mb, false); err == nil {
		if sb.OneTimeLeft < s.cfg.ReplenishBelow {
			p.Replenish |= proto.ReplenishOneTime
		}
		if sb.PQOneTimeLeft < s.cfg.ReplenishBelow {
			p.Replenish |= proto.ReplenishPQ
		}
		if sb.Signed == nil || sb.LastResort == nil {
			p.Replenish |= proto.ReplenishSigned
		}
	}
	return p
}

// pull is one step of a constant-rate fetch: acknowledge, read the next
// page, and answer PullAnswerDelay after the request arrived. A bad
// acknowledgement (beyond what the mailbox holds) is ignored: the page
// answers it as any other, so a client cannot be told apart by it.
func (s *Service) pull(ctx context.Context, mb proto.MailboxID, through uint64, arrived time.Time) proto.Message {
	var reply proto.Message = &proto.Status{Code: proto.StatusUnavailable}
	if err := s.store.Ack(mb, through); err == nil || errors.Is(err, store.ErrBadAck) {
		if through > 0 && err == nil {
			s.m.acks.Inc()
		}
		reply = s.fetch(ctx, mb, 0)
	}
	t := s.clock.NewTimer(arrived.Add(proto.PullAnswerDelay).Sub(s.now()))
	defer t.Stop()
	select {
	case <-t.C():
	case <-ctx.Done():
	}
	return reply
}

// --- rate limits ----------------------------------------------------------

// bucket is a token bucket.
type bucket struct {
	rate, burst, tokens float64
	last                time.Time
}

func newBucket(rate, burst float64, now time.Time) *bucket {
	return &bucket{rate: rate, burst: burst, tokens: burst, last: now}
}

func (b *bucket) take(now time.Time) bool {
	if dt := now.Sub(b.last).Seconds(); dt > 0 {
		b.tokens = math.Min(b.burst, b.tokens+dt*b.rate)
		b.last = now
	}
	if b.tokens < 1-tokenSlack {
		return false
	}
	b.tokens = max(b.tokens-1, 0)
	return true
}

// tokenSlack absorbs the rounding of the refills' floating-point sums, so
// that a bucket holds its token again exactly when wait said it would.
const tokenSlack = 1e-9

// wait is how long after now the bucket holds a token again, when take
// has just refused one: the refill of what is missing. It depends only on
// the bucket (the kind and the mailbox ID, existing or not).
func (b *bucket) wait() time.Duration {
	if b.tokens >= 1-tokenSlack || b.rate <= 0 {
		return 0
	}
	return time.Duration(math.Ceil((1 - b.tokens) / b.rate * float64(time.Second)))
}

// limiter holds token buckets per (kind, mailbox), at most max of them.
// When full it forgets a random tenth, which can only make limits looser
// for those mailboxes, never lock anyone out.
type limiter struct {
	max int
	mu  sync.Mutex
	m   map[string]*bucket
}

func newLimiter(max int) *limiter { return &limiter{max: max, m: make(map[string]*bucket)} }

// allow takes a token from the bucket for (kind, mb) that refills n per
// period, with a burst of n.
func (l *limiter) allow(kind string, mb proto.MailboxID, n int, period time.Duration, now time.Time) bool {
	ok, _ := l.allowWait(kind, mb, n, period, now)
	return ok
}

// allowWait is allow, and when it refuses, how long until the bucket
// holds a token again (the Status.RetryAfter of the refusal; period if
// the limit is 0, which refuses everything).
func (l *limiter) allowWait(kind string, mb proto.MailboxID, n int, period time.Duration, now time.Time) (bool, time.Duration) {
	if n <= 0 {
		return false, period
	}
	key := kind + string(mb[:])
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.m[key]
	if b == nil {
		if len(l.m) >= l.max {
			i := 0
			for k := range l.m {
				if i%10 == 0 {
					delete(l.m, k)
				}
				i++
			}
		}
		b = newBucket(float64(n)/period.Seconds(), float64(n), now)
		l.m[key] = b
	}
	if b.take(now) {
		return true, 0
	}
	return false, b.wait()
}

// --- metrics ----------------------------------------------------------------

type serviceMetrics struct {
	reg           *metrics.Registry
	deliver       map[string]*metrics.Counter
	reject        map[string]*metrics.Counter
	link          map[string]*metrics.Counter
	storedBytes   *metrics.Counter
	bundles       *metrics.Counter
	fetches       *metrics.Counter
	acks          *metrics.Counter
	replies       *metrics.Counter
	registrations *metrics.Counter
}

func newServiceMetrics(r *metrics.Registry, s *Service) *serviceMetrics {
	m := &serviceMetrics{reg: r, deliver: map[string]*metrics.Counter{}, reject: map[string]*metrics.Counter{}, link: map[string]*metrics.Counter{}}
	for _, k := range []string{"stored", "duplicate", "discarded", "surb_reply", "cover"} {
		m.deliver[k] = r.Counter("sealnet_mailbox_deliveries_total", "Envelopes delivered, by outcome.", "outcome", k)
	}
	for _, k := range []string{"rate_limited", "quota", "bad_request", "unavailable", "malformed", "queue_full", "bad_surb", "forged_reply", "reply_not_sent", "reply_not_stored", "busy", "overrun", "phantom_cap", "newcomers"} {
		m.reject[k] = r.Counter("sealnet_mailbox_rejected_total", "Requests refused, by reason.", "reason", k)
	}
	for _, k := range []string{"client", "user"} {
		m.link[k] = r.Counter("sealnet_mailbox_links_total", "Direct links served, by kind.", "kind", k)
	}
	m.storedBytes = r.Counter("sealnet_mailbox_stored_bytes_total", "Envelope bytes stored.")
	m.bundles = r.Counter("sealnet_mailbox_bundles_total", "Prekey bundles served.")
	m.fetches = r.Counter("sealnet_mailbox_fetches_total", "Pages fetched by owners.")
	m.acks = r.Counter("sealnet_mailbox_acks_total", "Pages acknowledged by owners.")
	m.replies = r.Counter("sealnet_mailbox_surb_replies_sent_total", "Acknowledgements and bundles sent back through SURBs.")
	m.registrations = r.Counter("sealnet_mailbox_registrations_total", "Accounts registered.")
	r.GaugeFunc("sealnet_mailbox_queue_depth", "Mix-network requests waiting for a worker.", func() float64 { return float64(len(s.jobs)) })
	r.GaugeFunc("sealnet_mailbox_phantoms", "Unknown mailboxes whose fake bundles have handed out one-time prekeys.", func() float64 {
		if s.store == nil {
			return 0
		}
		return float64(s.store.Phantoms())
	})
	return m
}

func (m *serviceMetrics) deliveries(k string) *metrics.Counter { return m.deliver[k] }
func (m *serviceMetrics) rejected(k string) *metrics.Counter   { return m.reject[k] }
func (m *serviceMetrics) links(k string) *metrics.Counter      { return m.link[k] }

package mailbox_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"net"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sealnet/sealnet/internal/stats"
	"github.com/sealnet/sealnet/internal/testbed/testnet"
	"github.com/sealnet/sealnet/mailbox"
	"github.com/sealnet/sealnet/mailbox/proto"
	"github.com/sealnet/sealnet/mixnet/directory"
	"github.com/sealnet/sealnet/relay"
	"github.com/sealnet/sealnet/sender"
	"github.com/sealnet/sealnet/sender/seal"
)

// The stranger-enumeration probe: someone with no account at a provider
// and no delivery token asks whether addresses exist there, from what any
// client link may do (bundle requests and tokenless deliveries) and from
// what is public (the directory, the client's source). TestStrangerProbe
// runs it against a real provider and requires its accuracy to be that of
// a coin flip; docs/mailbox.md §4 promises that a stranger cannot tell.
//
// Before issue 15 it could: fake bundles carried prekey IDs no client
// makes, and a tokenless delivery to a mailbox that stores it waited for
// the commit while one to an unknown address answered at once (and with
// the store left out for every tokenless delivery, the timing probe still
// scored 0.62 to 0.68 over 40 addresses, from the account lookup, a few
// microseconds longer for an address that exists). The test's control
// runs the same probe against a provider with the defence off
// (mailbox.DisableStrangerDefence) and requires it to win there.

// plausiblePrekeyID: the public client (sender) numbers its prekeys 1, 2,
// 3, … across every upload, a few dozen a week, so a real account's IDs
// stay far below this for the life of any installation. A stranger reads
// a bundle with an ID above it as not made by a client.
const plausiblePrekeyID = 1 << 20

// bundleLooksReal is the stranger's first bundle classifier: every prekey
// ID in the bundle is one a client's counter could have reached.
func bundleLooksReal(b *seal.PrekeyBundle) bool {
	return maxPrekeyID(b) < plausiblePrekeyID
}

func maxPrekeyID(b *seal.PrekeyBundle) uint32 {
	m := max(b.Signed.ID, b.PQ.ID)
	if b.OneTime != nil {
		m = max(m, b.OneTime.ID)
	}
	return m
}

// shape is what a run of bundles of one address shows apart from its
// keys: per bundle, the signed prekey's ID, the one-time prekey's (0 for
// none), the post-quantum prekey's ID and kind, and whether the identity
// and signed keys stayed those of the first bundle.
type shape []string

func shapeOf(bs []*seal.PrekeyBundle) shape {
	out := make(shape, len(bs))
	for i, b := range bs {
		var ot uint32
		if b.OneTime != nil {
			ot = b.OneTime.ID
		}
		same := b.IdentityEd25519 == bs[0].IdentityEd25519 && b.Signed == bs[0].Signed
		out[i] = fmt.Sprintf("%d/%d/%d:%d/%v", b.Signed.ID, ot, b.PQ.ID, b.PQ.Kind, same)
	}
	return out
}

// stranger reaches a provider over anonymous client links (Noise_NK), the
// kind the public client's direct route opens (sender/direct.go), at the
// address and link key the directory publishes. Nothing else: no account
// of its own on these links, no token.
type stranger struct {
	addr string
	key  [32]byte
	// size of the envelopes it delivers: a sealed envelope's
	// (proto.MaxMixEnvelope), as a real sender's.
	size int
	// links is how many links it keeps open at once.
	links int
}

// strangerBurst bounds the requests the stranger sends on one link: the
// provider allows a burst of twice requests_per_second (200 by default)
// per link before answering "rate limited".
const strangerBurst = 200

// strangerLinks is how many links the stranger keeps open at once against
// a provider that answers strangers at mailbox.StrangerAnswerTime: a
// patient prober runs many in parallel (from as many addresses as the
// provider's per-address cap needs; the test raises the cap instead).
// Against one that answers at once it uses one, which measures best.
const strangerLinks = 48

// newStranger refuses any provider not on loopback: the timing probe
// sends hundreds of requests and is for test networks only.
func newStranger(d *directory.Descriptor, links int) (*stranger, error) {
	host, _, err := net.SplitHostPort(d.Address)
	if err != nil {
		return nil, err
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("stranger probe: %s is not a loopback address", d.Address)
	}
	return &stranger{addr: d.Address, key: d.LinkKey, size: proto.MaxMixEnvelope(geo), links: links}, nil
}

func (s *stranger) dial(ctx context.Context) (*proto.Client, error) {
	return proto.Dial(ctx, geo, s.addr, s.key, proto.DialOptions{Timeout: 5 * time.Second})
}

// each calls fn for every index in order, on s.links links at once;
// fn sends at most per requests. A link is replaced before it would pass
// strangerBurst requests. The first error stops the run.
func (s *stranger) each(ctx context.Context, order []int, per int, fn func(c *proto.Client, i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	work := make(chan int)
	var wg sync.WaitGroup
	for range s.links {
		wg.Go(func() {
			var c *proto.Client
			sent := 0
			defer func() {
				if c != nil {
					c.Close()
				}
			}()
			for i := range work {
				if c == nil || sent+per > strangerBurst {
					if c != nil {
						c.Close()
					}
					var err error
					if c, err = s.dial(ctx); err != nil {
						cancel(err)
						return
					}
					sent = 0
				}
				sent += per
				if err := fn(c, i); err != nil {
					cancel(err)
					return
				}
			}
		})
	}
feed:
	for _, i := range order {
		select {
		case work <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("stranger probe: %w", err)
	}
	return ctx.Err()
}

// bundles fetches takes bundles in a row for every address (each request
// hands out a one-time prekey, as a sender's does).
func (s *stranger) bundles(ctx context.Context, mbs []proto.MailboxID, takes int) ([][]*seal.PrekeyBundle, error) {
	out := make([][]*seal.PrekeyBundle, len(mbs))
	err := s.each(ctx, mrand.Perm(len(mbs)), takes, func(c *proto.Client, i int) error {
		for range takes {
			b, err := busyRetry(ctx, func() (*seal.PrekeyBundle, error) { return c.Bundle(ctx, mbs[i]) })
			if err != nil {
				return err
			}
			out[i] = append(out[i], b)
		}
		return nil
	})
	return out, err
}

// busyRetry calls f again, as a patient stranger would, while the provider
// answers "busy; try again" (every stranger slot taken: on a loaded test
// machine the work of earlier requests can outlive their answers). A busy
// answer is given before any work, so it hands out nothing.
func busyRetry[T any](ctx context.Context, f func() (T, error)) (T, error) {
	for i := 0; ; i++ {
		v, err := f()
		if err == nil || statusOf(err) != proto.StatusUnavailable || i == 50 {
			return v, err
		}
		select {
		case <-ctx.Done():
			return v, err
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// deliverTime delivers one tokenless envelope (fresh ID, random bytes) and
// returns how long the provider took to answer, from the request to the
// status. Anything but StatusAccepted is an error: without a token every
// answer is Accepted.
func (s *stranger) deliverTime(ctx context.Context, c *proto.Client, mb proto.MailboxID) (time.Duration, error) {
	var id [16]byte
	rand.Read(id[:])
	data := make([]byte, s.size)
	rand.Read(data)
	var code proto.StatusCode
	var d time.Duration
	for i := 0; ; i++ { // "busy; try again" is answered before any work: not a sample
		start := time.Now()
		var err error
		code, err = c.Deliver(ctx, mb, id, [32]byte{}, data)
		d = time.Since(start)
		if err != nil {
			return 0, err
		}
		if code != proto.StatusUnavailable || i == 50 {
			break
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	if code != proto.StatusAccepted {
		return 0, fmt.Errorf("tokenless delivery answered %v", code)
	}
	return d, nil
}

// timings delivers rounds tokenless envelopes to every address and returns
// each address's median answer time. The rounds are interleaved (each
// round visits every address once, in a fresh random order, spread over
// the stranger's links), so that drift in the machine's load falls on all
// addresses alike. rounds must stay within the provider's unsolicited
// burst per mailbox (10 by default), or the later deliveries are refused;
// every request has the client's deadline and the whole run ctx's.
func (s *stranger) timings(ctx context.Context, mbs []proto.MailboxID, rounds int) ([]time.Duration, error) {
	samples := make([][]time.Duration, len(mbs))
	var mu sync.Mutex
	for range rounds {
		err := s.each(ctx, mrand.Perm(len(mbs)), 1, func(c *proto.Client, i int) error {
			d, err := s.deliverTime(ctx, c, mbs[i])
			if err != nil {
				return err
			}
			mu.Lock()
			samples[i] = append(samples[i], d)
			mu.Unlock()
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	med := make([]time.Duration, len(mbs))
	for i, ds := range samples {
		med[i] = median(ds)
	}
	return med, nil
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// timingThreshold is the stranger's calibration: the geometric mean of the
// typical answer time of addresses it knows are fake (random names) and of
// those it knows are real (accounts it registered itself, as anybody may).
// ok is false if its own accounts were not slower: then timing tells it
// nothing.
func timingThreshold(fake, own []time.Duration) (time.Duration, bool) {
	f, o := median(fake), median(own)
	if o <= f {
		return 0, false
	}
	return time.Duration(math.Sqrt(float64(f) * float64(o))), true
}

// randomAddresses are names a stranger makes up: with 64 random bits none
// is registered, so their answers are those of unknown addresses.
func randomAddresses(n int, domain string) []string {
	out := make([]string, n)
	for i := range out {
		var b [8]byte
		rand.Read(b[:])
		out[i] = "x" + hex.EncodeToString(b[:]) + "@" + domain
	}
	return out
}

func mailboxesOf(addrs []string) []proto.MailboxID {
	mbs := make([]proto.MailboxID, len(addrs))
	for i, a := range addrs {
		mbs[i] = proto.MailboxOf(a)
	}
	return mbs
}

// registerClients creates and registers addrs with the real client
// (sender.Init, sender.Open, Client.Register: account, certificate, the
// default prekey upload), a few at a time, and closes them.
func (e *env) registerClients(t *testing.T, addrs []string) {
	t.Helper()
	var auths []sender.AuthorityState
	for _, a := range e.nw.Authorities {
		auths = append(auths, sender.AuthorityState{URL: a.URL, Key: a.Key})
	}
	pass := []byte("stranger probe")
	kdf := sender.KDFParams{Time: 1, Memory: 8 << 10, Threads: 1} // the vault's cost only
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	errs := make([]error, len(addrs))
	for i, addr := range addrs {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			dir := filepath.Join(t.TempDir(), "home")
			err := sender.Init(dir, pass, sender.InitOptions{Address: addr, Authorities: auths,
				Threshold: e.nw.Spec.Threshold, EpochPeriod: e.nw.Spec.EpochPeriod, KDF: &kdf})
			if err != nil {
				errs[i] = err
				return
			}
			c, err := sender.Open(dir, pass, sender.Options{})
			if err != nil {
				errs[i] = err
				return
			}
			defer c.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			errs[i] = c.Register(ctx)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("registering %s: %v", addrs[i], err)
		}
	}
}

// accuracy scores verdicts ("real?") against the truth.
func accuracy(verdicts, truth []bool) (k, n int) {
	for i := range verdicts {
		if verdicts[i] == truth[i] {
			k++
		}
	}
	return k, len(verdicts)
}

func count(v []bool) (n int) {
	for _, b := range v {
		if b {
			n++
		}
	}
	return n
}

// scored is one classifier's result on one labelled set.
type scored struct {
	k, n   int
	lo, hi float64
}

func score(verdicts, truth []bool) scored {
	k, n := accuracy(verdicts, truth)
	lo, hi := stats.Wilson(float64(k), float64(n))
	return scored{k, n, lo, hi}
}

func (s scored) String() string {
	return fmt.Sprintf("accuracy %.2f [%.2f, %.2f] over %d addresses", float64(s.k)/float64(s.n), s.lo, s.hi, s.n)
}

func (s scored) coinFlip() bool { return s.lo <= 0.5 && s.hi >= 0.5 }

// The probe's sizes: probeN real and probeN fake targets plus 2·probeN
// control addresses; probeTakes bundles in a row each (within the default
// one-time burst of 20 per mailbox, and past the tenth, where a fresh
// account's post-quantum one-time keys run out), and probeRounds tokenless
// deliveries each (within the default unsolicited burst of 10).
const (
	probeN      = 20
	probeTakes  = 11
	probeRounds = 9
	calibFake   = 10
	calibOwn    = 2
)

// probeResult is one run of the probe against one provider.
type probeResult struct {
	ids, seq, timing          scored // the targets
	idsCtl, seqCtl, timingCtl scored // the controls
}

func (r probeResult) classifiers() []struct {
	name string
	s    scored
} {
	return []struct {
		name string
		s    scored
	}{{"bundle prekey IDs", r.ids}, {"bundle sequence", r.seq}, {"timing", r.timing}}
}

func (r probeResult) controls() []struct {
	name string
	s    scored
} {
	return []struct {
		name string
		s    scored
	}{{"bundle prekey IDs control", r.idsCtl}, {"bundle sequence control", r.seqCtl}, {"timing control", r.timingCtl}}
}

// probe registers probeN users and the stranger's calibOwn accounts at the
// provider of domain with the real client, and runs the stranger's three
// classifiers against it: (1) the prekey IDs of one bundle, (2) the shape
// of probeTakes bundles in a row against that of its own account, (3) the
// answer time of tokenless deliveries. The controls run the same
// classifiers on two sets of unknown addresses, one labelled real: their
// accuracy must be consistent with a coin flip, which shows that a score
// above one comes from the provider's answers, not from how the test is
// built.
func (e *env) probe(t *testing.T, domain string, run, links int, timeout time.Duration) probeResult {
	t.Helper()
	users := make([]string, probeN)
	for i := range users {
		users[i] = fmt.Sprintf("user%d-%02d@%s", run, i, domain)
	}
	own := []string{}
	for i := range calibOwn {
		own = append(own, fmt.Sprintf("stranger%d-%d@%s", run, i, domain))
	}
	setup := time.Now()
	e.registerClients(t, append(slices.Clone(users), own...))
	t.Logf("%s: registered %d accounts with the real client in %v", domain, len(users)+len(own), time.Since(setup).Round(time.Millisecond))

	// Targets: real then fake, with the truth; controls: two fake sets,
	// the first labelled real.
	fake := randomAddresses(probeN, domain)
	ctrlA, ctrlB := randomAddresses(probeN, domain), randomAddresses(probeN, domain)
	targets := append(slices.Clone(users), fake...)
	controls := append(slices.Clone(ctrlA), ctrlB...)
	labels := make([]bool, 2*probeN)
	for i := range probeN {
		labels[i] = true
	}
	calib := randomAddresses(calibFake, domain)

	s, err := newStranger(e.provider(domain), links)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	began := time.Now()

	// Bundles: probeTakes in a row per address. The stranger calibrates on
	// its own account (a real one) and calls real what looks like it.
	cb, err := s.bundles(ctx, mailboxesOf([]string{own[0], calib[0]}), probeTakes)
	if err != nil {
		t.Fatal(err)
	}
	want := shapeOf(cb[0])
	t.Logf("%s: stranger calibration: own account's bundles %v (largest prekey ID %d), a random name's %v (largest %d; bound %d)",
		domain, want, maxPrekeyID(cb[0][0]), shapeOf(cb[1]), maxPrekeyID(cb[1][0]), plausiblePrekeyID)
	bundleVerdicts := func(addrs []string) (ids, seq []bool) {
		bs, err := s.bundles(ctx, mailboxesOf(addrs), probeTakes)
		if err != nil {
			t.Fatalf("bundles: %v", err)
		}
		ids, seq = make([]bool, len(bs)), make([]bool, len(bs))
		for i, b := range bs {
			ids[i] = bundleLooksReal(b[0])
			seq[i] = slices.Equal(shapeOf(b), want)
		}
		return ids, seq
	}
	var r probeResult
	ids, seq := bundleVerdicts(targets)
	r.ids, r.seq = score(ids, labels), score(seq, labels)
	ids, seq = bundleVerdicts(controls)
	r.idsCtl, r.seqCtl = score(ids, labels), score(seq, labels)
	bundleTime := time.Since(began)

	// Timing: every address of the targets, the controls and the
	// calibration in one interleaved run, so that all see the same load.
	all := slices.Concat(targets, controls, calib, own)
	meds, err := s.timings(ctx, mailboxesOf(all), probeRounds)
	if err != nil {
		t.Fatal(err)
	}
	nt, nc, nf := len(targets), len(controls), len(calib)
	tTargets, tControls, tFake, tOwn := meds[:nt], meds[nt:nt+nc], meds[nt+nc:nt+nc+nf], meds[nt+nc+nf:]
	threshold, separable := timingThreshold(tFake, tOwn)
	timingVerdicts := func(ds []time.Duration) []bool {
		v := make([]bool, len(ds))
		for i, d := range ds {
			v[i] = separable && d > threshold
		}
		return v
	}
	r.timing = score(timingVerdicts(tTargets), labels)
	r.timingCtl = score(timingVerdicts(tControls), labels)

	t.Logf("%s: stranger probe: bundle prekey IDs %v; bundle sequence %v; coin flip 0.5", domain, r.ids, r.seq)
	t.Logf("%s: stranger probe: median answer time of the real targets %v, of the fake ones %v (what the stranger does not know)",
		domain, median(tTargets[:probeN]).Round(time.Microsecond), median(tTargets[probeN:]).Round(time.Microsecond))
	t.Logf("%s: stranger probe: timing %v (median of %d tokenless deliveries each; threshold %v between random names' %v and own accounts' %v, separable %v); coin flip 0.5",
		domain, r.timing, probeRounds, threshold.Round(time.Microsecond), median(tFake).Round(time.Microsecond), median(tOwn).Round(time.Microsecond), separable)
	t.Logf("%s: stranger probe control (two sets of unknown addresses, one labelled real): bundle prekey IDs %v, bundle sequence %v, timing %v (timing called %d and %d of them real)",
		domain, r.idsCtl, r.seqCtl, r.timingCtl, count(timingVerdicts(tControls[:probeN])), count(timingVerdicts(tControls[probeN:])))
	t.Logf("%s: stranger probe: %d bundle requests in %v and %d tokenless deliveries in %v", domain,
		(2+len(targets)+len(controls))*probeTakes, bundleTime.Round(time.Millisecond), len(all)*probeRounds, (time.Since(began) - bundleTime).Round(time.Millisecond))
	return r
}

// TestStrangerProbe runs the stranger's probe against two providers of a
// real network (Badger on disk, loopback TCP, Noise links) holding
// accounts registered by the real client: provider a as it runs, which
// must leave every classifier no better than a coin flip (its 95 % Wilson
// interval contains 0.5), and provider b with the defence off
// (mailbox.DisableStrangerDefence: fake bundles with derived IDs, answers
// at once), where every classifier must beat a coin flip. The controls
// must contain 0.5 on both.
//
// A coin flip's interval misses 0.5 in about 4 % of runs, and the timing
// classifier under the defence is one (its verdicts follow noise): a
// classifier or control of provider a that misses is run again once, on
// fresh addresses, and must then contain 0.5. One that leaks misses both.
func TestStrangerProbe(t *testing.T) {
	e := startWith(t, testnet.Spec{EpochPeriod: time.Hour, Layers: 1, Width: 1, Providers: 2},
		func(_ string, c *relay.Config) { c.Limits.MaxConnsPerPeer = 2 * strangerLinks },
		func(name string, s *mailbox.Settings) {
			if name == "provider-b" {
				mailbox.DisableStrangerDefence(s)
			}
		})

	// The defence off: the probe must win, or the test shows nothing.
	off := e.probe(t, "b", 1, 1, 60*time.Second)
	for _, c := range off.classifiers() {
		if c.s.lo <= 0.5 {
			t.Errorf("defence off: %s classifier: %v, no better than a coin flip: the probe would not see a leak", c.name, c.s)
		}
	}
	for _, c := range off.controls() {
		if !c.s.coinFlip() {
			t.Errorf("defence off: %s: %v; the classifier scores by construction", c.name, c.s)
		}
	}

	// The defence on: no better than a coin flip.
	on := e.probe(t, "a", 1, strangerLinks, 120*time.Second)
	missed := func(r probeResult) (names []string) {
		for _, c := range append(r.classifiers(), r.controls()...) {
			if !c.s.coinFlip() {
				names = append(names, fmt.Sprintf("%s: %v", c.name, c.s))
			}
		}
		return names
	}
	if m := missed(on); len(m) > 0 {
		t.Logf("defence on: %v outside a coin flip's interval; probing again", m)
		again := e.probe(t, "a", 2, strangerLinks, 120*time.Second)
		if m := missed(again); len(m) > 0 {
			t.Errorf("defence on, twice: %v: a stranger tells real addresses from fake ones", m)
		}
	}
}

// TestPhantomIsAFreshClient ties the phantoms' layout (mailbox/phantom.go)
// to the public client's: an account the real client registered and an
// unknown address hand out bundle after bundle with the same shape, past
// the last one-time prekey; and phantoms rotate as often as the client.
func TestPhantomIsAFreshClient(t *testing.T) {
	if mailbox.ClientRotation != sender.SignedPrekeyLifetime {
		t.Errorf("phantoms rotate every %v, the client every %v", mailbox.ClientRotation, sender.SignedPrekeyLifetime)
	}
	const takes = 52 // past the client's 50 one-time prekeys
	e := start(t, testnet.Spec{EpochPeriod: time.Hour, Layers: 1, Width: 1, Providers: 1}, func(s *mailbox.Settings) {
		s.OneTimePerHour, s.BundlesPerHour = takes, takes
		mailbox.SetStrangerAnswerTime(s, -1) // the shapes, not the timing
	})
	e.registerClients(t, []string{"fresh@a"})
	s, err := newStranger(e.provider("a"), 2)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	bs, err := s.bundles(ctx, mailboxesOf([]string{"fresh@a", "nobody@a"}), takes)
	if err != nil {
		t.Fatal(err)
	}
	real, fake := shapeOf(bs[0]), shapeOf(bs[1])
	if !slices.Equal(real, fake) {
		t.Errorf("a fresh client's bundles %v\nan unknown address's %v", real, fake)
	}
	if bs[0][takes-1].OneTime != nil {
		t.Errorf("the client's account still had a one-time prekey after %d: the layout has changed", takes)
	}
}

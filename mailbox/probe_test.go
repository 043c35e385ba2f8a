package mailbox_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
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
	"github.com/sealnet/sealnet/internal/testnet"
	"github.com/sealnet/sealnet/mailbox"
	"github.com/sealnet/sealnet/mixnet/directory"
	"github.com/sealnet/sealnet/sender"
)

// The stranger-enumeration probe: someone with no account at a provider
// and no delivery token asks whether addresses exist there, from what any
// client link may do (bundle requests and tokenless deliveries) and from
// what is public (the directory, the client's source). TestStrangerProbe
// runs it against a real provider and reports its accuracy against a coin
// flip; docs/mailbox.md promises that a stranger cannot tell.

// strangerLeakBound is the lower end of the 95 % Wilson interval of the
// probe's accuracy that TestStrangerProbe requires each classifier to
// beat: today the provider leaks whether an address exists (bundle prekey
// IDs, tokenless delivery timing), so the probe does better than a coin
// flip. Issue 15 closes both leaks and must turn this assertion into "no
// better than a coin flip": the interval contains 0.5. (Skipping the
// commit alone is not enough: with the store left out for every tokenless
// delivery, the timing probe still scored 0.62 to 0.68 over 40 addresses,
// from the account lookup, a few microseconds longer for an address that
// exists.)
const strangerLeakBound = 0.5

// plausiblePrekeyID: the public client (sender) numbers its prekeys 1, 2,
// 3, … across every upload, a few dozen a week, so a real account's IDs
// stay far below this for the life of any installation. A stranger reads
// a bundle with an ID above it as not made by a client.
const plausiblePrekeyID = 1 << 20

// bundleLooksReal is the stranger's bundle classifier: every prekey ID in
// the bundle is one a client's counter could have reached.
func bundleLooksReal(b *mailbox.PrekeyBundle) bool {
	return maxPrekeyID(b) < plausiblePrekeyID
}

func maxPrekeyID(b *mailbox.PrekeyBundle) uint32 {
	m := max(b.Signed.ID, b.PQ.ID)
	if b.OneTime != nil {
		m = max(m, b.OneTime.ID)
	}
	return m
}

// stranger reaches a provider over anonymous client links (Noise_NK), the
// kind the public client's direct route opens (sender/direct.go), at the
// address and link key the directory publishes. Nothing else: no account
// of its own on these links, no token.
type stranger struct {
	addr string
	key  [32]byte
	// size of the envelopes it delivers: a sealed envelope's
	// (mailbox.MaxMixEnvelope), as a real sender's.
	size int
}

// strangerBurst bounds the requests the stranger sends on one link: the
// provider allows a burst of twice requests_per_second (200 by default)
// per link before answering "rate limited".
const strangerBurst = 200

// newStranger refuses any provider not on loopback: the timing probe
// sends hundreds of requests and is for test networks only.
func newStranger(d *directory.Descriptor) (*stranger, error) {
	host, _, err := net.SplitHostPort(d.Address)
	if err != nil {
		return nil, err
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("stranger probe: %s is not a loopback address", d.Address)
	}
	return &stranger{addr: d.Address, key: d.LinkKey, size: mailbox.MaxMixEnvelope(geo)}, nil
}

func (s *stranger) dial(ctx context.Context) (*mailbox.Client, error) {
	return mailbox.Dial(ctx, geo, s.addr, s.key, mailbox.DialOptions{Timeout: 5 * time.Second})
}

// bundles fetches every address's bundle, on links of its own.
func (s *stranger) bundles(ctx context.Context, mbs []mailbox.MailboxID) ([]*mailbox.PrekeyBundle, error) {
	out := make([]*mailbox.PrekeyBundle, 0, len(mbs))
	for chunk := range slices.Chunk(mbs, strangerBurst) {
		c, err := s.dial(ctx)
		if err != nil {
			return nil, err
		}
		for _, mb := range chunk {
			b, err := c.Bundle(ctx, mb)
			if err != nil {
				c.Close()
				return nil, err
			}
			out = append(out, b)
		}
		c.Close()
	}
	return out, nil
}

// deliverTime delivers one tokenless envelope (fresh ID, random bytes) and
// returns how long the provider took to answer, from the request to the
// status. Anything but StatusAccepted is an error: without a token every
// answer is Accepted.
func (s *stranger) deliverTime(ctx context.Context, c *mailbox.Client, mb mailbox.MailboxID) (time.Duration, error) {
	var id [16]byte
	rand.Read(id[:])
	data := make([]byte, s.size)
	rand.Read(data)
	start := time.Now()
	code, err := c.Deliver(ctx, mb, id, [32]byte{}, data)
	d := time.Since(start)
	if err != nil {
		return 0, err
	}
	if code != mailbox.StatusAccepted {
		return 0, fmt.Errorf("tokenless delivery answered %v", code)
	}
	return d, nil
}

// timings delivers rounds tokenless envelopes to every address and returns
// each address's median answer time. The rounds are interleaved (each
// round visits every address once, in a fresh random order, on a fresh
// link), so that drift in the machine's load falls on all addresses alike.
// rounds must stay within the provider's unsolicited burst per mailbox (10
// by default), or the later deliveries are refused; every request has the
// client's deadline and the whole run ctx's.
func (s *stranger) timings(ctx context.Context, mbs []mailbox.MailboxID, rounds int) ([]time.Duration, error) {
	samples := make([][]time.Duration, len(mbs))
	for range rounds {
		order := mrand.Perm(len(mbs))
		for chunk := range slices.Chunk(order, strangerBurst) {
			c, err := s.dial(ctx)
			if err != nil {
				return nil, err
			}
			for _, i := range chunk {
				if err := ctx.Err(); err != nil {
					c.Close()
					return nil, fmt.Errorf("stranger probe: out of time: %w", err)
				}
				d, err := s.deliverTime(ctx, c, mbs[i])
				if err != nil {
					c.Close()
					return nil, err
				}
				samples[i] = append(samples[i], d)
			}
			c.Close()
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

func mailboxesOf(addrs []string) []mailbox.MailboxID {
	mbs := make([]mailbox.MailboxID, len(addrs))
	for i, a := range addrs {
		mbs[i] = mailbox.MailboxOf(a)
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

// TestStrangerProbe runs the stranger's two classifiers against a real
// provider (Badger on disk, loopback TCP, Noise links) holding probeN
// accounts registered by the real client and probeN unknown addresses, and
// reports each one's accuracy with its 95 % Wilson interval. The controls
// run the same classifiers on two sets of unknown addresses, one labelled
// real: their accuracy must be consistent with a coin flip, which shows
// that a score above one comes from the provider's answers, not from how
// the test is built.
//
// The sizes keep the test to a few seconds under -race: probeN real and
// probeN fake targets plus 2·probeN control addresses, probeRounds
// tokenless deliveries each (within the default unsolicited burst of 10
// per mailbox), one bundle each.
func TestStrangerProbe(t *testing.T) {
	const (
		probeN       = 20
		probeRounds  = 9
		calibFake    = 10
		calibOwn     = 2
		probeTimeout = 90 * time.Second
	)
	e := start(t, testnet.Spec{EpochPeriod: time.Hour, Layers: 1, Width: 1, Providers: 1}, nil)
	const domain = "a"

	// The provider's users, and the stranger's own accounts: registration
	// is open to anyone (any key may open a user link and register a free
	// name), so the stranger calibrates on accounts of its own.
	users := make([]string, probeN)
	for i := range users {
		users[i] = fmt.Sprintf("user%02d@%s", i, domain)
	}
	own := []string{}
	for i := range calibOwn {
		own = append(own, fmt.Sprintf("stranger%d@%s", i, domain))
	}
	setup := time.Now()
	e.registerClients(t, append(slices.Clone(users), own...))
	t.Logf("registered %d accounts with the real client in %v", len(users)+len(own), time.Since(setup).Round(time.Millisecond))

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

	s, err := newStranger(e.provider(domain))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
	defer cancel()
	began := time.Now()

	// (a) Bundles: one request per address.
	bundleVerdicts := func(addrs []string) []bool {
		bs, err := s.bundles(ctx, mailboxesOf(addrs))
		if err != nil {
			t.Fatalf("bundles: %v", err)
		}
		v := make([]bool, len(bs))
		for i, b := range bs {
			v[i] = bundleLooksReal(b)
		}
		return v
	}
	cb, err := s.bundles(ctx, mailboxesOf([]string{own[0], calib[0]}))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("stranger calibration: own account's largest prekey ID %d, a random name's %d (bound %d)", maxPrekeyID(cb[0]), maxPrekeyID(cb[1]), plausiblePrekeyID)
	bundles := score(bundleVerdicts(targets), labels)
	bundlesCtl := score(bundleVerdicts(controls), labels)

	// (b) Timing: every address of the targets, the controls and the
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
	timing := score(timingVerdicts(tTargets), labels)
	timingCtl := score(timingVerdicts(tControls), labels)
	probeTime := time.Since(began)

	t.Logf("stranger probe: bundles %v; coin flip 0.5", bundles)
	t.Logf("stranger probe: timing %v (median of %d tokenless deliveries each; threshold %v between random names' %v and own accounts' %v); coin flip 0.5",
		timing, probeRounds, threshold.Round(time.Microsecond), median(tFake).Round(time.Microsecond), median(tOwn).Round(time.Microsecond))
	t.Logf("stranger probe control (two sets of unknown addresses, one labelled real): bundles %v, timing %v; both must contain 0.5 (timing called %d and %d of them real)",
		bundlesCtl, timingCtl, count(timingVerdicts(tControls[:probeN])), count(timingVerdicts(tControls[probeN:])))
	t.Logf("stranger probe: %d bundle requests and %d tokenless deliveries in %v", 2+len(targets)+len(controls), len(all)*probeRounds, probeTime.Round(time.Millisecond))

	// Today's provider leaks: both classifiers beat a coin flip.
	for _, c := range []struct {
		name string
		s    scored
	}{{"bundle", bundles}, {"timing", timing}} {
		if c.s.lo <= strangerLeakBound {
			t.Errorf("%s classifier: %v, no better than a coin flip (lower bound not above %.2f)", c.name, c.s, strangerLeakBound)
		}
	}
	// The controls cannot tell two fake sets apart.
	for _, c := range []struct {
		name string
		s    scored
	}{{"bundle control", bundlesCtl}, {"timing control", timingCtl}} {
		if c.s.lo > 0.5 || c.s.hi < 0.5 {
			t.Errorf("%s: %v; the classifier scores by construction", c.name, c.s)
		}
	}
}

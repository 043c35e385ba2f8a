package sim

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	istats "github.com/sealnet/sealnet/internal/stats"
	"github.com/sealnet/sealnet/mixnet/mix"
)

// The calibration (reliability) check compares the adversary's posterior
// with ground truth. If the posterior is the true conditional
// distribution of the sender given what the adversary saw, then
//
//   - among all (target, user) pairs whose claimed p falls in a bin, the
//     share where the user is the true sender is the mean claimed p of the
//     bin;
//   - the expected number of correct top-1 guesses is Σ p_max over
//     targets, with variance Σ p_max (1 − p_max);
//   - the expected mass on the true sender is Σ_u p_u² per target, with
//     variance Σ p_u³ − (Σ p_u²)².
//
// The closed-form theory tests only look at the posterior itself, which a
// mix that leaked its order would pass; this one does not (the FIFO
// control below).

// calibEdges are the bins' lower edges on claimed p (the last ends at 1,
// included); pairs with p = 0 are not counted.
var calibEdges = []float64{0, 1e-4, 3e-4, 1e-3, 3e-3, 0.01, 0.03, 0.1, 0.3}

// calibMin is the fewest expected hits, and expected misses, a bin needs;
// thinner bins are pooled with the next one up.
const calibMin = 20

type calibBin struct {
	lo, hi float64
	pairs  float64 // (target, user) pairs with claimed p in [lo, hi)
	sumP   float64 // Σ claimed p: the expected number of true pairs
	hits   float64 // pairs where the user is the true sender
}

type calibration struct {
	bins    []calibBin
	targets int
	// top-1: Σ p_max, Σ p_max(1 − p_max), and the hits (a tie of t users
	// that holds the true sender counts 1/t, whose mean is still p_max).
	top1Exp, top1Var, top1Hits float64
	// mass on the true sender: Σ p_true, Σ_t Σ_u p_u², Σ_t Var.
	pTrue, pColl, pVar float64
}

func newCalibration() *calibration {
	c := &calibration{}
	for i, lo := range calibEdges {
		hi := 1.0
		if i+1 < len(calibEdges) {
			hi = calibEdges[i+1]
		}
		c.bins = append(c.bins, calibBin{lo: lo, hi: hi})
	}
	return c
}

func (c *calibration) bin(p float64) int {
	for i := len(c.bins) - 1; i > 0; i-- {
		if p >= c.bins[i].lo {
			return i
		}
	}
	return 0
}

// add is the advResult.calib hook.
func (c *calibration) add(sender int32, senders map[int32]float64, total float64) {
	c.targets++
	pmax, ties, coll, cube := 0.0, 0, 0.0, 0.0
	for _, w := range senders {
		p := w / total
		if p <= 0 {
			continue
		}
		b := &c.bins[c.bin(p)]
		b.pairs++
		b.sumP += p
		coll += p * p
		cube += p * p * p
		switch {
		case p > pmax:
			pmax, ties = p, 1
		case p == pmax:
			ties++
		}
	}
	pt := senders[sender] / total
	if pt > 0 {
		c.bins[c.bin(pt)].hits++
	}
	c.top1Exp += pmax
	c.top1Var += pmax * (1 - pmax)
	if pt == pmax && pt > 0 {
		c.top1Hits += 1 / float64(ties)
	}
	c.pTrue += pt
	c.pColl += coll
	c.pVar += max(0, cube-coll*coll)
}

// pooled merges each bin with the ones above it until it expects at
// least calibMin hits and calibMin misses; what is left at the top joins
// the last bin.
func (c *calibration) pooled() []calibBin {
	var out []calibBin
	var acc calibBin
	open := false
	for _, b := range c.bins {
		if !open {
			acc, open = b, true
		} else {
			acc.hi = b.hi
			acc.pairs += b.pairs
			acc.sumP += b.sumP
			acc.hits += b.hits
		}
		if acc.sumP >= calibMin && acc.pairs-acc.sumP >= calibMin {
			out = append(out, acc)
			open = false
		}
	}
	if open && acc.pairs > 0 {
		if len(out) == 0 {
			out = append(out, acc)
		} else {
			l := &out[len(out)-1]
			l.hi = acc.hi
			l.pairs += acc.pairs
			l.sumP += acc.sumP
			l.hits += acc.hits
		}
	}
	return out
}

// wilsonZ is sim.Wilson's interval at a given z.
func wilsonZ(k, n, z float64) (lo, hi float64) {
	p := k / n
	d := 1 + z*z/n
	mid := (p + z*z/(2*n)) / d
	h := z * math.Sqrt(p*(1-p)/n+z*z/(4*n*n)) / d
	return max(0, mid-h), min(1, mid+h)
}

// calibReport is the outcome of the check.
type calibReport struct {
	table     string
	failures  []string
	top1Z     float64 // (hits − Σ p_max)/σ
	top1Ratio float64 // hits / Σ p_max
	massZ     float64 // (Σ p_true − Σ Σ p²)/σ
	massRatio float64 // Σ p_true / Σ Σ p²
	worst     float64 // largest |observed share / claimed mean − 1| over bins
}

// calibFamilyAlpha is the chance that a calibrated adversary fails the
// check (Bonferroni over the bins and the two summaries).
const calibFamilyAlpha = 0.01

// check tests every pooled bin (its observed share's Wilson interval must
// hold the mean claim) and the two summaries (within z σ), at z for a
// family-wise error of calibFamilyAlpha.
func (c *calibration) check() calibReport {
	bins := c.pooled()
	k := float64(len(bins) + 2)
	z := math.Sqrt2 * math.Erfinv(1-calibFamilyAlpha/k) // two-sided, α/k each
	var r calibReport
	var tb strings.Builder
	fmt.Fprintf(&tb, "%d targets; z = %.2f (family-wise α = %g over %d tests)\n", c.targets, z, calibFamilyAlpha, int(k))
	fmt.Fprintf(&tb, "  %-19s %10s %11s %11s %25s %9s\n", "claimed p in", "pairs", "mean claim", "observed", "interval", "obs/claim")
	for _, b := range bins {
		claim, obs := b.sumP/b.pairs, b.hits/b.pairs
		lo, hi := wilsonZ(b.hits, b.pairs, z)
		ok := lo <= claim && claim <= hi
		mark := ""
		if !ok {
			mark = "  FAIL"
			r.failures = append(r.failures, fmt.Sprintf("bin [%g, %g): observed %.4g outside [%.4g, %.4g] around claim %.4g", b.lo, b.hi, obs, lo, hi, claim))
		}
		r.worst = max(r.worst, math.Abs(obs/claim-1))
		fmt.Fprintf(&tb, "  [%-7.2g, %-7.2g) %10.0f %11.4g %11.4g   [%9.4g, %9.4g] %9.3f%s\n", b.lo, b.hi, b.pairs, claim, obs, lo, hi, obs/claim, mark)
	}
	r.top1Z = (c.top1Hits - c.top1Exp) / math.Sqrt(c.top1Var)
	r.massZ = (c.pTrue - c.pColl) / math.Sqrt(c.pVar)
	r.top1Ratio, r.massRatio = c.top1Hits/c.top1Exp, c.pTrue/c.pColl
	fmt.Fprintf(&tb, "  top-1 hits: observed %.1f, expected Σ p_max %.1f ± %.1f (z = %+.2f)\n", c.top1Hits, c.top1Exp, math.Sqrt(c.top1Var), r.top1Z)
	fmt.Fprintf(&tb, "  mass on the sender: Σ p_true %.2f, expected Σ Σ p² %.2f ± %.2f (z = %+.2f)", c.pTrue, c.pColl, math.Sqrt(c.pVar), r.massZ)
	for name, v := range map[string]float64{"top-1": r.top1Z, "sender mass": r.massZ} {
		if !(math.Abs(v) <= z) {
			r.failures = append(r.failures, fmt.Sprintf("%s: z = %+.2f beyond ±%.2f", name, v, z))
		}
	}
	r.table = tb.String()
	return r
}

// fifo releases at the times its inner strategy does, as many items, but
// always the oldest it holds: a mix that leaks its order. The inner
// strategy holds placeholders (slots); fifo keeps the values.
type fifo struct {
	inner mix.Strategy[int32]
	held  []int32 // values, in arrival order
	slot  int32
	buf   []int32
}

func (f *fifo) Add(now time.Time, it mix.Item[int32]) error {
	v := it.Value
	it.Value = f.slot
	if err := f.inner.Add(now, it); err != nil {
		return err
	}
	f.slot++
	f.held = append(f.held, v)
	return nil
}

func (f *fifo) Release(now time.Time, dst []int32) []int32 {
	f.buf = f.inner.Release(now, f.buf[:0])
	k := len(f.buf)
	dst = append(dst, f.held[:k]...)
	f.held = f.held[k:]
	return dst
}

func (f *fifo) Next() (time.Time, bool) { return f.inner.Next() }
func (f *fifo) Len() int                { return len(f.held) }

func (f *fifo) Drain(dst []int32) []int32 {
	f.buf = f.inner.Drain(f.buf[:0])
	dst = append(dst, f.held...)
	f.held = f.held[:0]
	return dst
}

// calibScenario: 200 users, 3 layers of 2 Poisson mixes (50 ms),
// mixing providers, client loops, relay loops and acknowledgements; real
// messages after the warm-up are the targets (all of them, or about
// targets). Real messages leave when written (client.rate = 0), so that
// a user's packet is as likely to be the real one whatever its timing, as
// the adversary assumes; stream runs the same network with Loopix's
// Poisson stream instead (real packets take a cover packet's slot), where
// that assumption fails (see TestAdversaryIsCalibrated).
//
// The relays' cover delay is pinned at the 100 ms the check was
// established with, not left to the code's default (the directory's
// mean_delay, 200 ms): the stream's calibration depends on it (top-1
// observed/expected 1.09 at 100 ms, 1.23 at 200 ms, seed 1).
func calibScenario(seed uint64, estimator string, stream bool, targets int) string {
	rate, loop := 0.0, 0.3
	if stream {
		rate, loop = 1, 0.1
	}
	return fmt.Sprintf(`
seed = %d
users = 200
providers = 2
layers = 3
width = 2
duration = "100s"
warmup = "10s"
[mixing]
mean_delay = "50ms"
[client]
rate = %g
loop_rate = %g
[relay]
loop_rate = 0.5
mean_delay = "100ms"
[workload]
message_rate = 0.3
contacts = 20
[adversary]
estimator = %q
targets = %d
top_k = [1]
disclosure_targets = 0
ack_pairs = 0
`, seed, rate, loop, estimator, targets)
}

// runCalibration runs the scenario, with every mix's strategy wrapped in
// fifo if leak, and checks the adversary's calibration on it.
func runCalibration(t *testing.T, seed uint64, estimator string, stream, leak bool, targets int) calibReport {
	t.Helper()
	m, err := newModel(parse(t, calibScenario(seed, estimator, stream, targets)))
	if err != nil {
		t.Fatal(err)
	}
	if leak {
		for i := m.P; i < int(m.torBase); i++ {
			m.nodes[i].strat = &fifo{inner: m.nodes[i].strat}
		}
	}
	c := newCalibration()
	m.adv.res.calib = c.add
	if err := m.run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if c.targets < min(targets, 3000)*4/5 {
		t.Fatalf("only %d targets scored", c.targets)
	}
	if lost := m.adv.res.lost / float64(len(m.adv.targets)); lost > 1e-3 {
		t.Fatalf("lost mass %.2g per target: the window is too short for the check", lost)
	}
	r := c.check()
	mixes := map[bool]string{false: "Poisson mixes", true: "FIFO-leaking mixes"}[leak]
	if stream {
		mixes += ", Loopix stream"
	}
	t.Logf("%s estimator, %s, seed %d: %s", estimator, mixes, seed, r.table)
	return r
}

// calibSeed is the seed of TestAdversaryIsCalibrated; CALIB_SEED
// overrides it (to check by hand that the criterion is not a lucky seed).
func calibSeed(t *testing.T) uint64 {
	if s := os.Getenv("CALIB_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	return 1
}

// TestAdversaryIsCalibrated is the reliability check of the posterior
// against ground truth:
//
//   - count: the exact estimator on honest Poisson mixes must pass;
//   - fifo: the control. Mixes release at the Poisson times, as many
//     packets, but the oldest held first; the adversary, assuming Poisson,
//     cannot know, and the same check must fail (the true sender is never
//     among the users it gives little weight, and carries far more mass
//     than the posterior claims);
//   - timing: the approximate estimator, reported; it is asserted only to
//     stay within 10 % of the expected mass on the true sender;
//   - stream: the count estimator on Loopix's Poisson stream. A real
//     packet waits for the next slot, so a packet that follows a long
//     silence of its user is likelier to be real than one that follows
//     closely; the adversary weighs each user packet by that chance
//     (adversary.gapPrior). Without it the posterior was overconfident
//     (top-1 right 0.6–0.75 times as often as claimed); with it the check
//     is near, not exactly, met (the prior ignores loops in the gap and
//     the queue's exact state): asserted within 10 % on the sender's mass
//     and 15 % on top-1 (docs/sim.md §4.1).
func TestAdversaryIsCalibrated(t *testing.T) {
	seed := calibSeed(t)
	const all = 1_000_000 // every real message after the warm-up: about 5,400
	t.Run("count", func(t *testing.T) {
		t.Parallel()
		for _, f := range runCalibration(t, seed, "count", false, false, all).failures {
			t.Errorf("honest mixes fail the check: %s", f)
		}
	})
	t.Run("fifo", func(t *testing.T) {
		t.Parallel()
		r := runCalibration(t, seed, "count", false, true, all)
		if len(r.failures) < 3 || r.massZ < 10 {
			t.Errorf("FIFO-leaking mixes: %d failures, sender-mass z = %+.1f; the check must fail clearly (≥ 3 failures, z ≥ +10)", len(r.failures), r.massZ)
		}
	})
	t.Run("timing", func(t *testing.T) {
		t.Parallel()
		r := runCalibration(t, seed, "timing", false, false, 2500)
		t.Logf("timing estimator: %d of the tests fail; worst bin off by %.0f %%; top-1 z = %+.1f; sender mass observed/expected = %.3f (z = %+.1f)",
			len(r.failures), 100*r.worst, r.top1Z, r.massRatio, r.massZ)
		if math.Abs(r.massRatio-1) > 0.1 {
			t.Errorf("timing estimator: mass on the true sender %.3f × what it claims", r.massRatio)
		}
	})
	t.Run("stream", func(t *testing.T) {
		t.Parallel()
		r := runCalibration(t, seed, "count", true, false, all)
		t.Logf("count estimator on the Loopix stream (gap prior): %d failures; top-1 observed/expected = %.2f (z = %+.1f); sender mass observed/expected = %.3f (z = %+.1f)",
			len(r.failures), r.top1Ratio, r.top1Z, r.massRatio, r.massZ)
		if math.Abs(r.massRatio-1) > 0.1 || math.Abs(r.top1Ratio-1) > 0.15 {
			t.Errorf("the stream's posterior is off: top-1 %.2f ×, sender mass %.3f × what it claims", r.top1Ratio, r.massRatio)
		}
	})
}

// TestCalibrationCheck checks the check itself on synthetic posteriors
// (independent targets, 60 users, log-normal weights of varied spread):
// with the true sender drawn from the posterior it must pass (at its
// family-wise α = 1 %: at most 2 of 20 replicates may fail), with the
// sender drawn from a sharper law (p²) it must fail; and wilsonZ at
// z = Z975 must be sim.Wilson.
func TestCalibrationCheck(t *testing.T) {
	wlo, whi := Wilson(7, 50)
	// Within rounding: Wilson folds its z as an exact constant.
	if lo, hi := wilsonZ(7, 50, istats.Z975); math.Abs(lo-wlo) > 1e-12 || math.Abs(hi-whi) > 1e-12 {
		t.Fatalf("wilsonZ(7, 50, Z975) = [%v, %v], Wilson = [%v, %v]", lo, hi, wlo, whi)
	}
	rng := rand.New(rand.NewPCG(9, 9))
	replicate := func(sharpen float64) calibReport {
		c := newCalibration()
		post := map[int32]float64{}
		q := make([]float64, 60)
		for range 1000 {
			clear(post)
			sigma := 0.5 + 2.5*rng.Float64()
			total, qt := 0.0, 0.0
			for u := range q {
				w := math.Exp(sigma * rng.NormFloat64())
				post[int32(u)] = w
				total += w
				q[u] = math.Pow(w, sharpen)
				qt += q[u]
			}
			x, sender := rng.Float64()*qt, int32(len(q)-1)
			for u, v := range q {
				if x -= v; x < 0 {
					sender = int32(u)
					break
				}
			}
			c.add(sender, post, total)
		}
		return c.check()
	}
	fails := 0
	for range 20 {
		if r := replicate(1); len(r.failures) > 0 {
			fails++
			t.Logf("a calibrated replicate failed: %v", r.failures)
		}
	}
	if fails > 2 {
		t.Errorf("%d of 20 calibrated replicates fail the check; α is 1 %%", fails)
	}
	r := replicate(2)
	t.Logf("%d of 20 calibrated replicates fail; senders drawn from p²: %d of the tests fail, top-1 z = %+.1f, sender-mass z = %+.1f",
		fails, len(r.failures), r.top1Z, r.massZ)
	if len(r.failures) == 0 {
		t.Errorf("senders drawn from p² pass the check:\n%s", r.table)
	}
}

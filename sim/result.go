package sim

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"

	istats "github.com/sealnet/sealnet/internal/stats"
)

// Result is what one run measured (docs/sim.md §4 defines every field).
type Result struct {
	Scenario string  `json:"scenario"`
	Seed     uint64  `json:"seed"`
	Events   uint64  `json:"events"`
	SimTime  float64 `json:"sim_seconds"`

	// Traffic and its cost.
	RealSent      uint64 `json:"real_sent"`
	RealDelivered uint64 `json:"real_delivered"`
	// Retransmits counts real packets sent again for want of an
	// acknowledgement; Failed, messages given up after MaxAttempts.
	Retransmits uint64 `json:"retransmits"`
	// Blocked counts packets the active adversary dropped
	// (adversary.block).
	Blocked     uint64  `json:"blocked,omitempty"`
	Failed      uint64  `json:"failed"`
	Dropped     uint64  `json:"dropped_full"`
	LinkPackets uint64  `json:"link_packets"`
	RealBytes   uint64  `json:"real_link_bytes"`
	CoverBytes  uint64  `json:"cover_link_bytes"`
	Overhead    float64 `json:"cover_bytes_per_real_byte"`
	// Latency of real messages, write to arrival at the recipient's
	// provider (queueing for a slot included), in seconds.
	Latency Quantiles `json:"latency"`

	// Sender anonymity over the scored targets.
	Targets       int     `json:"targets"`
	Entropy       Summary `json:"entropy_bits"`
	MinEntropy    Summary `json:"min_entropy_bits"`
	EffectiveSize Summary `json:"effective_set_size"`
	TopK          []TopK  `json:"top_k"`
	TPR           []TPRAt `json:"tpr_at_fpr"`
	LostMass      float64 `json:"lost_mass"`  // mean weight outside the recorded window
	CoverMass     float64 `json:"cover_mass"` // mean weight on mixes' own cover
	// LatencyCDF is the latency (seconds) at each percentile 0..100 of
	// real messages, for CDF plots.
	LatencyCDF []float64 `json:"latency_cdf"`
	// EntropyCDF is the sender entropy (bits) at each percentile 0..100
	// of the targets.
	EntropyCDF []float64 `json:"entropy_cdf"`
	// Disclosure holds the long-term attacks: statistical disclosure,
	// intersection, acknowledgement timing.
	Disclosure Disclosure `json:"disclosure"`
	// Tor is the same adversary against the comparison population that
	// uses Tor-like circuits (absent without one). The figures above are
	// for the mix network's users only.
	Tor *Population `json:"tor,omitempty"`
}

// Population is the sender-anonymity figures of one group of users.
type Population struct {
	Users      int       `json:"users"`
	Targets    int       `json:"targets"`
	Entropy    Summary   `json:"entropy_bits"`
	MinEntropy Summary   `json:"min_entropy_bits"`
	TopK       []TopK    `json:"top_k"`
	TPR        []TPRAt   `json:"tpr_at_fpr"`
	Latency    Quantiles `json:"latency"`
}

// percentiles returns x at percentiles 0, 1, ..., 100.
func percentiles(x []float64) []float64 {
	if len(x) == 0 {
		return nil
	}
	s := slices.Clone(x)
	slices.Sort(s)
	out := make([]float64, 101)
	for p := range out {
		out[p] = s[min(len(s)-1, p*len(s)/100)]
	}
	return out
}

// Summary is a mean with its 95 % confidence half-width over targets, and
// the median.
type Summary struct {
	Mean   float64 `json:"mean"`
	CI95   float64 `json:"ci95"`
	Median float64 `json:"median"`
}

// Quantiles of a distribution.
type Quantiles struct {
	Mean float64 `json:"mean"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	Max  float64 `json:"max"`
}

// TopK is the share of targets whose true sender is among the adversary's
// k most likely (ties shared).
type TopK struct {
	K        int     `json:"k"`
	Accuracy float64 `json:"accuracy"`
}

// TPRAt is the true-positive rate of linking (target, sender) pairs by the
// posterior, at a false-positive rate.
type TPRAt struct {
	FPR float64 `json:"fpr"`
	TPR float64 `json:"tpr"`
}

// stats are the traffic counters.
type stats struct {
	events                uint64
	realSent, realDeliv   uint64
	retransmits, failed   uint64
	blocked               uint64
	dropped               uint64
	linkPackets           uint64
	realBytes, coverBytes uint64
	lat                   []float64 // seconds; bounded reservoir
	latN                  uint64
	torLat                []float64
	torLatN               uint64
}

func (s *stats) linkPacket(p *packet) {
	s.linkPackets++
	if p.kind == kindReal {
		s.realBytes += uint64(p.size)
	} else {
		s.coverBytes += uint64(p.size)
	}
}

const latReservoir = 1 << 16

func (s *stats) delivered(d int64) {
	s.realDeliv++
	s.lat = reservoir(s.lat, &s.latN, d)
}

func (s *stats) torDelivered(d int64) {
	s.realDeliv++
	s.torLat = reservoir(s.torLat, &s.torLatN, d)
}

// reservoir keeps a bounded, deterministic sample of latencies (seconds).
func reservoir(r []float64, n *uint64, d int64) []float64 {
	*n++
	if len(r) < latReservoir {
		return append(r, float64(d)/1e9)
	}
	if *n%(1+*n/latReservoir) == 0 {
		r[*n%latReservoir] = float64(d) / 1e9
	}
	return r
}

// negBins is the histogram of negative scores: log10 from -16 to 0 in
// steps of 0.01.
const negBins = 1600

// advResult accumulates the adversary's figures over targets.
type advResult struct {
	h, hmin, eff []float64
	topK         []int
	topKHits     []float64
	pos          []float64 // score of the true sender
	neg          [negBins + 1]float64
	negZero      float64
	lost, other  float64
	// calib, if set (tests only), is handed every scored target's true
	// sender and unnormalised posterior over senders (p_u = senders[u] /
	// total; users absent have 0). The map is scratch: it changes after
	// the call returns.
	calib func(sender int32, senders map[int32]float64, total float64)
}

func (r *advResult) init(c *Config) {
	r.topK = c.Adv.TopK
	r.topKHits = make([]float64, len(r.topK))
}

// score adds one target's posterior over senders.
func (r *advResult) score(tg target, senders map[int32]float64, lost, other float64, users int) {
	ids := make([]int32, 0, len(senders))
	total := 0.0
	for u := range senders {
		ids = append(ids, u)
	}
	slices.Sort(ids)
	for _, u := range ids {
		total += senders[u]
	}
	r.lost += lost
	r.other += other
	if total <= 0 {
		// Nothing left to say who sent it (all weight lost): skip.
		return
	}
	if r.calib != nil {
		r.calib(tg.sender, senders, total)
	}
	h, pmax := 0.0, 0.0
	ptrue := senders[tg.sender] / total
	greater, ties := 0, 0
	for _, u := range ids {
		p := senders[u] / total
		if p > 0 {
			h -= p * math.Log2(p)
		}
		pmax = max(pmax, p)
		if u == tg.sender {
			continue
		}
		switch {
		case p > ptrue:
			greater++
		case p == ptrue:
			ties++
		}
		r.neg[negBin(p)]++
	}
	zeros := users - 1 - (len(ids) - btoi(senders[tg.sender] > 0 || hasKey(senders, tg.sender)))
	r.negZero += float64(zeros)
	if ptrue == 0 {
		ties += zeros
	}
	r.h = append(r.h, h)
	r.hmin = append(r.hmin, -math.Log2(pmax))
	r.eff = append(r.eff, math.Exp2(h))
	r.pos = append(r.pos, ptrue)
	for i, k := range r.topK {
		r.topKHits[i] += min(1, max(0, float64(k-greater)/float64(ties+1)))
	}
}

func hasKey(m map[int32]float64, k int32) bool { _, ok := m[k]; return ok }

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func negBin(p float64) int {
	if p <= 0 {
		return 0
	}
	b := int(math.Floor((math.Log10(p) + 16) * 100))
	return min(max(b, 0), negBins)
}

// tprAt is the TPR at the given FPR: the threshold is the lowest bin edge
// whose negatives above it are at most fpr of all negatives.
func (r *advResult) tprAt(fpr float64) float64 {
	totalNeg := r.negZero
	for _, n := range r.neg {
		totalNeg += n
	}
	if totalNeg == 0 || len(r.pos) == 0 {
		return math.NaN()
	}
	above := 0.0
	thr := negBins + 1
	for b := negBins; b >= 0; b-- {
		if (above+r.neg[b])/totalNeg > fpr {
			break
		}
		above += r.neg[b]
		thr = b
	}
	tp := 0
	for _, p := range r.pos {
		if p > 0 && negBin(p) >= thr {
			tp++
		}
	}
	return float64(tp) / float64(len(r.pos))
}

func (a *advResult) topKs() []TopK {
	var out []TopK
	for i, k := range a.topK {
		acc := math.NaN()
		if len(a.h) > 0 {
			acc = a.topKHits[i] / float64(len(a.h))
		}
		out = append(out, TopK{K: k, Accuracy: acc})
	}
	return out
}

func (a *advResult) tprs() []TPRAt {
	var out []TPRAt
	for _, f := range []float64{1e-2, 1e-3} {
		out = append(out, TPRAt{FPR: f, TPR: a.tprAt(f)})
	}
	return out
}

func summarize(x []float64) Summary {
	if len(x) == 0 {
		return Summary{Mean: math.NaN(), CI95: math.NaN(), Median: math.NaN()}
	}
	mean, ss := 0.0, 0.0
	for _, v := range x {
		mean += v
	}
	mean /= float64(len(x))
	for _, v := range x {
		ss += (v - mean) * (v - mean)
	}
	ci := 0.0
	if len(x) > 1 {
		ci = istats.Z975 * math.Sqrt(ss/float64(len(x)-1)/float64(len(x)))
	}
	s := slices.Clone(x)
	slices.Sort(s)
	return Summary{Mean: mean, CI95: ci, Median: s[len(s)/2]}
}

func quantiles(x []float64) Quantiles {
	if len(x) == 0 {
		return Quantiles{}
	}
	s := slices.Clone(x)
	slices.Sort(s)
	mean := 0.0
	for _, v := range s {
		mean += v
	}
	q := func(f float64) float64 { return s[min(len(s)-1, int(f*float64(len(s))))] }
	return Quantiles{Mean: mean / float64(len(s)), P50: q(0.5), P90: q(0.9), P99: q(0.99), Max: s[len(s)-1]}
}

// Run simulates cfg and returns what it measured. progress, if not nil,
// is called with the share of simulated time done (0..1).
func Run(ctx context.Context, cfg *Config, progress func(float64)) (*Result, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	m, err := newModel(cfg)
	if err != nil {
		return nil, err
	}
	m.progress = progress
	if err := m.run(ctx); err != nil {
		return nil, err
	}
	return m.result(), nil
}

// result gathers a finished run's figures.
func (m *model) result() *Result {
	cfg := m.cfg
	a := &m.adv.res
	st := &m.stats
	res := &Result{
		Scenario: cfg.Name, Seed: cfg.Seed, Events: st.events, SimTime: cfg.Duration.D().Seconds(),
		RealSent: st.realSent, RealDelivered: st.realDeliv, Retransmits: st.retransmits, Failed: st.failed, Blocked: st.blocked, Dropped: st.dropped, LinkPackets: st.linkPackets,
		RealBytes: st.realBytes, CoverBytes: st.coverBytes, Latency: quantiles(st.lat),
		LatencyCDF: percentiles(st.lat), EntropyCDF: percentiles(a.h),
		Targets: len(a.h), Entropy: summarize(a.h), MinEntropy: summarize(a.hmin), EffectiveSize: summarize(a.eff),
	}
	if st.realBytes > 0 {
		res.Overhead = float64(st.coverBytes) / float64(st.realBytes)
	}
	res.TopK, res.TPR = a.topKs(), a.tprs()
	if cfg.Tor.Fraction > 0 {
		t := &m.adv.torRes
		n := 0
		for _, x := range m.isTor {
			n += btoi(x)
		}
		res.Tor = &Population{Users: n, Targets: len(t.h), Entropy: summarize(t.h), MinEntropy: summarize(t.hmin),
			TopK: t.topKs(), TPR: t.tprs(), Latency: quantiles(st.torLat)}
	}
	m.att.advance(m.end)
	res.Disclosure = m.att.result()
	if n := len(m.adv.targets); n > 0 {
		res.LostMass, res.CoverMass = a.lost/float64(n), a.other/float64(n)
	}
	return res
}

// WriteJSON writes r as indented JSON; a figure that could not be
// computed (NaN: no targets, nothing delivered) is written as -1.
func (r *Result) WriteJSON(w io.Writer) error {
	b, err := json.MarshalIndent(sanitize(r), "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// sanitize replaces NaN, which JSON cannot carry, by -1 in a copy.
func sanitize(r *Result) *Result {
	c := *r
	fix := func(f *float64) {
		if math.IsNaN(*f) || math.IsInf(*f, 0) {
			*f = -1
		}
	}
	for _, s := range []*Summary{&c.Entropy, &c.MinEntropy, &c.EffectiveSize} {
		fix(&s.Mean)
		fix(&s.CI95)
		fix(&s.Median)
	}
	c.TopK = slices.Clone(r.TopK)
	for i := range c.TopK {
		fix(&c.TopK[i].Accuracy)
	}
	c.TPR = slices.Clone(r.TPR)
	for i := range c.TPR {
		fix(&c.TPR[i].TPR)
	}
	if r.Tor != nil {
		t := *r.Tor
		for _, s := range []*Summary{&t.Entropy, &t.MinEntropy} {
			fix(&s.Mean)
			fix(&s.CI95)
			fix(&s.Median)
		}
		t.TopK, t.TPR = slices.Clone(t.TopK), slices.Clone(t.TPR)
		for i := range t.TopK {
			fix(&t.TopK[i].Accuracy)
		}
		for i := range t.TPR {
			fix(&t.TPR[i].TPR)
		}
		c.Tor = &t
	}
	return &c
}

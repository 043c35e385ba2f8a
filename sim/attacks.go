package sim

import (
	"math"
	"slices"
)

// Long-term attacks (docs/sim.md §3.3–3.5). They watch the whole run in a
// streaming way: per-round counters and per-target accumulators, never a
// log of every event.
//
// Rounds are fixed windows of Adv.Round. In each round the adversary sees
//   - how many packets each user sent (a global passive adversary sees the
//     user → first-mix links; real and cover packets look alike), and
//   - which mailboxes received envelopes (the recipients' providers are
//     corrupt: real messages and loop cover both land in mailboxes, and the
//     provider cannot tell them apart).

// attacks is the state of the statistical disclosure attack, the
// intersection attack and the acknowledgement attack.
type attacks struct {
	m          *model
	round      int64
	roundEnd   int64
	rounds     int
	sentNow    []int32 // per user: packets sent this round
	recvNow    []bool  // per user: envelopes received this round
	recvList   []int32
	sda        []*sdaTarget
	bg         []float64 // Σ over rounds of normalised recipient counts
	checkpoint []int
	// acknowledgement attack
	pairs    []*ackPair
	byFrom   map[int32]*ackPair // sender → pair
	replies  []float64          // per user: SURB replies seen at its provider
	windows  []*ackWindow
	ackPDF   transitPDF
	ackMaxN  int
	ackCurve []float64
	ackCount []int
}

type sdaTarget struct {
	user     int32
	contacts []int32
	a        []float64 // Σ_t s_t·O_t/|O_t|
	b        float64   // Σ_t s_t
	cand     []bool    // intersection: recipients in every round it sent
	candN    int
	hit      []bool // SDA success at each checkpoint
	isect    int    // rounds until the intersection isolates the contacts; -1
	active   int    // rounds in which it sent
}

type ackPair struct {
	from, to int32
	score    map[int32]float64
	n        int
	top1     []bool
}

type ackWindow struct {
	pair  *ackPair
	start int64
	end   int64
	sum   map[int32]float64
}

func newAttacks(m *model) *attacks {
	c := m.cfg
	at := &attacks{m: m, round: int64(c.Adv.Round.D()), sentNow: make([]int32, c.Users),
		recvNow: make([]bool, c.Users), bg: make([]float64, c.Users), byFrom: map[int32]*ackPair{},
		replies: make([]float64, c.Users), ackMaxN: 20}
	at.roundEnd = m.warmup + at.round
	for r := 1; r <= 1<<20; r *= 2 {
		at.checkpoint = append(at.checkpoint, r)
	}
	rng := m.advRng
	for _, u := range rng.Perm(c.Users)[:min(c.Adv.DisclosureTargets, c.Users)] {
		t := &sdaTarget{user: int32(u), contacts: m.contacts[u], a: make([]float64, c.Users),
			cand: make([]bool, c.Users), candN: c.Users, isect: -1}
		for i := range t.cand {
			t.cand[i] = true
		}
		at.sda = append(at.sda, t)
	}
	for _, u := range rng.Perm(c.Users)[:min(c.Adv.AckPairs, c.Users)] {
		p := &ackPair{from: int32(u), to: m.contacts[u][0], score: map[int32]float64{}}
		at.pairs = append(at.pairs, p)
		at.byFrom[p.from] = p
	}
	// An acknowledgement is held at the recipient's provider (AckDelay,
	// exponential), then crosses every layer and the sender's provider:
	// L+1 exponential mixing delays (L with mixing.at = "mixes") and L+2
	// links.
	hops := c.Layers
	if c.Mixing.At == "all" {
		hops++
	}
	mean := float64(c.Mixing.MeanDelay.D())
	if c.Adv.Estimator == "timing" {
		mean = max(mean, float64(c.Adv.DelayFloor.D())) // the adversary's delay model, as for mixing
	}
	at.ackPDF = newTransitPDF(hops, mean, float64(c.Workload.AckDelay.D()),
		float64(c.Layers+1)*float64(c.Latency.Mean.D()))
	at.ackCurve = make([]float64, at.ackMaxN)
	at.ackCount = make([]int, at.ackMaxN)
	return at
}

// sent: user u put a packet on its link to the first layer.
func (at *attacks) sent(u int32, t int64) {
	at.advance(t)
	at.sentNow[u]++
}

// mailbox: an envelope (real or loop) landed in u's mailbox.
func (at *attacks) mailbox(u int32, t int64) {
	at.advance(t)
	if !at.recvNow[u] {
		at.recvNow[u] = true
		at.recvList = append(at.recvList, u)
	}
}

// advance closes the rounds that ended before t.
func (at *attacks) advance(t int64) {
	for t >= at.roundEnd {
		at.closeRound()
		at.roundEnd += at.round
	}
}

func (at *attacks) closeRound() {
	if at.m.now < at.m.warmup {
		at.reset()
		return
	}
	at.rounds++
	n := float64(len(at.recvList))
	if n > 0 {
		for _, r := range at.recvList {
			at.bg[r] += 1 / n
		}
	}
	for _, tg := range at.sda {
		s := float64(at.sentNow[tg.user])
		if s > 0 && n > 0 {
			tg.active++
			tg.b += s
			for _, r := range at.recvList {
				tg.a[r] += s / n
			}
			if tg.isect < 0 {
				k := 0
				for u, in := range tg.cand {
					if in && !at.recvNow[u] {
						tg.cand[u] = false
					}
					if tg.cand[u] {
						k++
					}
				}
				tg.candN = k
				if k <= len(tg.contacts) && tg.hasContacts() {
					tg.isect = at.rounds
				}
			}
		}
		if slices.Contains(at.checkpoint, at.rounds) {
			tg.hit = append(tg.hit, tg.sdaSuccess(at))
		}
	}
	at.reset()
}

func (at *attacks) reset() {
	clear(at.sentNow)
	for _, r := range at.recvList {
		at.recvNow[r] = false
	}
	at.recvList = at.recvList[:0]
}

func (tg *sdaTarget) hasContacts() bool {
	for _, c := range tg.contacts {
		if !tg.cand[c] {
			return false
		}
	}
	return true
}

// sdaSuccess: the k recipients with the highest estimated excess
// v_r = a_r/b − bg_r/rounds are exactly the target's k contacts.
func (tg *sdaTarget) sdaSuccess(at *attacks) bool {
	if tg.b == 0 {
		return false
	}
	k := len(tg.contacts)
	v := func(r int) float64 { return tg.a[r]/tg.b - at.bg[r]/float64(at.rounds) }
	worst := math.Inf(1)
	for _, c := range tg.contacts {
		worst = min(worst, v(int(c)))
	}
	above := 0
	for r := range tg.a {
		if r != int(tg.user) && v(r) >= worst && !slices.Contains(tg.contacts, int32(r)) {
			above++
		}
	}
	return above == 0 && k > 0
}

// delivered: a real message from `from` reached `to`'s provider at t (the
// corrupt recipient provider sees it and when its acknowledgement leaves).
func (at *attacks) delivered(from, to int32, t int64) {
	p := at.byFrom[from]
	if p == nil || p.to != to || t < at.m.warmup || p.n >= at.ackMaxN {
		return
	}
	at.windows = append(at.windows, &ackWindow{pair: p, start: t, end: t + int64(at.ackPDF.max), sum: map[int32]float64{}})
}

// reply: a SURB reply (an acknowledgement, or a loop's reply) landed in
// u's mailbox at t; the sender's provider, colluding, sees it.
func (at *attacks) reply(u int32, t int64) {
	at.replies[u]++
	keep := at.windows[:0]
	for _, w := range at.windows {
		if t > w.end {
			at.closeWindow(w, t)
			continue
		}
		if at.m.providerOf(u) == at.m.providerOf(w.pair.from) {
			// Likelihood ratio of "this is the acknowledgement" against
			// background replies at u's observed rate.
			f := at.ackPDF.at(float64(t-w.start)) * 1e9 // per second
			rate := max(at.replies[u]/max(float64(t-at.m.warmup)/1e9, 1), 1e-6)
			w.sum[u] += f / rate
		}
		keep = append(keep, w)
	}
	at.windows = keep
}

func (at *attacks) closeWindow(w *ackWindow, _ int64) {
	p := w.pair
	users := make([]int32, 0, len(w.sum))
	for u := range w.sum {
		users = append(users, u)
	}
	slices.Sort(users)
	for _, u := range users {
		p.score[u] += math.Log1p(w.sum[u])
	}
	if p.n >= at.ackMaxN {
		return
	}
	// Top-1 after n messages: nobody else scores at least the sender's.
	mine := p.score[p.from]
	top := mine > 0
	for _, u := range users {
		if u != p.from && p.score[u] >= mine {
			top = false
		}
	}
	if top {
		for u, s := range p.score {
			if u != p.from && s >= mine {
				top = false
			}
		}
	}
	at.ackCurve[p.n] += b2f(top)
	at.ackCount[p.n]++
	p.n++
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// Disclosure is the long-term attacks' outcome.
type Disclosure struct {
	Rounds      int     `json:"rounds"`
	RoundSecond float64 `json:"round_seconds"`
	Targets     int     `json:"targets"`
	// SDA[i] is the share of targets whose contacts the statistical
	// disclosure attack named exactly after Checkpoints[i] rounds.
	Checkpoints []int     `json:"checkpoints"`
	SDA         []float64 `json:"sda_success"`
	// SDARounds is the first checkpoint at which half the targets are
	// exposed (-1: never within the run).
	SDARounds int `json:"sda_rounds_to_half"`
	// Intersection: share of targets whose candidate set shrank to their
	// contacts, and the median rounds it took (-1: not for half).
	Intersection       float64 `json:"intersection_success"`
	IntersectionRounds int     `json:"intersection_rounds_median"`
	// Ack[n-1] is the share of (sender, recipient) pairs whose sender the
	// colluding providers rank first after n acknowledged messages;
	// AckPairs[n-1] how many pairs got that far.
	Ack      []float64 `json:"ack_top1_after_n"`
	AckPairs []int     `json:"ack_pairs_after_n"`
	// AckMessages is the first n at which half the pairs are linked (-1:
	// never).
	AckMessages int `json:"ack_messages_to_half"`
}

func (at *attacks) result() Disclosure {
	d := Disclosure{Rounds: at.rounds, RoundSecond: float64(at.round) / 1e9, Targets: len(at.sda), SDARounds: -1, IntersectionRounds: -1, AckMessages: -1}
	for i, cp := range at.checkpoint {
		if cp > at.rounds {
			break
		}
		s := 0.0
		for _, tg := range at.sda {
			if i < len(tg.hit) && tg.hit[i] {
				s++
			}
		}
		share := s / float64(max(len(at.sda), 1))
		d.Checkpoints = append(d.Checkpoints, cp)
		d.SDA = append(d.SDA, share)
		if d.SDARounds < 0 && share >= 0.5 {
			d.SDARounds = cp
		}
	}
	var rounds []int
	for _, tg := range at.sda {
		if tg.isect >= 0 {
			rounds = append(rounds, tg.isect)
		}
	}
	d.Intersection = float64(len(rounds)) / float64(max(len(at.sda), 1))
	// Median over all targets, those never isolated counting as infinite.
	if mid := len(at.sda) / 2; mid < len(rounds) {
		slices.Sort(rounds)
		d.IntersectionRounds = rounds[mid]
	}
	for n := range at.ackMaxN {
		if at.ackCount[n] == 0 {
			break
		}
		share := at.ackCurve[n] / float64(at.ackCount[n])
		d.Ack = append(d.Ack, share)
		d.AckPairs = append(d.AckPairs, at.ackCount[n])
		if d.AckMessages < 0 && share >= 0.5 {
			d.AckMessages = n + 1
		}
	}
	return d
}

// transitPDF is the exact density of an acknowledgement's transit time, as
// the adversary knows it: a fixed link latency, plus an Erlang sum of k
// exponential mixing delays of mean mu, plus an exponential hold of mean
// hold, tabulated on a grid (ns).
type transitPDF struct {
	shift, step, max float64
	f                []float64
}

func newTransitPDF(k int, mu, hold, shift float64) transitPDF {
	const n = 4096
	mean := float64(k)*mu + hold
	sd := math.Sqrt(float64(k)*mu*mu + hold*hold)
	span := max(mean+10*sd, 1e6)
	p := transitPDF{shift: shift, step: span / n, f: make([]float64, n)}
	p.max = shift + span
	// Erlang(k, mu) density on the grid (log form, for large k).
	for i := range p.f {
		x := (float64(i) + 0.5) * p.step
		switch {
		case mu == 0:
			if i == 0 {
				p.f[i] = 1 / p.step
			}
		default:
			lg, _ := math.Lgamma(float64(k))
			p.f[i] = math.Exp(float64(k-1)*math.Log(x) - x/mu - float64(k)*math.Log(mu) - lg)
		}
	}
	if hold > 0 {
		// Convolution with an exponential: c_i = c_{i-1}·e^{-step/hold} + g_i·(1 − e^{-step/hold}).
		a := math.Exp(-p.step / hold)
		run := 0.0
		for i := range p.f {
			run = run*a + p.f[i]*(1-a)
			p.f[i] = run
		}
	}
	return p
}

// at is the density at transit time x (ns), per ns.
func (p *transitPDF) at(x float64) float64 {
	i := int((x - p.shift) / p.step)
	if i < 0 || i >= len(p.f) {
		return 0
	}
	return p.f[i]
}

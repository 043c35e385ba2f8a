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
	all        disclosureView // every packet sent, every envelope received
	ret        disclosureView // real sends and receipts as the returns tell them (returns.go)
	checkpoint []int
	receipt    receiptState // receipt.go
	returns    returnsState // returns.go
	block      blockState   // active.go
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

// disclosureView is what one adversary counts per round for the
// statistical disclosure and intersection attacks.
type disclosureView struct {
	sentNow  []int32 // per user: packets counted as sent this round
	recvNow  []bool  // per user: envelopes counted as received this round
	recvList []int32
	sda      []*sdaTarget
	bg       []float64 // Σ over rounds of normalised recipient counts
}

func newDisclosureView(users int, targets []int32, contacts [][]int32) disclosureView {
	v := disclosureView{sentNow: make([]int32, users), recvNow: make([]bool, users), bg: make([]float64, users)}
	for _, u := range targets {
		t := &sdaTarget{user: u, contacts: contacts[u], a: make([]float64, users),
			cand: make([]bool, users), candN: users, isect: -1}
		for i := range t.cand {
			t.cand[i] = true
		}
		v.sda = append(v.sda, t)
	}
	return v
}

func (v *disclosureView) sent(u int32) { v.sentNow[u]++ }

func (v *disclosureView) received(u int32) {
	if !v.recvNow[u] {
		v.recvNow[u] = true
		v.recvList = append(v.recvList, u)
	}
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
	at := &attacks{m: m, round: int64(c.Adv.Round.D()), byFrom: map[int32]*ackPair{},
		replies: make([]float64, c.Users), ackMaxN: 100}
	at.roundEnd = m.warmup + at.round
	for r := 1; r <= 1<<20; r *= 2 {
		at.checkpoint = append(at.checkpoint, r)
	}
	rng := m.advRng
	var targets []int32
	for _, u := range rng.Perm(c.Users)[:min(c.Adv.DisclosureTargets, c.Users)] {
		targets = append(targets, int32(u))
	}
	at.all = newDisclosureView(c.Users, targets, m.contacts)
	at.ret = newDisclosureView(c.Users, targets, m.contacts)
	for _, u := range rng.Perm(c.Users)[:min(c.Adv.AckPairs, c.Users)] {
		p := &ackPair{from: int32(u), to: m.contacts[u][0], score: map[int32]float64{}}
		at.pairs = append(at.pairs, p)
		at.byFrom[p.from] = p
	}
	// The colluding recipient's provider knows when an acknowledgement
	// leaves (its hold is its own), and the colluding sender's provider
	// sees it arrive before holding it: between them, L exponential mixing
	// delays and L+1 links.
	mean := float64(c.Mixing.MeanDelay.D())
	if c.Adv.Estimator == "timing" {
		mean = max(mean, float64(c.Adv.DelayFloor.D())) // the adversary's delay model, as for mixing
	}
	at.ackPDF = newTransitPDF(c.Layers, mean, 0, float64(c.Layers+1)*float64(c.Latency.Mean.D()))
	at.ackCurve = make([]float64, at.ackMaxN)
	at.ackCount = make([]int, at.ackMaxN)
	at.receipt.init(m, at)
	at.returns.init(m, at)
	at.block.init(m, targets)
	return at
}

// sent: a packet of user u reached its entry mix (a global observer sees
// it on the user's link).
func (at *attacks) sent(u int32, t int64) {
	at.advance(t)
	at.all.sent(u)
	at.receipt.sent(u, t)
}

// mailbox: an envelope (real or loop) landed in u's mailbox.
func (at *attacks) mailbox(u int32, t int64) {
	at.advance(t)
	at.all.received(u)
}

// arrival: a fragment of a real message from `from` reached `to`'s
// provider at t; dup if it is a retransmission of one already stored,
// first if it is the message's first fragment.
func (at *attacks) arrival(msg int32, from, to int32, t int64, dup, first bool) {
	at.advance(t)
	at.receipt.arrival(msg, from, to, t, dup, first)
}

// deliveryAt and replyAt: a provider stored an envelope in u's mailbox,
// or a SURB reply (loop: the envelope was u's own loop; real: the reply
// acknowledges a real message). The truth is for scoring only.
func (at *attacks) deliveryAt(u int32, t int64, loop bool) { at.returns.deliveryAt(u, t, loop) }
func (at *attacks) replyAt(u int32, t int64, real bool)    { at.returns.replyAt(u, t, real) }

// withheld: the corrupt recipient's provider keeps the acknowledgements
// of messages to `to`.
func (at *attacks) withheld(to int32) bool { return at.receipt.withheld(to) }

// advance closes the rounds that ended before t.
func (at *attacks) advance(t int64) {
	for t >= at.roundEnd {
		at.closeRound()
		at.roundEnd += at.round
	}
}

func (at *attacks) closeRound() {
	if at.m.now < at.m.warmup {
		at.all.reset()
		at.ret.reset()
		return
	}
	at.rounds++
	checkpoint := slices.Contains(at.checkpoint, at.rounds)
	at.all.closeRound(at.rounds, checkpoint)
	at.ret.closeRound(at.rounds, checkpoint)
	at.block.closeRound(at.rounds, checkpoint)
}

func (v *disclosureView) closeRound(rounds int, checkpoint bool) {
	n := float64(len(v.recvList))
	if n > 0 {
		for _, r := range v.recvList {
			v.bg[r] += 1 / n
		}
	}
	for _, tg := range v.sda {
		s := float64(v.sentNow[tg.user])
		if s > 0 && n > 0 {
			tg.active++
			tg.b += s
			for _, r := range v.recvList {
				tg.a[r] += s / n
			}
			if tg.isect < 0 {
				k := 0
				for u, in := range tg.cand {
					if in && !v.recvNow[u] {
						tg.cand[u] = false
					}
					if tg.cand[u] {
						k++
					}
				}
				tg.candN = k
				if k <= len(tg.contacts) && tg.hasContacts() {
					tg.isect = rounds
				}
			}
		}
		if checkpoint {
			tg.hit = append(tg.hit, tg.sdaSuccess(v.bg, rounds))
		}
	}
	v.reset()
}

func (v *disclosureView) reset() {
	clear(v.sentNow)
	for _, r := range v.recvList {
		v.recvNow[r] = false
	}
	v.recvList = v.recvList[:0]
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
func (tg *sdaTarget) sdaSuccess(bg []float64, rounds int) bool {
	if tg.b == 0 {
		return false
	}
	k := len(tg.contacts)
	v := func(r int) float64 { return tg.a[r]/tg.b - bg[r]/float64(rounds) }
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
	// Receipt[n-1] is the share of the same pairs whose sender ranks first
	// by fetch timing (its sends before each arrival) after n messages;
	// ReceiptPairs[n-1] how many pairs got that far; ReceiptMessages the
	// first n at which half are linked (-1: never). ReceiptSamples is the
	// arrivals the adversary scored per message (above 1 when withheld
	// acknowledgements force retransmissions).
	Receipt         []float64 `json:"receipt_top1_after_n"`
	ReceiptPairs    []int     `json:"receipt_pairs_after_n"`
	ReceiptMessages int       `json:"receipt_messages_to_half"`
	ReceiptSamples  float64   `json:"receipt_samples_per_message"`
	// Online[n-1] is the share of pairs whose sender is the only user who
	// sent something before each of n arrivals (online-window
	// intersection); OnlineMessages the first n at which half are.
	Online         []float64 `json:"online_isolated_after_n"`
	OnlineMessages int       `json:"online_messages_to_half"`
	// Returns is what providers learn from what comes back: loop
	// stripping, and disclosure fed with real sends (absent on a wire
	// trace, which has no provider view).
	Returns *Returns `json:"returns,omitempty"`
	// Block[i] is the share of the disclosure targets whose contacts the
	// active attack on their entry links exposed after Checkpoints[i]
	// rounds (adversary.block); BlockRounds the first checkpoint at which
	// half are (-1: never).
	Block       []float64 `json:"block_success,omitempty"`
	BlockRounds int       `json:"block_rounds_to_half,omitempty"`
}

func (at *attacks) result() Disclosure {
	d := Disclosure{Rounds: at.rounds, RoundSecond: float64(at.round) / 1e9, Targets: len(at.all.sda), AckMessages: -1}
	d.Checkpoints, d.SDA, d.SDARounds, d.Intersection, d.IntersectionRounds = at.all.result(at.checkpoint, at.rounds)
	at.receipt.result(&d)
	at.returns.result(&d)
	at.block.result(&d)
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

// result is the share of targets exposed at each checkpoint, the first
// checkpoint at which half are (-1: never), the intersection attack's
// share and its median rounds (-1: not for half).
func (v *disclosureView) result(checkpoints []int, rounds int) (cps []int, sda []float64, sdaRounds int, isect float64, isectRounds int) {
	sdaRounds, isectRounds = -1, -1
	for i, cp := range checkpoints {
		if cp > rounds {
			break
		}
		s := 0.0
		for _, tg := range v.sda {
			if i < len(tg.hit) && tg.hit[i] {
				s++
			}
		}
		share := s / float64(max(len(v.sda), 1))
		cps = append(cps, cp)
		sda = append(sda, share)
		if sdaRounds < 0 && share >= 0.5 {
			sdaRounds = cp
		}
	}
	var rs []int
	for _, tg := range v.sda {
		if tg.isect >= 0 {
			rs = append(rs, tg.isect)
		}
	}
	isect = float64(len(rs)) / float64(max(len(v.sda), 1))
	// Median over all targets, those never isolated counting as infinite.
	if mid := len(v.sda) / 2; mid < len(rs) {
		slices.Sort(rs)
		isectRounds = rs[mid]
	}
	return cps, sda, sdaRounds, isect, isectRounds
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

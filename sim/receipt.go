package sim

import (
	"math"
	"slices"
)

// Attacks that pair what a user sends with when mail arrives (docs/sim.md
// §3.6–3.8). They need no corrupt node: a global observer sees every
// user's packets leave, and, while clients long-poll, sees each mailbox's
// arrivals as fetches answered early.
//
//   - Receipt by fetch timing: for a (sender, recipient) pair, every
//     arrival of one of their messages opens a window back in time; every
//     packet a user sent in it scores that user log(1 + Σ f(τ)/ρ_u), f the
//     exact density of a message's transit from its sender's link to the
//     recipient's provider, ρ_u the user's observed sending rate. After n
//     messages the pair is linked if the sender ranks first.
//   - Online-window intersection: the candidates for the pair's sender
//     are the users who sent anything in the window before every arrival;
//     against one-shot senders (online only while they send) it isolates
//     the sender within a few messages.
//   - Withheld acknowledgements: the corrupt recipient's provider drops
//     the pair's acknowledgements; the sender retransmits, on new paths,
//     up to Client.MaxAttempts times, and every retransmission's arrival
//     (the provider recognises the envelope ID) is one more receipt
//     window.
//
// Arrivals are visible to the adversary as the recipient's fetch answered
// early (Client.Fetch "longpoll") or, with adversary.providers
// "recipient" or "both", at the provider; retransmissions, which the
// provider stores once and so never show in a fetch, only at the provider.

type receiptState struct {
	// atProvider: the recipient's provider is corrupt and sees arrivals
	// as they happen, before its hold; otherwise only a long poll
	// answered early shows one, after the hold.
	atProvider bool
	m          *model
	at         *attacks
	pdf        transitPDF // send → arrival at the recipient's provider
	lo, hi     float64    // the window: transit times in [lo, hi] (ns)
	sendT      []int64    // recent user sends, in time order (a queue from head)
	sendU      []int32
	head       int
	total      []float64 // per user: packets sent so far
	stamp      []int32   // per user: last window it sent in (online-window)
	windows    int32
	sum        map[int32]float64
	users      []int32
	pairs      map[uint64]*receiptPair
	toPair     map[int32]bool // recipients whose acknowledgements are withheld
	maxN       int
	// per n: pairs linked (receipt top-1) / isolated (online window)
	// after n messages, and how many pairs got that far
	curve, online []float64
	count         []int
	arrivals      float64        // arrivals of the counted messages, first and retransmitted
	messages      float64        // messages counted (first arrivals after the warm-up)
	counted       map[int32]bool // the counted messages' fragments (m.msgs IDs)
}

type receiptPair struct {
	from, to int32
	score    map[int32]float64
	n        int
	cand     []bool // online-window candidates
	candN    int
}

func (r *receiptState) init(m *model, at *attacks) {
	c := m.cfg
	r.m, r.at, r.maxN = m, at, at.ackMaxN
	r.atProvider = c.Adv.Providers == "recipient" || c.Adv.Providers == "both"
	hops := c.Layers
	if c.Mixing.At == "all" && !r.atProvider {
		hops++ // seen after the provider's own hold
	}
	mean := float64(c.Mixing.MeanDelay.D())
	if c.Adv.Estimator == "timing" {
		mean = max(mean, float64(c.Adv.DelayFloor.D()))
	}
	// From the entry mix (where a user's packet is seen, as on a capture)
	// to the recipient's provider: L links.
	r.pdf = newTransitPDF(hops, mean, 0, float64(c.Layers)*float64(c.Latency.Mean.D()))
	r.lo, r.hi = r.pdf.shift, r.pdf.quantile(1-1e-6)
	r.total = make([]float64, c.Users)
	r.stamp = make([]int32, c.Users)
	r.sum = map[int32]float64{}
	r.pairs = map[uint64]*receiptPair{}
	r.toPair = map[int32]bool{}
	r.counted = map[int32]bool{}
	for _, p := range at.pairs {
		rp := &receiptPair{from: p.from, to: p.to, score: map[int32]float64{}, cand: make([]bool, c.Users), candN: c.Users}
		for i := range rp.cand {
			rp.cand[i] = true
		}
		r.pairs[pairKey(p.from, p.to)] = rp
		r.toPair[p.to] = true
	}
	r.curve = make([]float64, r.maxN)
	r.online = make([]float64, r.maxN)
	r.count = make([]int, r.maxN)
}

func pairKey(from, to int32) uint64 { return uint64(uint32(from))<<32 | uint64(uint32(to)) }

// sent records a user's packet leaving for its entry mix.
func (r *receiptState) sent(u int32, t int64) {
	r.total[u]++
	if len(r.pairs) == 0 {
		return
	}
	// Forget what no window can reach any more.
	for r.head < len(r.sendT) && float64(t-r.sendT[r.head]) > r.hi {
		r.head++
	}
	if r.head > 4096 && r.head > len(r.sendT)/2 {
		n := copy(r.sendT, r.sendT[r.head:])
		copy(r.sendU, r.sendU[r.head:])
		r.sendT, r.sendU, r.head = r.sendT[:n], r.sendU[:n], 0
	}
	r.sendT = append(r.sendT, t)
	r.sendU = append(r.sendU, u)
}

// withheld: the corrupt recipient's provider keeps the acknowledgements
// of messages to `to` (Adv.WithholdAcks).
func (r *receiptState) withheld(to int32) bool { return r.toPair[to] }

// arrival: fragment msg (an m.msgs ID, or -1 on a trace) of a message
// from `from` reached `to`'s provider at t (dup: a retransmission of one
// already stored; first: the message's first fragment, which counts the
// message).
func (r *receiptState) arrival(msg int32, from, to int32, t int64, dup, first bool) {
	p := r.pairs[pairKey(from, to)]
	if p == nil || t < r.m.warmup || p.n >= r.maxN {
		return
	}
	atProvider := r.atProvider
	if dup && !atProvider || !dup && !atProvider && r.m.cfg.Client.Fetch != "longpoll" {
		return // nobody who sees it is corrupt
	}
	if !dup || r.counted[msg] {
		r.arrivals++ // the samples of messages counted below
	}
	// The window: every send whose transit to t has density.
	r.windows++
	clear(r.sum)
	elapsed := max(float64(t)/1e9, 1)
	lo := sortSearch(r.sendT[r.head:], t-int64(r.hi)) + r.head
	for i := lo; i < len(r.sendT) && r.sendT[i] <= t-int64(r.lo); i++ {
		u := r.sendU[i]
		r.stamp[u] = r.windows
		if f := r.pdf.at(float64(t - r.sendT[i])); f > 0 {
			r.sum[u] += f * 1e9 / max(r.total[u]/elapsed, 1e-6)
		}
	}
	r.users = r.users[:0]
	for u := range r.sum {
		r.users = append(r.users, u)
	}
	slices.Sort(r.users) // map order must not change the sums' rounding
	for _, u := range r.users {
		p.score[u] += math.Log1p(r.sum[u])
	}
	k := 0
	for u, in := range p.cand {
		if in && r.stamp[u] != r.windows {
			p.cand[u] = false
		}
		if p.cand[u] {
			k++
		}
	}
	p.candN = k
	if dup || !first {
		return
	}
	r.messages++
	if msg >= 0 {
		r.counted[msg] = true
	}
	mine := p.score[p.from]
	top := mine > 0
	for u, s := range p.score {
		if u != p.from && s >= mine {
			top = false
		}
	}
	r.curve[p.n] += b2f(top)
	r.online[p.n] += b2f(p.candN == 1 && p.cand[p.from])
	r.count[p.n]++
	p.n++
}

func (r *receiptState) result(d *Disclosure) {
	d.ReceiptMessages, d.OnlineMessages = -1, -1
	for n := range r.maxN {
		if r.count[n] == 0 {
			break
		}
		c := float64(r.count[n])
		d.Receipt = append(d.Receipt, r.curve[n]/c)
		d.Online = append(d.Online, r.online[n]/c)
		d.ReceiptPairs = append(d.ReceiptPairs, r.count[n])
		if d.ReceiptMessages < 0 && r.curve[n]/c >= 0.5 {
			d.ReceiptMessages = n + 1
		}
		if d.OnlineMessages < 0 && r.online[n]/c >= 0.5 {
			d.OnlineMessages = n + 1
		}
	}
	if r.messages > 0 {
		d.ReceiptSamples = r.arrivals / r.messages
	}
}

// sortSearch is the first index of s (sorted) with s[i] ≥ t.
func sortSearch(s []int64, t int64) int {
	i, _ := slices.BinarySearch(s, t)
	return i
}

// quantile is the smallest transit time x (ns) with P(transit ≤ x) ≥ q.
func (p *transitPDF) quantile(q float64) float64 {
	total := 0.0
	for _, f := range p.f {
		total += f
	}
	run := 0.0
	for i, f := range p.f {
		run += f
		if run >= q*total {
			return p.shift + float64(i+1)*p.step
		}
	}
	return p.max
}

package sim

import (
	"math"
	"slices"

	"github.com/sealnet/sealnet/mixnet/mix"
)

// The adversary (docs/sim.md §3) sees every link: when each packet leaves
// a user or node and when it arrives at the next node, and its size. Links
// are FIFO, so it follows each packet across every link; what it cannot see
// is which input of a mix became which output. For a target message, known
// when it arrives at the recipient's provider, it computes the posterior
// over the inputs of the last mix, then, through the links, over the
// outputs of the layer before, and so on back to the users who sent the
// first-layer inputs: the posterior over senders.
//
// Per output, a mix's input i gets the weight the strategy's own rule gives
// it, with the exact distribution the adversary knows:
//   - poisson: the chance that the input is still held, which is 1 at its
//     arrival and falls by (1 − 1/n) at every departure, n being the number
//     held then (memoryless delays make every held item equally likely to
//     leave next: Loopix, Theorem 1), over inputs not older than the cap;
//   - threshold: 1/b over the b inputs of the batch;
//   - timed-pool: the probability that i was still held at the tick,
//     Π over earlier ticks of keep/n, over inputs that arrived before it.
// A corrupt mix tells the adversary the input of each output.

// nodeLog is what the adversary records at one node, trimmed to a window.
type nodeLog struct {
	inBase     int64 // index of the first entry held
	inT        []int64
	inPrevNode []int32 // node the input came from; -1: from its origin
	inPrevOut  []int64 // that node's output index; for an origin, the origin
	inSize     []int32
	inL        []float64 // timed pool: log survival product at arrival
	inPrior    []float32 // a user's packet: the chance it is real, by its gap (gapPrior)

	outBase   int64
	outT      []int64
	outIn     []int64 // inputs seen when it left (bound on candidates)
	outBatch  []int64 // threshold: first input of its batch
	outTrue   []int64 // the true input (for corrupt mixes and checks)
	outL      []float64
	outSize   []int32
	unbatched int64   // threshold: next input not yet in a batch
	logSurv   float64 // timed pool: Σ log(keep/n) over ticks so far
	batchFrom int64
	tickL     float64
}

func (l *nodeLog) inCount() int64  { return l.inBase + int64(len(l.inT)) }
func (l *nodeLog) outCount() int64 { return l.outBase + int64(len(l.outT)) }

// target is one scored message.
type target struct {
	sender, recipient int32
}

type adversary struct {
	m    *model
	kind mix.Kind
	mu   float64 // mean per-hop delay, ns
	// timing: weigh a Poisson mix's inputs by the delay density at their
	// age, exp(−age/tmu), instead of by survival through counted
	// departures (Adv.Estimator).
	timing  bool
	tmu     float64
	window  int64
	horizon int64 // Poisson: how far back a mix's inputs are weighed
	targets []target
	res     advResult // targets sent through the mix network
	torRes  advResult // targets of the Tor-like population
	// bound, when set, records for every honest Poisson output the
	// largest linking probability times the number of messages held, which
	// Loopix's Theorem 1 bounds by 1 (tests).
	bound       bool
	boundMax    float64
	boundChecks int
	// scratch
	curBy, nextBy       [][]weighted
	curNodes, nextNodes []int32
	senders             map[int32]float64
	trimAt              int64
	// gapPrior: with a Poisson stream a real message waits for its
	// sender's next slot, so a packet after a long silence is more likely
	// real: each user packet is weighed by 1 − e^{−r·g}, g the time since
	// the user's previous packet and r the message rate (the chance a
	// message was written in the gap, for an empty queue).
	gapPrior bool
	lastSend []int64
}

// pruneBelow: weight smaller than this on a node's output is not followed
// further back (it is counted as lost). Weight that keeps flowing back
// through node-made loops (a mix's loop re-enters the first layer from the
// last) fades by the loops' share at every turn, and would otherwise be
// followed to the window's edge; at 1e-12 of the target it cannot move a
// figure.
const pruneBelow = 1e-12

func newAdversary(m *model) *adversary {
	c := m.cfg
	a := &adversary{m: m, kind: mix.Kind(c.Mixing.Kind), mu: float64(c.Mixing.MeanDelay.D()),
		senders: map[int32]float64{}}
	lat := max(int64(c.Latency.Mean), int64(c.Latency.Max))
	if c.Latency.Kind == "exponential" {
		lat = 20 * int64(c.Latency.Mean)
	}
	switch a.kind {
	case mix.Poisson:
		// Inputs older than horizon weigh at most e^-15 of a fresh one;
		// the relays' 30 s cap would keep far more than matters.
		a.horizon = min(int64(c.Mixing.MaxDelay), int64(15*max(a.mu, float64(c.Relay.MeanDelay.D()))))
		if a.mu == 0 {
			a.horizon = int64(c.Mixing.MaxDelay)
		}
		a.window = int64(c.Layers+2) * (a.horizon + lat)
	default:
		a.window = int64(c.Layers+2) * (int64(120e9) + lat)
	}
	if c.Adv.Estimator == "timing" {
		a.timing = true
		a.tmu = max(a.mu, float64(c.Adv.DelayFloor.D()))
		a.window = max(a.window, int64(c.Layers+2)*(int64(40*a.tmu)+lat))
	}
	if c.Client.Rate > 0 {
		a.gapPrior = true
		a.lastSend = make([]int64, c.Users)
	}
	a.res.init(c)
	a.torRes.init(c)
	return a
}

// tmuOf is the mean delay the timing estimator assumes at node nd: a
// provider that delivers at once takes only processing time (the floor).
func (a *adversary) tmuOf(nd int32) float64 {
	if a.m.nodes[nd].instant {
		return float64(a.m.cfg.Adv.DelayFloor.D())
	}
	return a.tmu
}

func (a *adversary) newTarget(sender, recipient int32) int32 {
	a.targets = append(a.targets, target{sender: sender, recipient: recipient})
	return int32(len(a.targets) - 1)
}

// input records a packet arriving at nd and returns its input index.
func (a *adversary) input(nd int32, t int64, p *packet, from int32) int64 {
	l := &a.m.nodes[nd].log
	idx := l.inCount()
	l.inT = append(l.inT, t)
	if p.hop == 0 {
		l.inPrevNode = append(l.inPrevNode, -1)
		l.inPrevOut = append(l.inPrevOut, int64(p.src))
	} else {
		l.inPrevNode = append(l.inPrevNode, from)
		l.inPrevOut = append(l.inPrevOut, p.prevOut)
	}
	l.inSize = append(l.inSize, p.size)
	prior := float32(1)
	if a.gapPrior && p.hop == 0 && p.src >= 0 {
		g := float64(t - a.lastSend[p.src])
		a.lastSend[p.src] = t
		// A queue left non-empty by the last slot (chance ρ = r/λ, an
		// M/M/1 queue seen at departures) makes the packet real whatever
		// the gap; an empty one, if a message was written in the gap.
		r, rho := a.m.cfg.Workload.MessageRate, min(a.m.cfg.Workload.MessageRate/a.m.cfg.Client.Rate, 1)
		prior = float32(rho + (1-rho)*-math.Expm1(-r*g/1e9))
	}
	l.inPrior = append(l.inPrior, prior)
	if a.timing {
		l.inL = append(l.inL, -float64(t)/a.tmuOf(nd))
	} else {
		l.inL = append(l.inL, l.logSurv)
	}
	if t >= a.trimAt {
		a.trim(t)
	}
	return idx
}

// releaseStart is called before a node's released items are recorded:
// count of them leave now.
func (a *adversary) releaseStart(nd int32, count int) {
	l := &a.m.nodes[nd].log
	if nd := &a.m.nodes[nd]; nd.tor || nd.instant && a.kind != mix.Poisson {
		return
	}
	switch a.kind {
	case mix.Threshold:
		l.batchFrom = l.unbatched
		l.unbatched += int64(count)
	case mix.TimedPool:
		held := l.inCount() - l.outCount()
		l.tickL = l.logSurv
		keep := a.m.cfg.Mixing.Keep
		if held > int64(keep) {
			if keep == 0 {
				l.logSurv = math.Inf(-1)
			} else {
				l.logSurv += math.Log(float64(keep) / float64(held))
			}
		}
	}
}

// output records a packet leaving nd (whose input index was in) and
// returns its output index.
func (a *adversary) output(nd int32, t int64, in int64, size int32) int64 {
	l := &a.m.nodes[nd].log
	idx := l.outCount()
	l.outT = append(l.outT, t)
	l.outIn = append(l.outIn, l.inCount())
	l.outBatch = append(l.outBatch, l.batchFrom)
	l.outTrue = append(l.outTrue, in)
	l.outSize = append(l.outSize, size)
	node := &a.m.nodes[nd]
	if a.timing && !node.tor {
		// Weight exp(outL − inL) = exp(−(t − t_in)/tmu): the delay density
		// at the input's age, up to a factor shared by all candidates.
		l.outL = append(l.outL, -float64(t)/a.tmuOf(nd))
		return idx
	}
	if a.kind != mix.Poisson || node.tor {
		l.outL = append(l.outL, l.tickL)
		return idx
	}
	// Poisson: memoryless, so the departing item is any of the n held
	// with equal chance (Loopix, Theorem 1). Each input's weight is its
	// mass, the chance it is still held: 1 at arrival, times (1 − 1/n)
	// at every departure since. logSurv is the running log of that product.
	l.outL = append(l.outL, l.logSurv)
	if held := l.inCount() - idx; held > 1 {
		l.logSurv += math.Log1p(-1 / float64(held))
	} else {
		l.logSurv -= 1000 // the mix is empty: nothing older can still be there
	}
	return idx
}

// trim drops what is older than the window at every node.
func (a *adversary) trim(now int64) {
	a.trimAt = now + a.window/4
	cut := now - a.window
	for i := range a.m.nodes {
		l := &a.m.nodes[i].log
		k, _ := slices.BinarySearch(l.inT, cut)
		if k > 0 {
			l.inBase += int64(k)
			l.inT = slices.Delete(l.inT, 0, k)
			l.inPrevNode = slices.Delete(l.inPrevNode, 0, k)
			l.inPrevOut = slices.Delete(l.inPrevOut, 0, k)
			l.inSize = slices.Delete(l.inSize, 0, k)
			l.inL = slices.Delete(l.inL, 0, k)
			l.inPrior = slices.Delete(l.inPrior, 0, k)
		}
		k, _ = slices.BinarySearch(l.outT, cut)
		if k > 0 {
			l.outBase += int64(k)
			l.outT = slices.Delete(l.outT, 0, k)
			l.outIn = slices.Delete(l.outIn, 0, k)
			l.outBatch = slices.Delete(l.outBatch, 0, k)
			l.outTrue = slices.Delete(l.outTrue, 0, k)
			l.outL = slices.Delete(l.outL, 0, k)
			l.outSize = slices.Delete(l.outSize, 0, k)
		}
	}
}

type weighted struct {
	out int64
	w   float64
}

// observe scores target tg, which arrived at its recipient's provider from
// node last, where it was output out.
func (a *adversary) observe(tg int32, last int32, out int64, t int64, size int32) {
	clear(a.senders)
	if a.curBy == nil {
		a.curBy, a.nextBy = make([][]weighted, len(a.m.nodes)), make([][]weighted, len(a.m.nodes))
	}
	// Per node, the weighted outputs to follow back this step. Each output
	// reaches one next node only, so an output is emitted once per step.
	a.curBy[last] = append(a.curBy[last][:0], weighted{out, 1})
	cur := append(a.curNodes[:0], last)
	next := a.nextNodes[:0]
	lost, other := 0.0, 0.0
	var pruned uint64 // weight (× 2^76) not followed further back
	byOut := func(x, y weighted) int { return int(x.out - y.out) }
	for len(cur) > 0 {
		slices.Sort(cur) // the order of the sums into senders is fixed
		for _, n := range cur {
			outs := a.curBy[n]
			if !slices.IsSortedFunc(outs, byOut) {
				slices.SortFunc(outs, byOut)
			}
			lost += a.backward(n, outs, func(in int64, w float64) {
				l := &a.m.nodes[n].log
				j := in - l.inBase
				if pn := l.inPrevNode[j]; pn >= 0 {
					if w < pruneBelow {
						pruned += uint64(w * 0x1p76) // integers: the sum's order cannot change it
						return
					}
					if len(a.nextBy[pn]) == 0 {
						next = append(next, pn)
					}
					a.nextBy[pn] = append(a.nextBy[pn], weighted{l.inPrevOut[j], w})
				} else if src := int32(l.inPrevOut[j]); src >= 0 {
					a.senders[src] += w * float64(l.inPrior[j])
				} else {
					other += w // a mix's own cover
				}
			})
			a.curBy[n] = outs[:0]
		}
		a.curBy, a.nextBy = a.nextBy, a.curBy
		cur, next = next, cur[:0]
	}
	a.curNodes, a.nextNodes = cur, next
	lost += float64(pruned) * 0x1p-76
	res := &a.res
	if a.m.isTor[a.targets[tg].sender] {
		res = &a.torRes
	}
	res.score(a.targets[tg], a.senders, lost, other, a.m.cfg.Users)
}

// backward spreads the weights of outputs of node n over its inputs;
// emit receives each input with its weight, in input order. It returns
// the weight that fell outside the recorded window.
func (a *adversary) backward(n int32, outs []weighted, emit func(in int64, w float64)) (lost float64) {
	node := &a.m.nodes[n]
	l := &node.log
	fixed := a.m.cfg.Client.Padding == "fixed"
	kind, mu := a.kind, a.mu
	timing := a.timing && !node.tor
	if timing {
		mu = a.tmuOf(n)
	}
	if node.tor || node.instant && kind != mix.Poisson {
		// Forwards at once: the input at the same instant.
		kind, mu = mix.Poisson, 0
	}
	// Candidate ranges per output, and the dense weight array over their
	// union.
	type span struct {
		lo, hi int64
		w      float64
		j      int64
		cut    bool // candidates older than the window were trimmed away
	}
	spans := make([]span, 0, len(outs))
	for _, o := range outs {
		j := o.out - l.outBase
		if j < 0 || j >= int64(len(l.outT)) {
			lost += o.w
			continue
		}
		if node.corrupt {
			if t := l.outTrue[j]; t < l.inBase {
				lost += o.w
			} else {
				spans = append(spans, span{t, t + 1, o.w, -1, false})
			}
			continue
		}
		var lo, hi int64
		cut := false
		switch kind {
		case mix.Poisson:
			reach := a.m.maxDelay
			if mu > 0 {
				reach = min(reach, a.horizon)
			}
			if timing {
				reach = int64(40 * mu) // exp(−40) ≈ 4e-18: nothing older counts
			}
			k, _ := slices.BinarySearch(l.inT, l.outT[j]-reach)
			lo, hi = l.inBase+int64(k), l.outIn[j]
			// Backward chains can run long (a mix's loop re-enters the
			// first layer from the last), and reach the window's edge.
			cut = k == 0 && l.inBase > 0
			if mu == 0 {
				k, _ := slices.BinarySearch(l.inT, l.outT[j])
				lo = l.inBase + int64(k)
			}
		case mix.Threshold:
			lo = l.outBatch[j]
			hi = lo + int64(a.m.cfg.Mixing.Threshold)
		case mix.TimedPool:
			lo, hi = l.inBase, l.outIn[j]
		}
		hi = min(hi, l.inCount())
		if lo < l.inBase || lo >= hi {
			lost += o.w
			continue
		}
		spans = append(spans, span{lo, hi, o.w, j, cut})
	}
	if len(spans) == 0 {
		return lost
	}
	base, top := spans[0].lo, spans[0].hi
	for _, sp := range spans {
		base, top = min(base, sp.lo), max(top, sp.hi)
	}
	w := make([]float64, top-base)
	switch {
	case node.corrupt:
		for _, sp := range spans {
			w[sp.lo-base] += sp.w
		}
	case (kind == mix.Poisson && mu > 0 || kind == mix.TimedPool) && fixed:
		// Input i's weight for output j is exp(outL_j − inL_i): separable.
		// Per chunk of outputs, prefix sums give each output's normaliser
		// and a difference array each input's share, in linear time.
		diff := make([]float64, top-base+1)
		for c0 := 0; c0 < len(spans); {
			// A chunk shares one reference exponent. Each output's share
			// is w/sum, spread by a running sum of ±w/sum; an output whose
			// candidates all weigh little against the reference has a
			// large w/sum, and its rounding error would stay in the
			// running sum for every later input. So a chunk holds outputs
			// while every one's newest input weighs at least e^-14 against
			// the reference (the error then stays below 1e-9 of any
			// weight).
			c1, oldest := c0, math.Inf(-1)
			for c1 < len(spans) {
				sp := spans[c1]
				o := max(oldest, l.inL[sp.hi-1-l.inBase])
				if c1 > c0 && l.outL[sp.j]-o < -14 {
					break
				}
				oldest = o
				c1++
			}
			ref := l.outL[spans[c1-1].j] // the smallest: every exponent ≤ 0
			lo, hi := spans[c0].lo, spans[c0].hi
			for _, sp := range spans[c0:c1] {
				lo, hi = min(lo, sp.lo), max(hi, sp.hi)
			}
			e := make([]float64, hi-lo)
			pre := make([]float64, hi-lo+1)
			for i := lo; i < hi; i++ {
				e[i-lo] = math.Exp(ref - l.inL[i-l.inBase])
				pre[i-lo+1] = pre[i-lo] + e[i-lo]
			}
			clear(diff)
			for _, sp := range spans[c0:c1] {
				sum := pre[sp.hi-lo] - pre[sp.lo-lo]
				if !(sum > 0) {
					lost += sp.w
					continue
				}
				diff[sp.lo-lo] += sp.w / sum
				diff[sp.hi-lo] -= sp.w / sum
				if a.bound && kind == mix.Poisson && !timing && !sp.cut {
					// The newest input weighs most; n is what the mix held.
					held := l.outIn[sp.j] - (l.outBase + sp.j)
					a.boundMax = max(a.boundMax, e[sp.hi-1-lo]/sum*float64(held))
					a.boundChecks++
				}
			}
			run := 0.0
			for i := lo; i < hi; i++ {
				run += diff[i-lo]
				w[i-base] += e[i-lo] * run
			}
			c0 = c1
		}
	default:
		for _, sp := range spans {
			size := l.outSize[sp.j]
			weight := func(i int64) float64 { return 1 }
			if kind == mix.TimedPool || kind == mix.Poisson && mu > 0 {
				ol := l.outL[sp.j]
				weight = func(i int64) float64 { return math.Exp(ol - l.inL[i-l.inBase]) }
			}
			sum := 0.0
			for i := sp.hi - 1; i >= sp.lo; i-- {
				if !fixed && l.inSize[i-l.inBase] != size {
					continue
				}
				x := weight(i)
				if x < 1e-15 {
					break // older inputs weigh even less
				}
				sum += x
			}
			if !(sum > 0) {
				lost += sp.w
				continue
			}
			for i := sp.hi - 1; i >= sp.lo; i-- {
				if !fixed && l.inSize[i-l.inBase] != size {
					continue
				}
				x := weight(i)
				if x < 1e-15 {
					break
				}
				w[i-base] += sp.w * x / sum
			}
		}
	}
	for k, x := range w {
		if x > 0 {
			emit(base+int64(k), x)
		}
	}
	return lost
}

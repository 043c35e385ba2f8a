package sim

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/sealnet/sealnet/mixnet/mix"
)

// packet kinds
const (
	kindReal      uint8 = iota // a user's message
	kindDrop                   // a user's cover to a random provider (discarded there; answered if Client.Cover is "returns")
	kindLoop                   // a user's loop cover (to its own provider)
	kindRelay                  // a node's loop cover (a mix's or a provider's)
	kindAck                    // a SURB reply: a provider's acknowledgement
	kindRelayDrop              // a node's drop cover
)

const maxPath = 12

// PacketSize is every packet's size on the wire with fixed padding: the
// default geometry's (mixnet.DefaultGeometry().PacketSize(); a test ties
// them).
const PacketSize = 2577

// packet is one packet in flight.
type packet struct {
	path    [maxPath]int32 // node IDs; path[n-1] is the final node
	n, hop  uint8
	kind    uint8
	src     int32 // user ID, or -1-node for a mix's own cover
	dst     int32 // recipient user (real)
	created int64
	size    int32
	prevOut int64 // index of the output event it left the previous node with (-1: from its origin)
	target  int32 // target number, or -1
	msg     int32 // the real message it carries or acknowledges (m.msgs), or -1
	// scored marks the acknowledgement of a scored pair's message (the
	// first copy stored): when it leaves, the colluding recipient's
	// provider opens an acknowledgement-attack window.
	scored bool
	// refusal marks a reply that is a transient refusal, not an
	// acknowledgement (Adv.RefuseAcks): the sender tries again later.
	refusal bool
}

// message is a real message's delivery state: the client retransmits it
// until it is acknowledged (Client.AckTimeout, MaxAttempts), and the
// recipient's provider stores it once, recognising its envelope ID.
type message struct {
	src, dst  int32
	created   int64 // when it was queued: its TTL counts from here
	attempts  uint8
	refused   uint8 // transmissions answered with a transient refusal
	gen       uint8 // which retransmission timer is live (a refusal replaces the acknowledgement timeout's)
	frag      uint8 // the fragment's index in its message
	delivered bool  // stored by the recipient's provider
	settled   bool  // acknowledged, or given up
}

// node is a mix or a provider.
type node struct {
	strat   mix.Strategy[int32]
	due     int64 // time of the scheduled release event, or -1
	layer   int   // 1..L for mixes, 0 for providers and Tor relays
	corrupt bool
	tor     bool // a Tor-like relay: forwards at once
	instant bool // a provider that does not mix (Mixing.At "mixes"): delivers at once
	log     nodeLog
}

// model is one run's state.
type model struct {
	cfg      *Config
	q        queue
	now      int64
	end      int64
	warmup   int64
	rng      *rand.Rand // traffic
	advRng   *rand.Rand // target sampling
	nodes    []node
	P, L, W  int
	pkts     []packet
	free     []int32
	lastArr  map[uint64]int64 // link → last arrival time (FIFO links)
	queued   [][]int32        // per user: real packets waiting for a slot
	contacts [][]int32
	buf      []int32
	mixAll   bool
	maxDelay int64
	stats    stats
	adv      *adversary
	att      *attacks
	targetP  float64
	progress func(done float64)
	nextProg int64
	isTor    []bool
	offline  []bool
	circuit  [][3]int32 // a Tor user's guard, middle, exit
	torBase  int32      // first Tor relay node
	// rec, if set, records what a wire observer would see, as a Trace
	// (tests: the replay of a trace must be the simulator's adversary).
	rec *Trace
	// Every real message of the run (never reused: a late packet of a
	// settled message must still find its own).
	msgs []message
	// One-shot users (Workload.OneShot): online only while some message
	// of theirs is unsettled (pending counts them).
	oneshot []bool
	pending []int32
	// pulled: per user, the targets stored since its last constant-rate
	// fetch, handed over by the next (recorded traces only).
	pulled [][]TraceTarget
}

func newModel(cfg *Config) (*model, error) {
	m := &model{
		cfg: cfg, P: cfg.Providers, L: cfg.Layers, W: cfg.Width,
		end: int64(cfg.Duration.D()), warmup: int64(cfg.Warmup.D()),
		rng:    rand.New(rand.NewPCG(cfg.Seed, 0x5ea1)),
		advRng: rand.New(rand.NewPCG(cfg.Seed, 0xad5)),
		mixAll: cfg.Mixing.At == "all", maxDelay: int64(cfg.Mixing.MaxDelay.D()),
		lastArr: make(map[uint64]int64),
	}
	if m.L+1 > maxPath {
		return nil, fmt.Errorf("%w: too many layers", ErrConfig)
	}
	mc := cfg.mixConfig()
	n := m.P + m.L*m.W
	m.torBase = int32(n)
	if cfg.Tor.Fraction > 0 {
		n += cfg.Tor.Relays
	}
	m.nodes = make([]node, n)
	crng := rand.New(rand.NewPCG(cfg.Seed, 0xc0))
	for i := range m.nodes {
		c := mc
		provInstant := i < m.P && !m.mixAll
		if int32(i) >= m.torBase || provInstant {
			// Tor relays, and providers that do not mix, forward at once,
			// whatever the mixes do.
			c = mix.Config{Kind: mix.Poisson, Capacity: mc.Capacity, MaxDelay: time.Microsecond}
		}
		s, err := mix.New[int32](c, rand.New(rand.NewPCG(cfg.Seed, uint64(i)+1<<32)))
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrConfig, err)
		}
		m.nodes[i] = node{strat: s, due: -1, instant: provInstant}
		switch {
		case int32(i) >= m.torBase:
			m.nodes[i].tor = true
		case i >= m.P:
			m.nodes[i].layer = (i-m.P)/m.W + 1
			m.nodes[i].corrupt = crng.Float64() < cfg.Adv.CorruptRelays
		}
	}
	m.queued = make([][]int32, cfg.Users)
	m.isTor = make([]bool, cfg.Users)
	m.offline = make([]bool, cfg.Users)
	m.oneshot = make([]bool, cfg.Users)
	m.pending = make([]int32, cfg.Users)
	m.circuit = make([][3]int32, cfg.Users)
	if cfg.Tor.Fraction > 0 {
		trng := rand.New(rand.NewPCG(cfg.Seed, 0x707))
		for _, u := range trng.Perm(cfg.Users)[:int(math.Round(cfg.Tor.Fraction*float64(cfg.Users)))] {
			m.isTor[u] = true
			r := trng.Perm(cfg.Tor.Relays)
			m.circuit[u] = [3]int32{m.torBase + int32(r[0]), m.torBase + int32(r[1]), m.torBase + int32(r[2])}
		}
	}
	if cfg.Workload.OneShot > 0 {
		orng := rand.New(rand.NewPCG(cfg.Seed, 0x051))
		for u := range cfg.Users {
			if !m.isTor[u] && orng.Float64() < cfg.Workload.OneShot {
				m.oneshot[u], m.offline[u] = true, true
			}
		}
	}
	m.contacts = makeContacts(cfg, rand.New(rand.NewPCG(cfg.Seed, 0xc0c0)))
	m.adv = newAdversary(m)
	m.att = newAttacks(m)
	// Sample targets among the real messages sent after the warm-up.
	expected := cfg.Workload.MessageRate * float64(cfg.Users) * (cfg.Duration.D() - cfg.Warmup.D()).Seconds()
	m.targetP = min(1, float64(cfg.Adv.Targets)/max(expected, 1))
	return m, nil
}

// makeContacts gives each user Contacts distinct recipients drawn by Zipf
// popularity (rank r has weight 1/r^s; s = 0 is uniform), never itself.
func makeContacts(cfg *Config, rng *rand.Rand) [][]int32 {
	u := cfg.Users
	cdf := make([]float64, u)
	sum := 0.0
	for r := range u {
		sum += 1 / math.Pow(float64(r+1), cfg.Workload.Zipf)
		cdf[r] = sum
	}
	// Popularity rank → user: a random permutation, so that popular users
	// are spread over providers.
	perm := rng.Perm(u)
	out := make([][]int32, u)
	for i := range u {
		k := min(cfg.Workload.Contacts, u-1)
		seen := make(map[int32]bool, k)
		for len(out[i]) < k {
			x := rng.Float64() * sum
			lo, hi := 0, u-1
			for lo < hi {
				mid := (lo + hi) / 2
				if cdf[mid] < x {
					lo = mid + 1
				} else {
					hi = mid
				}
			}
			c := int32(perm[lo])
			if int(c) == i || seen[c] {
				continue
			}
			seen[c] = true
			out[i] = append(out[i], c)
		}
	}
	return out
}

func (m *model) providerOf(u int32) int32 { return u % int32(m.P) }

func (m *model) mixAt(layer, w int) int32 { return int32(m.P + (layer-1)*m.W + w) }

func (m *model) exp(rate float64) int64 {
	if rate <= 0 {
		return math.MaxInt64
	}
	return int64(m.rng.ExpFloat64() / rate * 1e9)
}

func (m *model) latency() int64 {
	l := &m.cfg.Latency
	switch l.Kind {
	case "uniform":
		return int64(l.Min) + m.rng.Int64N(int64(l.Max-l.Min)+1)
	case "exponential":
		return int64(l.Min) + int64(m.rng.ExpFloat64()*float64(l.Mean-l.Min))
	}
	return int64(l.Mean)
}

// hopDelay is the delay a packet's creator drew for one hop (Poisson
// mixing): the clients' mean, or the nodes' own for their cover.
func (m *model) hopDelay(kind uint8) time.Duration {
	mean := m.cfg.Mixing.MeanDelay.D()
	if kind == kindRelay || kind == kindRelayDrop {
		mean = m.cfg.Relay.MeanDelay.D()
	}
	return time.Duration(m.rng.ExpFloat64() * float64(mean))
}

func (m *model) alloc() int32 {
	if n := len(m.free); n > 0 {
		i := m.free[n-1]
		m.free = m.free[:n-1]
		return i
	}
	m.pkts = append(m.pkts, packet{})
	return int32(len(m.pkts) - 1)
}

// newPacket makes a packet from src along one mix per layer to dest.
func (m *model) newPacket(kind uint8, src, dst int32, dest int32) int32 {
	i := m.alloc()
	p := &m.pkts[i]
	*p = packet{kind: kind, src: src, dst: dst, created: m.now, prevOut: -1, target: -1, msg: -1, size: m.size(kind)}
	for l := 1; l <= m.L; l++ {
		p.path[l-1] = m.mixAt(l, m.rng.IntN(m.W))
	}
	p.path[m.L] = dest
	p.n = uint8(m.L + 1)
	return i
}

// size is a packet's size on the wire: fixed, or, unpadded, its
// message's (the sizes of short text messages: 64 B to 2 KiB, log-uniform).
func (m *model) size(kind uint8) int32 {
	if m.cfg.Client.Padding == "fixed" {
		return PacketSize
	}
	return int32(math.Exp(math.Log(64) + m.rng.Float64()*(math.Log(2048)-math.Log(64))))
}

// send puts a packet on the link from its current position to the next
// node. from is the node it leaves, or -1 for a user.
func (m *model) send(i int32, from int32) {
	p := &m.pkts[i]
	to := p.path[p.hop]
	t := m.now + m.latency()
	if m.cfg.Latency.Kind != "fixed" && from >= 0 {
		k := uint64(uint32(from))<<32 | uint64(uint32(to))
		if last := m.lastArr[k]; t < last {
			t = last // links are FIFO
		}
		m.lastArr[k] = t
	}
	m.stats.linkPacket(p)
	if from < 0 && p.hop == 0 && p.src >= 0 {
		if p.msg >= 0 {
			m.sentReal(p)
		}
		if drop, until := m.att.block.blocked(p.src, m.now); drop {
			m.stats.blocked++
			m.release1(i)
			return
		} else if until > 0 {
			t = until + m.latency()
		}
	}
	m.q.push(t, evArrive, i)
}

// newMessage opens the delivery state of fragment frag of a real message.
func (m *model) newMessage(src, dst int32, frag uint8) int32 {
	m.msgs = append(m.msgs, message{src: src, dst: dst, frag: frag, created: m.now})
	id := int32(len(m.msgs) - 1)
	m.pending[src]++
	return id
}

// sentReal: a packet of a real message left its sender. With
// acknowledgements, the client's retransmission timer starts; without,
// the message is settled (nothing will come back).
func (m *model) sentReal(p *packet) {
	ms := &m.msgs[p.msg]
	ms.attempts++
	if !*m.cfg.Workload.Acks || m.isTor[ms.src] {
		m.settle(p.msg)
		return
	}
	wait := int64(m.cfg.Client.AckTimeout.D())
	if j := int64(m.cfg.Client.RetryJitter.D()); j > 0 {
		wait += m.rng.Int64N(j + 1)
	}
	ms.gen++
	m.q.pushB(m.now+wait, evRetry, p.msg, int32(ms.gen))
}

// RefusalBase and RefusalRetryAfter are the sender's pacing of refused
// packets (package sender's refusalBase; TestDefaultsFollowTheCode ties
// MaxRefusedTransmissions to it): the k-th refusal waits at least
// RefusalBase·2^(k−1), and what the provider asked, at least
// RefusalRetryAfter (the least on the wire, one second).
const (
	RefusalBase       = time.Second
	RefusalRetryAfter = time.Second
)

// refusedAck: a transient refusal of message id came back to its sender
// (Adv.RefuseAcks). It is an answer, so not counted against MaxAttempts:
// the packet goes again after the refusal's wait, until the message's TTL.
func (m *model) refusedAck(id int32) {
	ms := &m.msgs[id]
	if ms.settled {
		return
	}
	ms.refused++
	ttl := int64(m.cfg.Client.MessageTTL.D())
	wait := min(max(int64(RefusalRetryAfter), int64(RefusalBase)<<min(int(ms.refused)-1, 40)), ttl)
	if j := int64(m.cfg.Client.RetryJitter.D()); j > 0 {
		wait += m.rng.Int64N(j + 1)
	}
	if m.now+wait >= ms.created+ttl {
		m.stats.failed++ // expired
		m.settle(id)
		return
	}
	ms.gen++ // the acknowledgement timeout's timer is void
	m.q.pushB(m.now+wait, evRetry, id, int32(ms.gen))
}

// retry is a real message's retransmission timer (gen: which one):
// unacknowledged, it goes again on a new path through the sender's Poisson
// stream, until MaxAttempts transmissions went unanswered or its TTL
// passed.
func (m *model) retry(id int32, gen int32) {
	ms := &m.msgs[id]
	switch {
	case ms.settled || int32(ms.gen) != gen:
		return // acknowledged, or a timer a refusal replaced
	case int(ms.attempts)-int(ms.refused) >= m.cfg.Client.MaxAttempts,
		m.now >= ms.created+int64(m.cfg.Client.MessageTTL.D()):
		m.stats.failed++
		m.settle(id)
		return
	}
	i := m.newPacket(kindReal, ms.src, ms.dst, m.providerOf(ms.dst))
	m.pkts[i].msg = id
	m.stats.retransmits++
	u := ms.src
	if m.cfg.Client.Rate == 0 && !m.offline[u] {
		m.send(i, -1)
		return
	}
	m.queued[u] = append(m.queued[u], i)
}

// settle ends a message's delivery state; a one-shot client with nothing
// left to wait for exits.
func (m *model) settle(id int32) {
	ms := &m.msgs[id]
	if ms.settled {
		return
	}
	ms.settled = true
	u := ms.src
	m.pending[u]--
	if m.oneshot[u] && m.pending[u] == 0 && len(m.queued[u]) == 0 {
		m.offline[u] = true
	}
}

// run starts every user's and mix's Poisson processes and processes
// events until the end of simulated time.
func (m *model) run(ctx context.Context) error {
	m.start()
	return m.loop(ctx)
}

func (m *model) start() {
	cfg := m.cfg
	for u := range cfg.Users {
		uu := int32(u)
		if on, off := cfg.Workload.OnlineMean.D(), cfg.Workload.OfflineMean.D(); off > 0 {
			m.offline[u] = m.rng.Float64() < float64(off)/float64(on+off)
			m.q.push(m.toggleIn(u), evToggle, uu)
		}
		if m.isTor[u] {
			m.q.push(m.exp(cfg.Workload.MessageRate), evMsg, uu)
			continue
		}
		if cfg.Client.Rate > 0 {
			m.q.push(m.exp(cfg.Client.Rate), evUser, uu)
		}
		if cfg.Client.LoopRate > 0 {
			m.q.push(m.exp(cfg.Client.LoopRate), evLoop, uu)
		}
		m.q.push(m.exp(cfg.Workload.MessageRate), evMsg, uu)
	}
	if m.rec != nil && cfg.Client.Fetch == "constant" {
		// What the wire shows of constant-rate fetching: one answer per
		// user per interval, at a random phase, whatever it holds.
		m.pulled = make([][]TraceTarget, cfg.Users)
		f := int64(cfg.Client.FetchInterval.D())
		for u := range cfg.Users {
			m.q.push(m.rng.Int64N(f), evPull, int32(u))
		}
	}
	// Mixes and providers run the same cover (relay/cover.go).
	for n := 0; n < int(m.torBase); n++ {
		if cfg.Relay.LoopRate > 0 {
			m.q.push(m.exp(cfg.Relay.LoopRate), evRelayLoop, int32(n))
		}
		if cfg.Relay.DropRate > 0 {
			m.q.push(m.exp(cfg.Relay.DropRate), evRelayDrop, int32(n))
		}
	}
}

// loop processes events until the end of simulated time.
func (m *model) loop(ctx context.Context) error {
	cfg := m.cfg
	step := m.end / 100
	m.nextProg = step
	var n uint64
	for m.q.len() > 0 {
		e := m.q.pop()
		if e.t > m.end {
			break
		}
		m.now = e.t
		n++
		if n&0xffff == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		if m.progress != nil && m.now >= m.nextProg {
			m.progress(float64(m.now) / float64(m.end))
			m.nextProg += step
		}
		switch e.kind {
		case evUser:
			if !m.offline[e.a] {
				m.userTick(e.a)
			}
			m.q.push(m.now+m.exp(cfg.Client.Rate), evUser, e.a)
		case evLoop:
			if !m.offline[e.a] {
				own := m.providerOf(e.a)
				m.send(m.newPacket(kindLoop, e.a, e.a, own), -1)
			}
			m.q.push(m.now+m.exp(cfg.Client.LoopRate), evLoop, e.a)
		case evMsg:
			m.write(e.a)
			m.q.push(m.now+m.exp(cfg.Workload.MessageRate), evMsg, e.a)
		case evInject:
			m.write(e.a)
		case evReply:
			m.writeTo(e.a, e.b)
		case evAckSend:
			m.sendAck(e.a, e.b)
		case evToggle:
			m.offline[e.a] = !m.offline[e.a]
			if !m.offline[e.a] && (cfg.Client.Rate == 0 || m.isTor[e.a]) {
				// Without a Poisson stream, what waited leaves now.
				for _, i := range m.queued[e.a] {
					m.send(i, -1)
				}
				m.queued[e.a] = m.queued[e.a][:0]
			}
			m.q.push(m.toggleIn(int(e.a)), evToggle, e.a)
		case evRelayLoop:
			m.send(m.relayLoop(e.a), e.a)
			m.q.push(m.now+m.exp(cfg.Relay.LoopRate), evRelayLoop, e.a)
		case evRelayDrop:
			m.send(m.newPacket(kindRelayDrop, -1-e.a, -1, int32(m.rng.IntN(m.P))), e.a)
			m.q.push(m.now+m.exp(cfg.Relay.DropRate), evRelayDrop, e.a)
		case evRetry:
			m.retry(e.a, e.b)
		case evPull:
			m.pull(e.a)
			m.q.push(m.now+int64(cfg.Client.FetchInterval.D()), evPull, e.a)
		case evArrive:
			m.arrive(e.a)
		case evRelease:
			m.release(e.a)
		}
	}
	m.stats.events = n
	return nil
}

// write makes a real message from user u to one of its contacts; it
// leaves in u's next Poisson slot, or at once without cover.
func (m *model) write(u int32) {
	cs := m.contacts[u]
	m.writeTo(u, cs[m.rng.IntN(len(cs))])
}

// toggleIn is when user u next goes online or offline.
func (m *model) toggleIn(u int) int64 {
	mean := m.cfg.Workload.OnlineMean.D()
	if m.offline[u] {
		mean = m.cfg.Workload.OfflineMean.D()
	}
	return m.now + int64(m.rng.ExpFloat64()*float64(mean))
}

// relayLoop makes node nd's loop packet as relay/cover.go does: a mix's
// crosses every other layer, starting with the one after its own, and
// comes back to it; a provider's crosses every layer.
func (m *model) relayLoop(nd int32) int32 {
	i := m.alloc()
	p := &m.pkts[i]
	*p = packet{kind: kindRelay, src: -1 - nd, dst: -1, created: m.now, prevOut: -1, target: -1, msg: -1, size: m.size(kindRelay)}
	own := m.nodes[nd].layer // 0 for a provider
	for k := range m.L {
		l := (own+k)%m.L + 1
		if l == own {
			continue
		}
		p.path[p.n] = m.mixAt(l, m.rng.IntN(m.W))
		p.n++
	}
	p.path[p.n] = nd
	p.n++
	return i
}

// maxFragments bounds a message's fragments (Workload.Fragments).
const maxFragments = 64

// writeTo makes a real message from u to `to`: one packet per fragment,
// each acknowledged and retransmitted on its own, as the client does. The
// first fragment is the message the adversary scores.
func (m *model) writeTo(u, to int32) {
	f := 1
	if mean := m.cfg.Workload.Fragments; mean > 1 {
		// Geometric on 1, 2, … with the given mean.
		f = min(1+int(math.Log(1-m.rng.Float64())/math.Log(1-1/mean)), maxFragments)
	}
	if m.oneshot[u] && m.offline[u] {
		m.offline[u] = false // `sealnet send --oneshot` starts the client
	}
	m.stats.realSent++
	target := int32(-1)
	if m.now >= m.warmup && m.advRng.Float64() < m.targetP {
		target = m.adv.newTarget(u, to)
	}
	for k := range f {
		i := m.newPacket(kindReal, u, to, m.providerOf(to))
		m.pkts[i].msg = m.newMessage(u, to, uint8(k))
		if k == 0 {
			m.pkts[i].target = target
		}
		if m.isTor[u] {
			p := &m.pkts[i]
			copy(p.path[:3], m.circuit[u][:])
			p.path[3], p.n = m.providerOf(to), 4
		}
		if (m.cfg.Client.Rate == 0 || m.isTor[u]) && !m.offline[u] {
			m.send(i, -1)
			continue
		}
		m.queued[u] = append(m.queued[u], i)
	}
}

// userTick is one slot of u's Poisson stream: the oldest queued real
// packet, or a drop-cover packet to a random provider.
func (m *model) userTick(u int32) {
	if q := m.queued[u]; len(q) > 0 {
		i := q[0]
		m.queued[u] = q[1:]
		m.send(i, -1)
		return
	}
	m.send(m.newPacket(kindDrop, u, -1, int32(m.rng.IntN(m.P))), -1)
}

// arrive hands a packet to the node it reached.
func (m *model) arrive(i int32) {
	p := &m.pkts[i]
	nd := p.path[p.hop]
	final := int(p.hop) == int(p.n)-1
	from := int32(-1)
	if p.hop > 0 {
		from = p.path[p.hop-1]
	} else if p.kind == kindRelay || p.kind == kindAck {
		from = -1 - p.src
	}
	if final && p.target >= 0 && (m.cfg.Adv.Providers == "recipient" || m.cfg.Adv.Providers == "both") {
		// The adversary knows the target when it reaches the recipient's
		// provider (a corrupt provider tells it). An honest provider's
		// output, the recipient's fetch, is what it sees otherwise
		// (release): after the provider's own delay if it mixes, at once
		// if not.
		m.adv.observe(p.target, p.path[p.hop-1], p.prevOut, m.now, p.size)
		p.target = -1
	}
	if final && p.kind == kindAck {
		// The sender's provider sees a reply land as it arrives, before
		// its own hold.
		m.att.reply(p.dst, m.now)
		m.att.replyAt(p.dst, m.now, p.msg >= 0)
	}
	if final && p.kind == kindReal && m.att.receipt.atProvider {
		// A corrupt recipient's provider sees the message arrive, before
		// its hold.
		ms := &m.msgs[p.msg]
		m.att.arrival(p.msg, p.src, p.dst, m.now, ms.delivered, ms.frag == 0)
	}
	if final && int(nd) >= m.P {
		// A mix's own loop coming back ends here without being mixed: the
		// adversary is assumed to know, so that its count of what a mix
		// holds stays exact.
		m.finish(i)
		return
	}
	if p.hop == 0 && p.src >= 0 {
		// A user's packet, seen as it reaches the entry (as on a capture).
		m.att.sent(p.src, m.now)
	}
	in := m.adv.input(nd, m.now, p, from)
	if m.rec != nil {
		f := from
		if p.hop == 0 {
			f = -1 - p.src
		}
		m.rec.Events = append(m.rec.Events, TraceEvent{T: m.now, From: f, To: nd})
	}
	node := &m.nodes[nd]
	it := mix.Item[int32]{Value: i, Arrived: time.Unix(0, m.now)}
	if !node.tor && !node.instant {
		it.Delay = m.hopDelay(p.kind)
	}
	p.prevOut = in // from here: the input index, until it leaves
	if err := node.strat.Add(time.Unix(0, m.now), it); err != nil {
		m.stats.dropped++
		m.release1(i)
		return
	}
	m.schedule(nd)
}

// schedule makes sure a release event is due when the node's strategy is.
func (m *model) schedule(nd int32) {
	node := &m.nodes[nd]
	next, ok := node.strat.Next()
	if !ok {
		return
	}
	t := max(next.UnixNano(), m.now)
	if node.due >= 0 && node.due <= t {
		return
	}
	node.due = t
	m.q.push(t, evRelease, nd)
}

// release lets out what a node's strategy has due.
func (m *model) release(nd int32) {
	node := &m.nodes[nd]
	if node.due != m.now {
		return // a stale event: an earlier one was scheduled since
	}
	node.due = -1
	m.buf = node.strat.Release(time.Unix(0, m.now), m.buf[:0])
	m.adv.releaseStart(nd, len(m.buf))
	for _, i := range m.buf {
		p := &m.pkts[i]
		out := m.adv.output(nd, m.now, p.prevOut, p.size)
		if int(p.hop) == int(p.n)-1 {
			if m.pulled != nil {
				if p.target >= 0 {
					tg := m.adv.targets[p.target]
					// Latency holds the creation time until the fetch.
					m.pulled[p.dst] = append(m.pulled[p.dst], TraceTarget{Sender: tg.sender, Recipient: tg.recipient, Latency: time.Duration(p.created)})
				}
			} else if m.rec != nil && (p.kind == kindReal && !m.msgs[p.msg].delivered || p.kind == kindLoop || p.kind == kindAck) {
				// What a fetch hands the user: new mail, a loop, a reply
				// (a retransmission is not stored, so no fetch shows it).
				// The page is classified as the client's pause before
				// acknowledging it shows (docs/measure.md §5.1), here
				// without error.
				page := int8(1)
				if p.kind == kindLoop || p.kind == kindAck && p.msg < 0 {
					page = -1
				}
				m.rec.Events = append(m.rec.Events, TraceEvent{T: m.now, From: nd, To: -1 - p.dst, Page: page})
				if p.target >= 0 {
					tg := m.adv.targets[p.target]
					m.rec.Targets = append(m.rec.Targets, TraceTarget{Sender: tg.sender, Recipient: tg.recipient, Event: len(m.rec.Events) - 1,
						Latency: time.Duration(m.now - p.created)})
				}
			}
			if p.target >= 0 {
				// An honest recipient's provider mixed it too; the adversary
				// sees it when the recipient fetches it (at once: clients
				// long-poll).
				m.adv.observe(p.target, nd, out, m.now, p.size)
			}
			m.finish(i)
			continue
		}
		p.prevOut = out
		p.hop++
		m.send(i, nd)
	}
	m.schedule(nd)
}

// finish ends a packet at its final node.
func (m *model) finish(i int32) {
	p := &m.pkts[i]
	dest := p.path[p.n-1]
	acked := int32(-1) // who gets an acknowledgement through the SURB
	scored := false    // the acknowledgement of a message's first stored copy
	msg, kind := p.msg, p.kind
	switch kind {
	case kindReal:
		ms := &m.msgs[msg]
		if !m.att.receipt.atProvider {
			// An honest provider: the arrival shows only as the
			// recipient's fetch (a long poll answered), after the hold.
			m.att.arrival(msg, p.src, p.dst, m.now, ms.delivered, ms.frag == 0)
		}
		if ms.delivered {
			// A retransmission: the provider recognises the envelope ID,
			// stores nothing, and acknowledges again.
			acked = p.src
			break
		}
		ms.delivered = true
		m.att.mailbox(p.dst, m.now)
		m.att.deliveryAt(p.dst, m.now, false)
		if ms.frag > 0 {
			// A later fragment: acknowledged, not counted as a message.
			if !m.isTor[p.src] {
				acked = p.src
			}
			break
		}
		if m.isTor[p.src] {
			m.stats.torDelivered(m.now - p.created)
			break // no SURB, no acknowledgement
		}
		m.stats.delivered(m.now - p.created)
		scored = true
		acked = p.src
		if r := m.cfg.Workload.ReplyProb; r > 0 && m.rng.Float64() < r {
			d := int64(m.rng.ExpFloat64() * float64(m.cfg.Workload.ReplyDelay.D()))
			m.q.pushB(m.now+d, evReply, p.dst, p.src)
		}
	case kindLoop:
		m.att.mailbox(p.dst, m.now)
		m.att.deliveryAt(p.dst, m.now, true)
		acked = p.src
	case kindDrop:
		if m.cfg.Client.Cover == "returns" {
			acked = p.src // cover is answered like any request
		}
	case kindAck:
		if msg >= 0 && p.refusal {
			m.refusedAck(msg)
		} else if msg >= 0 {
			m.settle(msg)
		}
	}
	m.release1(i)
	if acked >= 0 && kind == kindReal && m.cfg.Adv.WithholdAcks && m.att.withheld(m.msgs[msg].dst) {
		acked = -1 // the corrupt provider keeps the acknowledgement
	}
	refusal := acked >= 0 && kind == kindReal && m.cfg.Adv.RefuseAcks && m.att.withheld(m.msgs[msg].dst)
	if acked >= 0 && *m.cfg.Workload.Acks {
		a := m.newPacket(kindAck, -1-dest, acked, m.providerOf(acked))
		if kind == kindReal {
			m.pkts[a].msg = msg
			m.pkts[a].scored = scored
			m.pkts[a].refusal = refusal // answered "later", not acknowledged
		}
		if d := m.cfg.Workload.AckDelay.D(); d > 0 {
			m.q.pushB(m.now+int64(m.rng.ExpFloat64()*float64(d)), evAckSend, a, dest)
		} else {
			m.sendAck(a, dest)
		}
	}
}

// pull is user u's constant-rate fetch on a recorded trace: an answer
// from its provider whatever the mailbox holds, handing over the targets
// stored since the last one. An offline user does not fetch; what waits
// goes with its first fetch back.
func (m *model) pull(u int32) {
	if m.offline[u] {
		return
	}
	m.rec.Events = append(m.rec.Events, TraceEvent{T: m.now, From: m.providerOf(u), To: -1 - u})
	for _, tg := range m.pulled[u] {
		tg.Event = len(m.rec.Events) - 1
		tg.Latency = time.Duration(m.now) - tg.Latency
		m.rec.Targets = append(m.rec.Targets, tg)
	}
	m.pulled[u] = m.pulled[u][:0]
}

// sendAck puts a provider's reply into the network. The colluding
// recipient's provider knows the moment (its hold is its own): for a
// scored message, the acknowledgement attack's window opens now.
func (m *model) sendAck(a, from int32) {
	if p := &m.pkts[a]; p.scored {
		ms := &m.msgs[p.msg]
		m.att.delivered(ms.src, ms.dst, m.now)
	}
	m.send(a, from)
}

func (m *model) release1(i int32) { m.free = append(m.free, i) }

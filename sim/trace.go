package sim

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// A Trace is what an observer recorded on a real network (docs/measure.md):
// every packet that crossed a link, as an event in time order, and the
// ground truth of the messages the workload sent. AnalyzeTrace runs the
// simulator's adversary and long-term attacks on it, so that the figures of
// a real network and of its simulation come from the same code.
//
// Nodes are numbered as in the simulator: providers 0..Providers−1, then
// the mixes layer by layer, Width per layer. User u's provider must be
// u mod Providers.
type Trace struct {
	// Contacts are the recipients each user writes to (the statistical
	// disclosure attack's ground truth; the first is the acknowledgement
	// attack's pair).
	Contacts [][]int32
	// Events are the observed link events, sorted by time.
	Events []TraceEvent
	// Targets are the real messages to score, each tied to the event that
	// delivered it to its recipient.
	Targets []TraceTarget
	// Sent is how many real messages the workload wrote in all.
	Sent int
	// Pulls: the clients fetched at a constant rate, so a mail event is
	// every fetch answered, whatever it held: none shows an arrival, and
	// the attacks that need one (receipt by fetch timing, the
	// acknowledgement attack's storage time) get none.
	Pulls bool
	// Warmup: events before it build up the adversary's view; rounds of
	// the disclosure attacks start after it. End is the end of the
	// observation. Both in nanoseconds from the trace's origin, as T.
	Warmup, End int64
}

// TraceEvent is one packet on one link.
type TraceEvent struct {
	T int64 // nanoseconds from the trace's origin
	// From is the node the packet left, or −1−u for user u's link to an
	// entry mix. To is the node it reached, or −1−u for a mail event: the
	// provider From handed something to its user u (a fetch answered).
	From, To int32
	// Page, for a mail event, is what the observer took the page for: +1
	// the user's mail or a reply to its own message, −1 only its loop's
	// return, 0 unknown. Pages taken for real feed the disclosure attacks
	// "fed by returns" (docs/sim.md §3.9): each counts as a send (an
	// acknowledgement) and a receipt (mail) of the user.
	Page int8
}

// TraceTarget is a real message, delivered by the mail event Event.
type TraceTarget struct {
	Sender, Recipient int32
	Event             int
	// Latency from the message's writing to its receipt, if known.
	Latency time.Duration
}

// ErrTrace is wrapped by AnalyzeTrace's errors about the trace itself.
var ErrTrace = errors.New("sim: invalid trace")

// traceSize is the size a trace's packets are given: every link record has
// one size, so it carries no information.
const traceSize = PacketSize

// AnalyzeTrace scores tr with the adversary and attacks of cfg, which
// gives the network's shape (Users, Providers, Layers, Width), the mixing
// the adversary assumes (kind poisson, mean_delay) and the attacks'
// parameters; cfg's traffic settings are not used. Use Adv.Estimator
// "timing" (required): a wire observer cannot count what a mix holds.
func AnalyzeTrace(ctx context.Context, cfg *Config, tr *Trace) (*Result, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.Adv.Estimator != "timing" {
		return nil, fmt.Errorf("%w: a trace needs adversary.estimator = \"timing\": nobody on the wire can count what a mix holds", ErrConfig)
	}
	if cfg.Tor.Fraction > 0 || cfg.Adv.CorruptRelays > 0 {
		return nil, fmt.Errorf("%w: a trace has no Tor population and no corrupt mixes", ErrConfig)
	}
	if err := tr.check(cfg); err != nil {
		return nil, err
	}
	m, err := newModel(cfg)
	if err != nil {
		return nil, err
	}
	m.contacts = tr.Contacts
	m.att = newAttacks(m) // its targets are drawn from the contacts
	m.warmup, m.end = tr.Warmup, tr.End
	m.att.roundEnd = m.warmup + m.att.round
	byEvent := make(map[int][]int32, len(tr.Targets))
	for _, tg := range tr.Targets {
		id := m.adv.newTarget(tg.Sender, tg.Recipient)
		byEvent[tg.Event] = append(byEvent[tg.Event], id)
		m.stats.delivered(int64(tg.Latency))
	}
	m.stats.realSent = uint64(tr.Sent)
	p := packet{size: traceSize}
	for i, e := range tr.Events {
		if i&0xffff == 0 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		m.now = e.T
		m.stats.events++
		if e.From < 0 {
			u := -1 - e.From
			p.hop, p.src, p.prevOut = 0, u, -1
			m.adv.input(e.To, e.T, &p, -1)
			m.att.sent(u, e.T)
			m.stats.linkPackets++
			m.stats.coverBytes += traceSize
			continue
		}
		m.adv.releaseStart(e.From, 1)
		out := m.adv.output(e.From, e.T, -1, traceSize)
		if e.To < 0 {
			u := -1 - e.To
			for _, id := range byEvent[i] {
				m.adv.observe(id, e.From, out, e.T, traceSize)
				if tr.Pulls {
					continue // nothing on the wire tells this fetch from another
				}
				tg := m.adv.targets[id]
				m.att.delivered(tg.sender, tg.recipient, e.T)
				m.att.arrival(-1, tg.sender, tg.recipient, e.T, false, true)
			}
			// A wire observer sees the fetch answered, not what it held:
			// a message, a loop or an acknowledgement alike.
			m.att.mailbox(u, e.T)
			m.att.reply(u, e.T)
			if e.Page != 0 {
				m.att.returns.page(u, e.T, e.Page > 0)
			}
			continue
		}
		p.hop, p.src, p.prevOut = 1, -1, out
		m.adv.input(e.To, e.T, &p, e.From)
		m.stats.linkPackets++
		m.stats.coverBytes += traceSize
	}
	m.stats.realDeliv = uint64(len(tr.Targets))

	res := m.result()
	res.SimTime = float64(tr.End) / 1e9
	res.Overhead = 0 // real and cover packets are not told apart on the wire
	return res, nil
}

func (tr *Trace) check(cfg *Config) error {
	bad := func(f string, a ...any) error { return fmt.Errorf("%w: "+f, append([]any{ErrTrace}, a...)...) }
	nodes := int32(cfg.Providers + cfg.Layers*cfg.Width)
	users := int32(cfg.Users)
	if len(tr.Contacts) != cfg.Users {
		return bad("%d contact lists for %d users", len(tr.Contacts), cfg.Users)
	}
	for u, cs := range tr.Contacts {
		if len(cs) == 0 {
			return bad("user %d has no contacts", u)
		}
		for _, c := range cs {
			if c < 0 || c >= users || int(c) == u {
				return bad("user %d: contact %d out of range", u, c)
			}
		}
	}
	if tr.Warmup < 0 || tr.End <= tr.Warmup {
		return bad("warm-up %d and end %d: want 0 ≤ warm-up < end", tr.Warmup, tr.End)
	}
	var last int64
	for i, e := range tr.Events {
		switch {
		case e.T < last || e.T < 0:
			return bad("event %d is out of time order", i)
		case e.From < -users || e.From >= nodes || e.To < -users || e.To >= nodes:
			return bad("event %d names an unknown node or user", i)
		case e.From < 0 && (e.To < int32(cfg.Providers) || e.To >= int32(cfg.Providers+cfg.Width)):
			return bad("event %d: a user's packet must reach an entry mix", i)
		case e.To < 0 && (e.From < 0 || e.From >= int32(cfg.Providers) || (-1-e.To)%int32(cfg.Providers) != e.From):
			return bad("event %d: a mail event must come from the user's own provider", i)
		}
		last = e.T
	}
	for i, tg := range tr.Targets {
		switch {
		case tg.Sender < 0 || tg.Sender >= users || tg.Recipient < 0 || tg.Recipient >= users:
			return bad("target %d names an unknown user", i)
		case tg.Event < 0 || tg.Event >= len(tr.Events) || tr.Events[tg.Event].To != -1-tg.Recipient:
			return bad("target %d: event %d is not a mail event of its recipient", i, tg.Event)
		}
	}
	return nil
}

// Observe simulates cfg and returns what a wire observer of the simulated
// network records, as a Trace: every packet on a link (the nodes' own
// cover and acknowledgements looking like any other), every fetch that
// hands a user mail, and the targets. AnalyzeTrace of it is the prediction
// for a capture of a real network run with cfg's parameters: the same
// observer, with the same blind spots (docs/measure.md §4).
func Observe(ctx context.Context, cfg *Config) (*Trace, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	m, err := newModel(cfg)
	if err != nil {
		return nil, err
	}
	m.rec = &Trace{}
	if err := m.run(ctx); err != nil {
		return nil, err
	}
	tr := m.rec
	tr.Contacts, tr.Warmup, tr.End, tr.Sent = m.contacts, m.warmup, m.end, int(m.stats.realSent)
	tr.Pulls = cfg.Client.Fetch == "constant"
	return tr, nil
}

// Contacts returns the contact graph cfg's workload gives its users: the
// same lists a simulation of cfg uses, so that a workload driven on a real
// network (sealnet testnet load) and its simulation agree on who writes to
// whom.
func Contacts(cfg *Config) ([][]int32, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	m, err := newModel(cfg)
	if err != nil {
		return nil, err
	}
	return m.contacts, nil
}

// Package measure turns a packet capture of a testnet into the simulator
// adversary's view and scores the simulator's attacks on it against the
// workload's ground truth (`sealnet sim analyze`, docs/measure.md).
//
// The observer it models has exactly what the capture gives: which link
// each fixed-size record crossed, and when; who sits at which address
// (the testnet's manifest for the nodes, the workload's user list for the
// users); and, on each user's link to its provider, when a fetch was
// answered early — the wire's sign that mail arrived. It never decrypts
// anything; the ground truth is used only to pick the targets and to
// score the answers.
package measure

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"time"

	"github.com/sealnet/sealnet/internal/config"
	"github.com/sealnet/sealnet/internal/testbed/capture"
	"github.com/sealnet/sealnet/internal/testbed/load"
	"github.com/sealnet/sealnet/internal/testbed/testnet"
	"github.com/sealnet/sealnet/relay"
	"github.com/sealnet/sealnet/sender"
	"github.com/sealnet/sealnet/sim"
)

// Record kinds on the wire (docs/link.md §1).
const (
	kindPeer   = 1
	kindClient = 2
	kindUser   = 3
)

// Accounting says where every record and every message went.
type Accounting struct {
	Messages    int `json:"messages"`    // written by the workload
	Scored      int `json:"scored"`      // delivered after the warm-up, matched to a mail event
	Warmup      int `json:"warmup"`      // delivered during the warm-up (not scored)
	Undelivered int `json:"undelivered"` // never shown to the recipient
	Failed      int `json:"failed"`      // reported not delivered to the sender
	Unmatched   int `json:"unmatched"`   // delivered, but no mail event on the wire explains it

	Records      int `json:"records"`      // link records in the capture
	LinkEvents   int `json:"link_events"`  // records attributed to a user→mix or node→node link
	MailEvents   int `json:"mail_events"`  // fetches answered early
	UserRecords  int `json:"user_records"` // records on user links (fetches)
	Direct       int `json:"direct"`       // records on client links to providers (direct delivery)
	Unattributed int `json:"unattributed"` // records whose ends are not testnet nodes or workload users
	Outside      int `json:"outside_run"`  // records before the workload started or after it ended
	Conns        int `json:"connections"`  // link connections
	Events       int `json:"trace_events"` // events handed to the adversary
	// MatchLagMax is the longest time, in seconds, between a scored
	// message's mail event on the wire and the client showing it.
	MatchLagMax float64 `json:"match_lag_max_s"`
}

// Analysis is one analysed capture.
type Analysis struct {
	Truth     *load.Truth
	Trace     *sim.Trace
	Acct      Accounting
	Config    *sim.Config // the adversary's, used for both the trace and the prediction
	Measured  *sim.Result
	Predicted *sim.Result
	Figures   []sim.Compared
	// Capture's own counters.
	Capture capture.Stats
	// FetchTiming compares how fast the provider answered fetches that
	// handed the user something real with the others (fetchtiming.go).
	FetchTiming FetchTiming
	// PageGap is loop stripping on the wire, by the client's pause before
	// it acknowledges a page (pagegap.go).
	PageGap PageGap
}

// Options tune Analyze.
type Options struct {
	// FetchWait is the clients' long-poll time; a fetch answered earlier
	// than FetchWait − 1s means mail arrived. Default: the client default.
	FetchWait time.Duration
	// NoPrediction skips the simulation.
	NoPrediction bool
}

// ErrNoEvents means the capture held nothing the analysis could use.
var ErrNoEvents = errors.New("measure: no link events attributable to the testnet in the capture")

// Analyze maps the capture onto the testnet and the workload, runs the
// adversary on it, and simulates the same parameters for the prediction.
func Analyze(ctx context.Context, nw *testnet.Network, truth *load.Truth, capt *capture.Capture, o Options) (*Analysis, error) {
	if !nw.Spec.HostPerNode {
		return nil, errors.New("measure: the testnet's nodes share one address, so the capture cannot tell them apart; measure on a testnet made with --host-per-node")
	}
	if o.FetchWait == 0 {
		o.FetchWait = sender.DefaultSettings().FetchWait // what the driver's clients use
	}
	cfg, err := adversaryConfig(nw, truth)
	if err != nil {
		return nil, err
	}
	a := &Analysis{Truth: truth, Config: cfg, Capture: capt.Stats}
	tr, err := a.buildTrace(nw, capt, o.FetchWait)
	if err != nil {
		return nil, err
	}
	a.Trace = tr
	if a.Measured, err = sim.AnalyzeTrace(ctx, cfg, tr); err != nil {
		return nil, err
	}
	if !o.NoPrediction {
		// The prediction is the same observer on the simulated network's
		// wire: node-made packets look forwarded there too.
		st, err := sim.Observe(ctx, cfg)
		if err != nil {
			return nil, err
		}
		if a.Predicted, err = sim.AnalyzeTrace(ctx, cfg, st); err != nil {
			return nil, err
		}
		a.Figures = compare(a.Predicted, a.Measured)
	}
	return a, nil
}

// adversaryConfig is the scenario the workload ran, with the testnet's
// shape and relay cover, loopback latency, and the wire observer's
// adversary.
func adversaryConfig(nw *testnet.Network, truth *load.Truth) (*sim.Config, error) {
	c := *truth.Scenario
	if err := load.Shape(&c, nw); err != nil {
		return nil, err
	}
	// The nodes' own cover and mixing, exactly as they ran: mixes and
	// providers alike send cover (relay/cover.go), loops at the network's
	// relay_loop_rate and every hop at its mean_delay, capped at its
	// max_delay (the authorities' [parameters]); drops as each relay is
	// configured. The simulator has one setting for all, so nodes that
	// differ are refused.
	params, err := nw.Parameters()
	if err != nil {
		return nil, err
	}
	// What every client and provider ran with: the network's parameters
	// (the driver refused a scenario that differed).
	_ = load.Parameters(&c, params)
	c.Relay.DropRate = 0
	first := true
	for _, node := range nw.Nodes {
		if node.Role != "mix" && node.Role != "provider" {
			continue
		}
		rc, err := nw.RelayConfig(node)
		if err != nil {
			return nil, err
		}
		if err := rc.Validate(); err != nil {
			return nil, err
		}
		if rc.Cover.LoopRate != nil || rc.Cover.MeanDelay != nil || rc.Mixing.MaxDelay != nil {
			// Written before relays followed the directory: they ran
			// with these, which the folder no longer tells apart from
			// the network's.
			return nil, fmt.Errorf("measure: node %s's configuration sets cover.loop_rate, cover.mean_delay or mixing.max_delay: this testnet was made before relays took them from the directory's parameters; analyse it with the sealnet that ran it", node.Name)
		}
		if first {
			c.Relay.DropRate, c.Mixing.Kind, first = rc.Cover.DropRate, rc.Mixing.Strategy, false
			continue
		}
		if rc.Cover.DropRate != c.Relay.DropRate || rc.Mixing.Strategy != c.Mixing.Kind {
			return nil, fmt.Errorf("measure: node %s's cover or mixing differs from the other nodes'; the simulator models one setting for all", node.Name)
		}
	}
	if relay.ProvidersHoldFinalHop {
		c.Mixing.At = "all"
	} else {
		c.Mixing.At = "mixes"
	}
	c.Latency = sim.Latency{Kind: "fixed", Mean: config.Duration(500 * time.Microsecond)} // loopback plus a hop's processing
	c.Adv.Estimator = "timing"
	c.Adv.Providers = "none" // the wire shows the fetches
	c.Adv.Targets = 1_000_000
	c.Adv.CorruptRelays = 0
	if err := c.Check(); err != nil {
		return nil, err
	}
	return &c, nil
}

// endpoints maps addresses to the simulator's node and user numbers.
type endpoints struct {
	listener map[netip.AddrPort]int32 // node listeners
	host     map[netip.Addr]int32     // node hosts (where they dial from)
	user     map[netip.Addr]int32
	P, W     int
}

func newEndpoints(nw *testnet.Network, truth *load.Truth) (*endpoints, error) {
	e := &endpoints{listener: map[netip.AddrPort]int32{}, host: map[netip.Addr]int32{}, user: map[netip.Addr]int32{},
		P: nw.Spec.Providers, W: nw.Spec.Width}
	inLayer := map[int]int{}
	prov := 0
	for k, n := range nw.Nodes {
		var id int32
		switch n.Role {
		case "mix":
			id = int32(e.P + (n.Layer-1)*e.W + inLayer[n.Layer])
			inLayer[n.Layer]++
		case "provider":
			id = int32(prov)
			prov++
		default:
			continue
		}
		ap, err := netip.ParseAddrPort(n.Address)
		if err != nil {
			return nil, fmt.Errorf("measure: node %s: address %q: %w", n.Name, n.Address, err)
		}
		e.listener[ap] = id
		e.host[netip.MustParseAddr(testnet.NodeHost(k))] = id
	}
	for u, us := range truth.Users {
		a, err := netip.ParseAddr(us.Host)
		if err != nil {
			return nil, fmt.Errorf("measure: user %s: host %q: %w", us.Address, us.Host, err)
		}
		e.user[a] = int32(u)
	}
	return e, nil
}

// mailEvent is a fetch answered early: provider p handed user u its mail.
// ackGap is the time from the response's last record to the client's next
// request on the link (its acknowledgement of the page); -1 if none came.
type mailEvent struct {
	t      int64
	p, u   int32
	ackGap int64
	page   int8 // the page-gap classifier's verdict (sim.TraceEvent.Page)
}

// answer is one response of a provider on a user link: when it started
// and how long after the request before it.
type answer struct {
	t, latency int64
	u          int32
}

func (a *Analysis) buildTrace(nw *testnet.Network, capt *capture.Capture, fetchWait time.Duration) (*sim.Trace, error) {
	truth := a.Truth
	ep, err := newEndpoints(nw, truth)
	if err != nil {
		return nil, err
	}
	origin := truth.Started
	end := truth.Ended.Sub(origin).Nanoseconds()
	acct := &a.Acct
	acct.Records, acct.Conns = len(capt.Records), len(capt.Conns)
	at := func(t time.Time) int64 { return t.Sub(origin).Nanoseconds() }

	// Per connection: who is at each end.
	type connInfo struct {
		from, to int32 // sim numbering; from −1−u for a user
		use      uint8 // 0 skip, 1 link event, 2 user link (fetches)
	}
	info := make([]connInfo, len(capt.Conns))
	for i, c := range capt.Conns {
		to, okTo := ep.listener[c.Listener]
		switch c.Kind {
		case kindPeer:
			from, ok := ep.host[c.Dialer.Addr()]
			if ok && okTo {
				info[i] = connInfo{from: from, to: to, use: 1}
			}
		case kindClient:
			u, ok := ep.user[c.Dialer.Addr()]
			if ok && okTo && int(to) >= ep.P && int(to) < ep.P+ep.W {
				info[i] = connInfo{from: -1 - u, to: to, use: 1}
			} else if ok && okTo && int(to) < ep.P {
				info[i] = connInfo{use: 3} // direct delivery to a provider
			}
		case kindUser:
			u, ok := ep.user[c.Dialer.Addr()]
			if ok && okTo && int(to) < ep.P {
				info[i] = connInfo{from: to, to: -1 - u, use: 2}
			}
		}
	}

	var events []sim.TraceEvent
	// Fetch answers. With constant-rate fetching every response is one
	// (docs/measure.md §3). With long polls: per user link, a response
	// that starts less than fetchWait − 1s after the request before it is
	// mail arriving. A page
	// with mail is acknowledged at once (sender/receive.go), and the answer
	// to that acknowledgement is the next response: not mail.
	type fetchState struct {
		lastUp   int64
		up       bool
		lastMail int64
		ackNext  bool
		lastDown int64
		awaitAck int // index+1 into mails of the last mail event whose acknowledgement is due
	}
	fetch := make(map[int32]*fetchState)
	var mails []mailEvent
	pull := truth.Scenario.Client.Fetch == "constant"
	var answers []answer
	early := (fetchWait - time.Second).Nanoseconds()
	for _, r := range capt.Records {
		t := at(r.T)
		ci := info[r.Conn]
		if t < 0 || t > end {
			acct.Outside++
			continue
		}
		switch ci.use {
		case 0:
			acct.Unattributed++
		case 3:
			acct.Direct++
		case 1:
			if !r.Up {
				acct.Unattributed++ // peer and client links are one-way
				continue
			}
			events = append(events, sim.TraceEvent{T: t, From: ci.from, To: ci.to})
			acct.LinkEvents++
		case 2:
			acct.UserRecords++
			fs := fetch[r.Conn]
			if fs == nil {
				fs = &fetchState{lastMail: math.MinInt64 / 2}
				fetch[r.Conn] = fs
			}
			if r.Up {
				if fs.awaitAck > 0 && !fs.up {
					mails[fs.awaitAck-1].ackGap = t - fs.lastDown
					fs.awaitAck = 0
				}
				fs.lastUp, fs.up = t, true
				continue
			}
			fs.lastDown = t
			if !fs.up {
				continue // the rest of a response
			}
			fs.up = false
			answers = append(answers, answer{t: t, latency: t - fs.lastUp, u: -1 - ci.to})
			if pull {
				// Constant-rate fetching: every answer looks alike, so
				// every answer is a mail event (a page that may hold
				// anything); the pause to the next request is measured
				// all the same.
				mails = append(mails, mailEvent{t: t, p: ci.from, u: -1 - ci.to, ackGap: -1})
				fs.awaitAck = len(mails)
				continue
			}
			if fs.ackNext && t-fs.lastMail < int64(time.Second) {
				fs.ackNext = false
				continue
			}
			fs.ackNext = false
			if t-fs.lastUp < early {
				mails = append(mails, mailEvent{t: t, p: ci.from, u: -1 - ci.to, ackGap: -1})
				fs.lastMail, fs.ackNext = t, true
				fs.awaitAck = len(mails)
			}
		}
	}
	acct.MailEvents = len(mails)
	a.PageGap = pageGapAttack(mails, truth, at)
	a.FetchTiming = fetchTimingTest(answers, truth, at)
	for _, m := range mails {
		events = append(events, sim.TraceEvent{T: m.t, From: m.p, To: -1 - m.u, Page: m.page})
	}
	slices.SortStableFunc(events, func(x, y sim.TraceEvent) int {
		switch {
		case x.T < y.T:
			return -1
		case x.T > y.T:
			return 1
		}
		return 0
	})
	if acct.LinkEvents == 0 {
		return nil, ErrNoEvents
	}
	acct.Events = len(events)

	// Mail events of each user, in time order, by event index.
	mailIdx := map[int32][]int{}
	for i, e := range events {
		if e.To < 0 {
			mailIdx[-1-e.To] = append(mailIdx[-1-e.To], i)
		}
	}
	warm := int64(truth.Warmup * 1e9)
	tr := &sim.Trace{Events: events, Sent: len(truth.Messages), Warmup: warm, End: end, Pulls: pull}
	for _, us := range truth.Users {
		tr.Contacts = append(tr.Contacts, us.Contacts)
	}
	acct.Messages = len(truth.Messages)
	for _, m := range truth.Messages {
		switch {
		case m.Received.IsZero() && m.Failed != "":
			acct.Failed++
			continue
		case m.Received.IsZero():
			acct.Undelivered++
			continue
		}
		recv := at(m.Received)
		// The latest mail event of the recipient at most 5 s before the
		// client showed the message (and not after it, bar clock jitter).
		idx := mailIdx[m.To]
		k, _ := slices.BinarySearchFunc(idx, recv+int64(50*time.Millisecond), func(i int, t int64) int {
			if events[i].T < t {
				return -1
			}
			return 1
		})
		if k == 0 || recv-events[idx[k-1]].T > int64(5*time.Second) {
			acct.Unmatched++
			continue
		}
		ev := idx[k-1]
		acct.MatchLagMax = max(acct.MatchLagMax, float64(recv-events[ev].T)/1e9)
		if at(m.Queued) < warm {
			acct.Warmup++
			continue
		}
		acct.Scored++
		tr.Targets = append(tr.Targets, sim.TraceTarget{Sender: m.From, Recipient: m.To, Event: ev, Latency: m.Received.Sub(m.Queued)})
	}
	return tr, nil
}

// compare pairs the figures of the prediction and the measurement.
func compare(pred, meas *sim.Result) []sim.Compared {
	var out []sim.Compared
	out = append(out, sim.Compared{Name: "entropy (bits)",
		Pred: pred.Entropy.Mean, PredLo: pred.Entropy.Mean - pred.Entropy.CI95, PredHi: pred.Entropy.Mean + pred.Entropy.CI95,
		Meas: meas.Entropy.Mean, MeasLo: meas.Entropy.Mean - meas.Entropy.CI95, MeasHi: meas.Entropy.Mean + meas.Entropy.CI95})
	rate := func(name, short string, p float64, pn int, m float64, mn int) {
		c := sim.Compared{Name: name, Short: short, Pred: p, Meas: m}
		c.PredLo, c.PredHi = sim.Wilson(math.Round(p*float64(pn)), float64(pn))
		c.MeasLo, c.MeasHi = sim.Wilson(math.Round(m*float64(mn)), float64(mn))
		out = append(out, c)
	}
	if len(pred.TopK) > 0 && len(meas.TopK) > 0 {
		rate("top-1 linking", "top-1", pred.TopK[0].Accuracy, pred.Targets, meas.TopK[0].Accuracy, meas.Targets)
	}
	for i := range min(len(pred.TPR), len(meas.TPR)) {
		if pred.TPR[i].FPR == 1e-2 {
			rate("flow match TPR@FPR 1e-2", "TPR@1e-2", pred.TPR[i].TPR, pred.Targets, meas.TPR[i].TPR, meas.Targets)
		}
	}
	pd, md := pred.Disclosure, meas.Disclosure
	if n := min(len(pd.SDA), len(md.SDA)); n > 0 {
		rate(fmt.Sprintf("disclosure (SDA, %d rounds)", pd.Checkpoints[n-1]), "SDA", pd.SDA[n-1], pd.Targets, md.SDA[n-1], md.Targets)
	}
	rate("intersection", "intersection", pd.Intersection, pd.Targets, md.Intersection, md.Targets)
	if n := min(len(pd.Ack), len(md.Ack)); n > 0 {
		rate(fmt.Sprintf("ack attack top-1 (%d msgs)", n), "ack top-1", pd.Ack[n-1], pd.AckPairs[n-1], md.Ack[n-1], md.AckPairs[n-1])
	}
	if pd.Returns != nil && md.Returns != nil {
		if n := min(len(pd.Returns.SDA), len(md.Returns.SDA)); n > 0 {
			rate(fmt.Sprintf("disclosure fed by returns (SDA, %d rounds)", pd.Checkpoints[n-1]), "SDA returns", pd.Returns.SDA[n-1], pd.Targets, md.Returns.SDA[n-1], md.Targets)
		}
		rate("intersection fed by returns", "isect returns", pd.Returns.Intersection, pd.Targets, md.Returns.Intersection, md.Targets)
	}
	if n := min(len(pd.Receipt), len(md.Receipt)); n > 0 {
		rate(fmt.Sprintf("receipt by fetch timing top-1 (%d msgs)", n), "receipt", pd.Receipt[n-1], pd.ReceiptPairs[n-1], md.Receipt[n-1], md.ReceiptPairs[n-1])
		rate(fmt.Sprintf("online-window isolated (%d msgs)", n), "online", pd.Online[n-1], pd.ReceiptPairs[n-1], md.Online[n-1], md.ReceiptPairs[n-1])
	}
	return out
}

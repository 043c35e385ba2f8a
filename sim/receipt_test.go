package sim

import (
	"math"
	"strings"
	"testing"
	"time"
)

// The receipt attacks (receipt.go) and what comes back (returns.go), each
// with a control that must succeed and, where there is one, a closed form.

// receiptScenario is a small network with the deployed defaults: top
// holds top-level keys (seed, users, duration, warmup have defaults),
// each other argument is added to the table of its name, and tables are
// more tables.
func receiptScenario(top, workload, client, adversary, tables string) string {
	def := func(s *string, kvs ...string) {
		for _, kv := range kvs {
			if k, _, _ := strings.Cut(kv, " "); !strings.Contains(*s, k+" ") {
				*s += "\n" + kv
			}
		}
	}
	def(&top, "seed = 5", "users = 200", `duration = "8m"`, `warmup = "1m"`)
	def(&workload, "message_rate = 0.05", "contacts = 1")
	def(&adversary, "targets = 50", "ack_pairs = 40", "disclosure_targets = 20", `round = "10s"`)
	return top + "\n[workload]\n" + workload + "\n[client]\n" + client + "\n[adversary]\n" + adversary + "\n" + tables
}

var receiptBase = receiptScenario("", "", "", "", "")

// legacy is the network as it ran before issue 15, the control that shows
// each leak: providers deliver at once, cover is dropped (nothing comes
// back), a separate loop stream goes to the own mailbox, clients long-poll,
// replies leave at once, 50 ms per hop (relays' cover 100 ms). Each
// argument is receiptScenario's.
func legacy(top, workload, client, adversary, tables string) string {
	add := func(s, kvs string) string {
		for _, kv := range strings.Split(kvs, "\n") {
			if k, _, _ := strings.Cut(kv, " "); !strings.Contains(s, k+" ") {
				s += "\n" + kv
			}
		}
		return s
	}
	workload = add(workload, `ack_delay = "0s"`)
	client = add(client, "cover = \"drop\"\nfetch = \"longpoll\"\nloop_rate = 0.2\nack_timeout = \"15s\"")
	mixing := "at = \"mixes\"\nmean_delay = \"50ms\""
	if i := strings.Index(tables, "[mixing]\n"); i >= 0 {
		j := i + len("[mixing]\n")
		tables = tables[:j] + add(tables[j:], mixing)[len(tables[j:]):] + "\n" + tables[j:]
	} else {
		tables += "\n[mixing]\n" + mixing + "\n"
	}
	if !strings.Contains(tables, "[relay]") {
		tables += "\n[relay]\nmean_delay = \"100ms\"\n" // relays' own cover then
	}
	return receiptScenario(top, workload, client, adversary, tables)
}

// TestReceiptByFetchTiming: a global observer who pairs each arrival of a
// pair's message with every user's sends just before it links the pair;
// without cover or mixing after one message, as deployed after a few.
func TestReceiptByFetchTiming(t *testing.T) {
	bare := run(t, receiptScenario("", "", "rate = 0\nloop_rate = 0", "", "[mixing]\nmean_delay = \"0s\"\n[relay]\nloop_rate = 0\n"))
	d := bare.Disclosure
	if len(d.Receipt) == 0 || d.Receipt[0] < 0.95 {
		t.Fatalf("without cover and mixing, one message should link the pair: receipt top-1 %v", d.Receipt)
	}
	before := run(t, legacy("", "", "", "", ""))
	r := before.Disclosure.Receipt
	t.Logf("receipt top-1 after n messages: bare %.2f (n=1); before issue 15 n=1 %.2f, n=%d %.2f, half linked at n=%d",
		d.Receipt[0], r[0], len(r), r[len(r)-1], before.Disclosure.ReceiptMessages)
	if len(r) < 5 {
		t.Fatalf("only %d messages per pair scored", len(r))
	}
	if r[0] >= d.Receipt[0] {
		t.Errorf("cover and mixing should slow the attack: n=1 top-1 %.2f vs %.2f bare", r[0], d.Receipt[0])
	}
	if r[len(r)-1] <= r[0] || before.Disclosure.ReceiptMessages < 0 {
		t.Errorf("the attack should gain with messages and link half the pairs: %.2f at n=1, %.2f at n=%d", r[0], r[len(r)-1], len(r))
	}
	if got := before.Disclosure.ReceiptSamples; got != 1 {
		t.Errorf("without withheld acknowledgements each message is one sample, got %v", got)
	}
	// As deployed: the recipient's provider, corrupt, still sees each
	// arrival, but every user sends λ = 2/s and each hop holds 400 ms on
	// average: the same number of messages links far fewer pairs.
	deployed := run(t, receiptBase)
	dr := deployed.Disclosure.Receipt
	n := min(len(dr), len(r))
	t.Logf("as deployed: n=1 %.2f, n=%d %.2f (before: %.2f), half linked at n=%d", dr[0], n, dr[n-1], r[n-1], deployed.Disclosure.ReceiptMessages)
	if n < 5 || dr[n-1] > r[n-1]-0.3 {
		t.Errorf("as deployed the receipt attack should link far fewer pairs after %d messages: %.2f vs %.2f before", n, dr[n-1], r[n-1])
	}
	// With constant-rate fetching a wire observer sees no arrival: nothing
	// to pair with (the recipient's provider, honest here, would see it).
	hidden := run(t, receiptScenario("", "", "fetch = \"constant\"", "providers = \"none\"", ""))
	if len(hidden.Disclosure.Receipt) != 0 {
		t.Errorf("constant fetching and honest providers: the receipt attack scored %v", hidden.Disclosure.Receipt)
	}
}

// TestOnlineWindowIntersection: the users who sent anything just before
// each arrival of a pair's message are the candidates for its sender.
// One-shot senders are online only while they send, so a few messages
// isolate them; clients that stay online with their Poisson stream are in
// every window with probability p = 1 − e^{−λw}, so after n messages the
// sender is isolated with probability (1 − pⁿ)^(N−1) (independent
// windows: messages are far apart).
func TestOnlineWindowIntersection(t *testing.T) {
	oneshot := run(t, legacy("", "oneshot = 1.0", "", "", ""))
	o := oneshot.Disclosure.Online
	t.Logf("one-shot senders isolated after n messages: %v (half by %d)", fmt2(o), oneshot.Disclosure.OnlineMessages)
	if len(o) < 3 || o[2] < 0.9 {
		t.Fatalf("one-shot senders should be isolated within 3 messages: %v", o)
	}
	cfgText := receiptScenario("", "", "rate = 1\nloop_rate = 0.2", "", "[mixing]\nmean_delay = \"50ms\"\n")
	cfg := parse(t, cfgText)
	res := run(t, cfgText)
	m, _ := newModel(cfg)
	w := (m.att.receipt.hi - m.att.receipt.lo) / 1e9
	p := 1 - math.Exp(-(cfg.Client.Rate+cfg.Client.LoopRate)*w)
	got := res.Disclosure.Online
	t.Logf("daemon clients: window %.3f s, p = %.3f; isolated after n: %v", w, p, fmt2(got))
	checked := 0
	for n := 1; n <= len(got); n++ {
		want := math.Pow(1-math.Pow(p, float64(n)), float64(cfg.Users-1))
		pairs := float64(res.Disclosure.ReceiptPairs[n-1])
		sd := math.Sqrt(max(want*(1-want), 1/pairs) / pairs)
		if math.Abs(got[n-1]-want) > 4*sd+0.02 {
			t.Errorf("n=%d: isolated %.3f, closed form %.3f (±%.3f)", n, got[n-1], want, sd)
		}
		checked++
	}
	if checked < 5 {
		t.Fatalf("only %d message counts to check", checked)
	}
}

// TestWithheldAcknowledgements: a corrupt recipient's provider that keeps
// the acknowledgements makes each sender retransmit up to MaxAttempts
// times, and every retransmission is another receipt sample.
func TestWithheldAcknowledgements(t *testing.T) {
	fair := run(t, legacy("", "", "max_attempts = 5", "", ""))
	held := run(t, legacy("", "", "max_attempts = 5", "withhold_acks = true", ""))
	df, dh := fair.Disclosure, held.Disclosure
	t.Logf("before issue 15, receipt samples per message: %.2f fair, %.2f withheld (retransmits %d, failed %d); top-1 after n: fair %v, withheld %v",
		df.ReceiptSamples, dh.ReceiptSamples, held.Retransmits, held.Failed, fmt2(df.Receipt), fmt2(dh.Receipt))
	if fair.Retransmits != 0 || df.ReceiptSamples != 1 {
		t.Fatalf("acknowledged messages were retransmitted: %d retransmits, %.2f samples", fair.Retransmits, df.ReceiptSamples)
	}
	if dh.ReceiptSamples < 4 || dh.ReceiptSamples > 5 || held.Failed == 0 {
		t.Fatalf("withheld acknowledgements: %.2f samples per message (want up to 5), %d failed", dh.ReceiptSamples, held.Failed)
	}
	n := min(len(df.Receipt), len(dh.Receipt))
	if n < 3 || dh.Receipt[n-1] < df.Receipt[n-1] || dh.Receipt[0] <= df.Receipt[0] {
		t.Errorf("more samples should link sooner: withheld %v, fair %v", fmt2(dh.Receipt), fmt2(df.Receipt))
	}
	// As deployed: withholding still buys at most MaxAttempts samples a
	// message (the bound), and each is worth little: a retransmission
	// leaves in a Poisson slot like any packet.
	dep := run(t, receiptScenario("", "", "max_attempts = 5", "withhold_acks = true", "")).Disclosure
	t.Logf("as deployed, withheld: %.2f samples per message; top-1 after n %v", dep.ReceiptSamples, fmt2(dep.Receipt))
	if dep.ReceiptSamples > 5 {
		t.Errorf("withheld acknowledgements bought %.2f samples per message, more than max_attempts", dep.ReceiptSamples)
	}
	if k := len(dep.Receipt); k < 5 || dep.Receipt[k-1] > 0.3 {
		t.Errorf("as deployed, withheld acknowledgements link %v", fmt2(dep.Receipt))
	}
}

// TestLongMessagesAreBursts: a message of several fragments is several
// packets, each stored and fetched on its own; every fragment's arrival is
// one more receipt sample, so long messages link their pair sooner (shown
// on the network before issue 15, where the attack links at all).
func TestLongMessagesAreBursts(t *testing.T) {
	short := run(t, legacy("", "", "", "", ""))
	long := run(t, legacy("", "fragments = 4", "", "", ""))
	ds, dl := short.Disclosure, long.Disclosure
	t.Logf("receipt samples per message: %.2f one fragment, %.2f with 4 on average; top-1 after n: %v vs %v",
		ds.ReceiptSamples, dl.ReceiptSamples, fmt2(ds.Receipt), fmt2(dl.Receipt))
	if ds.ReceiptSamples != 1 || dl.ReceiptSamples < 3 || dl.ReceiptSamples > 5 {
		t.Fatalf("samples per message: %.2f (want 1) and %.2f (want about 4)", ds.ReceiptSamples, dl.ReceiptSamples)
	}
	if long.RealSent == 0 || long.LinkPackets <= short.LinkPackets {
		t.Errorf("4-fragment messages should add packets: %d vs %d", long.LinkPackets, short.LinkPackets)
	}
	if dl.Receipt[1] <= ds.Receipt[1] {
		t.Errorf("long messages should link sooner: after 2 messages %.2f vs %.2f", dl.Receipt[1], ds.Receipt[1])
	}
}

// TestLoopStripping: before issue 15 a provider told its users' loops
// from their real mail by the acknowledgement each loop brought back into
// the same mailbox, and real sends from cover because only real packets
// brought a reply; with no acknowledgements (the control) it cannot do
// better than saying "real" every time. As deployed no loop lands in a
// mailbox and every packet brings one reply: the replies tell nothing.
func TestLoopStripping(t *testing.T) {
	on := run(t, legacy("", "", "", "", ""))
	r := on.Disclosure.Returns
	if r == nil || r.Deliveries < 1000 {
		t.Fatalf("too few deliveries classified: %+v", r)
	}
	base := max(r.LoopShare, 1-r.LoopShare)
	t.Logf("before issue 15, loop stripping: %.3f right over %d deliveries (loops %.2f of them; a guess gets %.3f); replies %.3f right over %d",
		r.LoopStripAccuracy, r.Deliveries, r.LoopShare, base, r.ReplyAccuracy, r.Replies)
	if r.LoopStripAccuracy < 0.95 || r.LoopStripAccuracy < base+0.1 {
		t.Errorf("loop stripping should work before issue 15: %.3f (a guess: %.3f)", r.LoopStripAccuracy, base)
	}
	off := run(t, legacy("", "acks = false", "", "", "")).Disclosure.Returns
	if off == nil || math.Abs(off.LoopStripAccuracy-(1-off.LoopShare)) > 1e-9 {
		t.Errorf("without acknowledgements every delivery should look real: %+v", off)
	}
	dep := run(t, receiptBase).Disclosure.Returns
	guess := max(dep.RealReplyShare, 1-dep.RealReplyShare)
	t.Logf("as deployed: %d deliveries (loops %.2f of them), %d replies (%.3f of them real): classified %.3f right, a guess %.3f",
		dep.Deliveries, dep.LoopShare, dep.Replies, dep.RealReplyShare, dep.ReplyAccuracy, guess)
	if dep.LoopShare != 0 || dep.Replies < 10*dep.Deliveries || dep.ReplyAccuracy > guess {
		t.Errorf("as deployed the replies should tell real from cover no better than a guess: %+v", dep)
	}
}

// TestReturnsFeedDisclosure: cover hides a user's sending pattern from a
// disclosure attack that counts every packet, but not from providers that
// count the packets coming back: the acknowledgements of real messages,
// and real mail with loops stripped.
func TestReturnsFeedDisclosure(t *testing.T) {
	const workload = "message_rate = 0.05\ncontacts = 3"
	const adv = "round = \"2s\""
	const top = `duration = "30m"`
	res := run(t, legacy(top, workload, "", adv, ""))
	d := res.Disclosure
	r := d.Returns
	t.Logf("SDA counting every packet %v; fed by returns %v (half by %d rounds); intersection %.2f vs %.2f", fmt2(d.SDA), fmt2(r.SDA), r.SDARounds, d.Intersection, r.Intersection)
	if len(r.SDA) == 0 || r.SDA[len(r.SDA)-1] < 0.5 {
		t.Fatalf("returns-fed disclosure should expose most targets by the end: %v", r.SDA)
	}
	if d.SDA[len(d.SDA)-1] >= r.SDA[len(r.SDA)-1] {
		t.Errorf("counting every packet should do worse than counting returns: %v vs %v", d.SDA, r.SDA)
	}
	// On the wire: a trace whose fetches are classified real or loop (as
	// the client's pause before acknowledging a page shows; here without
	// error) feeds the same attacks; with the pages unclassified there is
	// nothing to feed them.
	cfg := parse(t, legacy(top, workload, "", adv+"\nestimator = \"timing\"\nproviders = \"none\"", ""))
	tr, err := Observe(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	wire, err := AnalyzeTrace(t.Context(), cfg, tr)
	if err != nil {
		t.Fatal(err)
	}
	w := wire.Disclosure.Returns
	if w == nil || !w.Wire || len(w.SDA) == 0 {
		t.Fatalf("a trace with classified pages fed no disclosure: %+v", w)
	}
	t.Logf("on the wire, pages classified: disclosure fed by returns %v", fmt2(w.SDA))
	if w.SDA[len(w.SDA)-1] <= d.SDA[len(d.SDA)-1] {
		t.Errorf("classified pages should expose more targets on the wire than counting every packet: %v vs %v", w.SDA, d.SDA)
	}
	for i := range tr.Events {
		tr.Events[i].Page = 0
	}
	if blind, err := AnalyzeTrace(t.Context(), cfg, tr); err != nil || blind.Disclosure.Returns != nil {
		t.Errorf("unclassified pages should feed nothing: %v, %+v", err, blind.Disclosure.Returns)
	}
	// As deployed every packet brings a reply: counting the returns is
	// counting every packet.
	dep := run(t, receiptScenario(top, workload, "", adv, "")).Disclosure
	t.Logf("as deployed: SDA counting every packet %v; fed by returns %v", fmt2(dep.SDA), fmt2(dep.Returns.SDA))
	if last := len(dep.Returns.SDA) - 1; last < 0 || dep.Returns.SDA[last] > dep.SDA[last]+0.1 || dep.Returns.SDA[last] >= r.SDA[len(r.SDA)-1]-0.2 {
		t.Errorf("as deployed the returns should feed the disclosure attack nothing new: %v vs every packet %v", dep.Returns.SDA, dep.SDA)
	}
	// Control: with nothing coming back the returns show no real send.
	off := run(t, legacy(top, workload+"\nacks = false", "", adv, "")).Disclosure.Returns
	if off.SDA[len(off.SDA)-1] != 0 || off.Intersection != 0 {
		t.Errorf("without acknowledgements returns-fed disclosure exposed %v, intersection %v", off.SDA, off.Intersection)
	}
}

func fmt2(x []float64) []float64 {
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = math.Round(v*100) / 100
	}
	return out
}

// TestRefusedAcknowledgements: a corrupt recipient's provider that
// answers "later" (a transient refusal, retry after 1 s) instead of
// acknowledging is not limited by max_attempts, since a refusal is an
// answer: the sender tries again, at least doubling its wait, until the
// message's TTL, and each copy is another receipt sample. So refusing
// buys more samples than withholding (at most max_attempts); within a run
// of 8 minutes, at most MaxAttempts + ⌊log2(8 min / 1 s + 1)⌋ per message
// (15 for 24 h of TTL more), and as deployed they still link little.
func TestRefusedAcknowledgements(t *testing.T) {
	held := run(t, receiptScenario("", "", "max_attempts = 5", "withhold_acks = true", "")).Disclosure
	refused := run(t, receiptScenario("", "", "max_attempts = 5", "refuse_acks = true", ""))
	dr := refused.Disclosure
	t.Logf("as deployed, receipt samples per message: %.2f withheld, %.2f refused (retransmits %d, expired %d); top-1 after n: withheld %v, refused %v",
		held.ReceiptSamples, dr.ReceiptSamples, refused.Retransmits, refused.Failed, fmt2(held.Receipt), fmt2(dr.Receipt))
	bound := 5.0
	for total := time.Duration(0); ; {
		total += RefusalBase << int(bound-5)
		if total > 8*time.Minute {
			break
		}
		bound++
	}
	if dr.ReceiptSamples <= held.ReceiptSamples || dr.ReceiptSamples > bound+1 {
		t.Fatalf("refused: %.2f samples per message; want more than withheld (%.2f) and at most %v", dr.ReceiptSamples, held.ReceiptSamples, bound+1)
	}
	if k := len(dr.Receipt); k < 5 || dr.Receipt[k-1] > 0.5 {
		t.Errorf("as deployed, refused acknowledgements link %v", fmt2(dr.Receipt))
	}
}

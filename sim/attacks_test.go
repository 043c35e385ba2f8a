package sim

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
)

func run(t *testing.T, text string) *Result {
	t.Helper()
	r, err := Run(context.Background(), parse(t, text), nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestUnmixedNetworkIsLinked is the control for every anonymity figure:
// without mixing delays and without cover, the adversary's posterior must
// name the sender of nearly every message; with Poisson mixing and cover
// it must not.
func TestUnmixedNetworkIsLinked(t *testing.T) {
	const base = `
users = 300
duration = "5m"
[workload]
message_rate = 0.02
[adversary]
targets = 300
`
	open := run(t, base+`
[mixing]
mean_delay = "0s"
[client]
rate = 0
loop_rate = 0
`)
	mixed := run(t, base+`
[mixing]
mean_delay = "100ms"
[client]
rate = 1
loop_rate = 0.1
`)
	t.Logf("top-1: unmixed %.3f, mixed %.3f; TPR@1e-2: %.3f, %.3f; entropy %.4f, %.4f bits",
		open.TopK[0].Accuracy, mixed.TopK[0].Accuracy, open.TPR[0].TPR, mixed.TPR[0].TPR, open.Entropy.Mean, mixed.Entropy.Mean)
	if open.TopK[0].Accuracy < 0.9 || open.TPR[0].TPR < 0.9 {
		t.Errorf("unmixed: top-1 %.3f, TPR %.3f; the adversary must link nearly all", open.TopK[0].Accuracy, open.TPR[0].TPR)
	}
	if mixed.TopK[0].Accuracy > 0.1 || mixed.Entropy.Mean < 5 {
		t.Errorf("mixed with cover: top-1 %.3f, entropy %.2f", mixed.TopK[0].Accuracy, mixed.Entropy.Mean)
	}
}

// TestDisclosureNeedsNoCover: without cover a user's sending rounds give
// away its contacts to the statistical disclosure attack; with Loopix
// cover (real packets replace cover, so the sending rate says nothing)
// the attack learns nothing.
func TestDisclosureNeedsNoCover(t *testing.T) {
	const base = `
users = 100
duration = "40m"
warmup = "1m"
[workload]
message_rate = 0.1
contacts = 1
[adversary]
targets = 10
round = "10s"
disclosure_targets = 20
[mixing]
mean_delay = "50ms"
`
	bare := run(t, base+"[client]\nrate = 0\nloop_rate = 0\n")
	cover := run(t, base+"[client]\nrate = 1\nloop_rate = 0.1\n")
	last := func(r *Result) float64 { return r.Disclosure.SDA[len(r.Disclosure.SDA)-1] }
	t.Logf("SDA after %d rounds: no cover %.2f (half by round %d), cover %.2f", bare.Disclosure.Checkpoints[len(bare.Disclosure.Checkpoints)-1], last(bare), bare.Disclosure.SDARounds, last(cover))
	if last(bare) < 0.5 {
		t.Errorf("without cover the disclosure attack named %.2f of the contacts; want most", last(bare))
	}
	if last(cover) > 0.2 {
		t.Errorf("with cover the disclosure attack named %.2f of the contacts; want almost none", last(cover))
	}
	// The intersection attack: without cover a user's active rounds
	// intersect down to its contact; with cover it is active in every
	// round, and the contact is not a recipient in all of them.
	t.Logf("intersection: no cover %.2f (median %d rounds), cover %.2f", bare.Disclosure.Intersection, bare.Disclosure.IntersectionRounds, cover.Disclosure.Intersection)
	if bare.Disclosure.Intersection < 0.3 || cover.Disclosure.Intersection > 0.1 {
		t.Errorf("intersection attack: %.2f without cover, %.2f with", bare.Disclosure.Intersection, cover.Disclosure.Intersection)
	}
}

// TestAckAttackNeedsAcks: colluding providers link a sender to a
// recipient from acknowledgement timing after a few messages when only
// real packets bring a reply (before issue 15: cover was dropped); with
// acknowledgements off the attack has nothing to work on.
// TestCoverRepliesDefend is the deployed network's figure.
func TestAckAttackNeedsAcks(t *testing.T) {
	const base = `
users = 200
duration = "20m"
[mixing]
mean_delay = "50ms"
at = "mixes"
[client]
rate = 1
loop_rate = 0.1
cover = "drop"
fetch = "longpoll"
[workload]
ack_delay = "0s"
message_rate = 0.05
contacts = 2
[adversary]
targets = 10
ack_pairs = 50
`
	on := run(t, base)
	off := run(t, strings.Replace(base, "[workload]\n", "[workload]\nacks = false\n", 1))
	t.Logf("top-1 after n acknowledged messages: %v (half by n = %d)", on.Disclosure.Ack, on.Disclosure.AckMessages)
	if on.Disclosure.AckMessages < 1 || on.Disclosure.AckMessages > 10 {
		t.Errorf("acknowledgement attack reached half the pairs at n = %d", on.Disclosure.AckMessages)
	}
	if len(off.Disclosure.Ack) == 0 {
		return
	}
	for n, s := range off.Disclosure.Ack {
		if s > 0.1 {
			t.Fatalf("without acknowledgements the attack still links %.2f after %d messages", s, n+1)
		}
	}
}

// TestTorPopulationIsLinked: users on Tor-like circuits (no mixing, no
// cover) are linked by the global passive adversary; the mix network's
// users in the same run are not.
func TestTorPopulationIsLinked(t *testing.T) {
	r := run(t, `
users = 400
duration = "5m"
[client]
rate = 1
loop_rate = 0.1
[workload]
message_rate = 0.02
[adversary]
targets = 400
[tor]
fraction = 0.25
relays = 12
`)
	if r.Tor == nil || r.Tor.Users != 100 || r.Tor.Targets < 50 {
		t.Fatalf("Tor population: %+v", r.Tor)
	}
	t.Logf("entropy: mix network %.2f bits (top-1 %.3f), Tor-like %.2f bits (top-1 %.3f); latency p50 %.3f s vs %.3f s",
		r.Entropy.Mean, r.TopK[0].Accuracy, r.Tor.Entropy.Mean, r.Tor.TopK[0].Accuracy, r.Latency.P50, r.Tor.Latency.P50)
	if r.Tor.TopK[0].Accuracy < 0.95 || r.Tor.Entropy.Mean > 0.1 {
		t.Errorf("Tor-like users: top-1 %.3f, entropy %.3f; a global observer links them", r.Tor.TopK[0].Accuracy, r.Tor.Entropy.Mean)
	}
	if r.TopK[0].Accuracy > 0.1 || r.Entropy.Mean < 5 {
		t.Errorf("mix-network users: top-1 %.3f, entropy %.2f", r.TopK[0].Accuracy, r.Entropy.Mean)
	}
}

// TestCoverRepliesDefend: the acknowledgement attack of two colluding
// providers (when a message is stored against when a reply lands in each
// user's mailbox). Before issue 15 only real packets brought a reply, and
// holding acknowledgements at the recipient's provider, even for 30 s,
// does not help: that provider is one of the two and knows when its reply
// leaves. As deployed every packet brings a reply, so the acknowledgement
// hides among the user's λ replies per second: the same messages link far
// fewer pairs.
func TestCoverRepliesDefend(t *testing.T) {
	const scenario = `
users = 200
duration = "40m"
[workload]
message_rate = 0.05
contacts = 2
%s
[adversary]
targets = 10
ack_pairs = 50
`
	held := run(t, legacy("users = 200\nduration = \"40m\"", "message_rate = 0.05\ncontacts = 2\nack_delay = \"30s\"", "rate = 1\nloop_rate = 0.1", "targets = 10\nack_pairs = 50", ""))
	a := held.Disclosure.Ack
	t.Logf("before issue 15, with a 30 s hold: top-1 after n messages %v", fmt2(a))
	if len(a) < 20 || a[19] < 0.8 {
		t.Fatalf("a hold at a colluding provider should not stop the acknowledgement attack: %v", a)
	}
	dep := run(t, fmt.Sprintf(scenario, ""))
	b := dep.Disclosure.Ack
	t.Logf("as deployed: top-1 after n messages %v", fmt2(b))
	if len(b) < 20 || b[19] > a[19]-0.4 {
		t.Fatalf("as deployed the acknowledgement attack should link far fewer pairs after 20 messages: %v", b)
	}
}

// TestHonestRecipientProviderMixes: when the recipient's provider is
// honest and mixes, the adversary sees the message only when it is
// fetched, after one more Poisson delay: more entropy than when the
// provider tells it the arrival.
func TestHonestRecipientProviderMixes(t *testing.T) {
	const base = `
users = 300
duration = "5m"
[client]
rate = 1
loop_rate = 0.1
[workload]
message_rate = 0.02
[adversary]
targets = 300
`
	const mixing = "[mixing]\nat = \"all\"\n"
	corrupt := run(t, base+mixing)
	honest := run(t, base+"providers = \"none\"\n"+mixing)
	t.Logf("entropy: corrupt recipient provider %.3f ± %.3f, honest %.3f ± %.3f bits", corrupt.Entropy.Mean, corrupt.Entropy.CI95, honest.Entropy.Mean, honest.Entropy.CI95)
	if honest.Targets < 100 || honest.Entropy.Mean <= corrupt.Entropy.Mean+corrupt.Entropy.CI95+honest.Entropy.CI95 {
		t.Fatalf("an honest mixing provider added nothing: %.3f vs %.3f bits", honest.Entropy.Mean, corrupt.Entropy.Mean)
	}
	// The control: a provider that delivers at once (mixing.at =
	// "mixes", before issue 15): its honesty buys nothing, the fetch
	// shows the arrival.
	corrupt = run(t, strings.Replace(base, "[client]\n", "[client]\nfetch = \"longpoll\"\n", 1)+"[mixing]\nat = \"mixes\"\n")
	honest = run(t, strings.Replace(base, "[client]\n", "[client]\nfetch = \"longpoll\"\n", 1)+"providers = \"none\"\n[mixing]\nat = \"mixes\"\n")
	t.Logf("providers that do not mix: corrupt %.3f, honest %.3f bits", corrupt.Entropy.Mean, honest.Entropy.Mean)
	if math.Abs(honest.Entropy.Mean-corrupt.Entropy.Mean) > 0.01 {
		t.Fatalf("a provider that does not mix changed the entropy: %.3f vs %.3f bits", honest.Entropy.Mean, corrupt.Entropy.Mean)
	}
}

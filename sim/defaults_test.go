package sim_test

import (
	"testing"
	"time"

	"github.com/sealnet/sealnet/mailbox"
	"github.com/sealnet/sealnet/mixnet"
	"github.com/sealnet/sealnet/mixnet/directory"
	"github.com/sealnet/sealnet/relay"
	"github.com/sealnet/sealnet/sender"
	"github.com/sealnet/sealnet/sim"
)

// TestDefaultsFollowTheCode: a scenario that sets nothing simulates the
// network as the code runs it. Each default is compared with the value the
// client, the relays or the mailbox use; when one of them changes, this
// test fails until the simulator follows (and the figures are re-measured).
// The behaviour behind each exported value is tested in its own package
// (relay: providers hold the final hop, cover defaults; mailbox: replies
// held; sender: cover returns).
func TestDefaultsFollowTheCode(t *testing.T) {
	c, err := sim.ParseConfig("")
	if err != nil {
		t.Fatal(err)
	}
	cl := sender.DefaultSettings()
	net := directory.DefaultParameters() // what clients, relays and providers follow
	at := "mixes"
	if relay.ProvidersHoldFinalHop {
		at = "all"
	}
	fetch := "longpoll" // the provider answers a long poll as soon as mail lands
	if net.FetchInterval > 0 {
		fetch = "constant" // one fixed-size page per interval, on a fixed clock
	}
	cover := "drop"
	if sender.CoverReturns {
		cover = "returns"
	}
	for _, d := range []struct {
		key       string
		sim, code any
	}{
		{"client.rate", c.Client.Rate, net.ClientRate},
		{"client.loop_rate", c.Client.LoopRate, cl.LoopRate},
		{"client.cover", c.Client.Cover, cover},
		{"client.fetch_interval", c.Client.FetchInterval.D(), net.FetchInterval},
		{"mixing.mean_delay", c.Mixing.MeanDelay.D(), net.MeanDelay},
		{"client.ack_timeout", c.Client.AckTimeout.D(), net.AckTimeout},
		{"client.retry_jitter", c.Client.RetryJitter.D(), net.RetryJitter},
		{"client.max_attempts", c.Client.MaxAttempts, net.MaxAttempts},
		{"client.message_ttl", c.Client.MessageTTL.D(), sender.MessageTTL},
		{"refused transmissions in a TTL", refusedIn(c.Client.MessageTTL.D()), sender.MaxRefusedTransmissions(sender.MessageTTL)},
		{"the least retry-after", sim.RefusalRetryAfter, time.Duration(1) * time.Second}, // mailbox: whole seconds, at least 1
		{"client.fetch", c.Client.Fetch, fetch},
		{"mixing.kind", c.Mixing.Kind, "poisson"}, // relay: mixing.strategy defaults to poisson
		{"mixing.max_delay", c.Mixing.MaxDelay.D(), net.MaxDelay},
		{"mixing.at", c.Mixing.At, at},
		{"relay.loop_rate", c.Relay.LoopRate, net.RelayLoopRate},
		{"relay.drop_rate", c.Relay.DropRate, relay.DefaultDropRate},
		{"relay.mean_delay", c.Relay.MeanDelay.D(), net.MeanDelay}, // relay cover draws the network's delay
		{"workload.ack_delay", c.Workload.AckDelay.D(), net.ProviderHold},
		{"mailbox.DefaultReplyHold", c.Workload.AckDelay.D(), mailbox.DefaultReplyHold},
		{"packet size", sim.PacketSize, mixnet.DefaultGeometry().PacketSize()},
	} {
		if d.sim != d.code {
			t.Errorf("%s: the simulator's default is %v, the code's %v", d.key, d.sim, d.code)
		}
	}
}

// refusedIn is how many refused transmissions the simulator's pacing
// (sim.RefusalBase, doubling) fits in ttl: sender.MaxRefusedTransmissions
// for the code's.
func refusedIn(ttl time.Duration) int {
	k := 0
	for total := time.Duration(0); ; k++ {
		total += sim.RefusalBase << k
		if total > ttl {
			return k
		}
	}
}

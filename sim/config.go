package sim

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/sealnet/sealnet/internal/config"
	"github.com/sealnet/sealnet/mixnet/mix"
)

// ErrConfig is wrapped by every configuration error; the message names the
// key.
var ErrConfig = errors.New("sim: invalid scenario")

// Config is one scenario (docs/sim.md §2). Zero fields take the defaults of
// (*Config).setDefaults; every key of the TOML file maps to a field here,
// and unknown keys are errors.
type Config struct {
	Name string `toml:"name"`
	// Seed makes the run reproducible: same seed and configuration, same
	// output bytes.
	Seed uint64 `toml:"seed"`
	// Duration is simulated time; messages are scored only after Warmup,
	// once the mixes hold their steady-state load.
	Duration config.Duration  `toml:"duration"`
	Warmup   *config.Duration `toml:"warmup"` // default: a tenth of Duration

	Users     int `toml:"users"`
	Providers int `toml:"providers"`
	Layers    int `toml:"layers"`
	Width     int `toml:"width"`

	Latency  Latency  `toml:"latency"`
	Mixing   Mixing   `toml:"mixing"`
	Client   Client   `toml:"client"`
	Relay    Relay    `toml:"relay"`
	Workload Workload `toml:"workload"`
	Adv      Adv      `toml:"adversary"`
	Tor      Tor      `toml:"tor"`
}

// Tor is the comparison population: users who route their messages over
// Tor-like circuits (a fixed guard, middle and exit for the whole run, no
// mixing, no cover) to the same providers.
type Tor struct {
	Fraction float64 `toml:"fraction"` // share of users; 0: none
	Relays   int     `toml:"relays"`   // default 30
}

// Latency is the one-way delay of a link, drawn per packet.
type Latency struct {
	// Kind is "fixed" (Mean), "uniform" (Min..Max) or "exponential"
	// (Min + exponential of mean Mean−Min). Links stay FIFO, as TCP is: a
	// packet never overtakes the one before it on the same link.
	Kind string          `toml:"kind"`
	Mean config.Duration `toml:"mean"`
	Min  config.Duration `toml:"min"`
	Max  config.Duration `toml:"max"`
}

// Mixing is the strategy every mix and provider runs: mixnet/mix's code.
type Mixing struct {
	Kind string `toml:"kind"` // poisson, threshold, timed-pool
	// MeanDelay is the mean of the exponential per-hop delay senders draw
	// (poisson).
	MeanDelay *config.Duration `toml:"mean_delay"` // default 100ms; 0 turns delays off
	// MaxDelay caps a hop's delay (poisson); default 10 × MeanDelay.
	MaxDelay  config.Duration `toml:"max_delay"`
	Threshold int             `toml:"threshold"` // threshold: batch size
	Interval  config.Duration `toml:"interval"`  // timed-pool
	Keep      int             `toml:"keep"`      // timed-pool
	Capacity  int             `toml:"capacity"`  // items a node holds; default 1,000,000
	// Hops that mix: "mixes" (default, as sealnet's providers do: a
	// final-hop packet is delivered at once and the delay its sender drew
	// for that hop is discarded, relay.ProvidersHoldFinalHop) or "all"
	// (the destination provider holds it too, as Loopix's do).
	At string `toml:"at"`
}

// Client is each user's sending (Loopix).
type Client struct {
	// Rate is λ, the Poisson stream of packets per second; a real packet
	// takes the place of a cover packet. 0 turns cover off: real packets
	// leave as soon as they are written.
	Rate float64 `toml:"rate"`
	// Cover is what a cover packet of the stream is: "returns" (default,
	// as sealnet's client: a request to a random provider, answered
	// through its SURB like a real packet, so every packet brings one
	// reply back) or "drop" (discarded at a random provider, nothing
	// comes back: Loopix's drop cover, sealnet before issue 15).
	Cover string `toml:"cover"`
	// LoopRate is a second Poisson stream of loop cover per second (a
	// delivery into the user's own mailbox, acknowledged); sealnet's
	// client sends none, its cover being its loops.
	LoopRate float64 `toml:"loop_rate"`
	// Padding "fixed" (every packet the same size) or "none" (a packet's
	// size on the wire is its message's, for comparison).
	Padding string `toml:"padding"`
	// AckTimeout, RetryJitter and MaxAttempts are the client's
	// retransmission schedule: a real packet not acknowledged AckTimeout
	// after it left is sent again, on a new path, after a further uniform
	// wait of up to RetryJitter, at most MaxAttempts times in all (the
	// recipient's provider recognises the envelope ID and stores it once).
	AckTimeout  config.Duration `toml:"ack_timeout"`
	RetryJitter config.Duration `toml:"retry_jitter"`
	MaxAttempts int             `toml:"max_attempts"`
	// MessageTTL is how long a client tries a message that its recipient's
	// provider refuses for now (sender.MessageTTL): a refused packet goes
	// again after at least RefusalBase·2^(k−1) (the k-th refusal) plus
	// RetryJitter, not counted against MaxAttempts, until the TTL.
	MessageTTL config.Duration `toml:"message_ttl"`
	// Fetch is how clients fetch their mail: "constant" (default, as
	// sealnet's client does: one fixed-size page per interval on a fixed
	// clock, so a wire observer sees no arrival; only a corrupt provider
	// does) or "longpoll" (the provider answers the moment something
	// lands, so a wire observer sees every mailbox's arrivals).
	Fetch string `toml:"fetch"`
	// FetchInterval is the constant fetch's period (sender's
	// FetchInterval): what a recorded trace shows of fetching, one
	// fixed-size answer per user per interval, and how long mail waits
	// at the provider for the next one.
	FetchInterval config.Duration `toml:"fetch_interval"`
}

// Relay is the cover the relays and providers add (relay.CoverConfig:
// both roles run it).
type Relay struct {
	// LoopRate is loop cover per second per node. A mix's loop crosses
	// every other layer and comes back to it; a provider's crosses every
	// layer (relay/cover.go).
	LoopRate float64 `toml:"loop_rate"`
	// DropRate is drop cover per second per node: one mix per layer, then
	// a random provider, which discards it.
	DropRate float64 `toml:"drop_rate"`
	// MeanDelay is the mean per-hop delay nodes draw for their own cover
	// (the relay's cover.mean_delay; it need not equal the clients').
	MeanDelay config.Duration `toml:"mean_delay"`
}

// Workload is what the users do.
type Workload struct {
	// MessageRate is real messages per second per user (Poisson).
	MessageRate float64 `toml:"message_rate"`
	// Contacts each user writes to, chosen by Zipf popularity with
	// exponent Zipf (0: uniform); the user picks among its contacts
	// uniformly.
	Contacts int     `toml:"contacts"`
	Zipf     float64 `toml:"zipf"`
	// Acks: the recipient's provider acknowledges every real message, and
	// every loop, through the packet's SURB (as sealnet does); default
	// true.
	Acks *bool `toml:"acks"`
	// AckDelay, if set, makes the recipient's provider hold each
	// acknowledgement for an exponential time of this mean before sending
	// it (a defence against the acknowledgement attack, §3.5).
	AckDelay config.Duration `toml:"ack_delay"`
	// ReplyProb is the chance that a recipient answers a message, after an
	// exponential time of mean ReplyDelay (default 30s).
	ReplyProb  float64         `toml:"reply_prob"`
	ReplyDelay config.Duration `toml:"reply_delay"`
	// OnlineMean and OfflineMean, if set, make each user alternate online
	// and offline periods of exponential lengths with these means. Offline
	// users send nothing, cover included; what they write waits.
	OnlineMean  config.Duration `toml:"online_mean"`
	OfflineMean config.Duration `toml:"offline_mean"`
	// Fragments is the mean number of fragments of a message (geometric
	// on 1, 2, …, at most 64; default 1: every message fits one packet's
	// 1,388 bytes). Each fragment is its own packet, acknowledged and
	// retransmitted on its own; the recipient's fetches show each (a long
	// message is a burst of arrivals, each one more receipt sample).
	Fragments float64 `toml:"fragments"`
	// OneShot is the share of users who send with `sealnet send
	// --oneshot` and no running daemon: the client starts when the user writes, runs its
	// Poisson stream, loops and fetches, and exits once every message it
	// sent is acknowledged (or given up), so it is online exactly while it
	// sends. The others run the daemon and stay online. Not with
	// online_mean/offline_mean.
	OneShot float64 `toml:"oneshot"`
}

// Adv is the adversary (docs/sim.md §3).
type Adv struct {
	// CorruptRelays is the fraction of mixes that share their input →
	// output mapping (chosen at random with the seed).
	CorruptRelays float64 `toml:"corrupt_relays"`
	// Targets is how many real messages (after Warmup) the adversary
	// scores; each needs a backward pass over the network's recent events.
	Targets int `toml:"targets"`
	// TopK lists the k of the top-k linking accuracy.
	TopK []int `toml:"top_k"`
	// Round is the length of a round of the disclosure attacks;
	// DisclosureTargets how many users they target; AckPairs how many
	// (sender, recipient) pairs the acknowledgement attack follows.
	Round             config.Duration `toml:"round"`
	DisclosureTargets int             `toml:"disclosure_targets"`
	AckPairs          int             `toml:"ack_pairs"`
	// Providers says which providers are corrupt: "recipient" (default:
	// it tells when the target arrived), "sender", "both", or "none"
	// (then, if providers mix, the target is seen only when the recipient
	// fetches it, after the provider's own delay).
	Providers string `toml:"providers"`
	// Estimator is how a Poisson mix's inputs are weighed for an output:
	// "count" (default: the chance each input is still held, from the
	// exact number the mix holds at every departure, Loopix Theorem 1) or
	// "timing" (the exponential delay density at the input's age, with
	// mean max(mixing.mean_delay, DelayFloor); it needs no count of what a
	// mix holds, which a wire observer of a real network does not have:
	// docs/measure.md §3).
	Estimator string `toml:"estimator"`
	// DelayFloor is the smallest mean delay the timing estimator assumes,
	// standing for processing time on real nodes; default 1ms.
	DelayFloor config.Duration `toml:"delay_floor"`
	// WithholdAcks: the corrupt recipient's provider drops the
	// acknowledgements of messages to the receipt pairs' recipients, so
	// that their senders retransmit; each retransmission is one more
	// receipt sample (docs/sim.md §3.6). Needs providers "recipient" or
	// "both".
	WithholdAcks bool `toml:"withhold_acks"`
	// RefuseAcks: the corrupt recipient's provider answers every delivery
	// to the receipt pairs' recipients with a transient refusal ("rate
	// limited", retry after 1 s, the least it can say) instead of an
	// acknowledgement, so that their senders retransmit without limit
	// from MaxAttempts: each refused copy is one more receipt sample, up
	// to sender.MaxRefusedTransmissions(MessageTTL) more than withholding
	// buys (docs/sim.md §3.8). Needs providers "recipient" or "both"; not
	// with WithholdAcks.
	RefuseAcks bool `toml:"refuse_acks"`
	// Block is the active attack on the disclosure targets' entry links:
	// "none" (default), "drop" (every other round, their packets are
	// dropped) or "delay" (held for BlockDelay, default 5s); the adversary
	// watches which mailboxes receive less (docs/sim.md §3.10).
	Block      string          `toml:"block"`
	BlockDelay config.Duration `toml:"block_delay"`
}

// The deployed code's settings, which a scenario starts from
// (TestDefaultsFollowTheCode in defaults_test.go fails when sender, relay,
// mailbox or the directory change theirs). ParseConfig decodes a scenario
// over them, so a key set to 0 in a file stays 0.
func codeDefaults() *Config {
	c := &Config{}
	d := config.Duration(400 * time.Millisecond) // sender.DefaultSettings().MeanDelay
	c.Mixing.MeanDelay = &d
	c.Mixing.MaxDelay = config.Duration(30 * time.Second) // relay's mixing.max_delay
	c.Mixing.At = "all"                                   // relay.ProvidersHoldFinalHop = true
	c.Client.Rate = 2                                     // sender.DefaultSettings().Rate
	c.Client.Cover = "returns"                            // sender.CoverReturns
	c.Client.LoopRate = 0                                 // .LoopRate: no separate loop stream
	c.Client.AckTimeout = config.Duration(30 * time.Second)
	c.Client.RetryJitter = config.Duration(5 * time.Second)
	c.Client.MaxAttempts = 5
	c.Client.MessageTTL = config.Duration(24 * time.Hour) // sender.MessageTTL
	c.Client.Fetch = "constant"                           // sender's fetchLoop pulls every FetchInterval
	c.Client.FetchInterval = config.Duration(time.Second)
	c.Relay.LoopRate = 0.2 // relay.DefaultLoopRate
	c.Relay.DropRate = 0
	c.Relay.MeanDelay = config.Duration(400 * time.Millisecond) // relay cover: the directory's mean_delay
	c.Workload.AckDelay = config.Duration(time.Second)          // the directory's provider_hold (mailbox.DefaultReplyHold)
	return c
}

func (c *Config) setDefaults() {
	config.Default(&c.Name, "scenario")
	config.Default(&c.Duration, config.Duration(10*time.Minute))
	if c.Warmup == nil {
		w := config.Duration(c.Duration.D() / 10)
		c.Warmup = &w
	}
	config.Default(&c.Users, 1000)
	config.Default(&c.Providers, 2)
	config.Default(&c.Layers, 3)
	config.Default(&c.Width, 2)
	config.Default(&c.Latency.Kind, "fixed")
	config.Default(&c.Latency.Mean, config.Duration(5*time.Millisecond))
	config.Default(&c.Mixing.Kind, string(mix.Poisson))
	if c.Mixing.MeanDelay == nil {
		d := config.Duration(100 * time.Millisecond)
		c.Mixing.MeanDelay = &d
	}
	config.Default(&c.Mixing.MaxDelay, config.Duration(max(10*c.Mixing.MeanDelay.D(), time.Microsecond)))
	config.Default(&c.Mixing.Capacity, 1_000_000)
	// Keys whose zero is not a setting take the code's value (ParseConfig
	// starts from codeDefaults; a Config built in code gets them here).
	code := codeDefaults()
	config.Default(&c.Mixing.At, code.Mixing.At)
	config.Default(&c.Client.Padding, "fixed")
	config.Default(&c.Client.Fetch, code.Client.Fetch)
	config.Default(&c.Client.Cover, code.Client.Cover)
	config.Default(&c.Client.FetchInterval, code.Client.FetchInterval)
	config.Default(&c.Client.AckTimeout, code.Client.AckTimeout)
	config.Default(&c.Client.MaxAttempts, code.Client.MaxAttempts)
	config.Default(&c.Client.MessageTTL, code.Client.MessageTTL)
	config.Default(&c.Relay.MeanDelay, *c.Mixing.MeanDelay)
	config.Default(&c.Workload.MessageRate, 0.01)
	config.Default(&c.Workload.Contacts, 5)
	config.Default(&c.Adv.Targets, 1000)
	config.Default(&c.Adv.Round, config.Duration(10*time.Second))
	config.Default(&c.Tor.Relays, 30)
	config.Default(&c.Workload.ReplyDelay, config.Duration(30*time.Second))
	config.Default(&c.Adv.DisclosureTargets, 20)
	config.Default(&c.Adv.AckPairs, 100)
	config.Default(&c.Adv.Providers, "recipient")
	config.Default(&c.Adv.Estimator, "count")
	config.Default(&c.Adv.DelayFloor, config.Duration(time.Millisecond))
	config.Default(&c.Adv.Block, "none")
	config.Default(&c.Adv.BlockDelay, config.Duration(5*time.Second))
	if c.Workload.Acks == nil {
		t := true
		c.Workload.Acks = &t
	}
	if c.Adv.TopK == nil {
		for _, k := range []int{1, 5, 10} {
			if k <= c.Users {
				c.Adv.TopK = append(c.Adv.TopK, k)
			}
		}
	}
}

// validate reports the first bad key.
func (c *Config) validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrConfig}, args...)...)
	}
	for key, v := range map[string]float64{"client.rate": c.Client.Rate, "client.loop_rate": c.Client.LoopRate,
		"relay.loop_rate": c.Relay.LoopRate, "relay.drop_rate": c.Relay.DropRate, "workload.oneshot": c.Workload.OneShot, "workload.fragments": c.Workload.Fragments, "workload.message_rate": c.Workload.MessageRate, "workload.zipf": c.Workload.Zipf,
		"workload.reply_prob": c.Workload.ReplyProb, "adversary.corrupt_relays": c.Adv.CorruptRelays, "tor.fraction": c.Tor.Fraction} {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return bad("%s is not a finite number", key)
		}
	}
	switch {
	case c.Duration.D() <= 0 || c.Duration.D() > 30*24*time.Hour:
		return bad("duration %v: want (0, 720h]", c.Duration.D())
	case c.Warmup == nil:
		return bad("warmup unset")
	case c.Warmup.D() < 0 || c.Warmup.D() >= c.Duration.D():
		return bad("warmup %v: want [0, duration)", c.Warmup.D())
	case c.Users < 1 || c.Users > 10_000_000:
		return bad("users %d: want 1..10,000,000", c.Users)
	case c.Providers < 1 || c.Providers > 10_000:
		return bad("providers %d: want 1..10,000", c.Providers)
	case c.Layers < 1 || c.Layers > 10:
		return bad("layers %d: want 1..10", c.Layers)
	case c.Width < 1 || c.Width > 10_000:
		return bad("width %d: want 1..10,000", c.Width)
	case c.Latency.Kind != "fixed" && c.Latency.Kind != "uniform" && c.Latency.Kind != "exponential":
		return bad("latency.kind %q: want fixed, uniform or exponential", c.Latency.Kind)
	case c.Latency.Mean.D() < 0 || c.Latency.Min.D() < 0 || c.Latency.Max.D() < 0:
		return bad("latency: negative")
	case c.Latency.Kind == "uniform" && c.Latency.Max.D() < c.Latency.Min.D():
		return bad("latency.max below latency.min")
	case c.Latency.Kind == "exponential" && c.Latency.Mean.D() < c.Latency.Min.D():
		return bad("latency.mean below latency.min")
	case c.Mixing.At != "all" && c.Mixing.At != "mixes":
		return bad("mixing.at %q: want all or mixes", c.Mixing.At)
	case c.Mixing.MeanDelay == nil:
		return bad("mixing.mean_delay unset")
	case c.Mixing.MeanDelay.D() < 0:
		return bad("mixing.mean_delay is negative")
	case c.Client.Rate < 0 || c.Client.Rate > 1e4 || c.Client.LoopRate < 0 || c.Client.LoopRate > 1e4:
		return bad("client rates: want 0..10,000 per second")
	case c.Client.Padding != "fixed" && c.Client.Padding != "none":
		return bad("client.padding %q: want fixed or none", c.Client.Padding)
	case c.Relay.LoopRate < 0 || c.Relay.LoopRate > 1e6 || c.Relay.DropRate < 0 || c.Relay.DropRate > 1e6:
		return bad("relay.loop_rate, relay.drop_rate: want 0..1,000,000 per second")
	case c.Relay.MeanDelay.D() < 0:
		return bad("relay.mean_delay is negative")
	case c.Client.FetchInterval.D() < time.Millisecond || c.Client.FetchInterval.D() > time.Hour:
		return bad("client.fetch_interval %v: want 1ms..1h", c.Client.FetchInterval.D())
	case c.Client.Cover != "returns" && c.Client.Cover != "drop":
		return bad("client.cover %q: want returns or drop", c.Client.Cover)
	case c.Client.Fetch != "longpoll" && c.Client.Fetch != "constant":
		return bad("client.fetch %q: want longpoll or constant", c.Client.Fetch)
	case c.Client.AckTimeout.D() <= 0 || c.Client.RetryJitter.D() < 0:
		return bad("client.ack_timeout must be positive and client.retry_jitter not negative")
	case c.Client.MaxAttempts < 1 || c.Client.MaxAttempts > 100:
		return bad("client.max_attempts %d: want 1..100", c.Client.MaxAttempts)
	case c.Workload.Fragments != 0 && (c.Workload.Fragments < 1 || c.Workload.Fragments > maxFragments):
		return bad("workload.fragments %g: want 1..%d", c.Workload.Fragments, maxFragments)
	case c.Workload.OneShot < 0 || c.Workload.OneShot > 1:
		return bad("workload.oneshot %g: want 0..1", c.Workload.OneShot)
	case c.Workload.OneShot > 0 && c.Workload.OfflineMean.D() > 0:
		return bad("workload.oneshot and workload.offline_mean: one-shot users are online only while they send; choose one")
	case c.Adv.Block != "none" && c.Adv.Block != "drop" && c.Adv.Block != "delay":
		return bad("adversary.block %q: want none, drop or delay", c.Adv.Block)
	case c.Adv.BlockDelay.D() <= 0:
		return bad("adversary.block_delay must be positive")
	case c.Adv.WithholdAcks && c.Adv.Providers != "recipient" && c.Adv.Providers != "both":
		return bad("adversary.withhold_acks needs the recipient's provider: adversary.providers recipient or both")
	case c.Adv.RefuseAcks && c.Adv.Providers != "recipient" && c.Adv.Providers != "both":
		return bad("adversary.refuse_acks needs the recipient's provider: adversary.providers recipient or both")
	case c.Adv.RefuseAcks && c.Adv.WithholdAcks:
		return bad("adversary.refuse_acks and adversary.withhold_acks: the provider either answers or not; choose one")
	case c.Client.MessageTTL.D() < time.Second:
		return bad("client.message_ttl %v: want at least 1s", c.Client.MessageTTL.D())
	case c.Workload.MessageRate <= 0 || c.Workload.MessageRate > 1e4:
		return bad("workload.message_rate %g: want (0, 10,000] per second", c.Workload.MessageRate)
	case c.Client.Rate > 0 && c.Workload.MessageRate >= c.Client.Rate:
		return bad("workload.message_rate %g must be below client.rate %g (real packets replace cover)", c.Workload.MessageRate, c.Client.Rate)
	case c.Workload.Contacts < 1 || c.Workload.Contacts > c.Users:
		return bad("workload.contacts %d: want 1..users", c.Workload.Contacts)
	case c.Workload.Zipf < 0 || c.Workload.Zipf > 10:
		return bad("workload.zipf %g: want 0..10", c.Workload.Zipf)
	case c.Adv.CorruptRelays < 0 || c.Adv.CorruptRelays > 1:
		return bad("adversary.corrupt_relays %g: want 0..1", c.Adv.CorruptRelays)
	case c.Adv.Targets < 1 || c.Adv.Targets > 1_000_000:
		return bad("adversary.targets %d: want 1..1,000,000", c.Adv.Targets)
	case c.Adv.Round.D() < time.Millisecond || c.Adv.Round.D() > c.Duration.D():
		return bad("adversary.round %v: want 1ms..duration", c.Adv.Round.D())
	case c.Adv.DisclosureTargets < 0 || c.Adv.DisclosureTargets > 1000:
		return bad("adversary.disclosure_targets %d: want 0..1000", c.Adv.DisclosureTargets)
	case c.Adv.Providers != "recipient" && c.Adv.Providers != "sender" && c.Adv.Providers != "both" && c.Adv.Providers != "none":
		return bad("adversary.providers %q: want recipient, sender, both or none", c.Adv.Providers)
	case c.Adv.Estimator != "count" && c.Adv.Estimator != "timing":
		return bad("adversary.estimator %q: want count or timing", c.Adv.Estimator)
	case c.Adv.Estimator == "timing" && c.Mixing.Kind != string(mix.Poisson):
		return bad("adversary.estimator timing needs mixing.kind poisson")
	case c.Adv.DelayFloor.D() <= 0 || c.Adv.DelayFloor.D() > time.Minute:
		return bad("adversary.delay_floor %v: want (0, 1m]", c.Adv.DelayFloor.D())
	case c.Adv.AckPairs < 0 || c.Adv.AckPairs > 100_000:
		return bad("adversary.ack_pairs %d: want 0..100,000", c.Adv.AckPairs)
	case c.Workload.ReplyProb < 0 || c.Workload.ReplyProb > 1:
		return bad("workload.reply_prob %g: want 0..1", c.Workload.ReplyProb)
	case c.Workload.AckDelay.D() < 0:
		return bad("workload.ack_delay is negative")
	case c.Workload.ReplyDelay.D() <= 0:
		return bad("workload.reply_delay must be positive")
	case c.Workload.OnlineMean.D() < 0 || c.Workload.OfflineMean.D() < 0 || (c.Workload.OfflineMean.D() > 0) != (c.Workload.OnlineMean.D() > 0):
		return bad("workload.online_mean and offline_mean: set both (positive) or neither")
	case c.Tor.Fraction < 0 || c.Tor.Fraction > 1:
		return bad("tor.fraction %g: want 0..1", c.Tor.Fraction)
	case c.Tor.Relays < 3 || c.Tor.Relays > 10_000:
		return bad("tor.relays %d: want 3..10,000", c.Tor.Relays)
	case c.Workload.Acks == nil:
		return bad("workload.acks unset")
	}
	for _, k := range c.Adv.TopK {
		if k < 1 || k > c.Users {
			return bad("adversary.top_k %d: want 1..users", k)
		}
	}
	if err := c.mixConfig().Validate(); err != nil {
		return bad("mixing: %v", err)
	}
	return nil
}

// mixConfig is the mixnet/mix configuration of every node.
func (c *Config) mixConfig() mix.Config {
	return mix.Config{
		Kind: mix.Kind(c.Mixing.Kind), Capacity: c.Mixing.Capacity, MaxDelay: c.Mixing.MaxDelay.D(),
		N: c.Mixing.Threshold, Interval: c.Mixing.Interval.D(), Keep: c.Mixing.Keep,
	}
}

// ParseConfig reads a scenario from TOML text, applies the defaults and
// validates it.
func ParseConfig(text string) (*Config, error) {
	c := codeDefaults()
	if err := config.Decode(text, c); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	c.setDefaults()
	if err := c.validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// Check fills in the defaults of a Config built in code (or decoded from
// JSON) and validates it, as ParseConfig does for a file.
func (c *Config) Check() error {
	c.setDefaults()
	return c.validate()
}

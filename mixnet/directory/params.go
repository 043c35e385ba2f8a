package directory

import (
	"fmt"
	"math"
	"time"

	"github.com/sealnet/sealnet/mixnet"
)

// Parameters are the network's traffic parameters: how every client sends
// and fetches, and how every relay sends its own cover. They are the
// network's, not each party's, because a client or relay with unusual
// settings stands out from the others (a faster stream, shorter delays, a
// retransmission at an odd moment); published in the document, they are
// covered by the authorities' signatures like the rest of it, so fewer
// than k authorities cannot give some clients other values either.
//
// docs/directory.md §4.1 explains each field and how an operator chooses
// them for a network of a given size. The zero value is not a valid set of
// parameters: in a Document it means "not published", which
// Document.Params reads as DefaultParameters().
//
// Durations are whole microseconds and rates whole millionths of a packet
// per second, the resolution of the encoding; Validate refuses anything
// finer, so that a document decodes to exactly the values it was made
// from.
type Parameters struct {
	// MeanDelay is the mean of the exponential per-hop delay that every
	// client draws for every hop of every packet, the final (provider)
	// hop included, and that every relay draws for its own cover.
	// Longer buys more mixing (a mix holds about
	// ClientRate·N·MeanDelay/W packets for N clients and W mixes per
	// layer) for latency: about (layers+1)·MeanDelay per message. 0
	// turns mixing delays off (measurement control runs only).
	MeanDelay time.Duration
	// MaxDelay is the longest per-hop delay a relay or provider accepts;
	// a packet asking more of it is dropped (counted as
	// delay_out_of_bounds). Senders truncate their draws at it. It bounds
	// how long a mix holds a packet, and so its memory, and keeps a
	// sender from marking a packet with an extraordinary delay. Positive,
	// at least MeanDelay and at most mixnet.MaxDelay.
	MaxDelay time.Duration
	// ClientRate is λ, the packets per second of every client's Poisson
	// stream: every slot carries a real packet or, when none is queued,
	// cover, so an observer of a client's link sees the same stream
	// whether it talks or not. More buys a fuller anonymity set per mix
	// for bandwidth. 0 (measurement control runs only): no stream, real
	// packets leave at once and are visible as such.
	ClientRate float64
	// ProviderHold is the mean of the exponential hold a provider applies
	// before every reply it sends through a SURB (acknowledgements,
	// answers), so that the reply's departure does not mark the moment
	// the request arrived. 0: replies leave at once.
	ProviderHold time.Duration
	// FetchInterval: every client fetches from its provider exactly once
	// per interval, whether mail is waiting or not, so the provider's
	// answers do not tell when mail arrived. Shorter buys latency for
	// load on providers. 0 (measurement control runs only): clients
	// long-poll, and every arrival shows on the wire.
	FetchInterval time.Duration
	// AckTimeout: a message not acknowledged this long after it was sent
	// is sent again on a new path. It must exceed MinAckTimeout, so that
	// retransmissions (copies an adversary can correlate) are rare on a
	// network that loses nothing.
	AckTimeout time.Duration
	// RetryJitter is the upper bound of a uniform extra delay before a
	// retransmission, so that its moment does not reveal the original's.
	RetryJitter time.Duration
	// MaxAttempts bounds the unanswered transmissions of one message;
	// after that the user is told it was not delivered. A transient
	// refusal by the recipient's provider is an answer and does not
	// count (the client retries it until the message's TTL,
	// sender.MessageTTL). 1 to 100.
	MaxAttempts int
	// RelayLoopRate is the loop cover each relay and provider sends per
	// second, through the other layers and back: cover, and a probe that
	// sees packets being dropped. 0 turns relay loops off.
	RelayLoopRate float64
}

// The defaults, DefaultParameters(): a network of the reference size (docs/directory.md §4.1).
const (
	DefaultMeanDelay     = 400 * time.Millisecond
	DefaultMaxDelay      = 30 * time.Second
	DefaultClientRate    = 2.0
	DefaultProviderHold  = time.Second
	DefaultFetchInterval = time.Second
	DefaultAckTimeout    = 30 * time.Second
	DefaultRetryJitter   = 5 * time.Second
	DefaultMaxAttempts   = 5
	DefaultRelayLoopRate = 0.2
)

// Limits of the parameters, checked by Validate.
const (
	// maxRate bounds ClientRate and RelayLoopRate, in packets per second.
	maxRate = 1000.0
	// maxAttempts bounds Parameters.MaxAttempts.
	maxAttempts = 100
	// maxParamDuration bounds every duration but MaxDelay and MeanDelay
	// (which mixnet.MaxDelay bounds).
	maxParamDuration = MaxPeriod
	// minFetchInterval: at most 1,000 fetches per second, as for rates.
	minFetchInterval = time.Millisecond
	// microsPerUnit: rates are carried in millionths per second.
	microsPerUnit = 1e6
	// PageRecords is how many records a provider's answer to one fetch
	// holds (mailbox/proto.PageRecords; a test ties them). Every packet a
	// client sends brings one reply into its mailbox, so a fetch every
	// FetchInterval must drain ClientRate·FetchInterval replies with room
	// for its mail: Validate requires half the page at most.
	PageRecords = 4
	// MaxDefaultLayers is the deepest network DefaultParameters suit
	// (their AckTimeout is above MinAckTimeout up to it).
	MaxDefaultLayers = 8
)

// DefaultParameters returns the parameters of a document that publishes
// none: a mean delay of 400 ms capped at 30 s per hop, 2 packets per
// second per client, a 1 s mean hold before provider replies, a fetch
// every second, retransmission after 30 s plus up to 5 s, at most 5
// attempts, and 0.2 relay loops per second. docs/directory.md §4.1 says
// why (the reference workload's goals); they are valid for up to
// MaxDefaultLayers layers.
func DefaultParameters() Parameters {
	return Parameters{
		MeanDelay:     DefaultMeanDelay,
		MaxDelay:      DefaultMaxDelay,
		ClientRate:    DefaultClientRate,
		ProviderHold:  DefaultProviderHold,
		FetchInterval: DefaultFetchInterval,
		AckTimeout:    DefaultAckTimeout,
		RetryJitter:   DefaultRetryJitter,
		MaxAttempts:   DefaultMaxAttempts,
		RelayLoopRate: DefaultRelayLoopRate,
	}
}

// MinAckTimeout is the bound AckTimeout must exceed in a network of the
// given number of mix layers:
//
//	FetchInterval + 5·ProviderHold + 6·(layers+1)·MeanDelay
//
// An acknowledgement's round trip is 2·(layers+1) exponential hops of mean
// MeanDelay (out to the recipient's provider and back through a SURB), one
// exponential hold of mean ProviderHold, and the wait for the sender's
// next fetch, at most FetchInterval. Each term bounds its part's tail: a
// sum of k ≥ 4 exponential hops exceeds three times its mean with
// probability at most (3e⁻²)ᵏ ≤ 2.7% (a Chernoff bound; 0.07% for k = 8,
// three layers), one hold exceeds five times its mean with probability
// e⁻⁵ ≈ 0.7%, and the fetch wait never exceeds its interval. So on a
// network that loses nothing, at most about 1% of messages of a three-layer
// network (3.4% with one layer) are sent again for nothing, before link
// latency, which the margin above the bound must cover.
func (p Parameters) MinAckTimeout(layers int) time.Duration {
	return p.FetchInterval + 5*p.ProviderHold + time.Duration(6*(layers+1))*p.MeanDelay
}

// Validate reports whether p is a usable set of parameters for a network
// of the given number of mix layers (1 to MaxLayers). Errors wrap
// ErrInvalid and name the parameter. It checks:
//   - every duration is whole microseconds, and every rate whole
//     millionths per second, from 0 to 1,000 per second;
//   - 0 ≤ MeanDelay ≤ MaxDelay ≤ mixnet.MaxDelay and MaxDelay > 0;
//   - 0 ≤ ProviderHold, RetryJitter ≤ 24 h; FetchInterval 0 (long
//     polls) or 1 ms to 24 h;
//   - MinAckTimeout(layers) < AckTimeout ≤ 24 h;
//   - ClientRate·FetchInterval ≤ PageRecords/2: fetching drains the
//     replies every packet brings, with room for mail;
//   - 1 ≤ MaxAttempts ≤ 100.
func (p Parameters) Validate(layers int) error {
	if err := p.validate(layers); err != nil {
		return fmt.Errorf("%w: %s", ErrInvalid, err)
	}
	return nil
}

func (p Parameters) validate(layers int) error {
	if layers < 1 || layers > MaxLayers {
		return fmt.Errorf("parameters for %d layers, want 1 to %d", layers, MaxLayers)
	}
	for _, d := range []struct {
		name     string
		v        time.Duration
		min, max time.Duration
	}{
		{"max_delay", p.MaxDelay, time.Microsecond, mixnet.MaxDelay},
		{"mean_delay", p.MeanDelay, 0, p.MaxDelay},
		{"provider_hold", p.ProviderHold, 0, maxParamDuration},
		{"fetch_interval", p.FetchInterval, 0, maxParamDuration},
		{"ack_timeout", p.AckTimeout, time.Microsecond, maxParamDuration},
		{"retry_jitter", p.RetryJitter, 0, maxParamDuration},
	} {
		if d.v%time.Microsecond != 0 {
			return fmt.Errorf("parameter %s %v is not whole microseconds", d.name, d.v)
		}
		if d.v < d.min || d.v > d.max {
			return fmt.Errorf("parameter %s %v is outside [%v, %v]", d.name, d.v, d.min, d.max)
		}
	}
	for _, r := range []struct {
		name string
		v    float64
	}{{"client_rate", p.ClientRate}, {"relay_loop_rate", p.RelayLoopRate}} {
		if _, ok := rateMicros(r.v); !ok {
			return fmt.Errorf("parameter %s %v is not a whole number of millionths of a packet per second in [0, %v]", r.name, r.v, maxRate)
		}
	}
	if p.MaxAttempts < 1 || p.MaxAttempts > maxAttempts {
		return fmt.Errorf("parameter max_attempts %d is outside [1, %d]", p.MaxAttempts, maxAttempts)
	}
	if p.FetchInterval > 0 && p.FetchInterval < minFetchInterval {
		return fmt.Errorf("parameter fetch_interval %v: 0 (long polls) or at least %v", p.FetchInterval, minFetchInterval)
	}
	if fill := p.ClientRate * p.FetchInterval.Seconds(); fill > PageRecords/2 {
		return fmt.Errorf("parameter fetch_interval %v with client_rate %v: a fetch would have to carry %.2g replies on average, more than half the %d records of a page; fetch more often", p.FetchInterval, p.ClientRate, fill, PageRecords)
	}
	if low := p.MinAckTimeout(layers); p.AckTimeout <= low {
		return fmt.Errorf("parameter ack_timeout %v must exceed fetch_interval + 5·provider_hold + 6·(layers+1)·mean_delay = %v with %d layers, or acknowledgements often come too late and messages are sent again for nothing",
			p.AckTimeout, low, layers)
	}
	return nil
}

// rateMicros returns r in millionths per second, if r is a whole number
// of them in [0, maxRate] (NaN is not).
func rateMicros(r float64) (uint64, bool) {
	if !(r >= 0 && r <= maxRate) {
		return 0, false
	}
	u := math.Round(r * microsPerUnit)
	if u/microsPerUnit != r {
		return 0, false
	}
	return uint64(u), true
}

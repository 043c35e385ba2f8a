package relay

import (
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"net/url"
	"path/filepath"
	"runtime"
	"strconv"
	"time"

	"github.com/sealnet/sealnet/internal/config"
	"github.com/sealnet/sealnet/internal/loopwatch"
	"github.com/sealnet/sealnet/internal/torctl"
	"github.com/sealnet/sealnet/mixnet"
	"github.com/sealnet/sealnet/mixnet/directory"
	"github.com/sealnet/sealnet/mixnet/mix"
)

// What a relay does under a document that publishes the default
// parameters (directory.DefaultParameters): the traffic-analysis
// simulator (sim/) assumes these; its tests compare its defaults with
// them, and this package's tests check that a relay follows the document.
const (
	// DefaultLoopRate is the loop cover per second of every relay: the
	// network's RelayLoopRate, by default directory.DefaultRelayLoopRate.
	DefaultLoopRate = directory.DefaultRelayLoopRate
	// DefaultDropRate is the drop cover per second of a relay whose
	// [cover] drop_rate is not set: none.
	DefaultDropRate = 0.0
	// DefaultCoverDelay is the mean per-hop delay of a relay's own loop
	// and drop packets: the network's MeanDelay, by default
	// directory.DefaultMeanDelay, the clients' own.
	DefaultCoverDelay = directory.DefaultMeanDelay
	// DefaultMaxDelay is the longest per-hop delay a relay accepts: the
	// network's MaxDelay, by default directory.DefaultMaxDelay. A packet
	// asking more is dropped (delay_out_of_bounds).
	DefaultMaxDelay = directory.DefaultMaxDelay
)

// Defaults of the loop alarm (docs/relay.md, "Loop alarm").
const (
	// DefaultLoopLoss is cover.loop_loss by default: the loop loss of an
	// undisturbed network that the alarm's loss test takes as its
	// baseline.
	DefaultLoopLoss = loopwatch.DefaultBaselineLoss
	// DefaultLoopLinkLatency is cover.loop_link_latency by default: the
	// time allowed for each link a loop crosses.
	DefaultLoopLinkLatency = 250 * time.Millisecond
)

// DefaultReplayRatePerCore is the unwrap rate, per worker on its own
// core, that the default replay capacity absorbs for a key's whole
// lifetime: 32,000 packets/s, the rate of bare X25519 operations on this
// project's reference machines (32 µs each, docs/benchmarks.md), which no
// unwrap reaches there since each needs one X25519 and more (measured
// 24,800 unwraps/s per core). A faster machine is reported at start (the
// self-benchmark); set limits.replay_capacity there.
const DefaultReplayRatePerCore = 32_000

// ReplayCapacityFor is the number of replay tags a key must hold so that
// a hop unwrapping perCore packets/s on each of cores cores never fills
// it: the rate times the key's lifetime, period + 2 × grace (a key is
// usable from grace before its epoch starts until grace after it ends).
// With the defaults on two cores, 32,000 × 2 × 24 min = 92,160,000 tags.
func ReplayCapacityFor(perCore float64, cores int, period, grace time.Duration) int {
	return int(math.Ceil(perCore * float64(cores) * keyLifetime(period, grace).Seconds()))
}

// keyLifetime is how long a mix key unwraps packets.
func keyLifetime(period, grace time.Duration) time.Duration { return period + 2*grace }

// unwrapCores is how many workers unwrap at once.
func unwrapCores(workers int) int { return max(1, min(workers, runtime.NumCPU())) }

// ProvidersHoldFinalHop says whether a provider holds a packet that ends
// at it for the delay its sender drew for the provider hop. It does: the
// provider is a mixing hop like any other (Loopix). A final-hop packet
// goes through the provider's mixer with the delay in its routing slot and
// through the release stage, so it is acted on only once its replay tag
// is durable (Node.final is called by the releaser). The simulator's
// mixing.at = "all" models this. A test
// (TestProviderHoldsFinalHop) checks it.
const ProvidersHoldFinalHop = true

// Config is a relay's configuration file (TOML). docs/relay.md describes
// every key; Validate fills in the defaults.
type Config struct {
	// Name labels the node in the directory and in logs: 1-64 of [a-z0-9-].
	Name string `toml:"name"`
	// Role is directory.RoleMix or directory.RoleProvider, written "mix" or
	// "provider" in the file.
	Role directory.Role `toml:"role"`
	// Layer is a mix's layer, 1 to the number of layers.
	Layer int `toml:"layer"`
	// Domain is a provider's domain: its users are name@domain.
	Domain string `toml:"domain"`
	// Listen is the address of the link listener.
	Listen string `toml:"listen"`
	// Address is the address published in the directory; default Listen.
	Address string `toml:"address"`
	// OutboundAddress is the local IP that links to other nodes are
	// dialed from; default: the system's choice. Set it on a host with
	// several addresses so that the node's outgoing links come from the
	// address it is known by.
	OutboundAddress string `toml:"outbound_address"`
	// DataDir holds keys, replay journals and cached documents.
	DataDir string `toml:"data_dir"`
	// LogLevel is debug, info (default), warn or error.
	LogLevel string `toml:"log_level"`
	// Metrics is the local address of the Prometheus endpoint; "" is off.
	Metrics string `toml:"metrics"`

	Directory DirectoryConfig `toml:"directory"`
	Mixing    MixingConfig    `toml:"mixing"`
	Cover     CoverConfig     `toml:"cover"`
	Limits    LimitsConfig    `toml:"limits"`
	Tor       TorConfig       `toml:"tor"`
}

// TorConfig publishes a provider's link listener as a Tor v3 onion
// service (docs/tor.md), for clients that deliver and fetch without
// leaving Tor. Off by default.
type TorConfig struct {
	// Onion turns the onion service on (providers only).
	Onion bool `toml:"onion"`
	// Port is the onion service's virtual port. Default: the port of
	// listen.
	Port int `toml:"port"`
	// Mode is "start" (default: run tor from the system binary, owned by
	// the relay) or "attach" (use a running tor's control port).
	Mode string `toml:"mode"`
	// Binary is tor's path (start). Default: tor on $PATH, /usr/sbin/tor.
	Binary string `toml:"binary"`
	// DataDir is tor's data directory (start). Default: data_dir/tor.
	DataDir string `toml:"data_dir"`
	// Torrc is an extra torrc file (start), e.g. a private network's.
	Torrc string `toml:"torrc"`
	// Control and Password reach a running tor (attach).
	Control  string `toml:"control"`
	Password string `toml:"password"`
	// BootstrapTimeout bounds tor's start. Default 3m.
	BootstrapTimeout config.Duration `toml:"bootstrap_timeout"`
	// PublishTimeout bounds the wait for the onion service's descriptor
	// to be uploaded. Default 3m.
	PublishTimeout config.Duration `toml:"publish_timeout"`
}

// DirectoryConfig says which authorities to trust.
type DirectoryConfig struct {
	Authorities []AuthorityConfig `toml:"authorities"`
	// Threshold is how many authority signatures a document needs.
	// Default: a majority.
	Threshold int `toml:"threshold"`
	// EpochPeriod must equal the network's. Default 20m.
	EpochPeriod config.Duration `toml:"epoch_period"`
	// Poll is how often to look for new documents. Default 5s.
	Poll config.Duration `toml:"poll"`
	// EpochGrace is how long a mix key stays usable past its epoch (and
	// before it), for packets in flight across the boundary. Default: a
	// tenth of the epoch, at most 2m.
	EpochGrace config.Duration `toml:"epoch_grace"`
}

// AuthorityConfig is one trusted directory authority.
type AuthorityConfig struct {
	URL string `toml:"url"`
	Key string `toml:"key"` // hex Ed25519 public key
}

// MixingConfig selects the mixing strategy (package mixnet/mix).
type MixingConfig struct {
	// Strategy is poisson (default), threshold or timed-pool.
	Strategy string `toml:"strategy"`
	// MaxDelay is ignored: the longest per-hop delay a relay accepts is
	// the network's (the document's MaxDelay); a packet asking more is
	// dropped. Set, it is reported at start (remove it).
	MaxDelay *config.Duration `toml:"max_delay"`
	// Threshold is the batch size (threshold).
	Threshold int `toml:"threshold"`
	// Interval is the flush period (timed-pool).
	Interval config.Duration `toml:"interval"`
	// Keep is how many packets stay in the pool at a flush (timed-pool).
	Keep int `toml:"keep"`
	// Capacity is the most packets held; more are dropped. Default 100000.
	Capacity int `toml:"capacity"`
}

// CoverConfig sets the relay's own cover traffic.
type CoverConfig struct {
	// LoopRate is ignored: a relay sends loops (through every other layer
	// and back to itself: cover, and a probe of packet loss) at the
	// network's RelayLoopRate, so that every relay's cover looks alike.
	// Set, it is reported at start (remove it).
	LoopRate *float64 `toml:"loop_rate"`
	// DropRate is drop packets per second, sent to a random provider that
	// discards them. Default 0 (DefaultDropRate).
	DropRate float64 `toml:"drop_rate"`
	// MeanDelay is ignored: cover packets draw their per-hop delays with
	// the network's MeanDelay, the clients' own, so that cover looks like
	// real traffic. Set, it is reported at start (remove it).
	MeanDelay *config.Duration `toml:"mean_delay"`
	// LoopTimeout: a loop not back in this long counts as lost. Default 1m.
	LoopTimeout config.Duration `toml:"loop_timeout"`
	// LoopLoss is the share of loops an undisturbed network loses, the
	// baseline of the loop alarm's loss test (docs/relay.md, "Loop
	// alarm"). Default 0.01 (DefaultLoopLoss).
	LoopLoss float64 `toml:"loop_loss"`
	// LoopLinkLatency is the time the loop alarm allows for each link a
	// loop crosses (network latency, unwrapping, the replay journal's
	// sync), added to the mixing delays in the round trip it expects.
	// Default 250ms (DefaultLoopLinkLatency).
	LoopLinkLatency config.Duration `toml:"loop_link_latency"`
}

// LimitsConfig bounds every resource.
type LimitsConfig struct {
	// Workers unwrapping packets. Default: one per CPU.
	Workers int `toml:"workers"`
	// InputQueue is the packets waiting for a worker. Default 8192.
	InputQueue int `toml:"input_queue"`
	// OutputQueue is the packets waiting per next hop. Default 4096.
	OutputQueue int `toml:"output_queue"`
	// MaxConns caps incoming links. Default 1024.
	MaxConns int `toml:"max_conns"`
	// MaxConnsPerPeer caps incoming links per node key or client IP. Default 4.
	MaxConnsPerPeer int `toml:"max_conns_per_peer"`
	// ReplayCapacity is the replay tags kept per key epoch; a full cache
	// refuses packets until its key expires. Default: what the workers
	// unwrap over a key's lifetime at DefaultReplayRatePerCore
	// (ReplayCapacityFor), so it follows epoch_period and epoch_grace.
	// Memory: about 9.3 bytes per tag when full.
	ReplayCapacity int `toml:"replay_capacity"`
	// ReplaySync is how often replay tags are flushed to disk; a packet
	// leaves only after its tag is on disk. Default 5ms.
	ReplaySync config.Duration `toml:"replay_sync"`
	// LinkPadding sends a padding frame on an outgoing link idle this long;
	// 0 (default) is off.
	LinkPadding config.Duration `toml:"link_padding"`
}

// ErrConfig wraps configuration errors.
var ErrConfig = errors.New("relay: invalid configuration")

// LoadConfig reads and validates a configuration file.
func LoadConfig(path string) (*Config, error) { return config.LoadValid[Config](path) }

// Validate fills defaults and checks everything once, at start.
func (c *Config) Validate() error {
	bad := func(f string, a ...any) error { return fmt.Errorf("%w: %s", ErrConfig, fmt.Sprintf(f, a...)) }
	switch c.Role {
	case directory.RoleMix:
		if c.Layer < 1 || c.Layer > directory.MaxLayers || c.Domain != "" {
			return bad("a mix needs layer = 1..%d and no domain", directory.MaxLayers)
		}
	case directory.RoleProvider:
		if c.Layer != 0 || c.Domain == "" {
			return bad("a provider needs a domain and no layer")
		}
	default:
		return bad("role %q: want mix or provider", c.Role)
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return bad("listen %q: %v", c.Listen, err)
	}
	if c.Address == "" {
		c.Address = c.Listen
	}
	if c.OutboundAddress != "" {
		if _, err := netip.ParseAddr(c.OutboundAddress); err != nil {
			return bad("outbound_address %q is not an IP address", c.OutboundAddress)
		}
	}
	if c.DataDir == "" {
		return bad("data_dir is required")
	}
	if c.LogLevel == "" {
		c.LogLevel = "info"
	}
	if c.Metrics != "" {
		if _, _, err := net.SplitHostPort(c.Metrics); err != nil {
			return bad("metrics %q: %v", c.Metrics, err)
		}
	}

	d := &c.Directory
	if len(d.Authorities) == 0 {
		return bad("no [[directory.authorities]]: a relay needs at least one")
	}
	for i, a := range d.Authorities {
		u, err := url.Parse(a.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return bad("directory.authorities[%d].url %q is not an http(s) URL", i, a.URL)
		}
		if k, err := hex.DecodeString(a.Key); err != nil || len(k) != 32 {
			return bad("directory.authorities[%d].key must be 64 hex digits", i)
		}
	}
	config.Default(&d.Threshold, len(d.Authorities)/2+1)
	if d.Threshold < 1 || d.Threshold > len(d.Authorities) {
		return bad("directory.threshold %d with %d authorities", d.Threshold, len(d.Authorities))
	}
	config.Default(&d.EpochPeriod, config.Duration(20*time.Minute))
	if p := d.EpochPeriod.D(); p < 2*time.Second || p%time.Second != 0 || p > directory.MaxPeriod {
		return bad("directory.epoch_period %v must be whole seconds, 2s to %v", p, directory.MaxPeriod)
	}
	config.Default(&d.Poll, config.Duration(5*time.Second))
	config.Default(&d.EpochGrace, config.Duration(min(d.EpochPeriod.D()/10, 2*time.Minute)))
	if g := d.EpochGrace.D(); g <= 0 || g >= d.EpochPeriod.D()/2 {
		return bad("directory.epoch_grace %v must be positive and under half the epoch", g)
	}

	m := &c.Mixing
	if m.Strategy == "" {
		m.Strategy = string(mix.Poisson)
	}
	config.Default(&m.Capacity, 100_000)
	if err := c.mixConfig().Validate(); err != nil {
		return bad("mixing: %v", err)
	}

	cv := &c.Cover
	if cv.DropRate < 0 || cv.DropRate > 1000 {
		return bad("cover.drop_rate %v must be between 0 and 1000 per second", cv.DropRate)
	}
	config.Default(&cv.LoopTimeout, config.Duration(time.Minute))
	config.Default(&cv.LoopLoss, DefaultLoopLoss)
	if !(cv.LoopLoss > 0 && cv.LoopLoss < 1) {
		return bad("cover.loop_loss must be above 0 and below 1 (a share of loops, e.g. 0.01)")
	}
	config.Default(&cv.LoopLinkLatency, config.Duration(DefaultLoopLinkLatency))
	if cv.LoopLinkLatency.D() < 0 {
		return bad("cover.loop_link_latency must not be negative")
	}

	l := &c.Limits
	config.Default(&l.Workers, runtime.GOMAXPROCS(0))
	config.Default(&l.InputQueue, 8192)
	config.Default(&l.OutputQueue, 4096)
	config.Default(&l.MaxConns, 1024)
	config.Default(&l.MaxConnsPerPeer, 4)
	config.Default(&l.ReplayCapacity, ReplayCapacityFor(DefaultReplayRatePerCore, unwrapCores(l.Workers), d.EpochPeriod.D(), d.EpochGrace.D()))
	config.Default(&l.ReplaySync, config.Duration(5*time.Millisecond))
	for name, v := range map[string]int{"workers": l.Workers, "input_queue": l.InputQueue, "output_queue": l.OutputQueue,
		"max_conns": l.MaxConns, "max_conns_per_peer": l.MaxConnsPerPeer, "replay_capacity": l.ReplayCapacity} {
		if v < 1 {
			return bad("limits.%s must be positive", name)
		}
	}
	if l.Workers > 256 {
		return bad("limits.workers %d is more than 256", l.Workers)
	}
	if l.LinkPadding < 0 || l.ReplaySync <= 0 {
		return bad("limits.link_padding must not be negative, limits.replay_sync must be positive")
	}
	return c.validateTor(bad)
}

func (c *Config) validateTor(bad func(string, ...any) error) error {
	t := &c.Tor
	if !t.Onion {
		return nil
	}
	if c.Role != directory.RoleProvider {
		return bad("tor.onion: only a provider publishes an onion service")
	}
	if t.Port == 0 {
		_, port, _ := net.SplitHostPort(c.Listen)
		t.Port, _ = strconv.Atoi(port)
	}
	if t.Port < 1 || t.Port > 65535 {
		return bad("tor.port %d: want 1 to 65535 (or set listen to a fixed port)", t.Port)
	}
	if t.Mode == "" {
		t.Mode = torctl.ModeStart
	}
	switch t.Mode {
	case torctl.ModeStart:
		if t.DataDir == "" {
			t.DataDir = filepath.Join(c.DataDir, "tor")
		}
	case torctl.ModeAttach:
		if _, _, err := net.SplitHostPort(t.Control); err != nil {
			return bad("tor.control %q: attach mode needs tor's control port as host:port", t.Control)
		}
	default:
		return bad("tor.mode %q: want start or attach", t.Mode)
	}
	config.Default(&t.BootstrapTimeout, config.Duration(3*time.Minute))
	config.Default(&t.PublishTimeout, config.Duration(3*time.Minute))
	return nil
}

func (t *TorConfig) torctl() torctl.Config {
	return torctl.Config{Mode: t.Mode, Binary: t.Binary, DataDir: t.DataDir, Torrc: t.Torrc,
		Control: t.Control, Password: t.Password, Bootstrap: t.BootstrapTimeout.D()}
}

// networkKey is a key of the relay's configuration that a network
// parameter replaces.
type networkKey struct{ key, param string }

// networkKeys lists the keys set in c that the network's parameters
// replace: the relay ignores them and says so at start.
func (c *Config) networkKeys() []networkKey {
	var out []networkKey
	if c.Cover.LoopRate != nil {
		out = append(out, networkKey{"cover.loop_rate", "relay_loop_rate"})
	}
	if c.Cover.MeanDelay != nil {
		out = append(out, networkKey{"cover.mean_delay", "mean_delay"})
	}
	if c.Mixing.MaxDelay != nil {
		out = append(out, networkKey{"mixing.max_delay", "max_delay"})
	}
	return out
}

// mixConfig is the mixing strategy's configuration. Its Poisson cap is
// the longest encodable delay: packets asking more than the network's
// MaxDelay are refused before they reach the mixer.
func (c *Config) mixConfig() mix.Config {
	return mix.Config{
		Kind:     mix.Kind(c.Mixing.Strategy),
		Capacity: c.Mixing.Capacity,
		MaxDelay: mixnet.MaxDelay,
		N:        c.Mixing.Threshold,
		Interval: c.Mixing.Interval.D(),
		Keep:     c.Mixing.Keep,
	}
}

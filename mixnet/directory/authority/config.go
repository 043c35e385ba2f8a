package authority

import (
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/sealnet/sealnet/internal/config"
	"github.com/sealnet/sealnet/mixnet/directory"
)

// Config is the authority's configuration file (TOML).
type Config struct {
	// Name labels the authority in logs.
	Name string `toml:"name"`
	// Listen is the HTTP address of the authority's API.
	Listen string `toml:"listen"`
	// DataDir holds the identity key, descriptors and documents.
	DataDir string `toml:"data_dir"`
	// EpochPeriod is the length of an epoch; every node must use the same.
	EpochPeriod config.Duration `toml:"epoch_period"`
	// Layers is the number of mix layers.
	Layers int `toml:"layers"`
	// Lead: the document for an epoch is built this long before it starts.
	// Default: a quarter of the epoch, at most 2 minutes.
	Lead config.Duration `toml:"lead"`
	// BootstrapWait: with no document for the current epoch, build one
	// once every listed node has published, or after this long.
	BootstrapWait config.Duration `toml:"bootstrap_wait"`
	// LogLevel: debug, info, warn or error.
	LogLevel string `toml:"log_level"`
	// Peers are the other authorities, whose signatures complete documents.
	Peers []Peer `toml:"peers"`
	// Parameters are the network's traffic parameters, published in every
	// document: [parameters]. Every authority of a network must have the
	// same, or their documents differ and lack signatures.
	Parameters ParametersConfig `toml:"parameters"`
	// Nodes is the allowlist: only these nodes may publish, each in its role.
	Nodes []Node `toml:"nodes"`
}

// ParametersConfig is the [parameters] section: the fields of
// directory.Parameters (docs/directory.md §4.1 says what each buys and
// how to choose them). A key left out takes its value from
// directory.DefaultParameters(); Validate fills them in, so a
// configuration written after Validate states every value.
type ParametersConfig struct {
	// MeanDelay is the mean per-hop delay of every packet: "200ms".
	MeanDelay *config.Duration `toml:"mean_delay" json:"mean_delay"`
	// MaxDelay is the longest per-hop delay relays accept: "30s".
	MaxDelay *config.Duration `toml:"max_delay" json:"max_delay"`
	// ClientRate is every client's packets per second: 2.0.
	ClientRate *float64 `toml:"client_rate" json:"client_rate"`
	// ProviderHold is the mean hold before a provider's replies: "1s".
	ProviderHold *config.Duration `toml:"provider_hold" json:"provider_hold"`
	// FetchInterval: every client fetches once per interval: "2s".
	FetchInterval *config.Duration `toml:"fetch_interval" json:"fetch_interval"`
	// AckTimeout: unacknowledged messages are sent again after it: "30s".
	AckTimeout *config.Duration `toml:"ack_timeout" json:"ack_timeout"`
	// RetryJitter bounds the random extra wait before a retry: "5s".
	RetryJitter *config.Duration `toml:"retry_jitter" json:"retry_jitter"`
	// MaxAttempts bounds the transmissions of a message: 5.
	MaxAttempts *int `toml:"max_attempts" json:"max_attempts"`
	// RelayLoopRate is each relay's loop cover per second: 0.2.
	RelayLoopRate *float64 `toml:"relay_loop_rate" json:"relay_loop_rate"`
}

// ParametersConfigOf returns the section that publishes p.
func ParametersConfigOf(p directory.Parameters) ParametersConfig {
	d := func(v time.Duration) *config.Duration { c := config.Duration(v); return &c }
	return ParametersConfig{
		MeanDelay: d(p.MeanDelay), MaxDelay: d(p.MaxDelay), ClientRate: &p.ClientRate,
		ProviderHold: d(p.ProviderHold), FetchInterval: d(p.FetchInterval), AckTimeout: d(p.AckTimeout),
		RetryJitter: d(p.RetryJitter), MaxAttempts: &p.MaxAttempts, RelayLoopRate: &p.RelayLoopRate,
	}
}

// Parameters returns the parameters the section publishes, keys left out
// taking their defaults. It does not validate them; Config.Validate does.
func (pc *ParametersConfig) Parameters() directory.Parameters {
	p := directory.DefaultParameters()
	dur := func(dst *time.Duration, v *config.Duration) {
		if v != nil {
			*dst = v.D()
		}
	}
	dur(&p.MeanDelay, pc.MeanDelay)
	dur(&p.MaxDelay, pc.MaxDelay)
	dur(&p.ProviderHold, pc.ProviderHold)
	dur(&p.FetchInterval, pc.FetchInterval)
	dur(&p.AckTimeout, pc.AckTimeout)
	dur(&p.RetryJitter, pc.RetryJitter)
	if pc.ClientRate != nil {
		p.ClientRate = *pc.ClientRate
	}
	if pc.MaxAttempts != nil {
		p.MaxAttempts = *pc.MaxAttempts
	}
	if pc.RelayLoopRate != nil {
		p.RelayLoopRate = *pc.RelayLoopRate
	}
	return p
}

// Peer is another authority.
type Peer struct {
	URL string `toml:"url"`
	Key string `toml:"key"` // hex Ed25519 public key
}

// Node is an allowlisted node.
type Node struct {
	Name        string `toml:"name"`
	IdentityKey string `toml:"identity_key"` // hex Ed25519 public key
	Role        string `toml:"role"`         // "mix" or "provider"
	Layer       int    `toml:"layer"`        // mixes: 1..layers
	Domain      string `toml:"domain"`       // providers
}

// ErrConfig wraps configuration errors.
var ErrConfig = errors.New("dirauth: invalid configuration")

// LoadConfig reads and validates a configuration file.
func LoadConfig(path string) (*Config, error) { return config.LoadValid[Config](path) }

// Validate fills defaults and checks the configuration.
func (c *Config) Validate() error {
	bad := func(f string, a ...any) error { return fmt.Errorf("%w: %s", ErrConfig, fmt.Sprintf(f, a...)) }
	if c.Name == "" {
		c.Name = "authority"
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return bad("listen %q: %v", c.Listen, err)
	}
	if c.DataDir == "" {
		return bad("data_dir is required")
	}
	p := c.EpochPeriod.D()
	if p == 0 {
		c.EpochPeriod = config.Duration(20 * time.Minute)
		p = c.EpochPeriod.D()
	}
	if p < 2*time.Second || p > directory.MaxPeriod || p%time.Second != 0 {
		return bad("epoch_period %v must be whole seconds between 2s and %v", p, directory.MaxPeriod)
	}
	if c.Layers == 0 {
		c.Layers = 3
	}
	if c.Layers < 1 || c.Layers > directory.MaxLayers {
		return bad("layers %d must be 1 to %d", c.Layers, directory.MaxLayers)
	}
	if c.Lead == 0 {
		c.Lead = config.Duration(min(p/4, 2*time.Minute))
	}
	if c.Lead.D() <= 0 || c.Lead.D() >= p {
		return bad("lead %v must be positive and shorter than the epoch", c.Lead.D())
	}
	if c.BootstrapWait == 0 {
		c.BootstrapWait = config.Duration(30 * time.Second)
	}
	if c.LogLevel == "" {
		c.LogLevel = "info"
	}
	params := c.Parameters.Parameters()
	if err := params.Validate(c.Layers); err != nil {
		return bad("[parameters]: %v", strings.TrimPrefix(err.Error(), directory.ErrInvalid.Error()+": "))
	}
	c.Parameters = ParametersConfigOf(params)
	for i, pe := range c.Peers {
		u, err := url.Parse(pe.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return bad("peers[%d].url %q is not an http(s) URL", i, pe.URL)
		}
		if _, err := parseKey(pe.Key); err != nil {
			return bad("peers[%d].key: %v", i, err)
		}
	}
	if len(c.Nodes) == 0 {
		return bad("no nodes: list every mix and provider under [[nodes]]")
	}
	for i, n := range c.Nodes {
		if _, err := parseKey(n.IdentityKey); err != nil {
			return bad("nodes[%d] (%s).identity_key: %v", i, n.Name, err)
		}
		switch directory.Role(n.Role) {
		case directory.RoleMix:
			if n.Layer < 1 || n.Layer > c.Layers || n.Domain != "" {
				return bad("nodes[%d] (%s): a mix needs a layer in 1..%d and no domain", i, n.Name, c.Layers)
			}
		case directory.RoleProvider:
			if n.Layer != 0 || n.Domain == "" {
				return bad("nodes[%d] (%s): a provider needs a domain and no layer", i, n.Name)
			}
		default:
			return bad("nodes[%d] (%s): role %q is not mix or provider", i, n.Name, n.Role)
		}
	}
	return nil
}

func parseKey(s string) (ed25519.PublicKey, error) {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, errors.New("want 64 hex digits (an Ed25519 public key)")
	}
	return ed25519.PublicKey(b), nil
}

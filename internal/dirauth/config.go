package dirauth

import (
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
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
	// Nodes is the allowlist: only these nodes may publish, each in its role.
	Nodes []Node `toml:"nodes"`
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

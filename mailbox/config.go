package mailbox

import (
	"errors"
	"fmt"
	"time"

	"github.com/sealnet/sealnet/internal/config"
	"github.com/sealnet/sealnet/mailbox/store"
	"github.com/sealnet/sealnet/relay"
)

// Config is a provider's configuration file: every key of a relay
// (docs/relay.md), role "provider", plus a [mailbox] section.
type Config struct {
	relay.Config
	Mailbox Settings `toml:"mailbox"`
}

// Settings is the [mailbox] section (docs/mailbox.md lists every key).
type Settings struct {
	// The store's limits: their ranges and defaults are store.Limits'
	// (validate fills them in from there).
	TTL          config.Duration `toml:"ttl"`           // envelope lifetime
	MaxEnvelopes int             `toml:"max_envelopes"` // per mailbox
	MaxBytes     int64           `toml:"max_bytes"`     // per mailbox
	BatchSize    int             `toml:"batch_size"`    // group commit
	GCInterval   config.Duration `toml:"gc_interval"`   // expiry sweep and value-log GC

	CertificateTTL         config.Duration `toml:"certificate_ttl"`          // default 168h
	DeliveriesPerMinute    int             `toml:"deliveries_per_minute"`    // with a token, per mailbox; default 600
	UnsolicitedPerMinute   int             `toml:"unsolicited_per_minute"`   // without, per mailbox; default 10
	BundlesPerHour         int             `toml:"bundles_per_hour"`         // per mailbox; default 60
	OneTimePerHour         int             `toml:"onetime_per_hour"`         // one-time prekeys handed out per mailbox; default 20
	RegistrationsPerMinute int             `toml:"registrations_per_minute"` // for the whole provider; default 30
	RequestsPerSecond      int             `toml:"requests_per_second"`      // per direct link; default 200
	ReplenishBelow         int             `toml:"replenish_below"`          // ask the owner for prekeys below this; default 20
	DeliveryWorkers        int             `toml:"delivery_workers"`         // default 256 (they fill the group commits)
	DeliveryQueue          int             `toml:"delivery_queue"`           // default 4096
	LimiterEntries         int             `toml:"limiter_entries"`          // rate-limit buckets kept; default 200000
	HeldReplies            int             `toml:"held_replies"`             // replies waiting for their hold; default 262144
	RepliesPerMinute       int             `toml:"replies_per_minute"`       // SURB replies stored per mailbox; default 1800
	NewcomerLinks          int             `toml:"newcomer_links"`           // user links open at once for keys with no account; default 64
	RegisterWithin         config.Duration `toml:"register_within"`          // such a link is closed unless it registers by then; default 30s

	// Tests only (export_test.go): the stranger defence of issue 15 off,
	// another answer time, and SURB replies stored unchecked (before
	// issue 16).
	strangerDefenceOff bool
	strangerAnswerTime time.Duration
	replyAuthOff       bool
}

// ErrConfig wraps configuration errors.
var ErrConfig = errors.New("mailbox: invalid configuration")

// LoadConfig reads and validates a provider configuration file.
func LoadConfig(path string) (*Config, error) { return config.LoadValid[Config](path) }

// Validate checks the relay part, requires the provider role, and fills
// the mailbox defaults.
func (c *Config) Validate() error {
	if err := c.Config.Validate(); err != nil {
		return err
	}
	if c.Role != "provider" {
		return fmt.Errorf("%w: role must be provider", ErrConfig)
	}
	return c.Mailbox.validate()
}

// Limits returns the store limits these settings set; zero fields take
// the store's defaults.
func (m *Settings) Limits() store.Limits {
	return store.Limits{
		TTL: m.TTL.D(), MaxEnvelopes: m.MaxEnvelopes, MaxBytes: m.MaxBytes,
		BatchSize: m.BatchSize, GCInterval: m.GCInterval.D(),
	}
}

// limitKeys names the store.Limits fields by their config keys, for the
// messages of store.Limits.Check.
var limitKeys = map[string]string{
	"TTL": "ttl", "MaxEnvelopes": "max_envelopes", "MaxBytes": "max_bytes",
	"BatchSize": "batch_size", "GCInterval": "gc_interval",
}

func (m *Settings) validate() error {
	bad := func(f string, a ...any) error { return fmt.Errorf("%w: mailbox.%s", ErrConfig, fmt.Sprintf(f, a...)) }
	lim := m.Limits().WithDefaults()
	m.TTL, m.MaxEnvelopes, m.MaxBytes = config.Duration(lim.TTL), lim.MaxEnvelopes, lim.MaxBytes
	m.BatchSize, m.GCInterval = lim.BatchSize, config.Duration(lim.GCInterval)
	if err := lim.Check(func(f string) string { return limitKeys[f] }); err != nil {
		return bad("%v", err)
	}
	config.Default(&m.CertificateTTL, config.Duration(7*24*time.Hour))
	config.Default(&m.DeliveriesPerMinute, 600)
	config.Default(&m.UnsolicitedPerMinute, 10)
	config.Default(&m.BundlesPerHour, 60)
	config.Default(&m.OneTimePerHour, 20)
	config.Default(&m.RegistrationsPerMinute, 30)
	config.Default(&m.RequestsPerSecond, 200)
	config.Default(&m.ReplenishBelow, 20)
	config.Default(&m.DeliveryWorkers, 256)
	config.Default(&m.DeliveryQueue, 4096)
	config.Default(&m.LimiterEntries, 200_000)
	config.Default(&m.HeldReplies, 1<<18)
	config.Default(&m.RepliesPerMinute, 1800)
	config.Default(&m.NewcomerLinks, 64)
	config.Default(&m.RegisterWithin, config.Duration(30*time.Second))
	switch {
	case m.CertificateTTL.D() < time.Hour:
		return bad("certificate_ttl %v is under an hour", m.CertificateTTL.D())
	case m.DeliveryWorkers < 1 || m.DeliveryWorkers > 4096 || m.DeliveryQueue < 1:
		return bad("delivery_workers must be 1..4096 and delivery_queue positive")
	case m.NewcomerLinks < 1 || m.RegisterWithin.D() < time.Second:
		return bad("newcomer_links must be positive and register_within at least 1s")
	}
	for name, v := range map[string]int{"deliveries_per_minute": m.DeliveriesPerMinute, "unsolicited_per_minute": m.UnsolicitedPerMinute,
		"bundles_per_hour": m.BundlesPerHour, "onetime_per_hour": m.OneTimePerHour, "registrations_per_minute": m.RegistrationsPerMinute,
		"requests_per_second": m.RequestsPerSecond, "replenish_below": m.ReplenishBelow, "limiter_entries": m.LimiterEntries, "held_replies": m.HeldReplies, "replies_per_minute": m.RepliesPerMinute} {
		if v < 0 {
			return bad("%s must not be negative", name)
		}
	}
	return nil
}

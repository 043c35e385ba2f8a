package store

import (
	"fmt"
	"time"

	"github.com/sealnet/sealnet/mailbox/proto"
)

// Limits are the limits of a store that its operator sets: the provider's
// [mailbox] section fills them (mailbox.Settings; the config keys are in
// parentheses, documented in docs/mailbox.md §8), and a store enforces
// what it is given. A zero field means its default (WithDefaults); Check
// states each range. This is the one place both are written.
type Limits struct {
	TTL          time.Duration // envelope lifetime (ttl): MinTTL..MaxTTL; default 30 days
	MaxEnvelopes int           // envelopes per mailbox (max_envelopes): at least 1; default 10,000
	MaxBytes     int64         // envelope data bytes per mailbox (max_bytes): at least proto.MaxEnvelopeData; default 64 MiB
	BatchSize    int           // most deliveries per group commit (batch_size): 1..MaxBatchSize; default 256
	GCInterval   time.Duration // expiry sweep and value-log GC (gc_interval): positive; default 10 min
	// MaxPhantoms bounds the phantom records (TakePhantom; no config
	// key): each is about 40 bytes of key and value, so the default caps
	// them near 40 MB. At least 1; default 1,000,000.
	MaxPhantoms int
}

// Bounds of the configurable limits.
const (
	MinTTL       = time.Hour
	MaxTTL       = 10 * 365 * 24 * time.Hour
	MaxBatchSize = 4096
)

// Fixed limits, the same for every store: part of the Store contract and
// of the Badger store's record format, whose decoders refuse records
// beyond them.
const (
	MaxPrekeyData     = 2048   // bytes of one prekey
	MaxOneTimeHeld    = 1000   // classical one-time prekeys a mailbox holds
	MaxPQHeld         = 200    // post-quantum one-time prekeys a mailbox holds
	MaxOneTimeUpload  = 1000   // classical one-time prekeys in one upload
	MaxPQUpload       = 200    // post-quantum one-time prekeys in one upload
	MaxPage           = 1024   // envelopes in one Page
	MaxSubsPerMailbox = 64     // Notify subscriptions of one mailbox
	MaxSubs           = 10_000 // Notify subscriptions in all
)

// ReplyShare is the share of a mailbox's quota that SURB replies may fill:
// a reply is stored only while the mailbox, the reply included, holds at
// most 1/ReplyShare of MaxEnvelopes envelopes and of MaxBytes bytes (at
// least one envelope). Whatever arrives through its owner's SURBs, the
// rest of the quota stays for sealed deliveries; sealed mail may fill it
// all (and then replies wait for the owner to fetch).
const ReplyShare = 2

// DefaultLimits returns the documented defaults.
func DefaultLimits() Limits {
	return Limits{
		TTL:          30 * 24 * time.Hour,
		MaxEnvelopes: 10_000,
		MaxBytes:     64 << 20,
		BatchSize:    256,
		GCInterval:   10 * time.Minute,
		MaxPhantoms:  1_000_000,
	}
}

// WithDefaults returns l with every zero field set to its default.
func (l Limits) WithDefaults() Limits {
	d := DefaultLimits()
	fill := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	if l.TTL == 0 {
		l.TTL = d.TTL
	}
	if l.MaxBytes == 0 {
		l.MaxBytes = d.MaxBytes
	}
	if l.GCInterval == 0 {
		l.GCInterval = d.GCInterval
	}
	fill(&l.MaxEnvelopes, d.MaxEnvelopes)
	fill(&l.BatchSize, d.BatchSize)
	fill(&l.MaxPhantoms, d.MaxPhantoms)
	return l
}

// Check reports the first limit out of its range. name gives the name the
// message uses for a field (the provider's configuration passes its keys);
// nil means the field's Go name.
func (l Limits) Check(name func(field string) string) error {
	if name == nil {
		name = func(f string) string { return f }
	}
	switch {
	case l.TTL < MinTTL:
		return fmt.Errorf("%s %v is under an hour", name("TTL"), l.TTL)
	case l.TTL > MaxTTL:
		return fmt.Errorf("%s %v is over 10 years", name("TTL"), l.TTL)
	case l.MaxEnvelopes < 1, l.MaxBytes < proto.MaxEnvelopeData:
		return fmt.Errorf("%s and %s must hold at least one envelope", name("MaxEnvelopes"), name("MaxBytes"))
	case l.BatchSize < 1 || l.BatchSize > MaxBatchSize:
		return fmt.Errorf("%s %d is outside 1..%d", name("BatchSize"), l.BatchSize, MaxBatchSize)
	case l.GCInterval <= 0:
		return fmt.Errorf("%s %v is not positive", name("GCInterval"), l.GCInterval)
	case l.MaxPhantoms < 1:
		return fmt.Errorf("%s %d is not positive", name("MaxPhantoms"), l.MaxPhantoms)
	}
	return nil
}

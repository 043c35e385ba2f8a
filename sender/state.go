package sender

import (
	"encoding/hex"
	"time"

	"github.com/sealnet/sealnet/mixnet/directory"
)

// State is everything a client keeps, encrypted at rest by the vault.
type State struct {
	Version     int              `json:"version"`
	Address     string           `json:"address"`
	Identity    []byte           `json:"identity"` // seal.Identity, marshaled
	Authorities []AuthorityState `json:"authorities"`
	Threshold   int              `json:"threshold"`
	EpochPeriod time.Duration    `json:"epoch_period"`
	Settings    Settings         `json:"settings"`

	// Token is this user's delivery token: contacts present it to deliver
	// here; the provider stores only its hash.
	Token       []byte    `json:"token"`
	Registered  bool      `json:"registered"`
	Certificate []byte    `json:"certificate,omitempty"`
	CertExpires time.Time `json:"cert_expires,omitzero"`
	CertIssued  time.Time `json:"cert_issued,omitzero"`

	Prekeys PrekeyState `json:"prekeys"`

	// Sessions by hex session ID; Current names, per contact address, the
	// session to send on. Retired sessions (by hex ID) still open what
	// arrives on them but never seal again: those of a state found
	// restored from an older copy, whose sending chains may repeat
	// message numbers already used (sender/rollback.go).
	Sessions map[string][]byte   `json:"sessions"`
	Current  map[string]string   `json:"current"`
	Retired  map[string]bool     `json:"retired,omitempty"`
	Contacts map[string]*Contact `json:"contacts"`

	// Generation counts the saves of this state; the marker file beside
	// it holds the last one saved, so that an older copy put back is
	// noticed (sender/rollback.go).
	Generation uint64 `json:"generation,omitempty"`

	Outbox []*Outgoing          `json:"outbox"`
	SURBs  map[string]*SURBKeys `json:"surbs"` // by hex SURB ID
}

// AuthorityState is a trusted directory authority.
type AuthorityState struct {
	URL string `json:"url"`
	Key string `json:"key"` // hex Ed25519
}

// PrekeyState holds the private halves of the prekeys uploaded.
type PrekeyState struct {
	NextID        uint32            `json:"next_id"`
	Signed        *PrivatePrekey    `json:"signed,omitempty"`
	OldSigned     *PrivatePrekey    `json:"old_signed,omitempty"` // kept for messages in flight
	LastResort    *PrivatePrekey    `json:"last_resort,omitempty"`
	OldLastResort *PrivatePrekey    `json:"old_last_resort,omitempty"`
	OneTime       map[uint32][]byte `json:"one_time"` // X25519 private keys
	PQ            map[uint32][]byte `json:"pq"`       // ML-KEM-768 seeds
	SignedRotated time.Time         `json:"signed_rotated,omitzero"`
}

// PrivatePrekey is a prekey's private half and ID.
type PrivatePrekey struct {
	ID  uint32 `json:"id"`
	Key []byte `json:"key"` // X25519 private key, or ML-KEM-768 seed
}

// Contact is someone this user exchanges messages with. Its identity is
// pinned at first use; a different one later is held as Pending until
// the user trusts it (`sealnet contacts trust`).
type Contact struct {
	Address   string    `json:"address"`
	X25519    []byte    `json:"x25519"`
	Ed25519   []byte    `json:"ed25519"`
	Token     []byte    `json:"token,omitempty"` // their delivery token, learnt from their messages
	FirstSeen time.Time `json:"first_seen"`
	// PendingX25519/PendingEd25519: an identity seen since, not trusted.
	PendingX25519  []byte `json:"pending_x25519,omitempty"`
	PendingEd25519 []byte `json:"pending_ed25519,omitempty"`
}

// Changed reports whether the contact's identity changed and awaits trust.
func (c *Contact) Changed() bool { return len(c.PendingX25519) > 0 }

// Outgoing is a message being sent. It is saved before its first packet
// leaves, so a crash loses nothing: after a restart the client carries
// on.
type Outgoing struct {
	ID        []byte         `json:"id"`
	To        string         `json:"to"`
	Body      []byte         `json:"body,omitempty"` // until sealed
	Created   time.Time      `json:"created"`
	Status    Status         `json:"status"`
	Detail    string         `json:"detail,omitempty"`
	Token     []byte         `json:"token,omitempty"` // recipient's token, at sealing
	Fragments []*OutFragment `json:"fragments,omitempty"`
	// BundleAttempts counts bundle requests for a first contact;
	// BundleRefused, those answered with a transient refusal (they do not
	// count against MaxAttempts, see OutFragment).
	BundleAttempts int       `json:"bundle_attempts,omitempty"`
	BundleRefused  int       `json:"bundle_refused,omitempty"`
	BundleNextAt   time.Time `json:"bundle_next_at,omitzero"`
	BundleSURB     string    `json:"bundle_surb,omitempty"`
	BundleLater    bool      `json:"bundle_later,omitempty"`
	Reported       bool      `json:"reported,omitempty"`
	// Route is RouteOnion for a direct delivery over Tor; "" is the mix
	// network.
	Route Route `json:"route,omitempty"`
}

func (o *Outgoing) idHex() string { return hex.EncodeToString(o.ID) }

// Deadline is when the client gives a message up if it is not
// acknowledged by then: its TTL after it was queued.
func (o *Outgoing) Deadline(ttl time.Duration) time.Time { return o.Created.Add(ttl) }

// bundleAwaiting reports whether a bundle request may still be answered.
func (o *Outgoing) bundleAwaiting(now time.Time) bool {
	return !o.BundleLater && o.BundleAttempts > 0 && now.Before(o.BundleNextAt)
}

// OutFragment is one fixed-size encrypted fragment of an outgoing message.
//
// Its transmissions are of two kinds once they are over: answered with a
// transient refusal (Refused: the provider said "later"), or unanswered
// (Attempts − Refused: silence, a loss or an adversary withholding the
// acknowledgement). MaxAttempts bounds the unanswered ones; refusals are
// retried, at the pace the provider asked and at least doubling
// (refusalWait), until the message's TTL (Outgoing.Deadline).
type OutFragment struct {
	Index      int       `json:"index"`
	EnvelopeID []byte    `json:"envelope_id"`
	Blob       []byte    `json:"blob"`
	Attempts   int       `json:"attempts"`
	Refused    int       `json:"refused,omitempty"`
	Acked      bool      `json:"acked"`
	NextAt     time.Time `json:"next_at,omitzero"` // when it may be (re)sent
	SURB       string    `json:"surb,omitempty"`   // the SURB of the last attempt
	// Later: the last transmission was refused for now, and NextAt is when
	// to try again (no answer is awaited).
	Later bool `json:"later,omitempty"`
}

// silent is how many transmissions went unanswered (or await an answer).
func (f *OutFragment) silent() int { return f.Attempts - f.Refused }

// awaiting reports whether a transmission may still be answered at now.
func (f *OutFragment) awaiting(now time.Time) bool {
	return !f.Acked && !f.Later && f.Attempts > 0 && now.Before(f.NextAt)
}

// SURBKeys are the keys of a SURB this client handed out, and what the
// reply through it is for.
type SURBKeys struct {
	Keys    []byte    `json:"keys"`
	Purpose string    `json:"purpose"` // "ack" or "bundle"
	Message string    `json:"message"` // hex message ID
	Index   int       `json:"index"`
	Expires time.Time `json:"expires"`
}

// Settings tune the client. Rate, MeanDelay, AckTimeout, RetryJitter,
// MaxAttempts and FetchInterval are the network's now (the directory's
// parameters, docs/directory.md §4.1): the client uses the document's
// values and ignores these, which the state keeps so that old states load.
type Settings struct {
	// Rate is λ: packets per second of the Poisson stream; a real packet
	// takes the place of a drop cover packet when one is queued.
	Rate float64 `json:"rate"`
	// LoopRate is no longer used: every cover packet carries a SURB and
	// comes back, so the Poisson stream's cover is the loop cover. Kept so
	// that old state files load.
	LoopRate float64 `json:"loop_rate"`
	// MeanDelay is the mean per-hop mixing delay chosen for each packet.
	MeanDelay time.Duration `json:"mean_delay"`
	// AckTimeout: a fragment not acknowledged this long after it was sent
	// is sent again, on a new path, after a random extra delay of up to
	// RetryJitter.
	AckTimeout  time.Duration `json:"ack_timeout"`
	RetryJitter time.Duration `json:"retry_jitter"`
	// MaxAttempts bounds the transmissions of a fragment (and of a bundle
	// request); after that the user is told the message was not delivered.
	MaxAttempts int `json:"max_attempts"`
	// FetchWait is how long `sealnet fetch` waits for mail (long poll).
	FetchWait time.Duration `json:"fetch_wait"`
	// FetchInterval is the running client's constant fetch rate: one pull
	// of one fixed-size page per interval. 0 long-polls instead, which
	// shows an observer every arrival (measurement control runs only).
	FetchInterval time.Duration `json:"fetch_interval"`
	// OneTimePrekeys and PQPrekeys are how many to keep uploaded.
	OneTimePrekeys int `json:"one_time_prekeys"`
	PQPrekeys      int `json:"pq_prekeys"`
}

// DefaultSettings are what init writes into a new state. The fields the
// network's parameters replace hold the directory's defaults, for the
// record only: the client uses the document's (netSettings).
func DefaultSettings() Settings {
	p := directory.DefaultParameters()
	return Settings{
		Rate: p.ClientRate, MeanDelay: p.MeanDelay,
		AckTimeout: p.AckTimeout, RetryJitter: p.RetryJitter, MaxAttempts: p.MaxAttempts,
		FetchWait: 10 * time.Second, FetchInterval: p.FetchInterval, OneTimePrekeys: 50, PQPrekeys: 10,
	}
}

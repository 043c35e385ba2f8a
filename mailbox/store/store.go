// Package store is the boundary between a provider's mailbox service and
// its durable storage: the Store interface the service calls, the value
// types and sentinel errors it branches on, and Limits, every limit a
// store enforces, stated once with its default.
//
// A Store guarantees, under concurrent use, crashes (kill -9, power loss
// after a completed call) and restarts:
//
//   - An envelope for which Deliver returned Stored or Duplicate is on
//     disk and is returned by Page until it is acknowledged or expires; an
//     envelope ID is stored at most once per mailbox within the TTL, even
//     after the first copy was acknowledged.
//   - An acknowledged envelope is never returned again, and an expired one
//     never.
//   - Each one-time prekey is handed out at most once, and a one-time
//     prekey ID is accepted at most once per mailbox, ever.
//
// What a store may keep on disk, and what it must not (arrival times,
// anything about senders), is in docs/mailbox-storage.md. The package
// holds no implementation: mailbox/store/badger is the one the provider
// uses, chosen in mailbox.NewProvider.
package store

import (
	"context"
	"errors"
	"time"

	"github.com/sealnet/sealnet/mailbox/proto"
)

// Store is a provider's durable mailbox store. Implementations are safe
// for concurrent use. Every error for one of the conditions below wraps
// its sentinel (ErrNotFound, ErrQuota, …), so callers test them with
// errors.Is.
type Store interface {
	// Register creates the mailbox of a.Address (stored lower-cased) and
	// returns its ID. It is idempotent for the same identity keys (the
	// stored account, token included, is left as it is); an address
	// registered with other identity keys, or an identity X25519 key
	// registered for another address, is ErrExists. An empty address or a
	// zero identity key is ErrInvalid, an address over seal.MaxAddress
	// bytes ErrTooLarge.
	Register(a Account) (proto.MailboxID, error)
	// Account returns mb's account; ErrNotFound if there is none.
	Account(mb proto.MailboxID) (Account, error)
	// AccountByKey returns the mailbox and account registered with the
	// identity X25519 key; ErrNotFound if there is none.
	AccountByKey(x25519 [32]byte) (proto.MailboxID, Account, error)
	// SetDeliveryToken sets the hash of mb's delivery token (zero: none)
	// and whether mb accepts deliveries without one; ErrNotFound if there
	// is no such mailbox.
	SetDeliveryToken(mb proto.MailboxID, tokenHash [32]byte, allowUnsolicited bool) error
	// ReplaceIdentity moves mb to new identity keys: what a provider's
	// operator does when a user has lost the device that held the old
	// ones (reached through mailbox.Provider.Store). The old identity's
	// prekeys are deleted; stored envelopes stay. ErrNotFound if mb is
	// not registered, ErrExists if the new X25519 key belongs to another
	// mailbox, ErrInvalid for a zero key.
	ReplaceIdentity(mb proto.MailboxID, x25519, ed25519 [32]byte) error

	// Deliver stores env in mb's FIFO and returns only once it is
	// durable. An envelope whose ID mb has seen within the TTL is not
	// stored again (Duplicate), also if the first copy was already
	// fetched and acknowledged. Errors: ErrNotFound, ErrQuota (the
	// mailbox's envelopes or bytes, for a SURB reply its ReplyShare of
	// them, would exceed the limits; the message says which), ErrTooLarge
	// (more than proto.MaxEnvelopeData bytes, or an unknown kind),
	// ErrClosed, ctx errors. A call that returns a ctx error may or may
	// not have stored the envelope; delivering the same ID again is safe.
	Deliver(ctx context.Context, mb proto.MailboxID, env Envelope) (DeliverResult, error)
	// Notify returns a channel that receives (non-blocking, capacity 1)
	// after each durable delivery to mb, before that Deliver call
	// returns, and a function to stop, which closes the channel and may
	// be called more than once. Close closes every channel. At most
	// MaxSubsPerMailbox subscriptions per mailbox and MaxSubs in all
	// (ErrBusy beyond); ErrNotFound if there is no such mailbox.
	Notify(mb proto.MailboxID) (<-chan struct{}, func(), error)
	// Page returns up to n of mb's oldest unacknowledged, unexpired
	// envelopes, in FIFO order, and whether more remain. n is clamped to
	// 1..MaxPage.
	Page(mb proto.MailboxID, n int) ([]proto.Record, bool, error)
	// Ack acknowledges every envelope of mb with Seq <= through: they are
	// never returned again. Acking below the head is a no-op; acking
	// beyond the last stored Seq is ErrBadAck.
	Ack(mb proto.MailboxID, through uint64) error

	// UploadPrekeys stores the upload atomically: all of it or, on error,
	// nothing. An ID of a one-time prekey that mb has ever held is
	// ErrPrekeyReused (classical and post-quantum IDs are separate
	// spaces). More one-time prekeys than one upload may carry
	// (MaxOneTimeUpload, MaxPQUpload), or a prekey over MaxPrekeyData
	// bytes, is ErrTooLarge; more than mb may hold (MaxOneTimeHeld,
	// MaxPQHeld) is ErrQuota; an empty prekey ErrInvalid.
	UploadPrekeys(mb proto.MailboxID, up proto.PrekeyUpload) error
	// TakeBundle returns mb's signed and last-resort prekeys and, if
	// take, hands out one classical and one post-quantum one-time prekey
	// (lowest ID first), each at most once, ever. ErrNotFound if there is
	// no such mailbox.
	TakeBundle(mb proto.MailboxID, take bool) (Bundle, error)

	// TakePhantom hands out the next one-time prekey of the phantom of mb,
	// a mailbox that does not exist, of most: it returns how many were
	// handed out before this one (0 for the first), and ok false, writing
	// nothing, if most are gone. A mailbox with no phantom record yet gets
	// one unless the store holds Limits.MaxPhantoms of them: then the
	// error wraps ErrQuota. Hand-outs of one mailbox are serialized.
	TakePhantom(mb proto.MailboxID, most int) (n int, ok bool, err error)
	// Phantoms is the number of phantom records.
	Phantoms() int64
	// Created is the hour the store was created (or first opened by a
	// version that records it).
	Created() time.Time

	// Close stops the store: Deliver calls still waiting get ErrClosed,
	// later calls ErrClosed. It is idempotent; later calls return nil.
	Close() error
}

// Store errors: every error a Store returns for one of these conditions
// wraps the sentinel.
var (
	// ErrNotFound: no such mailbox or account.
	ErrNotFound = errors.New("mailbox: no such mailbox")
	// ErrExists: the address or identity key is registered with other keys.
	ErrExists = errors.New("mailbox: address or identity key already registered")
	// ErrQuota: a mailbox holds too many envelopes or bytes, or too many
	// one-time prekeys, or the store too many phantoms; the message says
	// which.
	ErrQuota = errors.New("mailbox: quota exceeded")
	// ErrTooLarge: an envelope or prekey too large, an unknown envelope
	// kind, or too many prekeys in one upload.
	ErrTooLarge = errors.New("mailbox: too large or unknown kind")
	// ErrBadAck: an acknowledgement beyond the last envelope stored.
	ErrBadAck = errors.New("mailbox: acknowledgement beyond the last envelope")
	// ErrPrekeyReused: a one-time prekey ID the mailbox has held before.
	ErrPrekeyReused = errors.New("mailbox: prekey ID reused")
	// ErrBusy: too many notification subscriptions, or a transaction that
	// kept conflicting with others; try again later.
	ErrBusy = errors.New("mailbox: store busy")
	// ErrClosed: the store is closed.
	ErrClosed = errors.New("mailbox: store closed")
	// ErrInvalid: an account or prekey that cannot be stored (empty
	// address, zero identity key, empty prekey, a repeated ID).
	ErrInvalid = errors.New("mailbox: invalid account or prekey")
	// ErrCorrupt: a record on disk does not decode. A store never panics
	// on it; the operation that met it fails.
	ErrCorrupt = errors.New("mailbox: store record corrupt")
)

// Account is a registered user.
type Account struct {
	Address          string   // name@domain, ≤ seal.MaxAddress bytes; stored lower-cased
	IdentityX25519   [32]byte // the user's agreement key; also its link (Noise) static key
	IdentityEd25519  [32]byte // the user's signing key
	TokenHash        [32]byte // SHA-256 of the delivery token; zero = none set
	AllowUnsolicited bool     // accept deliveries without a token (rate-limited by the service)
}

// Envelope is what a sender hands the provider for a mailbox. ID is chosen
// by the sender and makes delivery idempotent.
type Envelope struct {
	Kind byte
	ID   [16]byte
	Data []byte
}

// DeliverResult says what Deliver did.
type DeliverResult int

const (
	// Stored: the envelope is now durably in the mailbox.
	Stored DeliverResult = iota + 1
	// Duplicate: the mailbox has seen this envelope ID within the TTL;
	// nothing changed.
	Duplicate
)

// Bundle is what TakeBundle returns.
type Bundle struct {
	Signed, LastResort         *proto.Prekey // nil if never uploaded
	OneTime, PQOneTime         *proto.Prekey // nil if none left or take was false
	OneTimeLeft, PQOneTimeLeft int           // after this call
}

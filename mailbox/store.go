package mailbox

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/sealnet/sealnet/mailbox/proto"
)

// The provider's durable store (docs/mailbox-storage.md).
//
// What it guarantees, under concurrent use, crashes (kill -9, power loss
// after a completed call) and restarts:
//
//   - An envelope for which Deliver returned Stored or Duplicate is on disk
//     (Badger with SyncWrites) and is returned by Page until it is
//     acknowledged or expires; an envelope ID is stored at most once per
//     mailbox within the TTL, even after the first copy was acknowledged.
//   - An acknowledged envelope is never returned again, and an expired one
//     never.
//   - Each one-time prekey is handed out at most once, and a one-time prekey
//     ID is accepted at most once per mailbox, ever.
//
// None of this depends on Badger deleting or expiring a key: Badger has
// shown deleted keys reappearing (issues #2143, #2286, PR #2278) and
// expired keys readable after a restart (#2138). Every state change is a
// Set in the transaction that makes it (a queue head position, a "used"
// marker, an expiry hour in the record), every read consults that state,
// and Deletes and TTLs only reclaim space. Transactions that conflict are
// retried a bounded number of times.
//
// What the disk shows: mailbox IDs (hashes of addresses), accounts,
// envelopes with their IDs and an expiry rounded up to the hour, queue
// order, and for unknown mailboxes whose fake bundles handed out one-time
// prekeys how many (store_phantom.go; no time); not arrival times (Badger's own TTLs are also rounded up to the
// hour) and nothing about senders, which the provider never learns. Logs
// carry no mailbox IDs, envelope IDs or times.

// Store errors. Every error the store returns for one of these conditions
// wraps the sentinel, so callers test them with errors.Is.
var (
	// ErrNotFound: no such mailbox or account.
	ErrNotFound = errors.New("mailbox: no such mailbox")
	// ErrExists: the address or identity key is registered with other keys.
	ErrExists = errors.New("mailbox: address or identity key already registered")
	// ErrQuota: a mailbox holds too many envelopes or bytes, or too many
	// one-time prekeys; the message says which.
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
	// ErrStoreInvalid: an account or prekey that cannot be stored (empty
	// address, zero identity key, empty prekey, a repeated ID).
	ErrStoreInvalid = errors.New("mailbox: invalid account or prekey")
	// ErrStoreCorrupt: a record on disk does not decode. The store never
	// panics on it; the operation that met it fails.
	ErrStoreCorrupt = errors.New("mailbox: store record corrupt")
)

// Account is a registered user.
type Account struct {
	Address          string   // name@domain, ≤ 128 bytes; stored lower-cased
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

// StoreConfig configures OpenStore. Zero fields take their defaults.
type StoreConfig struct {
	Dir        string           // Badger directory (created 0700)
	TTL        time.Duration    // envelope lifetime; default 30 days
	MaxCount   int              // envelopes per mailbox; default 10,000
	MaxBytes   int64            // envelope data bytes per mailbox; default 64 MiB
	BatchSize  int              // most deliveries per group commit; default 256
	GCInterval time.Duration    // expiry sweep and value-log GC; default 10 min
	Logger     *slog.Logger     // nil: discard
	Clock      func() time.Time // nil: time.Now

	MaxPhantoms int // phantom records (store_phantom.go); default 1,000,000
}

// Defaults and bounds.
const (
	storeDefaultTTL        = 30 * 24 * time.Hour
	storeMaxTTL            = 10 * 365 * 24 * time.Hour
	storeDefaultMaxCount   = 10_000
	storeDefaultMaxBytes   = 64 << 20
	storeDefaultBatchSize  = 256
	storeMaxBatchSize      = 4096
	storeDefaultGCInterval = 10 * time.Minute
	storeQueueSize         = 4096

	// storeTTLGrace is how long after an envelope's expiry Badger may
	// reclaim it by itself (the sweeper normally does it first).
	storeTTLGrace = 24 * time.Hour
	// storeMaxAttempts bounds the attempts of a conflicting transaction.
	storeMaxAttempts = 16
	// storeChunk bounds the records one transaction sweeps or deletes.
	storeChunk = 1024
	// storeMaxPage bounds one Page.
	storeMaxPage = 1024
	// storeMaxGCRounds bounds value-log GC rounds per interval.
	storeMaxGCRounds = 16
	// Notification subscriptions.
	storeMaxSubsPerMailbox = 64
	storeMaxSubs           = 10_000
)

// Store is a provider's durable mailbox store on Badger. It is safe for
// concurrent use.
type Store struct {
	db    *badger.DB
	cfg   StoreConfig
	log   *slog.Logger
	clock func() time.Time

	queue         chan *storeDeliverReq
	stop          chan struct{} // closed by Close
	committerDone chan struct{} // closed when the committer has exited
	wg            sync.WaitGroup
	closeOnce     sync.Once
	closeErr      error

	// mu is held for reading by every operation on db outside the store's
	// own goroutines; Close takes it for writing before closing db.
	mu     sync.RWMutex
	closed bool

	// locks serialize, per mailbox stripe, the read-modify-write operations
	// other than delivery (Ack, sweeps, prekeys, tokens). Correctness rests
	// on Badger's conflict detection; the locks only keep concurrent calls
	// on one mailbox from retrying each other out.
	locks [256]sync.Mutex

	subsMu     sync.Mutex
	subs       map[proto.MailboxID]map[*storeSub]struct{}
	nsubs      int
	subsClosed bool

	commits atomic.Uint64 // delivery transactions committed (tests)

	created  time.Time    // the hour the store was created (Created)
	phantoms atomic.Int64 // phantom records (the cap of TakePhantom)
}

// OpenStore opens (or creates) the store in cfg.Dir and starts its
// committer and sweeper goroutines, which Close stops.
func OpenStore(cfg StoreConfig) (*Store, error) {
	if cfg.Dir == "" {
		return nil, errors.New("mailbox: store directory not set")
	}
	if cfg.TTL == 0 {
		cfg.TTL = storeDefaultTTL
	}
	if cfg.MaxCount == 0 {
		cfg.MaxCount = storeDefaultMaxCount
	}
	if cfg.MaxBytes == 0 {
		cfg.MaxBytes = storeDefaultMaxBytes
	}
	if cfg.BatchSize == 0 {
		cfg.BatchSize = storeDefaultBatchSize
	}
	if cfg.GCInterval == 0 {
		cfg.GCInterval = storeDefaultGCInterval
	}
	if cfg.MaxPhantoms == 0 {
		cfg.MaxPhantoms = storeDefaultMaxPhantoms
	}
	switch {
	case cfg.TTL < 0 || cfg.TTL > storeMaxTTL:
		return nil, fmt.Errorf("mailbox: store TTL %v out of range", cfg.TTL)
	case cfg.MaxCount < 0 || cfg.MaxBytes < 0:
		return nil, errors.New("mailbox: negative store quota")
	case cfg.BatchSize < 0 || cfg.BatchSize > storeMaxBatchSize:
		return nil, fmt.Errorf("mailbox: store batch size %d out of range 1..%d", cfg.BatchSize, storeMaxBatchSize)
	case cfg.GCInterval < 0:
		return nil, errors.New("mailbox: negative store GC interval")
	case cfg.MaxPhantoms < 0:
		return nil, errors.New("mailbox: negative phantom cap")
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	clock := cfg.Clock
	if clock == nil {
		clock = time.Now
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("mailbox: store directory: %w", err)
	}
	db, err := badger.Open(storeBadgerOptions(cfg.Dir, logger))
	if err != nil {
		return nil, fmt.Errorf("mailbox: open store: %w", err)
	}
	s := &Store{
		db:            db,
		cfg:           cfg,
		log:           logger,
		clock:         clock,
		queue:         make(chan *storeDeliverReq, storeQueueSize),
		stop:          make(chan struct{}),
		committerDone: make(chan struct{}),
		subs:          make(map[proto.MailboxID]map[*storeSub]struct{}),
	}
	for _, step := range []func() error{s.checkFormat, s.checkCreated, s.countPhantoms} {
		if err := step(); err != nil {
			db.Close()
			return nil, err
		}
	}
	s.wg.Add(2)
	go s.commitLoop()
	go s.sweepLoop()
	return s, nil
}

// storeBadgerOptions are the Badger options of a store: synchronous
// writes, 64 MiB value-log files (so value-log GC can rewrite them in
// small steps), warnings and errors only in the log.
func storeBadgerOptions(dir string, logger *slog.Logger) badger.Options {
	return badger.DefaultOptions(dir).
		WithSyncWrites(true).
		WithLogger(storeBadgerLogger{logger}).
		WithMetricsEnabled(false).
		WithValueLogFileSize(64 << 20).
		WithBlockCacheSize(64 << 20)
}

// checkFormat writes the format marker into a new store and refuses a
// store written in another format.
func (s *Store) checkFormat() error {
	return s.update(func(txn *badger.Txn) error {
		item, err := txn.Get(storeMetaKey())
		if errors.Is(err, badger.ErrKeyNotFound) {
			return txn.Set(storeMetaKey(), []byte{storeRecordVersion})
		}
		if err != nil {
			return err
		}
		return item.Value(func(v []byte) error {
			if len(v) != 1 || v[0] != storeRecordVersion {
				return fmt.Errorf("%w: store format %x, want %d", ErrStoreCorrupt, v, storeRecordVersion)
			}
			return nil
		})
	})
}

// Close stops the store's goroutines (Deliver calls still queued get
// ErrClosed), waits for the operations in progress, closes every
// notification channel and closes Badger. It is idempotent; later calls
// return nil.
func (s *Store) Close() error {
	err := ErrClosed
	s.closeOnce.Do(func() {
		close(s.stop)
		s.wg.Wait()
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		s.closeSubs()
		if cerr := s.db.Close(); cerr != nil {
			s.closeErr = fmt.Errorf("mailbox: close store: %w", cerr)
		}
		err = s.closeErr
	})
	if errors.Is(err, ErrClosed) {
		return nil
	}
	return err
}

// enter admits an operation on db, or reports ErrClosed; leave ends it.
func (s *Store) enter() error {
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return ErrClosed
	}
	return nil
}

func (s *Store) leave() { s.mu.RUnlock() }

func (s *Store) lock(mb *proto.MailboxID) *sync.Mutex {
	l := &s.locks[mb[0]]
	l.Lock()
	return l
}

// update runs fn in a read-write transaction and commits it, retrying
// (fn from scratch, after a short jittered backoff) while it conflicts, at
// most storeMaxAttempts times. fn must set its results afresh each call.
func (s *Store) update(fn func(txn *badger.Txn) error) error {
	for attempt := 1; ; attempt++ {
		err := s.db.Update(fn)
		if !errors.Is(err, badger.ErrConflict) {
			return err
		}
		if attempt >= storeMaxAttempts {
			s.log.Warn("mailbox store: transaction kept conflicting", "attempts", attempt)
			return fmt.Errorf("%w: %d conflicting attempts: %w", ErrBusy, attempt, err)
		}
		storeBackoff(attempt)
	}
}

// storeBackoff sleeps a random time below 100 µs · 2^attempt, at most 20 ms.
func storeBackoff(attempt int) {
	limit := min(100*time.Microsecond<<min(attempt, 10), 20*time.Millisecond)
	time.Sleep(rand.N(limit) + time.Microsecond)
}

// Expiry times are kept in whole hours since the Unix epoch.

// storeHourCeil returns t rounded up to the hour, in hours since the epoch,
// clamped to the uint32 range.
func storeHourCeil(t time.Time) uint32 {
	sec := t.Unix()
	if t.Nanosecond() > 0 {
		sec++
	}
	if sec <= 0 {
		return 0
	}
	h := (sec + 3599) / 3600
	if h > 1<<32-1 {
		return 1<<32 - 1
	}
	return uint32(h)
}

// storeExpired reports whether an hour has passed at now.
func storeExpired(hours uint32, now time.Time) bool {
	return now.Unix() >= int64(hours)*3600
}

// storeBadgerExpiresAt returns the Badger expiry (a Unix time on an hour
// boundary, by the real clock) for records that expire after ttl: space
// reclamation only, a grace period after the store itself stops returning
// them.
func storeBadgerExpiresAt(ttl time.Duration) uint64 {
	return uint64(storeHourCeil(time.Now().Add(ttl+storeTTLGrace))) * 3600
}

// storeLogError describes err for a log line without per-message
// metadata: Badger wraps some errors with the key involved (a mailbox or
// envelope ID), so only the store's sentinel, if any, and the innermost
// cause are logged.
func storeLogError(err error) string {
	root := err
	for range 16 { // bounded: wrap chains are short
		next := errors.Unwrap(root)
		if next == nil {
			break
		}
		root = next
	}
	for _, sentinel := range []error{ErrStoreCorrupt, ErrBusy, ErrClosed} {
		if root == sentinel {
			return err.Error() // the store's own message: no IDs in it
		}
		if errors.Is(err, sentinel) {
			return sentinel.Error() + ": " + root.Error()
		}
	}
	return root.Error()
}

// storeBadgerLogger passes Badger's warnings and errors to the store's
// logger and drops its info and debug messages.
type storeBadgerLogger struct{ l *slog.Logger }

func (b storeBadgerLogger) Errorf(f string, a ...any) {
	b.l.Error("badger: " + strings.TrimSpace(fmt.Sprintf(f, a...)))
}

func (b storeBadgerLogger) Warningf(f string, a ...any) {
	b.l.Warn("badger: " + strings.TrimSpace(fmt.Sprintf(f, a...)))
}

func (storeBadgerLogger) Infof(string, ...any)  {}
func (storeBadgerLogger) Debugf(string, ...any) {}

// storeGet reads key in txn into a copy; found is false if it is absent.
func storeGet(txn *badger.Txn, key []byte) (val []byte, found bool, err error) {
	item, err := txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	val, err = item.ValueCopy(nil)
	return val, err == nil, err
}

// storeLoadState reads mb's queue state; ErrNotFound if mb is not registered.
func storeLoadState(txn *badger.Txn, mb *proto.MailboxID) (storeState, error) {
	v, ok, err := storeGet(txn, storeMailboxKey(storeTagState, mb))
	if err != nil {
		return storeState{}, err
	}
	if !ok {
		return storeState{}, ErrNotFound
	}
	return decodeStoreState(v)
}

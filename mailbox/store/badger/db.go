// Package badger is the provider's durable mailbox store on Badger v4
// (docs/mailbox-storage.md): the implementation of store.Store that
// mailbox.NewProvider opens.
//
// It keeps the guarantees of package store under concurrent use, crashes
// (kill -9, power loss after a completed call) and restarts without
// depending on Badger deleting or expiring a key: Badger has shown
// deleted keys reappearing (issues #2143, #2286, PR #2278) and expired
// keys readable after a restart (#2138). Every state change is a Set in
// the transaction that makes it (a queue head position, a "used" marker,
// an expiry hour in the record), every read consults that state, and
// Deletes and TTLs only reclaim space. Transactions that conflict are
// retried a bounded number of times.
//
// What the disk shows: mailbox IDs (hashes of addresses), accounts,
// envelopes with their IDs and an expiry rounded up to the hour, queue
// order, and for unknown mailboxes whose fake bundles handed out one-time
// prekeys how many (phantom.go; no time); not arrival times (Badger's own
// TTLs are also rounded up to the hour) and nothing about senders, which
// the provider never learns. Logs carry no mailbox IDs, envelope IDs or
// times.
package badger

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
	"github.com/sealnet/sealnet/internal/clock"
	"github.com/sealnet/sealnet/mailbox/proto"
	"github.com/sealnet/sealnet/mailbox/store"
)

// DB is a store.Store.
var _ store.Store = (*DB)(nil)

// Config configures Open.
type Config struct {
	Limits store.Limits // zero fields take their defaults
	Logger *slog.Logger // nil: discard
	// Clock decides expiry and the creation hour; nil is clock.System().
	// The sweep's interval and the commit window stay on real time: they
	// pace disk I/O.
	Clock clock.Clock
}

// Bounds of the implementation, beside the limits of package store.
const (
	queueSize = 4096

	// ttlGrace is how long after an envelope's expiry Badger may
	// reclaim it by itself (the sweeper normally does it first).
	ttlGrace = 24 * time.Hour
	// maxAttempts bounds the attempts of a conflicting transaction.
	maxAttempts = 16
	// chunk bounds the records one transaction sweeps or deletes.
	chunk = 1024
	// maxGCRounds bounds value-log GC rounds per interval.
	maxGCRounds = 16
)

// DB is a provider's durable mailbox store on Badger. It is safe for
// concurrent use.
type DB struct {
	db    *badger.DB
	lim   store.Limits
	log   *slog.Logger
	clock clock.Clock

	queue         chan *deliverReq
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
	subs       map[proto.MailboxID]map[*subscription]struct{}
	nsubs      int
	subsClosed bool

	commits atomic.Uint64 // delivery transactions committed (tests)

	created  time.Time    // the hour the store was created (Created)
	phantoms atomic.Int64 // phantom records (the cap of TakePhantom)
}

// Open opens (or creates) the store in dir and starts its committer and
// sweeper goroutines, which Close stops. Limits out of their range
// (store.Limits.Check) are refused.
func Open(dir string, cfg Config) (*DB, error) {
	if dir == "" {
		return nil, errors.New("mailbox: store directory not set")
	}
	lim := cfg.Limits.WithDefaults()
	if err := lim.Check(nil); err != nil {
		return nil, fmt.Errorf("mailbox: store limits: %w", err)
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("mailbox: store directory: %w", err)
	}
	db, err := badger.Open(badgerOptions(dir, logger))
	if err != nil {
		return nil, fmt.Errorf("mailbox: open store: %w", err)
	}
	s := &DB{
		db:            db,
		lim:           lim,
		log:           logger,
		clock:         clock.Or(cfg.Clock),
		queue:         make(chan *deliverReq, queueSize),
		stop:          make(chan struct{}),
		committerDone: make(chan struct{}),
		subs:          make(map[proto.MailboxID]map[*subscription]struct{}),
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

// badgerOptions are the Badger options of a store: synchronous
// writes, 64 MiB value-log files (so value-log GC can rewrite them in
// small steps), warnings and errors only in the log.
func badgerOptions(dir string, logger *slog.Logger) badger.Options {
	return badger.DefaultOptions(dir).
		WithSyncWrites(true).
		WithLogger(badgerLogger{logger}).
		WithMetricsEnabled(false).
		WithValueLogFileSize(64 << 20).
		WithBlockCacheSize(64 << 20)
}

// checkFormat writes the format marker into a new store and refuses a
// store written in another format.
func (s *DB) checkFormat() error {
	return s.update(func(txn *badger.Txn) error {
		item, err := txn.Get(metaKey())
		if errors.Is(err, badger.ErrKeyNotFound) {
			return txn.Set(metaKey(), []byte{recordVersion})
		}
		if err != nil {
			return err
		}
		return item.Value(func(v []byte) error {
			if len(v) != 1 || v[0] != recordVersion {
				return fmt.Errorf("%w: store format %x, want %d", store.ErrCorrupt, v, recordVersion)
			}
			return nil
		})
	})
}

// Close stops the store's goroutines (Deliver calls still queued get
// store.ErrClosed), waits for the operations in progress, closes every
// notification channel and closes Badger. It is idempotent; later calls
// return nil.
func (s *DB) Close() error {
	err := store.ErrClosed
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
	if errors.Is(err, store.ErrClosed) {
		return nil
	}
	return err
}

// enter admits an operation on db, or reports store.ErrClosed; leave ends it.
func (s *DB) enter() error {
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return store.ErrClosed
	}
	return nil
}

func (s *DB) leave() { s.mu.RUnlock() }

func (s *DB) lock(mb *proto.MailboxID) *sync.Mutex {
	l := &s.locks[mb[0]]
	l.Lock()
	return l
}

// update runs fn in a read-write transaction and commits it, retrying
// (fn from scratch, after a short jittered backoff) while it conflicts, at
// most maxAttempts times. fn must set its results afresh each call.
func (s *DB) update(fn func(txn *badger.Txn) error) error {
	for attempt := 1; ; attempt++ {
		err := s.db.Update(fn)
		if !errors.Is(err, badger.ErrConflict) {
			return err
		}
		if attempt >= maxAttempts {
			s.log.Warn("mailbox store: transaction kept conflicting", "attempts", attempt)
			return fmt.Errorf("%w: %d conflicting attempts: %w", store.ErrBusy, attempt, err)
		}
		backoff(attempt)
	}
}

// backoff sleeps a random time below 100 µs · 2^attempt, at most 20 ms.
func backoff(attempt int) {
	limit := min(100*time.Microsecond<<min(attempt, 10), 20*time.Millisecond)
	time.Sleep(rand.N(limit) + time.Microsecond)
}

// Expiry times are kept in whole hours since the Unix epoch.

// hourCeil returns t rounded up to the hour, in hours since the epoch,
// clamped to the uint32 range.
func hourCeil(t time.Time) uint32 {
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

// expired reports whether an hour has passed at now.
func expired(hours uint32, now time.Time) bool {
	return now.Unix() >= int64(hours)*3600
}

// badgerExpiresAt returns the Badger expiry (a Unix time on an hour
// boundary, by the real clock) for records that expire after ttl: space
// reclamation only, a grace period after the store itself stops returning
// them.
func badgerExpiresAt(ttl time.Duration) uint64 {
	return uint64(hourCeil(time.Now().Add(ttl+ttlGrace))) * 3600
}

// logError describes err for a log line without per-message
// metadata: Badger wraps some errors with the key involved (a mailbox or
// envelope ID), so only the store's sentinel, if any, and the innermost
// cause are logged.
func logError(err error) string {
	root := err
	for range 16 { // bounded: wrap chains are short
		next := errors.Unwrap(root)
		if next == nil {
			break
		}
		root = next
	}
	for _, sentinel := range []error{store.ErrCorrupt, store.ErrBusy, store.ErrClosed} {
		if root == sentinel {
			return err.Error() // the store's own message: no IDs in it
		}
		if errors.Is(err, sentinel) {
			return sentinel.Error() + ": " + root.Error()
		}
	}
	return root.Error()
}

// badgerLogger passes Badger's warnings and errors to the store's
// logger and drops its info and debug messages.
type badgerLogger struct{ l *slog.Logger }

func (b badgerLogger) Errorf(f string, a ...any) {
	b.l.Error("badger: " + strings.TrimSpace(fmt.Sprintf(f, a...)))
}

func (b badgerLogger) Warningf(f string, a ...any) {
	b.l.Warn("badger: " + strings.TrimSpace(fmt.Sprintf(f, a...)))
}

func (badgerLogger) Infof(string, ...any)  {}
func (badgerLogger) Debugf(string, ...any) {}

// get reads key in txn into a copy; found is false if it is absent.
func get(txn *badger.Txn, key []byte) (val []byte, found bool, err error) {
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

// loadState reads mb's queue state; store.ErrNotFound if mb is not registered.
func loadState(txn *badger.Txn, mb *proto.MailboxID) (queueState, error) {
	return load(txn, mailboxKey(tagState, mb), decodeQueueState)
}

// load reads the record under key in txn and decodes it; store.ErrNotFound
// if it is absent. The per-mailbox records (account, queue state, prekey
// state) are all written at registration, so their absence means the
// mailbox does not exist.
func load[T any](txn *badger.Txn, key []byte, decode func([]byte) (T, error)) (T, error) {
	v, found, err := get(txn, key)
	var zero T
	switch {
	case err != nil:
		return zero, err
	case !found:
		return zero, store.ErrNotFound
	}
	return decode(v)
}

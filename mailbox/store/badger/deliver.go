package badger

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/sealnet/sealnet/mailbox/proto"
	"github.com/sealnet/sealnet/mailbox/store"
)

// Quota errors; both wrap store.ErrQuota and say which limit was hit.
var (
	errQuotaCount = fmt.Errorf("%w: envelope count", store.ErrQuota)
	errQuotaBytes = fmt.Errorf("%w: envelope bytes", store.ErrQuota)
)

// deliverReq is one queued Deliver call.
type deliverReq struct {
	ctx   context.Context
	mb    proto.MailboxID
	id    [16]byte
	kind  byte
	size  int
	rec   []byte            // the encoded record; the committer fills in expiry and counter
	reply chan deliverReply // capacity 1: the committer never blocks
}

// newDeliverReq encodes the record in the caller's goroutine (which
// also copies env.Data), leaving the committer only the fields that
// depend on the mailbox's state.
func newDeliverReq(ctx context.Context, mb proto.MailboxID, env store.Envelope) *deliverReq {
	rec := envelopeRecord{kind: env.Kind, id: env.ID, data: env.Data}
	return &deliverReq{ctx: ctx, mb: mb, id: env.ID, kind: env.Kind, size: len(env.Data), rec: rec.encode(), reply: make(chan deliverReply, 1)}
}

type deliverReply struct {
	res store.DeliverResult
	err error
}

// Deliver stores env in mb's FIFO and returns only once it is durable
// (fsynced). Concurrent Deliver calls are committed together (group
// commit: one Badger transaction and one sync for up to BatchSize of them),
// so durability does not cost one fsync per envelope. An envelope whose ID
// mb has seen within TTL is not stored again (Duplicate), also if the first
// copy was already fetched and acknowledged.
//
// Errors: store.ErrNotFound (no such mailbox), store.ErrQuota (MaxEnvelopes or MaxBytes,
// for a SURB reply its share of them (store.ReplyShare), would be exceeded
// after sweeping expired envelopes; the message says which), store.ErrTooLarge (len(Data) > MaxEnvelopeData or Kind unknown),
// store.ErrClosed, ctx errors. A call that returns a ctx error may or may not
// have stored the envelope; delivering the same ID again is safe.
func (s *DB) Deliver(ctx context.Context, mb proto.MailboxID, env store.Envelope) (store.DeliverResult, error) {
	if env.Kind != proto.EnvelopeSealed && env.Kind != proto.EnvelopeSURBReply {
		return 0, fmt.Errorf("%w: envelope kind %d", store.ErrTooLarge, env.Kind)
	}
	if len(env.Data) > proto.MaxEnvelopeData {
		return 0, fmt.Errorf("%w: envelope of %d bytes", store.ErrTooLarge, len(env.Data))
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	select {
	case <-s.stop:
		return 0, store.ErrClosed
	default:
	}
	req := newDeliverReq(ctx, mb, env)
	select {
	case s.queue <- req:
	case <-s.stop:
		return 0, store.ErrClosed
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	select {
	case r := <-req.reply:
		return r.res, r.err
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-s.committerDone:
		select {
		case r := <-req.reply:
			return r.res, r.err
		default:
			return 0, store.ErrClosed
		}
	}
}

// commitLoop is the committer: as soon as the previous commit returned, it
// takes every queued delivery, up to BatchSize, and commits them in one
// transaction (one sync), then answers them. Under load it first opens a
// short commit window (below), so that batches do not shrink to the
// callers that happened to be queued at that instant.
func (s *DB) commitLoop() {
	defer s.wg.Done()
	defer close(s.committerDone)
	batch := make([]*deliverReq, 0, s.lim.BatchSize)
	replies := make([]deliverReply, s.lim.BatchSize)
	window := time.NewTimer(time.Hour)
	window.Stop()
	var lastBatch int
	var lastCommit time.Duration
	for {
		select {
		case <-s.stop:
			s.drainQueue()
			return
		default:
		}
		select {
		case <-s.stop:
			s.drainQueue()
			return
		case r := <-s.queue:
			batch = append(batch[:0], r)
		}
	fill:
		for len(batch) < s.lim.BatchSize {
			select {
			case r := <-s.queue:
				batch = append(batch, r)
			default:
				break fill
			}
		}
		// The commit window: under load (the last commit answered more
		// than one caller), wait a little for more requests, such as
		// those of the callers just answered, before committing. It ends
		// when as many have come as the last commit answered, or after
		// half the last commit's duration, at most maxWindow; under
		// light load deliveries are committed at once.
		if want := min(s.lim.BatchSize, lastBatch); lastBatch > 1 && len(batch) < want {
			window.Reset(min(lastCommit/2, maxWindow))
		wait:
			for len(batch) < want {
				select {
				case r := <-s.queue:
					batch = append(batch, r)
				case <-window.C:
					break wait
				case <-s.stop:
					break wait
				}
			}
			window.Stop()
		}
		start := time.Now()
		s.commitBatch(batch, replies[:len(batch)])
		lastBatch, lastCommit = len(batch), time.Since(start)
		clear(batch)
	}
}

// maxWindow bounds the commit window.
const maxWindow = 2 * time.Millisecond

// drainQueue answers the deliveries still queued at Close with store.ErrClosed.
// Bounded: a caller that enqueues later learns of the close from
// committerDone.
func (s *DB) drainQueue() {
	for range 2 * queueSize {
		select {
		case r := <-s.queue:
			r.reply <- deliverReply{err: store.ErrClosed}
		default:
			return
		}
	}
}

// commitBatch commits batch, in smaller parts if Badger finds the
// transaction too big, answers every request and notifies subscribers of
// the mailboxes that received an envelope.
func (s *DB) commitBatch(batch []*deliverReq, replies []deliverReply) {
	for start := 0; start < len(batch); {
		n := len(batch) - start
		for { // halves n at most log2(BatchSize) times
			err := s.commitPart(batch[start:start+n], replies[start:start+n])
			if errors.Is(err, badger.ErrTxnTooBig) && n > 1 {
				n /= 2
				continue
			}
			if err != nil {
				s.log.Warn("mailbox store: delivery commit failed", "deliveries", n, "err", logError(err))
				for i := range n {
					replies[start+i] = deliverReply{err: fmt.Errorf("mailbox: store delivery: %w", err)}
				}
			}
			break
		}
		start += n
	}
	for i, r := range batch {
		// Subscribers first: when Deliver returns, they have been told.
		if replies[i].res == store.Stored && replies[i].err == nil {
			s.notify(&r.mb)
		}
		r.reply <- replies[i]
	}
}

// commitPart applies reqs in one transaction and commits it, retrying
// while it conflicts with an Ack, a sweep or another writer.
func (s *DB) commitPart(reqs []*deliverReq, out []deliverReply) error {
	for attempt := 1; ; attempt++ {
		txn := s.db.NewTransaction(true)
		err := s.applyDeliveries(txn, reqs, out)
		if err == nil {
			err = txn.Commit()
		}
		txn.Discard()
		if err == nil {
			s.commits.Add(1)
			return nil
		}
		if !errors.Is(err, badger.ErrConflict) {
			return err
		}
		if attempt >= maxAttempts {
			return fmt.Errorf("%w: %d conflicting attempts: %w", store.ErrBusy, attempt, err)
		}
		backoff(attempt)
	}
}

// applyDeliveries writes reqs into txn and sets out[i] for each. A request
// that cannot be stored (unknown mailbox, duplicate, quota, cancelled) gets
// its own answer; an error returned fails the whole transaction.
func (s *DB) applyDeliveries(txn *badger.Txn, reqs []*deliverReq, out []deliverReply) error {
	type mbState struct {
		st    queueState
		err   error
		dirty bool
	}
	now := s.clock.Now()
	until := hourCeil(now.Add(s.lim.TTL))
	expiresAt := badgerExpiresAt(s.lim.TTL)
	states := make(map[proto.MailboxID]*mbState)
	for i, r := range reqs {
		out[i] = deliverReply{}
		if err := r.ctx.Err(); err != nil {
			out[i].err = err
			continue
		}
		ms := states[r.mb]
		if ms == nil {
			st, err := loadState(txn, &r.mb)
			if err != nil && !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrCorrupt) {
				return err
			}
			ms = &mbState{st: st, err: err}
			states[r.mb] = ms
		}
		if ms.err != nil {
			out[i].err = ms.err
			continue
		}
		// The index entry of a copy earlier in this batch is a pending
		// write of txn, which Get returns: duplicates inside one batch
		// are caught here too.
		sk := seenKey(&r.mb, &r.id)
		v, found, err := get(txn, sk)
		if err != nil {
			return err
		}
		if found {
			seenUntil, err := decodeSeen(v)
			if err != nil {
				out[i].err = err
				continue
			}
			if !expired(seenUntil, now) {
				out[i].res = store.Duplicate
				continue
			}
		}
		size := uint64(r.size)
		swept, err := s.makeRoom(txn, &r.mb, &ms.st, size, r.kind, now)
		ms.dirty = ms.dirty || swept
		if err != nil {
			if errors.Is(err, store.ErrQuota) || errors.Is(err, store.ErrCorrupt) {
				out[i].err = err
				continue
			}
			return err
		}
		seq := ms.st.tail + 1
		patchEnvelope(r.rec, until, ms.st.cumTail+size)
		if err := txn.SetEntry(&badger.Entry{Key: envelopeKey(&r.mb, seq), Value: r.rec, ExpiresAt: expiresAt}); err != nil {
			return err
		}
		if err := txn.SetEntry(&badger.Entry{Key: sk, Value: encodeSeen(until), ExpiresAt: expiresAt}); err != nil {
			return err
		}
		ms.st.tail = seq
		ms.st.cumTail += size
		ms.dirty = true
		out[i].res = store.Stored
	}
	for mb, ms := range states {
		if ms.dirty {
			if err := txn.Set(mailboxKey(tagState, &mb), ms.st.encode()); err != nil {
				return err
			}
		}
	}
	return nil
}

// quotaFor returns the count and byte limits for an envelope of kind.
func (s *DB) quotaFor(kind byte) (count, bytes uint64) {
	count, bytes = uint64(s.lim.MaxEnvelopes), uint64(s.lim.MaxBytes)
	if kind == proto.EnvelopeSURBReply {
		count, bytes = max(count/store.ReplyShare, 1), max(bytes/store.ReplyShare, proto.MaxEnvelopeData)
	}
	return count, bytes
}

// makeRoom checks that one more envelope of size bytes and kind fits mb's
// quota, sweeping expired envelopes off the front of the queue first if it
// does not look so. swept reports whether st changed.
func (s *DB) makeRoom(txn *badger.Txn, mb *proto.MailboxID, st *queueState, size uint64, kind byte, now time.Time) (swept bool, err error) {
	maxCount, maxBytes := s.quotaFor(kind)
	fits := func() error {
		if st.count()+1 > maxCount {
			return fmt.Errorf("%w (limit %d)", errQuotaCount, maxCount)
		}
		if st.bytes()+size > maxBytes {
			return fmt.Errorf("%w (limit %d)", errQuotaBytes, maxBytes)
		}
		return nil
	}
	if fits() == nil {
		return false, nil
	}
	// Bounded: each round advances the head by up to chunk envelopes.
	for range s.lim.MaxEnvelopes/chunk + 2 {
		moved, more, err := s.sweepFront(txn, mb, st, now)
		if err != nil {
			return swept, err
		}
		swept = swept || moved
		if !more {
			break
		}
	}
	return swept, fits()
}

// sweepFront advances st's head past the expired envelopes at the front of
// mb's queue (at most chunk of them), fixes the byte counter and
// deletes their records (space only: Page never reads below the head).
// more reports that the bound stopped it. Records missing between the
// head and the first one present can only have been reclaimed by Badger's
// TTL, which is set after expiry, so they count as expired.
func (s *DB) sweepFront(txn *badger.Txn, mb *proto.MailboxID, st *queueState, now time.Time) (moved, more bool, err error) {
	if st.head == st.tail {
		return false, false, nil
	}
	newHead, newCum := st.tail, st.cumTail
	var dead [][]byte
	it := txn.NewIterator(badger.IteratorOptions{Prefix: mailboxKey(tagEnvelope, mb)})
	for it.Seek(envelopeKey(mb, st.head+1)); it.Valid(); it.Next() {
		item := it.Item()
		seq, ok := envelopeSeq(item.Key())
		if !ok || seq <= st.head {
			err = fmt.Errorf("%w: envelope key out of place", store.ErrCorrupt)
			break
		}
		if seq > st.tail {
			break
		}
		var rec envelopeRecord
		if err = item.Value(func(v []byte) (derr error) { rec, derr = decodeEnvelopeRecord(v); return }); err != nil {
			break
		}
		if !expired(rec.expires, now) {
			newHead, newCum = seq-1, rec.cum-uint64(len(rec.data))
			break
		}
		newHead, newCum = seq, rec.cum
		dead = append(dead, item.KeyCopy(nil))
		if len(dead) >= chunk {
			more = newHead < st.tail
			break
		}
	}
	it.Close()
	if err != nil {
		return false, false, err
	}
	if newHead <= st.head {
		return false, false, nil
	}
	st.head = newHead
	st.cumHead = min(max(newCum, st.cumHead), st.cumTail)
	for _, k := range dead {
		if err := txn.Delete(k); err != nil {
			return false, false, err
		}
	}
	return true, more, nil
}

// Page returns up to n of mb's oldest unacknowledged, unexpired
// envelopes, in FIFO order, and whether more remain. n is clamped to
// 1..1024.
func (s *DB) Page(mb proto.MailboxID, n int) ([]proto.Record, bool, error) {
	n = min(max(n, 1), store.MaxPage)
	if err := s.enter(); err != nil {
		return nil, false, err
	}
	defer s.leave()
	now := s.clock.Now()
	var out []proto.Record
	var more bool
	err := s.db.View(func(txn *badger.Txn) error {
		out, more = nil, false
		st, err := loadState(txn, &mb)
		if err != nil {
			return err
		}
		if st.head == st.tail {
			return nil
		}
		it := txn.NewIterator(badger.IteratorOptions{Prefix: mailboxKey(tagEnvelope, &mb)})
		defer it.Close()
		// Bounded: sequence numbers strictly increase and stop at the tail.
		for it.Seek(envelopeKey(&mb, st.head+1)); it.Valid(); it.Next() {
			item := it.Item()
			seq, ok := envelopeSeq(item.Key())
			if !ok || seq <= st.head {
				return fmt.Errorf("%w: envelope key out of place", store.ErrCorrupt)
			}
			if seq > st.tail {
				break
			}
			var rec proto.Record
			err := item.Value(func(v []byte) error {
				e, err := decodeEnvelopeRecord(v)
				if err != nil {
					return err
				}
				if expired(e.expires, now) {
					return nil
				}
				rec = proto.Record{Seq: seq, Kind: e.kind, ID: e.id, Expires: time.Unix(int64(e.expires)*3600, 0), Data: append([]byte{}, e.data...)}
				return nil
			})
			if err != nil {
				return err
			}
			if rec.Seq == 0 {
				continue // expired
			}
			if len(out) == n {
				more = true
				break
			}
			out = append(out, rec)
		}
		return nil
	})
	if err != nil {
		return nil, false, err
	}
	return out, more, nil
}

// Ack acknowledges every envelope of mb with Seq <= through: they are never
// returned again (the store records a head position; it does not rely on
// deleting them). Acking below the head is a no-op; acking beyond the last
// stored Seq is store.ErrBadAck. Space is reclaimed afterwards, best effort.
func (s *DB) Ack(mb proto.MailboxID, through uint64) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	l := s.lock(&mb)
	defer l.Unlock()
	var oldHead, newHead uint64
	err := s.update(func(txn *badger.Txn) error {
		st, err := loadState(txn, &mb)
		if err != nil {
			return err
		}
		oldHead, newHead = st.head, st.head
		if through <= st.head {
			return nil
		}
		if through > st.tail {
			return fmt.Errorf("%w: through %d, last %d", store.ErrBadAck, through, st.tail)
		}
		cum, err := cumThrough(txn, &mb, &st, through)
		if err != nil {
			return err
		}
		st.head, st.cumHead = through, cum
		newHead = through
		if err := txn.Set(mailboxKey(tagState, &mb), st.encode()); err != nil {
			return err
		}
		for seq := oldHead + 1; seq <= newHead && seq <= oldHead+chunk; seq++ {
			if err := txn.Delete(envelopeKey(&mb, seq)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if newHead-oldHead > chunk {
		s.reclaim(&mb, newHead)
	}
	return nil
}

// cumThrough returns the cumulative byte counter through seq (head <
// seq <= tail): the record's own if present, else that of the first record
// after it minus its length (records missing in between were reclaimed by
// TTL after expiring; they no longer count), else cumTail.
func cumThrough(txn *badger.Txn, mb *proto.MailboxID, st *queueState, seq uint64) (uint64, error) {
	it := txn.NewIterator(badger.IteratorOptions{Prefix: mailboxKey(tagEnvelope, mb)})
	defer it.Close()
	it.Seek(envelopeKey(mb, seq))
	if !it.Valid() {
		return st.cumTail, nil
	}
	item := it.Item()
	got, ok := envelopeSeq(item.Key())
	if !ok || got < seq {
		return 0, fmt.Errorf("%w: envelope key out of place", store.ErrCorrupt)
	}
	if got > st.tail {
		return st.cumTail, nil
	}
	var cum uint64
	err := item.Value(func(v []byte) error {
		rec, err := decodeEnvelopeRecord(v)
		if err != nil {
			return err
		}
		cum = rec.cum
		if got > seq {
			cum -= uint64(len(rec.data))
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return min(max(cum, st.cumHead), st.cumTail), nil
}

// reclaim deletes mb's envelope records at or below head, which no read
// consults any more: left over by a large Ack or a crash, or reappeared
// after a Delete. Best effort and bounded; errors are logged.
func (s *DB) reclaim(mb *proto.MailboxID, head uint64) int {
	prefix := mailboxKey(tagEnvelope, mb)
	total := 0
	for range 64 {
		var n int
		err := s.update(func(txn *badger.Txn) error {
			n = 0
			var keys [][]byte
			it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
			for it.Rewind(); it.Valid() && len(keys) < chunk; it.Next() {
				k := it.Item().KeyCopy(nil)
				if seq, ok := envelopeSeq(k); !ok || seq > head {
					break
				}
				keys = append(keys, k)
			}
			it.Close()
			for _, k := range keys {
				if err := txn.Delete(k); err != nil {
					return err
				}
			}
			n = len(keys)
			return nil
		})
		if err != nil {
			s.log.Warn("mailbox store: reclaiming space failed", "err", logError(err))
			return total
		}
		total += n
		if n < chunk {
			break
		}
	}
	return total
}

// Usage returns the envelopes and bytes counted against mb's quota
// (acknowledged and swept ones no longer count; expired ones count until
// the sweeper or a delivery over quota sweeps them).
func (s *DB) Usage(mb proto.MailboxID) (count int, bytes int64, err error) {
	if err := s.enter(); err != nil {
		return 0, 0, err
	}
	defer s.leave()
	var st queueState
	err = s.db.View(func(txn *badger.Txn) error {
		st, err = loadState(txn, &mb)
		return err
	})
	if err != nil {
		return 0, 0, err
	}
	return int(min(st.count(), 1<<62)), int64(min(st.bytes(), 1<<62)), nil
}

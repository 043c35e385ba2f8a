package badger

import (
	"errors"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/sealnet/sealnet/mailbox/proto"
	"github.com/sealnet/sealnet/mailbox/store"
)

// sweepLoop runs, every GCInterval, the expiry sweep and value-log GC.
func (s *DB) sweepLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.lim.GCInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		swept, reclaimed, err := s.sweepAll()
		if err != nil {
			s.log.Warn("mailbox store: sweep failed", "err", logError(err))
		}
		s.log.Debug("mailbox store: sweep", "expired", swept, "reclaimed", reclaimed)
		s.valueLogGC()
	}
}

// sweepPage is how many mailboxes one read transaction of the sweep
// looks at.
const sweepPage = 1024

// sweepAll sweeps every mailbox: it advances the head past expired
// envelopes at the front of its queue and deletes records at or below the
// head. It returns how many envelopes expired and how many records were
// deleted. It stops early when the store closes. Bounded: it visits each
// mailbox once, in key order.
func (s *DB) sweepAll() (swept, reclaimed int, err error) {
	type todo struct {
		mb           proto.MailboxID
		front, below bool
		head         uint64
	}
	start := []byte{tagState}
	for {
		select {
		case <-s.stop:
			return swept, reclaimed, nil
		default:
		}
		var page []todo
		var next []byte
		now := s.clock.Now()
		err := s.db.View(func(txn *badger.Txn) error {
			page, next = page[:0], nil
			it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{tagState}})
			defer it.Close()
			n := 0
			for it.Seek(start); it.Valid(); it.Next() {
				item := it.Item()
				if n == sweepPage {
					next = item.KeyCopy(nil)
					break
				}
				n++
				key := item.Key()
				if len(key) != 33 {
					continue
				}
				var t todo
				copy(t.mb[:], key[1:])
				var st queueState
				if err := item.Value(func(v []byte) (err error) { st, err = decodeQueueState(v); return }); err != nil {
					s.log.Warn("mailbox store: sweep skips a mailbox", "err", logError(err))
					continue
				}
				t.head = st.head
				var err error
				if t.front, t.below, err = needsSweep(txn, &t.mb, &st, now); err != nil {
					s.log.Warn("mailbox store: sweep skips a mailbox", "err", logError(err))
					continue
				}
				if t.front || t.below {
					page = append(page, t)
				}
			}
			return nil
		})
		if err != nil {
			return swept, reclaimed, err
		}
		for _, t := range page {
			if t.front {
				n, head, err := s.sweepMailbox(&t.mb, now)
				if err != nil {
					s.log.Warn("mailbox store: sweep skips a mailbox", "err", logError(err))
					continue
				}
				swept += n
				t.head = head
			}
			reclaimed += s.reclaim(&t.mb, t.head)
		}
		if next == nil {
			return swept, reclaimed, nil
		}
		start = next
	}
}

// needsSweep reports whether mb's queue starts with expired envelopes
// (or a gap Badger's TTL left) and whether records at or below the head
// remain.
func needsSweep(txn *badger.Txn, mb *proto.MailboxID, st *queueState, now time.Time) (front, below bool, err error) {
	it := txn.NewIterator(badger.IteratorOptions{Prefix: mailboxKey(tagEnvelope, mb)})
	defer it.Close()
	it.Rewind()
	if it.Valid() {
		seq, ok := envelopeSeq(it.Item().Key())
		below = ok && seq <= st.head
	}
	if st.head == st.tail {
		return false, below, nil
	}
	it.Seek(envelopeKey(mb, st.head+1))
	if !it.Valid() {
		return true, below, nil // every record in the queue is gone
	}
	item := it.Item()
	seq, ok := envelopeSeq(item.Key())
	if !ok || seq > st.head+1 {
		return true, below, nil // a gap at the front
	}
	err = item.Value(func(v []byte) error {
		rec, err := decodeEnvelopeRecord(v)
		front = err == nil && expired(rec.expires, now)
		return err
	})
	return front, below, err
}

// sweepMailbox advances mb's head past the expired envelopes at its front
// and returns how many it passed and the new head.
func (s *DB) sweepMailbox(mb *proto.MailboxID, now time.Time) (int, uint64, error) {
	if err := s.enter(); err != nil {
		return 0, 0, err
	}
	defer s.leave()
	l := s.lock(mb)
	defer l.Unlock()
	var passed, head uint64
	err := s.update(func(txn *badger.Txn) error {
		st, err := loadState(txn, mb)
		if err != nil {
			return err
		}
		old := st.head
		passed, head = 0, st.head
		// Bounded: one transaction passes at most 16 chunks; the next
		// sweep continues.
		for range 16 {
			moved, more, err := s.sweepFront(txn, mb, &st, now)
			if err != nil {
				return err
			}
			if !moved || !more {
				break
			}
		}
		if st.head == old {
			return nil
		}
		passed, head = st.head-old, st.head
		return txn.Set(mailboxKey(tagState, mb), st.encode())
	})
	if errors.Is(err, store.ErrNotFound) {
		err = nil
	}
	return int(min(passed, 1<<30)), head, err
}

// valueLogGC runs Badger's value-log GC until it has nothing to rewrite,
// at most maxGCRounds times.
func (s *DB) valueLogGC() {
	for range maxGCRounds {
		select {
		case <-s.stop:
			return
		default:
		}
		err := s.db.RunValueLogGC(0.5)
		if err == nil {
			continue
		}
		if !errors.Is(err, badger.ErrNoRewrite) && !errors.Is(err, badger.ErrRejected) {
			s.log.Warn("mailbox store: value-log GC failed", "err", logError(err))
		}
		return
	}
}

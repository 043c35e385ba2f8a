package badger

import (
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/sealnet/sealnet/mailbox/proto"
	"github.com/sealnet/sealnet/mailbox/store"
)

// Phantoms: what the store keeps for mailboxes that do not exist, so that
// the service's fake bundles behave over time as a real account's do
// (docs/mailbox.md §5, docs/mailbox-storage.md §3.8). A phantom record
// counts the one-time prekeys handed out from an unknown mailbox; it is
// written only when one is, in the transaction that hands it out, as a
// real hand-out writes its used marker, and never deleted. Their number is
// capped (store.Limits.MaxPhantoms).

// createdName is the meta key under which the store keeps the hour
// it was created (for a store older than the key: first opened with it).
const createdName = "sealnet mailbox created"

func createdKey() []byte { return append([]byte{tagMeta}, createdName...) }

// checkCreated reads the store's creation hour, writing the current one
// into a store that has none.
func (s *DB) checkCreated() error {
	return s.update(func(txn *badger.Txn) error {
		v, found, err := get(txn, createdKey())
		if err != nil {
			return err
		}
		if !found {
			h := uint32(s.clock.Now().Unix() / 3600)
			s.created = time.Unix(int64(h)*3600, 0)
			return txn.Set(createdKey(), encodeSeen(h))
		}
		h, err := decodeSeen(v)
		if err != nil {
			return err
		}
		s.created = time.Unix(int64(h)*3600, 0)
		return nil
	})
}

// countPhantoms counts the phantom records, for the cap.
func (s *DB) countPhantoms() error {
	return s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{tagPhantom}})
		defer it.Close()
		n := int64(0)
		for it.Rewind(); it.Valid(); it.Next() {
			n++
		}
		s.phantoms.Store(n)
		return nil
	})
}

// Created is the hour the store was created (or first opened by a version
// that records it).
func (s *DB) Created() time.Time { return s.created }

// Phantoms is the number of phantom records.
func (s *DB) Phantoms() int64 { return s.phantoms.Load() }

// TakePhantom hands out the next one-time prekey of mb's phantom, of most:
// it returns how many were handed out before this one (0 for the first),
// and ok false, writing nothing, if most are gone. A mailbox that has no
// phantom record yet gets one, unless the store holds MaxPhantoms of them:
// then the error wraps store.ErrQuota. Hand-outs of one mailbox are serialized,
// as TakeBundle's are, so no two callers get the same one.
func (s *DB) TakePhantom(mb proto.MailboxID, most int) (n int, ok bool, err error) {
	if err := s.enter(); err != nil {
		return 0, false, err
	}
	defer s.leave()
	l := s.lock(&mb)
	defer l.Unlock()
	created := false
	err = s.update(func(txn *badger.Txn) error {
		n, ok, created = 0, false, false
		v, found, err := get(txn, mailboxKey(tagPhantom, &mb))
		if err != nil {
			return err
		}
		if found {
			h, err := decodeSeen(v)
			if err != nil {
				return err
			}
			n = int(min(h, 1<<16))
		} else if s.phantoms.Load() >= int64(s.lim.MaxPhantoms) {
			return fmt.Errorf("%w: %d phantom records", store.ErrQuota, s.lim.MaxPhantoms)
		}
		if n >= most {
			return nil
		}
		ok, created = true, !found
		return txn.Set(mailboxKey(tagPhantom, &mb), encodeSeen(uint32(n+1)))
	})
	if err != nil {
		return 0, false, err
	}
	if created {
		s.phantoms.Add(1)
	}
	return n, ok, nil
}

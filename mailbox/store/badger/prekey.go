package badger

import (
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"
	"github.com/sealnet/sealnet/mailbox/proto"
	"github.com/sealnet/sealnet/mailbox/store"
)

const (
	// maxPrekeyScan bounds the records TakeBundle looks at to find an
	// unused one-time prekey: all it may hold, plus records that
	// reappeared after their Delete and are skipped by their used marker.
	maxPrekeyScan = store.MaxOneTimeHeld + chunk
)

// usedMarker is the value of a used marker; only its presence counts.
var usedMarker = []byte{recordVersion}

func checkPrekey(p *proto.Prekey) error {
	switch {
	case len(p.Data) == 0:
		return fmt.Errorf("%w: empty prekey", store.ErrInvalid)
	case len(p.Data) > store.MaxPrekeyData:
		return fmt.Errorf("%w: prekey of %d bytes", store.ErrTooLarge, len(p.Data))
	}
	return nil
}

// checkOneTime checks one kind of one-time prekeys in an upload.
func checkOneTime(ps []proto.Prekey, most int) error {
	if len(ps) > most {
		return fmt.Errorf("%w: %d one-time prekeys in one upload, at most %d", store.ErrTooLarge, len(ps), most)
	}
	ids := make(map[uint32]struct{}, len(ps))
	for i := range ps {
		if err := checkPrekey(&ps[i]); err != nil {
			return err
		}
		if _, dup := ids[ps[i].ID]; dup {
			return fmt.Errorf("%w: ID repeated in one upload", store.ErrPrekeyReused)
		}
		ids[ps[i].ID] = struct{}{}
	}
	return nil
}

// UploadPrekeys stores the upload atomically: all of it or, on error,
// nothing. An ID of a one-time prekey that mb has ever held (handed out or
// not) is store.ErrPrekeyReused: IDs are never reused (classical and
// post-quantum IDs are separate spaces). More one-time prekeys than an
// upload may carry, or a prekey over 2048 bytes, is store.ErrTooLarge; more than
// mb may hold (1000 classical, 200 post-quantum) is store.ErrQuota.
func (s *DB) UploadPrekeys(mb proto.MailboxID, up proto.PrekeyUpload) error {
	for _, p := range []*proto.Prekey{up.Signed, up.LastResort} {
		if p != nil {
			if err := checkPrekey(p); err != nil {
				return err
			}
		}
	}
	if err := checkOneTime(up.OneTime, store.MaxOneTimeUpload); err != nil {
		return err
	}
	if err := checkOneTime(up.PQOneTime, store.MaxPQUpload); err != nil {
		return err
	}
	return s.updateMailbox(&mb, func(txn *badger.Txn) error {
		ps, err := loadPrekeyState(txn, &mb)
		if err != nil {
			return err
		}
		for _, k := range []struct {
			kind byte
			keys []proto.Prekey
			held *uint16
			most int
		}{
			{prekeyOneTime, up.OneTime, &ps.oneTime, store.MaxOneTimeHeld},
			{prekeyPQOneTime, up.PQOneTime, &ps.pqOneTime, store.MaxPQHeld},
		} {
			for i := range k.keys {
				id := k.keys[i].ID
				for _, tag := range []byte{tagPrekey, tagUsed} {
					_, err := txn.Get(prekeyKey(tag, &mb, k.kind, id))
					if err == nil {
						return fmt.Errorf("%w: one-time prekey ID held before", store.ErrPrekeyReused)
					}
					if !errors.Is(err, badger.ErrKeyNotFound) {
						return err
					}
				}
			}
			if int(*k.held)+len(k.keys) > k.most {
				return fmt.Errorf("%w: more than %d one-time prekeys of a kind held", store.ErrQuota, k.most)
			}
			for i := range k.keys {
				p := &k.keys[i]
				if err := txn.Set(prekeyKey(tagPrekey, &mb, k.kind, p.ID), encodePrekey(p)); err != nil {
					return err
				}
			}
			*k.held += uint16(len(k.keys))
		}
		if up.Signed != nil {
			if err := txn.Set(prekeyKey(tagPrekey, &mb, prekeySigned, 0), encodePrekey(up.Signed)); err != nil {
				return err
			}
		}
		if up.LastResort != nil {
			if err := txn.Set(prekeyKey(tagPrekey, &mb, prekeyLastResort, 0), encodePrekey(up.LastResort)); err != nil {
				return err
			}
		}
		return txn.Set(mailboxKey(tagPrekeyState, &mb), ps.encode())
	})
}

// TakeBundle returns mb's signed and last-resort prekeys and, if take,
// hands out one classical and one post-quantum one-time prekey (lowest ID
// first). Each one-time prekey is handed out at most once, under
// concurrent calls and across restarts and crashes: the hand-out is
// recorded (a used marker written with Set, never deleted) in the same
// transaction that reads it, every read skips marked prekeys, and
// conflicting transactions retry. store.ErrNotFound if there is no such mailbox.
func (s *DB) TakeBundle(mb proto.MailboxID, take bool) (store.Bundle, error) {
	if err := s.enter(); err != nil {
		return store.Bundle{}, err
	}
	defer s.leave()
	var b store.Bundle
	read := func(txn *badger.Txn) (prekeyState, error) {
		b = store.Bundle{}
		ps, err := loadPrekeyState(txn, &mb)
		if err != nil {
			return ps, err
		}
		if b.Signed, err = loadPrekey(txn, &mb, prekeySigned); err != nil {
			return ps, err
		}
		if b.LastResort, err = loadPrekey(txn, &mb, prekeyLastResort); err != nil {
			return ps, err
		}
		b.OneTimeLeft, b.PQOneTimeLeft = int(ps.oneTime), int(ps.pqOneTime)
		return ps, nil
	}
	if !take {
		err := s.db.View(func(txn *badger.Txn) error {
			_, err := read(txn)
			return err
		})
		if err != nil {
			return store.Bundle{}, err
		}
		return b, nil
	}
	l := s.lock(&mb)
	defer l.Unlock()
	err := s.update(func(txn *badger.Txn) error {
		ps, err := read(txn)
		if err != nil {
			return err
		}
		if b.OneTime, err = s.takeOne(txn, &mb, prekeyOneTime, &ps.oneTime); err != nil {
			return err
		}
		if b.PQOneTime, err = s.takeOne(txn, &mb, prekeyPQOneTime, &ps.pqOneTime); err != nil {
			return err
		}
		b.OneTimeLeft, b.PQOneTimeLeft = int(ps.oneTime), int(ps.pqOneTime)
		return txn.Set(mailboxKey(tagPrekeyState, &mb), ps.encode())
	})
	if err != nil {
		return store.Bundle{}, err
	}
	return b, nil
}

// takeOne hands out mb's unused one-time prekey of kind with the lowest ID,
// if *held says there is one: it writes the used marker, deletes the
// record (space only) and decrements *held. Records whose used marker
// exists (a Delete undone) are skipped and deleted again.
func (s *DB) takeOne(txn *badger.Txn, mb *proto.MailboxID, kind byte, held *uint16) (*proto.Prekey, error) {
	if *held == 0 {
		return nil, nil
	}
	var found *proto.Prekey
	var foundKey []byte
	var stale [][]byte
	var err error
	scanned := 0
	it := txn.NewIterator(badger.IteratorOptions{Prefix: prekeyPrefix(mb, kind)})
	for it.Rewind(); it.Valid() && scanned < maxPrekeyScan; it.Next() {
		scanned++
		item := it.Item()
		id, ok := prekeyID(item.Key())
		if !ok {
			err = fmt.Errorf("%w: prekey key", store.ErrCorrupt)
			break
		}
		_, err = txn.Get(prekeyKey(tagUsed, mb, kind, id))
		if err == nil {
			stale = append(stale, item.KeyCopy(nil))
			continue
		}
		if !errors.Is(err, badger.ErrKeyNotFound) {
			break
		}
		var v []byte
		if v, err = item.ValueCopy(nil); err != nil {
			break
		}
		var p proto.Prekey
		if p, err = decodePrekey(v); err != nil {
			break
		}
		if p.ID != id {
			err = fmt.Errorf("%w: prekey record under another ID", store.ErrCorrupt)
			break
		}
		found, foundKey = &p, item.KeyCopy(nil)
		break
	}
	it.Close()
	if err != nil {
		return nil, err
	}
	for _, k := range stale {
		if err := txn.Delete(k); err != nil {
			return nil, err
		}
	}
	if found == nil {
		if scanned < maxPrekeyScan {
			// The counter promised more than the records hold: trust
			// the records (the used markers decide) and fix it.
			s.log.Warn("mailbox store: one-time prekey counter was off; fixed")
			*held = 0
		}
		return nil, nil
	}
	if err := txn.Set(prekeyKey(tagUsed, mb, kind, found.ID), usedMarker); err != nil {
		return nil, err
	}
	if err := txn.Delete(foundKey); err != nil {
		return nil, err
	}
	*held--
	return found, nil
}

// loadPrekeyState reads mb's prekey counts; store.ErrNotFound if mb is not
// registered.
func loadPrekeyState(txn *badger.Txn, mb *proto.MailboxID) (prekeyState, error) {
	return load(txn, mailboxKey(tagPrekeyState, mb), decodePrekeyState)
}

// loadPrekey returns mb's signed or last-resort prekey, nil if none.
func loadPrekey(txn *badger.Txn, mb *proto.MailboxID, kind byte) (*proto.Prekey, error) {
	v, found, err := get(txn, prekeyKey(tagPrekey, mb, kind, 0))
	if err != nil || !found {
		return nil, err
	}
	p, err := decodePrekey(v)
	if err != nil {
		return nil, err
	}
	return &p, nil
}

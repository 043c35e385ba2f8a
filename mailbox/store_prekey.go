package mailbox

import (
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"
	"github.com/sealnet/sealnet/mailbox/proto"
)

// Limits of one prekey upload.
const (
	storeMaxOneTimeUpload = 1000
	storeMaxPQUpload      = 200
	// storeMaxPrekeyScan bounds the records TakeBundle looks at to find an
	// unused one-time prekey: all it may hold, plus records that
	// reappeared after their Delete and are skipped by their used marker.
	storeMaxPrekeyScan = storeMaxOneTimeHeld + storeChunk
)

// storeUsedMarker is the value of a used marker; only its presence counts.
var storeUsedMarker = []byte{storeRecordVersion}

func storeCheckPrekey(p *proto.Prekey) error {
	switch {
	case len(p.Data) == 0:
		return fmt.Errorf("%w: empty prekey", ErrStoreInvalid)
	case len(p.Data) > storeMaxPrekeyData:
		return fmt.Errorf("%w: prekey of %d bytes", ErrTooLarge, len(p.Data))
	}
	return nil
}

// storeCheckOneTime checks one kind of one-time prekeys in an upload.
func storeCheckOneTime(ps []proto.Prekey, most int) error {
	if len(ps) > most {
		return fmt.Errorf("%w: %d one-time prekeys in one upload, at most %d", ErrTooLarge, len(ps), most)
	}
	ids := make(map[uint32]struct{}, len(ps))
	for i := range ps {
		if err := storeCheckPrekey(&ps[i]); err != nil {
			return err
		}
		if _, dup := ids[ps[i].ID]; dup {
			return fmt.Errorf("%w: ID repeated in one upload", ErrPrekeyReused)
		}
		ids[ps[i].ID] = struct{}{}
	}
	return nil
}

// UploadPrekeys stores the upload atomically: all of it or, on error,
// nothing. An ID of a one-time prekey that mb has ever held (handed out or
// not) is ErrPrekeyReused: IDs are never reused (classical and
// post-quantum IDs are separate spaces). More one-time prekeys than an
// upload may carry, or a prekey over 2048 bytes, is ErrTooLarge; more than
// mb may hold (1000 classical, 200 post-quantum) is ErrQuota.
func (s *Store) UploadPrekeys(mb proto.MailboxID, up proto.PrekeyUpload) error {
	for _, p := range []*proto.Prekey{up.Signed, up.LastResort} {
		if p != nil {
			if err := storeCheckPrekey(p); err != nil {
				return err
			}
		}
	}
	if err := storeCheckOneTime(up.OneTime, storeMaxOneTimeUpload); err != nil {
		return err
	}
	if err := storeCheckOneTime(up.PQOneTime, storeMaxPQUpload); err != nil {
		return err
	}
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	l := s.lock(&mb)
	defer l.Unlock()
	return s.update(func(txn *badger.Txn) error {
		ps, err := storeLoadPrekeyState(txn, &mb)
		if err != nil {
			return err
		}
		for _, k := range []struct {
			kind byte
			keys []proto.Prekey
			held *uint16
			most int
		}{
			{storePrekeyOneTime, up.OneTime, &ps.oneTime, storeMaxOneTimeHeld},
			{storePrekeyPQOneTime, up.PQOneTime, &ps.pqOneTime, storeMaxPQHeld},
		} {
			for i := range k.keys {
				id := k.keys[i].ID
				for _, tag := range []byte{storeTagPrekey, storeTagUsed} {
					_, err := txn.Get(storePrekeyKey(tag, &mb, k.kind, id))
					if err == nil {
						return fmt.Errorf("%w: one-time prekey ID held before", ErrPrekeyReused)
					}
					if !errors.Is(err, badger.ErrKeyNotFound) {
						return err
					}
				}
			}
			if int(*k.held)+len(k.keys) > k.most {
				return fmt.Errorf("%w: more than %d one-time prekeys of a kind held", ErrQuota, k.most)
			}
			for i := range k.keys {
				p := &k.keys[i]
				if err := txn.Set(storePrekeyKey(storeTagPrekey, &mb, k.kind, p.ID), encodeStorePrekey(p)); err != nil {
					return err
				}
			}
			*k.held += uint16(len(k.keys))
		}
		if up.Signed != nil {
			if err := txn.Set(storePrekeyKey(storeTagPrekey, &mb, storePrekeySigned, 0), encodeStorePrekey(up.Signed)); err != nil {
				return err
			}
		}
		if up.LastResort != nil {
			if err := txn.Set(storePrekeyKey(storeTagPrekey, &mb, storePrekeyLastResort, 0), encodeStorePrekey(up.LastResort)); err != nil {
				return err
			}
		}
		return txn.Set(storeMailboxKey(storeTagPrekeyState, &mb), ps.encode())
	})
}

// TakeBundle returns mb's signed and last-resort prekeys and, if take,
// hands out one classical and one post-quantum one-time prekey (lowest ID
// first). Each one-time prekey is handed out at most once, under
// concurrent calls and across restarts and crashes: the hand-out is
// recorded (a used marker written with Set, never deleted) in the same
// transaction that reads it, every read skips marked prekeys, and
// conflicting transactions retry. ErrNotFound if there is no such mailbox.
func (s *Store) TakeBundle(mb proto.MailboxID, take bool) (Bundle, error) {
	if err := s.enter(); err != nil {
		return Bundle{}, err
	}
	defer s.leave()
	var b Bundle
	read := func(txn *badger.Txn) (storePrekeyState, error) {
		b = Bundle{}
		ps, err := storeLoadPrekeyState(txn, &mb)
		if err != nil {
			return ps, err
		}
		if b.Signed, err = storeLoadPrekey(txn, &mb, storePrekeySigned); err != nil {
			return ps, err
		}
		if b.LastResort, err = storeLoadPrekey(txn, &mb, storePrekeyLastResort); err != nil {
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
			return Bundle{}, err
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
		if b.OneTime, err = s.takeOne(txn, &mb, storePrekeyOneTime, &ps.oneTime); err != nil {
			return err
		}
		if b.PQOneTime, err = s.takeOne(txn, &mb, storePrekeyPQOneTime, &ps.pqOneTime); err != nil {
			return err
		}
		b.OneTimeLeft, b.PQOneTimeLeft = int(ps.oneTime), int(ps.pqOneTime)
		return txn.Set(storeMailboxKey(storeTagPrekeyState, &mb), ps.encode())
	})
	if err != nil {
		return Bundle{}, err
	}
	return b, nil
}

// takeOne hands out mb's unused one-time prekey of kind with the lowest ID,
// if *held says there is one: it writes the used marker, deletes the
// record (space only) and decrements *held. Records whose used marker
// exists (a Delete undone) are skipped and deleted again.
func (s *Store) takeOne(txn *badger.Txn, mb *proto.MailboxID, kind byte, held *uint16) (*proto.Prekey, error) {
	if *held == 0 {
		return nil, nil
	}
	var found *proto.Prekey
	var foundKey []byte
	var stale [][]byte
	var err error
	scanned := 0
	it := txn.NewIterator(badger.IteratorOptions{Prefix: storePrekeyPrefix(mb, kind)})
	for it.Rewind(); it.Valid() && scanned < storeMaxPrekeyScan; it.Next() {
		scanned++
		item := it.Item()
		id, ok := storePrekeyID(item.Key())
		if !ok {
			err = fmt.Errorf("%w: prekey key", ErrStoreCorrupt)
			break
		}
		_, err = txn.Get(storePrekeyKey(storeTagUsed, mb, kind, id))
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
		if p, err = decodeStorePrekey(v); err != nil {
			break
		}
		if p.ID != id {
			err = fmt.Errorf("%w: prekey record under another ID", ErrStoreCorrupt)
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
		if scanned < storeMaxPrekeyScan {
			// The counter promised more than the records hold: trust
			// the records (the used markers decide) and fix it.
			s.log.Warn("mailbox store: one-time prekey counter was off; fixed")
			*held = 0
		}
		return nil, nil
	}
	if err := txn.Set(storePrekeyKey(storeTagUsed, mb, kind, found.ID), storeUsedMarker); err != nil {
		return nil, err
	}
	if err := txn.Delete(foundKey); err != nil {
		return nil, err
	}
	*held--
	return found, nil
}

func storeLoadPrekeyState(txn *badger.Txn, mb *proto.MailboxID) (storePrekeyState, error) {
	v, found, err := storeGet(txn, storeMailboxKey(storeTagPrekeyState, mb))
	if err != nil {
		return storePrekeyState{}, err
	}
	if !found {
		return storePrekeyState{}, ErrNotFound
	}
	return decodeStorePrekeyState(v)
}

// storeLoadPrekey returns mb's signed or last-resort prekey, nil if none.
func storeLoadPrekey(txn *badger.Txn, mb *proto.MailboxID, kind byte) (*proto.Prekey, error) {
	v, found, err := storeGet(txn, storePrekeyKey(storeTagPrekey, mb, kind, 0))
	if err != nil || !found {
		return nil, err
	}
	p, err := decodeStorePrekey(v)
	if err != nil {
		return nil, err
	}
	return &p, nil
}

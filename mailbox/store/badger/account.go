package badger

import (
	"errors"
	"fmt"
	"strings"

	"github.com/dgraph-io/badger/v4"
	"github.com/sealnet/sealnet/mailbox/proto"
	"github.com/sealnet/sealnet/mailbox/store"
	"github.com/sealnet/sealnet/sender/seal"
)

// Register creates the mailbox of a.Address (stored lower-cased) and
// returns its ID. It is idempotent for the same identity keys (the stored
// account, token included, is left as it is); an address registered with
// other identity keys, or an identity X25519 key registered for another
// address, is store.ErrExists. An empty address or a zero identity key is
// store.ErrInvalid, an address over 128 bytes store.ErrTooLarge.
func (s *DB) Register(a store.Account) (proto.MailboxID, error) {
	a.Address = strings.ToLower(a.Address)
	switch {
	case a.Address == "":
		return proto.MailboxID{}, fmt.Errorf("%w: empty address", store.ErrInvalid)
	case len(a.Address) > seal.MaxAddress:
		return proto.MailboxID{}, fmt.Errorf("%w: address of %d bytes", store.ErrTooLarge, len(a.Address))
	case a.IdentityX25519 == [32]byte{} || a.IdentityEd25519 == [32]byte{}:
		return proto.MailboxID{}, fmt.Errorf("%w: zero identity key", store.ErrInvalid)
	}
	mb := proto.MailboxOf(a.Address)
	if err := s.enter(); err != nil {
		return proto.MailboxID{}, err
	}
	defer s.leave()
	l := s.lock(&mb)
	defer l.Unlock()
	err := s.update(func(txn *badger.Txn) error {
		v, found, err := get(txn, mailboxKey(tagAccount, &mb))
		if err != nil {
			return err
		}
		if found {
			old, err := decodeAccount(v)
			if err != nil {
				return err
			}
			if old.IdentityX25519 != a.IdentityX25519 || old.IdentityEd25519 != a.IdentityEd25519 {
				return fmt.Errorf("%w: address taken", store.ErrExists)
			}
			return nil
		}
		_, found, err = get(txn, keyIndexKey(&a.IdentityX25519))
		if err != nil {
			return err
		}
		if found {
			return fmt.Errorf("%w: identity key registered for another address", store.ErrExists)
		}
		ps := prekeyState{}
		st := queueState{}
		for _, kv := range [][2][]byte{
			{mailboxKey(tagAccount, &mb), encodeAccount(&a)},
			{keyIndexKey(&a.IdentityX25519), encodeKeyIndex(&mb)},
			{mailboxKey(tagState, &mb), st.encode()},
			{mailboxKey(tagPrekeyState, &mb), ps.encode()},
		} {
			if err := txn.Set(kv[0], kv[1]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return proto.MailboxID{}, err
	}
	return mb, nil
}

// Account returns mb's account; store.ErrNotFound if there is none.
func (s *DB) Account(mb proto.MailboxID) (store.Account, error) {
	if err := s.enter(); err != nil {
		return store.Account{}, err
	}
	defer s.leave()
	var a store.Account
	err := s.db.View(func(txn *badger.Txn) (err error) {
		a, err = loadAccount(txn, &mb)
		return err
	})
	return a, err
}

// AccountByKey returns the mailbox and account registered with the identity
// X25519 key; store.ErrNotFound if there is none.
func (s *DB) AccountByKey(x25519 [32]byte) (proto.MailboxID, store.Account, error) {
	if err := s.enter(); err != nil {
		return proto.MailboxID{}, store.Account{}, err
	}
	defer s.leave()
	var mb proto.MailboxID
	var a store.Account
	err := s.db.View(func(txn *badger.Txn) error {
		v, found, err := get(txn, keyIndexKey(&x25519))
		if err != nil {
			return err
		}
		if !found {
			return store.ErrNotFound
		}
		if mb, err = decodeKeyIndex(v); err != nil {
			return err
		}
		if a, err = loadAccount(txn, &mb); err != nil {
			return err
		}
		if a.IdentityX25519 != x25519 {
			return fmt.Errorf("%w: key index points at another account", store.ErrCorrupt)
		}
		return nil
	})
	if err != nil {
		return proto.MailboxID{}, store.Account{}, err
	}
	return mb, a, nil
}

// SetDeliveryToken sets the hash of mb's delivery token (zero: none) and
// whether mb accepts deliveries without one; store.ErrNotFound if there is no
// such mailbox.
func (s *DB) SetDeliveryToken(mb proto.MailboxID, tokenHash [32]byte, allowUnsolicited bool) error {
	return s.updateMailbox(&mb, func(txn *badger.Txn) error {
		a, err := loadAccount(txn, &mb)
		if err != nil {
			return err
		}
		a.TokenHash, a.AllowUnsolicited = tokenHash, allowUnsolicited
		return txn.Set(mailboxKey(tagAccount, &mb), encodeAccount(&a))
	})
}

// updateMailbox runs fn in one update transaction while holding mb's lock,
// inside the store's open window: the frame of every write to one mailbox.
func (s *DB) updateMailbox(mb *proto.MailboxID, fn func(txn *badger.Txn) error) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	l := s.lock(mb)
	defer l.Unlock()
	return s.update(fn)
}

// loadAccount reads mb's account; store.ErrNotFound if mb is not registered.
func loadAccount(txn *badger.Txn, mb *proto.MailboxID) (store.Account, error) {
	return load(txn, mailboxKey(tagAccount, mb), decodeAccount)
}

// mailboxExists reports store.ErrNotFound unless mb is registered.
func mailboxExists(txn *badger.Txn, mb *proto.MailboxID) error {
	_, err := txn.Get(mailboxKey(tagAccount, mb))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return store.ErrNotFound
	}
	return err
}

// ReplaceIdentity moves mb to new identity keys: what a provider's operator
// does when a user has lost the device that held the old ones. The prekeys
// of the old identity (and their used markers) are deleted, since they are
// signed by a key the account no longer has; stored envelopes stay. The
// user's contacts will see the new key as a changed identity and must
// accept it (docs/client.md). store.ErrNotFound if mb is not registered,
// store.ErrExists if the new X25519 key belongs to another mailbox.
func (s *DB) ReplaceIdentity(mb proto.MailboxID, x25519, ed [32]byte) error {
	if x25519 == [32]byte{} || ed == [32]byte{} {
		return fmt.Errorf("%w: zero identity key", store.ErrInvalid)
	}
	return s.updateMailbox(&mb, func(txn *badger.Txn) error {
		a, err := loadAccount(txn, &mb)
		if err != nil {
			return err
		}
		v, found, err := get(txn, keyIndexKey(&x25519))
		if err != nil {
			return err
		}
		if found {
			if other, err := decodeKeyIndex(v); err != nil || other != mb {
				return fmt.Errorf("%w: identity key registered for another address", store.ErrExists)
			}
		}
		if err := txn.Delete(keyIndexKey(&a.IdentityX25519)); err != nil {
			return err
		}
		a.IdentityX25519, a.IdentityEd25519 = x25519, ed
		for _, tag := range []byte{tagPrekey, tagUsed} {
			prefix := mailboxKey(tag, &mb)
			it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
			var keys [][]byte
			for it.Rewind(); it.Valid(); it.Next() {
				keys = append(keys, it.Item().KeyCopy(nil))
			}
			it.Close()
			for _, k := range keys {
				if err := txn.Delete(k); err != nil {
					return err
				}
			}
		}
		ps := prekeyState{}
		for _, kv := range [][2][]byte{
			{mailboxKey(tagAccount, &mb), encodeAccount(&a)},
			{keyIndexKey(&x25519), encodeKeyIndex(&mb)},
			{mailboxKey(tagPrekeyState, &mb), ps.encode()},
		} {
			if err := txn.Set(kv[0], kv[1]); err != nil {
				return err
			}
		}
		return nil
	})
}

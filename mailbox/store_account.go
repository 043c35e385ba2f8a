package mailbox

import (
	"errors"
	"fmt"
	"strings"

	"github.com/dgraph-io/badger/v4"
	"github.com/sealnet/sealnet/mailbox/proto"
)

// Register creates the mailbox of a.Address (stored lower-cased) and
// returns its ID. It is idempotent for the same identity keys (the stored
// account, token included, is left as it is); an address registered with
// other identity keys, or an identity X25519 key registered for another
// address, is ErrExists. An empty address or a zero identity key is
// ErrStoreInvalid, an address over 128 bytes ErrTooLarge.
func (s *Store) Register(a Account) (proto.MailboxID, error) {
	a.Address = strings.ToLower(a.Address)
	switch {
	case a.Address == "":
		return proto.MailboxID{}, fmt.Errorf("%w: empty address", ErrStoreInvalid)
	case len(a.Address) > storeMaxAddress:
		return proto.MailboxID{}, fmt.Errorf("%w: address of %d bytes", ErrTooLarge, len(a.Address))
	case a.IdentityX25519 == [32]byte{} || a.IdentityEd25519 == [32]byte{}:
		return proto.MailboxID{}, fmt.Errorf("%w: zero identity key", ErrStoreInvalid)
	}
	mb := proto.MailboxOf(a.Address)
	if err := s.enter(); err != nil {
		return proto.MailboxID{}, err
	}
	defer s.leave()
	l := s.lock(&mb)
	defer l.Unlock()
	err := s.update(func(txn *badger.Txn) error {
		v, found, err := storeGet(txn, storeMailboxKey(storeTagAccount, &mb))
		if err != nil {
			return err
		}
		if found {
			old, err := decodeStoreAccount(v)
			if err != nil {
				return err
			}
			if old.IdentityX25519 != a.IdentityX25519 || old.IdentityEd25519 != a.IdentityEd25519 {
				return fmt.Errorf("%w: address taken", ErrExists)
			}
			return nil
		}
		_, found, err = storeGet(txn, storeKeyIndexKey(&a.IdentityX25519))
		if err != nil {
			return err
		}
		if found {
			return fmt.Errorf("%w: identity key registered for another address", ErrExists)
		}
		ps := storePrekeyState{}
		st := storeState{}
		for _, kv := range [][2][]byte{
			{storeMailboxKey(storeTagAccount, &mb), encodeStoreAccount(&a)},
			{storeKeyIndexKey(&a.IdentityX25519), encodeStoreKeyIndex(&mb)},
			{storeMailboxKey(storeTagState, &mb), st.encode()},
			{storeMailboxKey(storeTagPrekeyState, &mb), ps.encode()},
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

// Account returns mb's account; ErrNotFound if there is none.
func (s *Store) Account(mb proto.MailboxID) (Account, error) {
	if err := s.enter(); err != nil {
		return Account{}, err
	}
	defer s.leave()
	var a Account
	err := s.db.View(func(txn *badger.Txn) (err error) {
		a, err = storeLoadAccount(txn, &mb)
		return err
	})
	return a, err
}

// AccountByKey returns the mailbox and account registered with the identity
// X25519 key; ErrNotFound if there is none.
func (s *Store) AccountByKey(x25519 [32]byte) (proto.MailboxID, Account, error) {
	if err := s.enter(); err != nil {
		return proto.MailboxID{}, Account{}, err
	}
	defer s.leave()
	var mb proto.MailboxID
	var a Account
	err := s.db.View(func(txn *badger.Txn) error {
		v, found, err := storeGet(txn, storeKeyIndexKey(&x25519))
		if err != nil {
			return err
		}
		if !found {
			return ErrNotFound
		}
		if mb, err = decodeStoreKeyIndex(v); err != nil {
			return err
		}
		if a, err = storeLoadAccount(txn, &mb); err != nil {
			return err
		}
		if a.IdentityX25519 != x25519 {
			return fmt.Errorf("%w: key index points at another account", ErrStoreCorrupt)
		}
		return nil
	})
	if err != nil {
		return proto.MailboxID{}, Account{}, err
	}
	return mb, a, nil
}

// SetDeliveryToken sets the hash of mb's delivery token (zero: none) and
// whether mb accepts deliveries without one; ErrNotFound if there is no
// such mailbox.
func (s *Store) SetDeliveryToken(mb proto.MailboxID, tokenHash [32]byte, allowUnsolicited bool) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	l := s.lock(&mb)
	defer l.Unlock()
	return s.update(func(txn *badger.Txn) error {
		a, err := storeLoadAccount(txn, &mb)
		if err != nil {
			return err
		}
		a.TokenHash, a.AllowUnsolicited = tokenHash, allowUnsolicited
		return txn.Set(storeMailboxKey(storeTagAccount, &mb), encodeStoreAccount(&a))
	})
}

func storeLoadAccount(txn *badger.Txn, mb *proto.MailboxID) (Account, error) {
	v, found, err := storeGet(txn, storeMailboxKey(storeTagAccount, mb))
	if err != nil {
		return Account{}, err
	}
	if !found {
		return Account{}, ErrNotFound
	}
	return decodeStoreAccount(v)
}

// storeMailboxExists reports ErrNotFound unless mb is registered.
func storeMailboxExists(txn *badger.Txn, mb *proto.MailboxID) error {
	_, err := txn.Get(storeMailboxKey(storeTagAccount, mb))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return ErrNotFound
	}
	return err
}

// ReplaceIdentity moves mb to new identity keys: what a provider's operator
// does when a user has lost the device that held the old ones. The prekeys
// of the old identity (and their used markers) are deleted, since they are
// signed by a key the account no longer has; stored envelopes stay. The
// user's contacts will see the new key as a changed identity and must
// accept it (docs/client.md). ErrNotFound if mb is not registered,
// ErrExists if the new X25519 key belongs to another mailbox.
func (s *Store) ReplaceIdentity(mb proto.MailboxID, x25519, ed [32]byte) error {
	if x25519 == [32]byte{} || ed == [32]byte{} {
		return fmt.Errorf("%w: zero identity key", ErrStoreInvalid)
	}
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	l := s.lock(&mb)
	defer l.Unlock()
	return s.update(func(txn *badger.Txn) error {
		a, err := storeLoadAccount(txn, &mb)
		if err != nil {
			return err
		}
		v, found, err := storeGet(txn, storeKeyIndexKey(&x25519))
		if err != nil {
			return err
		}
		if found {
			if other, err := decodeStoreKeyIndex(v); err != nil || other != mb {
				return fmt.Errorf("%w: identity key registered for another address", ErrExists)
			}
		}
		if err := txn.Delete(storeKeyIndexKey(&a.IdentityX25519)); err != nil {
			return err
		}
		a.IdentityX25519, a.IdentityEd25519 = x25519, ed
		for _, tag := range []byte{storeTagPrekey, storeTagUsed} {
			prefix := storeMailboxKey(tag, &mb)
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
		ps := storePrekeyState{}
		for _, kv := range [][2][]byte{
			{storeMailboxKey(storeTagAccount, &mb), encodeStoreAccount(&a)},
			{storeKeyIndexKey(&x25519), encodeStoreKeyIndex(&mb)},
			{storeMailboxKey(storeTagPrekeyState, &mb), ps.encode()},
		} {
			if err := txn.Set(kv[0], kv[1]); err != nil {
				return err
			}
		}
		return nil
	})
}

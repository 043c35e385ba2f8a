package mailbox

import (
	"fmt"
	"sync"

	"github.com/sealnet/sealnet/mailbox/proto"
	"github.com/sealnet/sealnet/mixnet"
)

// The provider's side of the SURB IDs that authenticate replies (their
// layout: mailbox/proto/replyid.go).

// replyKeys caches the provider's reply keys by mailbox, so that a reply
// costs an HMAC, not an X25519 operation. An entry holds the identity key
// it was derived for (ReplaceIdentity changes it). At most max entries:
// when full a random tenth is forgotten (they are derived again).
type replyKeys struct {
	dh  func(peer [32]byte) ([]byte, error) // the provider's link key's DH; nil: no key, every reply is refused
	max int
	mu  sync.Mutex
	m   map[proto.MailboxID]replyKeyEntry
}

type replyKeyEntry struct {
	identity [32]byte
	key      proto.ReplyKey
}

// replyKeysMax bounds the cache: 64 bytes of keys per entry, about 8 MiB.
const replyKeysMax = 1 << 17

func newReplyKeys(dh func([32]byte) ([]byte, error)) *replyKeys {
	return &replyKeys{dh: dh, max: replyKeysMax, m: make(map[proto.MailboxID]replyKeyEntry)}
}

// verify reports whether id is a SURB ID the owner of mb (identity X25519
// key identity) made; ErrForgedReply if not.
func (r *replyKeys) verify(mb proto.MailboxID, identity [32]byte, id mixnet.SURBID) error {
	k, err := r.key(mb, identity)
	if err != nil {
		return err
	}
	if !k.VerifyReplyID(mb, id) {
		return proto.ErrForgedReply
	}
	return nil
}

func (r *replyKeys) key(mb proto.MailboxID, identity [32]byte) (proto.ReplyKey, error) {
	r.mu.Lock()
	e, ok := r.m[mb]
	r.mu.Unlock()
	if ok && e.identity == identity {
		return e.key, nil
	}
	if r.dh == nil {
		return proto.ReplyKey{}, fmt.Errorf("%w: the provider has no link key to check it with", proto.ErrForgedReply)
	}
	shared, err := r.dh(identity)
	if err != nil {
		return proto.ReplyKey{}, fmt.Errorf("mailbox: reply key: %w", err)
	}
	k, err := proto.DeriveReplyKey(shared, mb)
	clear(shared)
	if err != nil {
		return proto.ReplyKey{}, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.m) >= r.max {
		i := 0
		for m := range r.m {
			if i%10 == 0 {
				delete(r.m, m)
			}
			i++
		}
	}
	r.m[mb] = replyKeyEntry{identity: identity, key: k}
	return k, nil
}

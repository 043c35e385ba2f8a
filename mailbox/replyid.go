package mailbox

import (
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/sealnet/sealnet/mixnet"
)

// SURB IDs that authenticate replies (issue 16).
//
// A packet that reaches a provider as a reply through a SURB carries, in
// its final routing slot, the SURB ID its creator chose. Anyone can build
// such a packet from the public directory and an address, so the ID is
// what tells the provider that the mailbox's owner made the SURB: for a
// SURB whose replies go to mailbox mb,
//
//	ID = nonce (8 random bytes) || tag (8)
//	tag = HMAC-SHA256(K, "sealnet surb id v1\x00" || mb || nonce)[:8]
//	K   = HKDF-SHA256(ikm = X25519(owner's identity key, provider's link key),
//	                  salt = mb, info = "sealnet mailbox reply key v1", 32 bytes)
//
// Only the owner (identity private key) and its provider (link private
// key) can compute K; both already hold what it needs, so accounts and
// client states made before issue 16 need nothing new. The X25519 value
// is the static-static DH of the owner's Noise_IK user link; K is derived
// from it under its own label and used for nothing else. The nonce keeps
// the owner's IDs distinct (it finds its SURB keys by ID): 2^32 SURBs
// before a collision is likely. The tag of 64 bits is checked online
// only, each guess costing a packet through the mix network.
//
// The provider drops a reply whose tag does not verify (reason
// forged_reply) before it spends the mailbox's reply budget or quota.

// ReplyKey authenticates the SURB IDs of one mailbox's SURBs.
type ReplyKey [32]byte

// ErrForgedReply: a SURB reply whose ID the mailbox's owner did not make.
var ErrForgedReply = errors.New("mailbox: SURB reply not made for this mailbox")

const (
	replyKeyLabel = "sealnet mailbox reply key v1"
	replyIDLabel  = "sealnet surb id v1\x00"
	replyNonceLen = 8
)

// deriveReplyKey expands the owner–provider shared secret into mb's key.
func deriveReplyKey(shared []byte, mb MailboxID) (ReplyKey, error) {
	var k ReplyKey
	b, err := hkdf.Key(sha256.New, shared, mb[:], replyKeyLabel, len(k))
	if err != nil {
		return k, fmt.Errorf("mailbox: reply key: %w", err)
	}
	copy(k[:], b)
	clear(b)
	return k, nil
}

// OwnerReplyKey is the key with which the owner of mb, whose identity
// X25519 key is identity, makes SURB IDs its provider (link key
// providerLinkKey, from the directory) accepts.
func OwnerReplyKey(identity *ecdh.PrivateKey, providerLinkKey [32]byte, mb MailboxID) (ReplyKey, error) {
	pub, err := ecdh.X25519().NewPublicKey(providerLinkKey[:])
	if err != nil {
		return ReplyKey{}, fmt.Errorf("mailbox: provider link key: %w", err)
	}
	shared, err := identity.ECDH(pub)
	if err != nil {
		return ReplyKey{}, fmt.Errorf("mailbox: reply key: %w", err)
	}
	defer clear(shared)
	return deriveReplyKey(shared, mb)
}

// replyTag computes the tag of nonce for mb into tag.
func (k *ReplyKey) replyTag(mb MailboxID, nonce []byte, tag []byte) {
	m := hmac.New(sha256.New, k[:])
	m.Write([]byte(replyIDLabel))
	m.Write(mb[:])
	m.Write(nonce)
	var sum [sha256.Size]byte
	copy(tag, m.Sum(sum[:0]))
}

// NewReplyID returns a fresh SURB ID for a SURB whose replies go to mb,
// reading its nonce from rng.
func (k *ReplyKey) NewReplyID(rng io.Reader, mb MailboxID) (mixnet.SURBID, error) {
	var id mixnet.SURBID
	if _, err := io.ReadFull(rng, id[:replyNonceLen]); err != nil {
		return id, fmt.Errorf("mailbox: read randomness: %w", err)
	}
	k.replyTag(mb, id[:replyNonceLen], id[replyNonceLen:])
	return id, nil
}

// VerifyReplyID reports whether id was made with k for mb (constant time
// in the tag).
func (k *ReplyKey) VerifyReplyID(mb MailboxID, id mixnet.SURBID) bool {
	var want [len(id) - replyNonceLen]byte
	k.replyTag(mb, id[:replyNonceLen], want[:])
	return hmac.Equal(want[:], id[replyNonceLen:])
}

// replyKeys caches the provider's reply keys by mailbox, so that a reply
// costs an HMAC, not an X25519 operation. An entry holds the identity key
// it was derived for (ReplaceIdentity changes it). At most max entries:
// when full a random tenth is forgotten (they are derived again).
type replyKeys struct {
	dh  func(peer [32]byte) ([]byte, error) // the provider's link key's DH; nil: no key, every reply is refused
	max int
	mu  sync.Mutex
	m   map[MailboxID]replyKeyEntry
}

type replyKeyEntry struct {
	identity [32]byte
	key      ReplyKey
}

// replyKeysMax bounds the cache: 64 bytes of keys per entry, about 8 MiB.
const replyKeysMax = 1 << 17

func newReplyKeys(dh func([32]byte) ([]byte, error)) *replyKeys {
	return &replyKeys{dh: dh, max: replyKeysMax, m: make(map[MailboxID]replyKeyEntry)}
}

// verify reports whether id is a SURB ID the owner of mb (identity X25519
// key identity) made; ErrForgedReply if not.
func (r *replyKeys) verify(mb MailboxID, identity [32]byte, id mixnet.SURBID) error {
	k, err := r.key(mb, identity)
	if err != nil {
		return err
	}
	if !k.VerifyReplyID(mb, id) {
		return ErrForgedReply
	}
	return nil
}

func (r *replyKeys) key(mb MailboxID, identity [32]byte) (ReplyKey, error) {
	r.mu.Lock()
	e, ok := r.m[mb]
	r.mu.Unlock()
	if ok && e.identity == identity {
		return e.key, nil
	}
	if r.dh == nil {
		return ReplyKey{}, fmt.Errorf("%w: the provider has no link key to check it with", ErrForgedReply)
	}
	shared, err := r.dh(identity)
	if err != nil {
		return ReplyKey{}, fmt.Errorf("mailbox: reply key: %w", err)
	}
	k, err := deriveReplyKey(shared, mb)
	clear(shared)
	if err != nil {
		return ReplyKey{}, err
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

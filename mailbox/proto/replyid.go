package proto

import (
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"

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

// DeriveReplyKey expands the owner–provider shared secret (the X25519
// value above) into mb's key: the provider derives it from its link key,
// OwnerReplyKey from the owner's identity key.
func DeriveReplyKey(shared []byte, mb MailboxID) (ReplyKey, error) {
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
	return DeriveReplyKey(shared, mb)
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

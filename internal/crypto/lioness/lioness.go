// Package lioness implements the LIONESS wide-block cipher of Anderson and
// Biham ("Two Practical and Provably Secure Block Ciphers: BEAR and LION",
// FSE 1996) over ChaCha20 and HMAC-SHA256.
//
// LIONESS is a four-round unbalanced Feistel network that turns a stream
// cipher and a keyed hash into a pseudorandom permutation of a whole block of
// any length. It is secure against combined chosen-plaintext and
// chosen-ciphertext attacks (a strong PRP), which is the property Sphinx
// needs for its payload: changing any bit of a ciphertext block turns the
// whole decrypted block into unpredictable bytes, so a modified packet
// payload cannot be recognised by a colluding hop further down the path (no
// tagging oracle), and is caught only by the integrity check at the end.
//
// The block is split into L, its first [KeySize] bytes, and R, the rest:
//
//	R ^= S(L ^ K1)
//	L ^= H(K2, R)
//	R ^= S(L ^ K3)
//	L ^= H(K4, R)
//
// where S(k) is the ChaCha20 keystream (RFC 8439) under key k with an
// all-zero nonce starting at block counter 1, and H(k, m) is HMAC-SHA256.
// Each subkey is used for one block only in this project (every Sphinx hop
// derives fresh ones), and L ^ K differs for every round, so no ChaCha20
// keystream is ever reused across distinct inputs.
package lioness

import (
	"crypto/subtle"
	"errors"
	"sync"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/sealnet/sealnet/internal/crypto/hmac256"
)

// KeySize is the size of each of the four subkeys, of L, and of the hash
// output.
const KeySize = 32

// MinBlockSize is the smallest block LIONESS accepts: L plus at least one
// byte of R.
const MinBlockSize = KeySize + 1

// Key holds the four independent LIONESS subkeys K1..K4.
type Key [4][KeySize]byte

// ErrBlockSize is returned for a block shorter than MinBlockSize.
var ErrBlockSize = errors.New("lioness: block shorter than 33 bytes")

// Encrypt enciphers block in place.
func Encrypt(k *Key, block []byte) error {
	if len(block) < MinBlockSize {
		return ErrBlockSize
	}
	l, r := (*[KeySize]byte)(block[:KeySize]), block[KeySize:]
	streamRound(l, &k[0], r)
	hashRound(l, &k[1], r)
	streamRound(l, &k[2], r)
	hashRound(l, &k[3], r)
	return nil
}

// Decrypt deciphers block in place. It never fails on a block of valid
// length: a modified ciphertext decrypts to unpredictable bytes, and
// detecting that is the caller's job.
func Decrypt(k *Key, block []byte) error {
	if len(block) < MinBlockSize {
		return ErrBlockSize
	}
	l, r := (*[KeySize]byte)(block[:KeySize]), block[KeySize:]
	hashRound(l, &k[3], r)
	streamRound(l, &k[2], r)
	hashRound(l, &k[1], r)
	streamRound(l, &k[0], r)
	return nil
}

// hashRound computes L ^= HMAC-SHA256(k, R).
func hashRound(l, k *[KeySize]byte, r []byte) {
	sum := hmac256.Sum(k[:], r)
	subtle.XORBytes(l[:], l[:], sum[:])
}

// streamRound computes R ^= S(L ^ k).
func streamRound(l, k *[KeySize]byte, r []byte) {
	var rk [KeySize]byte
	subtle.XORBytes(rk[:], l[:], k[:])
	XORKeyStream(&rk, r)
	clear(rk[:])
}

var zeroNonce [chacha20poly1305.NonceSize]byte

var scratchPool = sync.Pool{New: func() any { return new([]byte) }}

// XORKeyStream XORs buf with the ChaCha20 keystream for key, an all-zero
// nonce, and block counter starting at 1.
//
// It takes the keystream from chacha20poly1305's Seal over a zero buffer
// rather than from the chacha20 package because, on amd64, only the former
// has an assembly implementation (about three times faster here); the
// Poly1305 tag it also computes is discarded. TestXORKeyStreamMatchesChaCha20
// checks the output against the chacha20 package.
func XORKeyStream(key *[KeySize]byte, buf []byte) {
	aead, err := chacha20poly1305.New(key[:])
	if err != nil {
		panic("lioness: chacha20poly1305.New rejected a 32-byte key") // unreachable
	}
	sp := scratchPool.Get().(*[]byte)
	need := len(buf) + chacha20poly1305.Overhead
	if cap(*sp) < need {
		*sp = make([]byte, need)
	}
	ks := (*sp)[:len(buf)]
	clear(ks)
	aead.Seal(ks[:0], zeroNonce[:], ks, nil)
	subtle.XORBytes(buf, buf, ks)
	clear((*sp)[:need])
	scratchPool.Put(sp)
}

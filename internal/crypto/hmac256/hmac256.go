// Package hmac256 computes HMAC-SHA256 (RFC 2104) and HKDF-SHA256
// (RFC 5869) without heap allocation, for the per-packet key schedule.
//
// It exists because crypto/hmac allocates several objects for every new
// key, and a mix node keys an HMAC eight times per packet (Noise MixKey and
// Split, and LIONESS). The construction is the standard one, composed from
// crypto/sha256 alone, and the tests hold it to the RFC 4231 and RFC 5869
// test vectors and to crypto/hmac and crypto/hkdf on random inputs.
package hmac256

import (
	"crypto/sha256"
	"encoding"
	"hash"
	"sync"
)

// Size is the size of an HMAC-SHA256 output.
const Size = sha256.Size

const blockSize = sha256.BlockSize

// state is pooled so that nothing passed to the hash.Hash interface lives
// on the caller's stack (which would move it to the heap).
type state struct {
	d   hash.Hash
	pad [blockSize + Size]byte
	t   [Size]byte
	ctr [1]byte
}

// freshDigest is the marshalled state of an unused SHA-256: initial chaining
// value, an all-zero block buffer, length zero.
var freshDigest = func() []byte {
	b, err := sha256.New().(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		panic("hmac256: " + err.Error())
	}
	return b
}()

var states = sync.Pool{New: func() any { return &state{d: sha256.New()} }}

func getState() *state { return states.Get().(*state) }

// putState wipes s and returns it to the pool. Reset alone is not enough: a
// SHA-256 digest keeps the last partial block it was given (here the tail
// of a message or key material: an HKDF input, a derived key) in its
// buffer, and Reset only rewinds the length. Restoring the marshalled state
// of a fresh digest overwrites the whole buffer, without a heap allocation
// and without an extra compression.
func putState(s *state) {
	if err := s.d.(encoding.BinaryUnmarshaler).UnmarshalBinary(freshDigest); err != nil {
		panic("hmac256: " + err.Error())
	}
	clear(s.pad[:])
	clear(s.t[:])
	s.ctr[0] = 0
	states.Put(s)
}

// Sum returns HMAC-SHA256(key, msg[0] || msg[1] || ...).
func Sum(key []byte, msg ...[]byte) [Size]byte {
	s := getState()
	out := s.sum(key, msg...)
	putState(s)
	return out
}

func (s *state) sum(key []byte, msg ...[]byte) [Size]byte {
	var k [blockSize]byte
	if len(key) > blockSize {
		h := sha256.Sum256(key)
		copy(k[:], h[:])
	} else {
		copy(k[:], key)
	}
	for i := range blockSize {
		s.pad[i] = k[i] ^ 0x36
	}
	s.d.Reset()
	s.d.Write(s.pad[:blockSize])
	for _, m := range msg {
		s.d.Write(m)
	}
	s.d.Sum(s.pad[blockSize:blockSize])
	s.d.Reset()
	for i := range blockSize {
		s.pad[i] = k[i] ^ 0x5c
	}
	out := sha256.Sum256(s.pad[:])
	clear(k[:])
	clear(s.pad[:])
	return out
}

// MaxOutput is the most output HKDF-SHA256 can produce.
const MaxOutput = 255 * Size

// HKDF fills out with HKDF-SHA256(salt, ikm, info) (RFC 5869). It panics if
// len(out) > MaxOutput, a programming error: callers ask for fixed sizes.
func HKDF(out, salt, ikm, info []byte) {
	if len(out) > MaxOutput {
		panic("hmac256: HKDF output too long")
	}
	var zeroSalt [Size]byte
	if len(salt) == 0 {
		salt = zeroSalt[:]
	}
	s := getState()
	s.hkdf(out, salt, ikm, info)
	putState(s)
}

func (s *state) hkdf(out, salt, ikm, info []byte) {
	prk := s.sum(salt, ikm)
	for i, off := 0, 0; off < len(out); i++ {
		s.ctr[0] = byte(i + 1)
		if i == 0 {
			s.t = s.sum(prk[:], info, s.ctr[:])
		} else {
			s.t = s.sum(prk[:], s.t[:], info, s.ctr[:])
		}
		off += copy(out[off:], s.t[:])
	}
	clear(prk[:])
}

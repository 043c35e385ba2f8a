package mixnet

import (
	"crypto/ecdh"
	"crypto/sha256"

	"golang.org/x/crypto/chacha20"

	"github.com/sealnet/sealnet/internal/crypto/hmac256"
	"github.com/sealnet/sealnet/internal/crypto/lioness"
)

// Each hop's header layer is one handshake message of the Noise one-way
// pattern N (Noise spec rev. 34, §7.4):
//
//	N:
//	  <- s
//	  ...
//	  -> e, es
//
// with the protocol name below and the prologue "sealnet sphinx" || version
// || geometry hash. The message is the hop's ephemeral key e followed by the
// hop's routing information encrypted with EncryptAndHash, so its Poly1305
// tag is the per-hop header MAC, with the handshake hash h (which commits to
// the prologue, the hop's static key and e) as associated data.
//
// After the message, Noise's Split() derives two keys from the chaining
// key ck, T1 || T2 = HKDF-SHA256(salt=ck, ikm="", info=""), and the hop uses
// them as:
//
//	T1  seed of this hop's LIONESS payload key: K1..K4 are the first 128
//	    bytes of the ChaCha20 keystream under T1 (a PRG on a uniform key)
//	T2  the replay tag (its first 16 bytes)
const noiseProtocolName = "Noise_N_25519_ChaChaPoly_SHA256"

const noisePrologueLabel = "sealnet sphinx"

// noiseInitialHash is h (and ck) after InitializeSymmetric: the protocol
// name, zero-padded to HASHLEN because it is shorter.
var noiseInitialHash = func() (h [sha256.Size]byte) {
	copy(h[:], noiseProtocolName)
	return h
}()

// noisePrologue binds every hop's keys to the packet version and geometry.
func noisePrologue(g Geometry) []byte {
	gh := g.Hash()
	p := make([]byte, 0, len(noisePrologueLabel)+1+len(gh))
	p = append(p, noisePrologueLabel...)
	p = append(p, g.Version)
	return append(p, gh[:]...)
}

// mixHash is Noise's MixHash: h = SHA-256(h || data), for data of at most
// 64 bytes (keys and hashes; the prologue goes through staticHash).
func mixHash(h *[sha256.Size]byte, data []byte) {
	if len(data) > 64 {
		s := sha256.New()
		s.Write(h[:])
		s.Write(data)
		s.Sum(h[:0])
		return
	}
	var buf [sha256.Size + 64]byte
	copy(buf[:], h[:])
	n := copy(buf[sha256.Size:], data)
	*h = sha256.Sum256(buf[:sha256.Size+n])
}

// staticHash returns h after MixHash(prologue) and the pre-message
// MixHash(rs). It depends only on the geometry and the hop's public key,
// so a relay computes it once per key.
func staticHash(g Geometry, rs []byte) [sha256.Size]byte {
	h := noiseInitialHash
	mixHash(&h, noisePrologue(g))
	mixHash(&h, rs)
	return h
}

// hopKeys is everything one hop derives from its key agreement.
type hopKeys struct {
	// headerKey is the Noise handshake cipher key k after MixKey(es). It
	// encrypts and authenticates the routing information, and its ChaCha20
	// keystream past the routing information supplies the filler.
	headerKey [32]byte
	// ad is the Noise handshake hash h after MixHash(e): the associated data
	// of the routing information's AEAD.
	ad      [sha256.Size]byte
	payload lioness.Key
	tag     ReplayTag
}

// deriveHopKeys runs the Noise N key schedule from the static hash
// (staticHash), the ephemeral public key e and the X25519 result dh.
func deriveHopKeys(hs *[sha256.Size]byte, e, dh []byte, k *hopKeys) error {
	k.ad = *hs
	mixHash(&k.ad, e)
	// MixKey(dh): ck, temp_k = HKDF(ck, dh, 2); ck is still the initial
	// hash because N has no earlier MixKey.
	var okm [64]byte
	hmac256.HKDF(okm[:], noiseInitialHash[:], dh, nil)
	copy(k.headerKey[:], okm[32:])
	// Split(): T1, T2 = HKDF(ck, "", 2).
	var split [64]byte
	hmac256.HKDF(split[:], okm[:32], nil, nil)
	clear(okm[:])
	expandPayloadKey((*[32]byte)(split[:32]), &k.payload)
	copy(k.tag[:], split[32:])
	clear(split[:])
	return nil
}

// expandPayloadKey fills a LIONESS key from a 32-byte uniform seed: the
// first 128 bytes of the ChaCha20 keystream under the seed, zero nonce,
// block counter 0.
func expandPayloadKey(seed *[32]byte, k *lioness.Key) {
	var m [4 * lioness.KeySize]byte
	keystream(seed, 0, m[:])
	for i := range k {
		copy(k[i][:], m[i*lioness.KeySize:])
	}
	clear(m[:])
}

// wipe clears the secrets in k.
func (k *hopKeys) wipe() { *k = hopKeys{} }

// x25519 computes the shared secret and maps every failure (a malformed or
// low-order point) to ErrInvalidKey.
func x25519(priv *ecdh.PrivateKey, pub []byte) ([]byte, error) {
	p, err := ecdh.X25519().NewPublicKey(pub)
	if err != nil {
		return nil, ErrInvalidKey
	}
	dh, err := priv.ECDH(p)
	if err != nil {
		return nil, ErrInvalidKey
	}
	return dh, nil
}

// fillerCounter is the first ChaCha20 block counter of the filler: the
// first block after those the AEAD spends on the routing information
// (block 0 is Poly1305's key, blocks 1.. encrypt), so no keystream byte has
// two uses.
func (g Geometry) fillerCounter() uint32 {
	return uint32(1 + (g.routingInfoLen()+63)/64)
}

// keystream writes the ChaCha20 keystream for key (zero nonce) starting at
// block counter ctr into dst.
func keystream(key *[32]byte, ctr uint32, dst []byte) {
	var nonce [chacha20.NonceSize]byte
	c, err := chacha20.NewUnauthenticatedCipher(key[:], nonce[:])
	if err != nil {
		panic("mixnet: chacha20 rejected a 32-byte key") // unreachable
	}
	c.SetCounter(ctr)
	clear(dst)
	c.XORKeyStream(dst, dst)
}

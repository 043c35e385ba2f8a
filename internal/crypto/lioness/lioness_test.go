package lioness

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"math/rand/v2"
	"testing"

	"golang.org/x/crypto/chacha20"

	"github.com/sealnet/sealnet/internal/testkit/fuzzcheck"
)

func testRand(seed uint64) *rand.ChaCha8 {
	var s [32]byte
	s[0] = byte(seed)
	s[1] = byte(seed >> 8)
	return rand.NewChaCha8(s)
}

func randomKey(r *rand.ChaCha8) *Key {
	var k Key
	for i := range k {
		r.Read(k[i][:])
	}
	return &k
}

// referenceEncrypt is LIONESS written straight from the definition with the
// chacha20 package, so the fast keystream path is checked against it.
func referenceEncrypt(k *Key, block []byte) {
	l, r := block[:KeySize], block[KeySize:]
	s := func(key []byte) {
		var rk [32]byte
		for i := range rk {
			rk[i] = l[i] ^ key[i]
		}
		c, err := chacha20.NewUnauthenticatedCipher(rk[:], make([]byte, 12))
		if err != nil {
			panic(err)
		}
		c.SetCounter(1)
		c.XORKeyStream(r, r)
	}
	h := func(key []byte) {
		m := hmac.New(sha256.New, key)
		m.Write(r)
		sum := m.Sum(nil)
		for i := range l {
			l[i] ^= sum[i]
		}
	}
	s(k[0][:])
	h(k[1][:])
	s(k[2][:])
	h(k[3][:])
}

func TestXORKeyStreamMatchesChaCha20(t *testing.T) {
	r := testRand(1)
	for _, n := range []int{1, 15, 16, 63, 64, 65, 1000, 2016, 4096} {
		var key [32]byte
		r.Read(key[:])
		buf := make([]byte, n)
		r.Read(buf)
		want := bytes.Clone(buf)
		c, err := chacha20.NewUnauthenticatedCipher(key[:], make([]byte, 12))
		if err != nil {
			t.Fatal(err)
		}
		c.SetCounter(1)
		c.XORKeyStream(want, want)
		XORKeyStream(&key, buf)
		if !bytes.Equal(buf, want) {
			t.Fatalf("n=%d: keystream differs from chacha20 at counter 1", n)
		}
	}
}

func TestEncryptMatchesReference(t *testing.T) {
	r := testRand(2)
	for _, n := range []int{MinBlockSize, 64, 100, 2048} {
		k := randomKey(r)
		block := make([]byte, n)
		r.Read(block)
		want := bytes.Clone(block)
		referenceEncrypt(k, want)
		if err := Encrypt(k, block); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(block, want) {
			t.Fatalf("n=%d: Encrypt differs from the reference", n)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	r := testRand(3)
	for _, n := range []int{MinBlockSize, 34, 96, 2048, 9000} {
		k := randomKey(r)
		pt := make([]byte, n)
		r.Read(pt)
		block := bytes.Clone(pt)
		if err := Encrypt(k, block); err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(block, pt) {
			t.Fatalf("n=%d: Encrypt left the block unchanged", n)
		}
		if err := Decrypt(k, block); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(block, pt) {
			t.Fatalf("n=%d: Decrypt(Encrypt(x)) != x", n)
		}
	}
}

func TestShortBlock(t *testing.T) {
	var k Key
	for _, n := range []int{0, 1, KeySize} {
		if err := Encrypt(&k, make([]byte, n)); err != ErrBlockSize {
			t.Errorf("Encrypt(%d bytes) = %v, want ErrBlockSize", n, err)
		}
		if err := Decrypt(&k, make([]byte, n)); err != ErrBlockSize {
			t.Errorf("Decrypt(%d bytes) = %v, want ErrBlockSize", n, err)
		}
	}
}

// TestDiffusion is the no-tagging property: one flipped ciphertext bit, in
// L or in R, anywhere, must scramble the whole decrypted block, so nothing
// of the original plaintext (such as an all-zero integrity prefix) survives.
func TestDiffusion(t *testing.T) {
	r := testRand(4)
	const n = 2048
	k := randomKey(r)
	pt := make([]byte, n) // all zero: the worst case for recognisable output
	ct := bytes.Clone(pt)
	if err := Encrypt(k, ct); err != nil {
		t.Fatal(err)
	}
	for _, bit := range []int{0, 7, 8*KeySize - 1, 8 * KeySize, 8*KeySize + 1, 8*n/2 + 3, 8*n - 1} {
		mod := bytes.Clone(ct)
		mod[bit/8] ^= 1 << (bit % 8)
		if err := Decrypt(k, mod); err != nil {
			t.Fatal(err)
		}
		// Every 16-byte chunk must have changed: a surviving chunk is a
		// recognisable tag. The chance of a chunk staying zero is 2^-128.
		for c := 0; c+16 <= n; c += 16 {
			if bytes.Equal(mod[c:c+16], pt[c:c+16]) {
				t.Fatalf("bit %d: plaintext chunk at %d survived the modification", bit, c)
			}
		}
		// And about half of all bits flip.
		ones := 0
		for i := range mod {
			for b := mod[i]; b != 0; b &= b - 1 {
				ones++
			}
		}
		if frac := float64(ones) / (8 * n); frac < 0.45 || frac > 0.55 {
			t.Fatalf("bit %d: %.3f of the bits flipped, want about 0.5", bit, frac)
		}
	}
}

func TestWrongKey(t *testing.T) {
	r := testRand(5)
	k1, k2 := randomKey(r), randomKey(r)
	pt := make([]byte, 256)
	block := bytes.Clone(pt)
	if err := Encrypt(k1, block); err != nil {
		t.Fatal(err)
	}
	if err := Decrypt(k2, block); err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(block[:16], pt[:16]) {
		t.Fatal("decrypting under the wrong key recovered the plaintext prefix")
	}
}

func FuzzRoundTrip(f *testing.F) {
	fuzzcheck.RequireCorpus(f)
	f.Add(make([]byte, 4*KeySize), make([]byte, MinBlockSize))
	f.Fuzz(func(t *testing.T, keyBytes, block []byte) {
		var k Key
		for i := range k {
			if len(keyBytes) >= (i+1)*KeySize {
				copy(k[i][:], keyBytes[i*KeySize:])
			}
		}
		pt := bytes.Clone(block)
		err := Encrypt(&k, block)
		if len(pt) < MinBlockSize {
			if err != ErrBlockSize {
				t.Fatalf("Encrypt(%d bytes) = %v, want ErrBlockSize", len(pt), err)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := Decrypt(&k, block); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(block, pt) {
			t.Fatal("Decrypt(Encrypt(x)) != x")
		}
	})
}

func BenchmarkEncrypt2048(b *testing.B) {
	var k Key
	block := make([]byte, 2048)
	b.SetBytes(int64(len(block)))
	b.ReportAllocs()
	for b.Loop() {
		Encrypt(&k, block)
	}
}

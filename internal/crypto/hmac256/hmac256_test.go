package hmac256

import (
	"bytes"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
)

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// RFC 4231 §4, HMAC-SHA-256 results (test case 5, a truncated output, is
// covered by case 1's full output).
func TestRFC4231(t *testing.T) {
	rep := func(b byte, n int) string { return hex.EncodeToString(bytes.Repeat([]byte{b}, n)) }
	cases := []struct{ key, data, want string }{
		{rep(0x0b, 20), hex.EncodeToString([]byte("Hi There")),
			"b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
		{hex.EncodeToString([]byte("Jefe")), hex.EncodeToString([]byte("what do ya want for nothing?")),
			"5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
		{rep(0xaa, 20), rep(0xdd, 50),
			"773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"},
		{"0102030405060708090a0b0c0d0e0f10111213141516171819", rep(0xcd, 50),
			"82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"},
		{rep(0xaa, 131), hex.EncodeToString([]byte("Test Using Larger Than Block-Size Key - Hash Key First")),
			"60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
		{rep(0xaa, 131), hex.EncodeToString([]byte("This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm.")),
			"9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"},
	}
	for i, c := range cases {
		got := Sum(unhex(t, c.key), unhex(t, c.data))
		if hex.EncodeToString(got[:]) != c.want {
			t.Errorf("case %d: got %x", i+1, got)
		}
	}
}

// RFC 5869 Appendix A, test cases 1 to 3 (SHA-256).
func TestRFC5869(t *testing.T) {
	seq := func(from, to int) []byte {
		b := make([]byte, 0, to-from+1)
		for i := from; i <= to; i++ {
			b = append(b, byte(i))
		}
		return b
	}
	cases := []struct {
		ikm, salt, info []byte
		l               int
		want            string
	}{
		{bytes.Repeat([]byte{0x0b}, 22), seq(0x00, 0x0c), seq(0xf0, 0xf9), 42,
			"3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"},
		{seq(0x00, 0x4f), seq(0x60, 0xaf), seq(0xb0, 0xff), 82,
			"b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71cc30c58179ec3e87c14c01d5c1f3434f1d87"},
		{bytes.Repeat([]byte{0x0b}, 22), nil, nil, 42,
			"8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"},
	}
	for i, c := range cases {
		out := make([]byte, c.l)
		HKDF(out, c.salt, c.ikm, c.info)
		if hex.EncodeToString(out) != c.want {
			t.Errorf("case %d: got %x", i+1, out)
		}
	}
}

func TestMatchesStandardLibrary(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	buf := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return b
	}
	for range 500 {
		key, msg := buf(r.IntN(150)), buf(r.IntN(3000))
		split := r.IntN(len(msg) + 1)
		m := hmac.New(sha256.New, key)
		m.Write(msg)
		got := Sum(key, msg[:split], msg[split:])
		if !bytes.Equal(got[:], m.Sum(nil)) {
			t.Fatalf("HMAC differs from crypto/hmac (key %d bytes, msg %d bytes)", len(key), len(msg))
		}
		salt, ikm, info := buf(r.IntN(80)), buf(r.IntN(80)), buf(r.IntN(40))
		l := 1 + r.IntN(300)
		want, err := hkdf.Key(sha256.New, ikm, salt, string(info), l)
		if err != nil {
			t.Fatal(err)
		}
		out := make([]byte, l)
		HKDF(out, salt, ikm, info)
		if !bytes.Equal(out, want) {
			t.Fatalf("HKDF differs from crypto/hkdf (L=%d)", l)
		}
	}
}

func TestNoAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items under the race detector; checked in the normal run")
	}
	key, msg := make([]byte, 32), make([]byte, 2016)
	out := make([]byte, 64)
	Sum(key, msg) // warm the pool
	if n := testing.AllocsPerRun(100, func() {
		Sum(key, msg)
		HKDF(out, key, msg[:32], nil)
	}); n != 0 {
		t.Fatalf("%v allocations per run, want 0", n)
	}
}

func BenchmarkHKDF64(b *testing.B) {
	salt, ikm, out := make([]byte, 32), make([]byte, 32), make([]byte, 64)
	b.ReportAllocs()
	for b.Loop() {
		HKDF(out, salt, ikm, nil)
	}
}

func BenchmarkStdlibHKDF64(b *testing.B) {
	salt, ikm := make([]byte, 32), make([]byte, 32)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := hkdf.Key(sha256.New, ikm, salt, "", 64); err != nil {
			b.Fatal(err)
		}
	}
}

// secretIn reports whether any 8-byte window of secret appears in b.
func secretIn(b, secret []byte) bool {
	for i := 0; i+8 <= len(secret); i++ {
		if bytes.Contains(b, secret[i:i+8]) {
			return true
		}
	}
	return false
}

// pooledBytes is everything a pooled state keeps: its digest's memory
// (read through reflection, since MarshalBinary shows only the buffered
// bytes still counted) and its own buffers.
func pooledBytes(t *testing.T, s *state) []byte {
	t.Helper()
	v := reflect.ValueOf(s.d)
	for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		v = v.Elem()
	}
	var b []byte
	found := false
	for i := range v.NumField() {
		f := v.Field(i)
		if f.Kind() == reflect.Array && f.Type().Elem().Kind() == reflect.Uint8 {
			found = true
			for j := range f.Len() {
				b = append(b, byte(f.Index(j).Uint()))
			}
		}
	}
	if !found {
		t.Fatalf("%s has no byte buffer: the SHA-256 implementation changed, update this test", v.Type())
	}
	return slices.Concat(b, s.pad[:], s.t[:], s.ctr[:])
}

// TestPooledStateWiped: a state goes back to the pool holding none of the
// key material it hashed. The HKDF output's blocks are what an HMAC's
// inner hash buffers last (T(i) || info || counter), and a message whose
// length is not a multiple of the block size leaves its tail there.
func TestPooledStateWiped(t *testing.T) {
	secret := bytes.Repeat([]byte{0xa5, 0x5a, 0x3c, 0xc3, 0x11, 0x22, 0x33, 0x44, 0x99}, 11) // 99 bytes
	key := bytes.Repeat([]byte{0x77}, 32)

	s := &state{d: sha256.New()}
	s.sum(key, secret)
	s.d.Reset()
	if !secretIn(pooledBytes(t, s), secret[64:]) {
		t.Fatal("control: after Reset alone the message tail should still be in the digest's buffer")
	}
	putState(s)
	if secretIn(pooledBytes(t, s), secret) {
		t.Fatal("the message's tail survived putState")
	}

	out := make([]byte, 3*Size)
	s = &state{d: sha256.New()}
	s.hkdf(out, key, secret, []byte("info"))
	if !secretIn(pooledBytes(t, s), out) {
		t.Fatal("control: after HKDF the state should hold output blocks before it is wiped")
	}
	putState(s)
	if b := pooledBytes(t, s); secretIn(b, out) || secretIn(b, secret) {
		t.Fatal("HKDF output or input survived putState")
	}

	// Sum and HKDF wipe what they return to the pool: after a Sum, a state
	// taken from the pool holds nothing of it (without the race detector
	// the pool hands back the same state).
	if !raceEnabled {
		Sum(key, secret)
		s = getState()
		if secretIn(pooledBytes(t, s), secret) {
			t.Fatal("a pooled state holds the previous Sum's message")
		}
		states.Put(s)
	}
}

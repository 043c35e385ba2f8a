// Command sealseed writes the seed corpora of the fuzz targets of package
// seal (testdata/fuzz/Fuzz*). Every key comes from a fixed seed, Ed25519
// signatures are deterministic, and the randomness SealEnvelope reads is
// a SHA-256 counter stream, so running it again reproduces the same files
// byte for byte; its test fails if the committed corpora differ. From
// sender/seal:
//
//	go generate        (or: go run ./internal/sealseed)
//
// Sessions are written here from the format in docs/envelope.md §3.5, not
// through the package's encoder (a session made by Initiate would carry
// an ML-KEM ciphertext from the system's random generator, so it would
// differ on every run); their messages and fragments then come from the
// package's API. The fragments are addressed to the identity the package's
// fuzz test uses (fuzzIdentity in helpers_test.go: derive the keys the
// same way).
package main

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/mlkem"
	"crypto/sha256"
	"encoding/binary"
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/sealnet/sealnet/internal/testkit/fuzzcheck"
	"github.com/sealnet/sealnet/mailbox/proto"
	"github.com/sealnet/sealnet/mixnet"
	"github.com/sealnet/sealnet/sender/seal"
)

func main() {
	dir := flag.String("dir", ".", "the seal package's directory")
	flag.Parse()
	if err := run(*dir); err != nil {
		log.Fatal(err)
	}
}

// seed must match fuzzSeed in the package's helpers_test.go.
func seed(label string) []byte {
	s := sha256.Sum256([]byte("sealnet seal fuzz " + label))
	return s[:]
}

// stream is a deterministic byte source: SHA-256(label || counter) blocks.
type stream struct {
	label string
	n     uint64
	buf   []byte
}

func (s *stream) Read(p []byte) (int, error) {
	for len(s.buf) < len(p) {
		h := sha256.Sum256(binary.BigEndian.AppendUint64([]byte(s.label), s.n))
		s.n++
		s.buf = append(s.buf, h[:]...)
	}
	copy(p, s.buf)
	s.buf = s.buf[len(p):]
	return len(p), nil
}

func identity(name string) (*seal.Identity, error) {
	b := append([]byte{1}, seed(name+" x25519")...)
	return seal.UnmarshalIdentity(append(b, seed(name+" ed25519")...))
}

func public(id *seal.Identity) (x, ed []byte) {
	p := id.Public()
	return p.X25519[:], p.Ed25519[:]
}

// session writes a session encoding (docs/envelope.md §3.5).
type session struct {
	role           byte
	id             []byte
	self, peer     *seal.Identity
	sendCK, recvCK []byte
	sendN, recvN   uint32
	pending        bool
	skipped        []uint32
}

func (s *session) encode() []byte {
	b := []byte{1, s.role}
	b = append(b, s.id...)
	for _, id := range []*seal.Identity{s.self, s.peer} {
		x, ed := public(id)
		b = append(append(b, x...), ed...)
	}
	b = append(b, s.sendCK...)
	b = binary.BigEndian.AppendUint32(b, s.sendN)
	b = append(b, s.recvCK...)
	b = binary.BigEndian.AppendUint32(b, s.recvN)
	if s.pending {
		b = append(b, 1)
		b = append(b, seed("ephemeral")...)                        // EK_A
		b = binary.BigEndian.AppendUint32(b, 7)                    // SPK ID
		b = append(b, 1)                                           // has OPK
		b = binary.BigEndian.AppendUint32(b, 8)                    // OPK ID
		b = binary.BigEndian.AppendUint32(b, 9)                    // PQ ID
		b = append(b, seal.PQOneTime)                              // PQ kind
		b = append(b, bytes.Repeat(seed("kem ciphertext"), 34)...) // 1088 bytes
	} else {
		b = append(b, 0)
	}
	b = binary.BigEndian.AppendUint16(b, uint16(len(s.skipped)))
	for _, n := range s.skipped {
		b = binary.BigEndian.AppendUint32(b, n)
		b = append(b, seed(fmt.Sprint("skipped ", n))...)
	}
	return b
}

func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 1
	return c
}

func inner(cert, msg []byte) []byte {
	b := []byte{1}
	b = binary.BigEndian.AppendUint16(b, uint16(len(cert)))
	return append(append(b, cert...), msg...)
}

func run(dir string) error {
	alice, err := identity("alice")
	if err != nil {
		return err
	}
	bob, err := identity("identity") // fuzzIdentity
	if err != nil {
		return err
	}
	carol, err := identity("carol")
	if err != nil {
		return err
	}
	provider := ed25519.NewKeyFromSeed(seed("provider"))
	ax, aed := public(alice)
	cert, err := seal.SignCertificate(seal.Certificate{
		Address: "alice@a.example", IdentityX25519: [32]byte(ax), IdentityEd25519: [32]byte(aed),
		Expires: time.Unix(1_900_000_000, 0),
	}, provider)
	if err != nil {
		return err
	}

	pendingAlice := &session{role: 1, id: seed("session")[:16], self: alice, peer: bob,
		sendCK: seed("send"), recvCK: seed("receive"), pending: true}
	confirmedAlice := &session{role: 1, id: seed("session")[:16], self: alice, peer: bob,
		sendCK: seed("send"), recvCK: seed("receive"), sendN: 12, recvN: 5, skipped: []uint32{1, 3}}
	bobSide := &session{role: 2, id: seed("session")[:16], self: bob, peer: alice,
		sendCK: seed("receive"), recvCK: seed("send"), sendN: 4, recvN: 13, skipped: []uint32{0, 2, 11}}
	usedUp := &session{role: 2, id: seed("other session")[:16], self: bob, peer: carol,
		sendCK: seed("a"), recvCK: seed("b"), sendN: 1<<32 - 1, recvN: 1}

	salts := &stream{label: "sealnet seal fuzz salts"}
	sealOn := func(s *session, text string) ([]byte, error) {
		x, err := seal.UnmarshalSession(s.encode())
		if err != nil {
			return nil, err
		}
		return x.Seal(salts, []byte(text))
	}
	initial, err := sealOn(pendingAlice, "hello, bob")
	if err != nil {
		return err
	}
	follow, err := sealOn(confirmedAlice, "and again")
	if err != nil {
		return err
	}

	seeds := map[string]map[string][]any{}
	add := func(target, name string, v ...any) {
		if seeds[target] == nil {
			seeds[target] = map[string][]any{}
		}
		seeds[target][name] = v
	}

	// FuzzParseSessionMessage. Initial header offsets: type 0, session ID
	// 1, IK_A 17, 49, EK_A 81, SPK ID 113, has OPK 117, OPK ID 118, PQ ID
	// 122, PQ kind 126, ciphertext 127, n 1215, salt 1219 (version 2).
	// Version 1 (types 1 and 2) has no salt; these seeds have its form only.
	const t1 = "FuzzParseSessionMessage"
	v1 := func(b []byte, saltAt int) []byte {
		c := append(bytes.Clone(b[:saltAt]), b[saltAt+16:]...)
		c[0] -= 2
		return c
	}
	add(t1, "initial", initial)
	add(t1, "follow-up", follow)
	add(t1, "initial-v1", v1(initial, 1219))
	add(t1, "follow-up-v1", v1(follow, 21))
	add(t1, "empty", []byte{})
	add(t1, "type-5", append([]byte{5}, follow[1:]...))
	add(t1, "initial-truncated-header", initial[:1000])
	add(t1, "follow-up-short-tag", follow[:37+15])
	add(t1, "follow-up-truncated-salt", follow[:30])
	hasOPK2 := bytes.Clone(initial)
	hasOPK2[117] = 2
	add(t1, "has-opk-2", hasOPK2)
	noOPK := bytes.Clone(initial)
	noOPK[117] = 0
	add(t1, "no-opk-with-id", noOPK)
	add(t1, "pq-kind-3", func() []byte { b := bytes.Clone(initial); b[126] = 3; return b }())
	add(t1, "n-max", func() []byte { b := bytes.Clone(follow); copy(b[17:21], []byte{0xff, 0xff, 0xff, 0xff}); return b }())

	// FuzzParseInner.
	const t2 = "FuzzParseInner"
	add(t2, "initial", inner(cert, initial))
	add(t2, "follow-up", inner(cert, follow))
	add(t2, "empty-certificate", inner(nil, follow))
	add(t2, "no-message", inner(cert, nil))
	add(t2, "version-2", append([]byte{2}, inner(cert, follow)[1:]...))
	add(t2, "certificate-513", append([]byte{1, 0x02, 0x01}, make([]byte, 600)...))
	add(t2, "truncated-length", []byte{1, 0})
	add(t2, "certificate-flipped", flip(inner(cert, follow), 3+20))

	// FuzzUnmarshalSession.
	const t3 = "FuzzUnmarshalSession"
	add(t3, "initiator-pending", pendingAlice.encode())
	add(t3, "initiator-confirmed", confirmedAlice.encode())
	add(t3, "responder-skipped", bobSide.encode())
	add(t3, "used-up", usedUp.encode())
	enc := bobSide.encode()
	add(t3, "truncated", enc[:len(enc)-1])
	add(t3, "trailing-byte", append(bytes.Clone(enc), 0))
	add(t3, "role-3", func() []byte { b := bytes.Clone(enc); b[1] = 3; return b }())
	add(t3, "version-2", func() []byte { b := bytes.Clone(enc); b[0] = 2; return b }())
	notAscending := *bobSide
	notAscending.skipped = []uint32{2, 0}
	add(t3, "skipped-not-ascending", notAscending.encode())
	ahead := *bobSide
	ahead.skipped = []uint32{13}
	add(t3, "skipped-not-below-next", ahead.encode())
	pendingResponder := *bobSide
	pendingResponder.pending, pendingResponder.skipped, pendingResponder.recvN = true, nil, 0
	add(t3, "responder-pending", pendingResponder.encode())
	silent := *confirmedAlice
	silent.recvN, silent.skipped = 0, nil
	add(t3, "initiator-confirmed-without-receiving", silent.encode())

	// FuzzOpenFragment: real fragments for fuzzIdentity.
	const t4 = "FuzzOpenFragment"
	rng := &stream{label: "sealnet seal fuzz fragments"}
	size := proto.MaxMixEnvelope(mixnet.DefaultGeometry())
	bx, bed := public(bob)
	to := seal.PublicIdentity{X25519: [32]byte(bx), Ed25519: [32]byte(bed)}
	one, err := seal.SealEnvelope(rng, to, cert, follow, [16]byte(seed("message 1")), size)
	if err != nil {
		return err
	}
	two, err := seal.SealEnvelope(rng, to, cert, initial, [16]byte(seed("message 2")), size)
	if err != nil {
		return err
	}
	small, err := seal.SealEnvelope(rng, to, cert, follow, [16]byte(seed("message 3")), seal.MinFragmentSize)
	if err != nil {
		return err
	}
	cx, ced := public(carol)
	other, err := seal.SealEnvelope(rng, seal.PublicIdentity{X25519: [32]byte(cx), Ed25519: [32]byte(ced)}, cert, follow, [16]byte(seed("message 4")), size)
	if err != nil {
		return err
	}
	if len(one) != 1 || len(two) != 2 || len(small) < 3 {
		return fmt.Errorf("unexpected fragment counts %d, %d, %d", len(one), len(two), len(small))
	}
	add(t4, "follow-up-1-of-1", one[0])
	add(t4, "initial-1-of-2", two[0])
	add(t4, "initial-2-of-2", two[1])
	add(t4, "smallest-size-1", small[0])
	add(t4, "smallest-size-last", small[len(small)-1])
	add(t4, "for-another-identity", other[0])
	add(t4, "flipped-top-bit", func() []byte { b := bytes.Clone(one[0]); b[31] ^= 0x80; return b }())
	add(t4, "flipped-tag", flip(one[0], len(one[0])-1))
	add(t4, "truncated", one[0][:size-1])
	add(t4, "too-small", one[0][:seal.MinFragmentSize-1])
	add(t4, "low-order-key", make([]byte, size))

	// FuzzReassembler: records of (ID, index, count, length, chunk).
	const t5 = "FuzzReassembler"
	rec := func(id, index, count byte, chunk string) []byte {
		return append([]byte{id, index, count, byte(len(chunk))}, chunk...)
	}
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	add(t5, "in-order", cat(rec(1, 0, 3, "aa"), rec(1, 1, 3, "bb"), rec(1, 2, 3, "cc")))
	add(t5, "out-of-order", cat(rec(1, 2, 3, "cc"), rec(1, 0, 3, "aa"), rec(1, 1, 3, "bb")))
	add(t5, "single", rec(7, 0, 1, "whole message"))
	add(t5, "duplicate", cat(rec(1, 0, 2, "a"), rec(1, 0, 2, "x"), rec(1, 1, 2, "b"), rec(1, 1, 2, "b")))
	add(t5, "inconsistent-count", cat(rec(1, 0, 3, "a"), rec(1, 1, 2, "b"), rec(1, 1, 3, "b"), rec(1, 2, 3, "c")))
	add(t5, "out-of-range", cat(rec(1, 0, 0, "a"), rec(1, 3, 2, "a"), rec(1, 0, 65, "a"), rec(1, 0, 2, "")))
	var many [][]byte
	for i := range 6 {
		many = append(many, rec(byte(i), 0, 2, string(bytes.Repeat([]byte{byte('a' + i)}, 200))))
	}
	many = append(many, rec(5, 1, 2, "end"), rec(0, 1, 2, "dropped"))
	add(t5, "eviction", cat(many...))
	add(t5, "interleaved", cat(rec(1, 0, 2, "a"), rec(2, 1, 2, "d"), rec(1, 1, 2, "b"), rec(2, 0, 2, "c")))

	if err := keySeeds(add); err != nil {
		return err
	}

	for target, files := range seeds {
		if err := os.RemoveAll(filepath.Join(dir, "testdata", "fuzz", target)); err != nil {
			return err
		}
		for name, v := range files {
			if err := fuzzcheck.WriteSeed(dir, target, name, v...); err != nil {
				return err
			}
		}
	}
	return nil
}

// keySeeds adds the seeds of the certificate, bundle and prekey decoders
// (moved here from package mailbox with the formats, byte for byte the
// same: the keys come from the same labels).
func keySeeds(add func(target, name string, v ...any)) error {
	bytesOf := func(label string, n int) []byte {
		b := make([]byte, n)
		r := rand.NewChaCha8(sha256.Sum256([]byte(label)))
		r.Read(b)
		return b
	}
	ed := ed25519.NewKeyFromSeed(bytesOf("identity", 32))
	x, _ := ecdh.X25519().NewPrivateKey(bytesOf("x25519", 32))
	sp, _ := ecdh.X25519().NewPrivateKey(bytesOf("signed", 32))
	ot, _ := ecdh.X25519().NewPrivateKey(bytesOf("one-time", 32))
	dk, err := mlkem.NewDecapsulationKey768(bytesOf("pq", 64))
	if err != nil {
		return err
	}
	signed := seal.NewSignedPrekey(ed, 1, sp.PublicKey())
	onetime := seal.OneTimePrekey{ID: 2}
	copy(onetime.Public[:], ot.PublicKey().Bytes())
	pq := seal.NewPQPrekey(ed, 3, seal.PQOneTime, dk.EncapsulationKey())
	bundle := &seal.PrekeyBundle{Signed: signed, OneTime: &onetime, PQ: pq}
	copy(bundle.IdentityX25519[:], x.PublicKey().Bytes())
	copy(bundle.IdentityEd25519[:], ed.Public().(ed25519.PublicKey))
	noOneTime := *bundle
	noOneTime.OneTime = nil
	provider := ed25519.NewKeyFromSeed(bytesOf("provider", 32))
	cert, err := seal.SignCertificate(seal.Certificate{Address: "alice@a", IdentityX25519: bundle.IdentityX25519,
		IdentityEd25519: bundle.IdentityEd25519, Expires: time.Unix(1_900_000_000, 0)}, provider)
	if err != nil {
		return err
	}
	add("FuzzParseCertificate", "valid", cert)
	add("FuzzParseCertificate", "truncated", cert[:40])
	add("FuzzParseBundle", "with-one-time", bundle.Marshal())
	add("FuzzParseBundle", "without-one-time", noOneTime.Marshal())
	add("FuzzParsePrekeys", "signed", signed.Marshal())
	add("FuzzParsePrekeys", "one-time", onetime.Marshal())
	add("FuzzParsePrekeys", "pq", pq.Marshal())
	return nil
}

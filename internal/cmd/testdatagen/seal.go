package main

// The seed corpora of package seal's fuzz targets
// (sender/seal/testdata/fuzz/Fuzz*). Every key comes from a fixed seed,
// Ed25519 signatures are deterministic, and the randomness SealEnvelope
// reads is a SHA-256 counter stream, so the files are reproduced byte for
// byte.
//
// Sessions are written here from the format in docs/envelope.md §3.5, not
// through the package's encoder (a session made by Initiate would carry
// an ML-KEM ciphertext from the system's random generator, so it would
// differ on every run); their messages and fragments then come from the
// package's API. The fragments are addressed to the identity the package's
// fuzz test uses (fuzzIdentity in sender/seal/helpers_test.go: derive the
// keys the same way).

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/mlkem"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/sealnet/sealnet/internal/testkit/fuzzcheck"
	"github.com/sealnet/sealnet/mailbox/proto"
	"github.com/sealnet/sealnet/mixnet"
	"github.com/sealnet/sealnet/sender/seal"
)

// sealSeed must match fuzzSeed in sender/seal/helpers_test.go.
func sealSeed(label string) []byte {
	s := sha256.Sum256([]byte("sealnet seal fuzz " + label))
	return s[:]
}

// sealStream is a deterministic byte source: SHA-256(label || counter) blocks.
type sealStream struct {
	label string
	n     uint64
	buf   []byte
}

func (s *sealStream) Read(p []byte) (int, error) {
	for len(s.buf) < len(p) {
		h := sha256.Sum256(binary.BigEndian.AppendUint64([]byte(s.label), s.n))
		s.n++
		s.buf = append(s.buf, h[:]...)
	}
	copy(p, s.buf)
	s.buf = s.buf[len(p):]
	return len(p), nil
}

func sealIdentity(name string) (*seal.Identity, error) {
	b := append([]byte{1}, sealSeed(name+" x25519")...)
	return seal.UnmarshalIdentity(append(b, sealSeed(name+" ed25519")...))
}

func sealPublic(id *seal.Identity) (x, ed []byte) {
	p := id.Public()
	return p.X25519[:], p.Ed25519[:]
}

// sealSession writes a session encoding (docs/envelope.md §3.5).
type sealSession struct {
	role           byte
	id             []byte
	self, peer     *seal.Identity
	sendCK, recvCK []byte
	sendN, recvN   uint32
	pending        bool
	skipped        []uint32
}

func (s *sealSession) encode() []byte {
	b := []byte{1, s.role}
	b = append(b, s.id...)
	for _, id := range []*seal.Identity{s.self, s.peer} {
		x, ed := sealPublic(id)
		b = append(append(b, x...), ed...)
	}
	b = append(b, s.sendCK...)
	b = binary.BigEndian.AppendUint32(b, s.sendN)
	b = append(b, s.recvCK...)
	b = binary.BigEndian.AppendUint32(b, s.recvN)
	if s.pending {
		b = append(b, 1)
		b = append(b, sealSeed("ephemeral")...)                        // EK_A
		b = binary.BigEndian.AppendUint32(b, 7)                        // SPK ID
		b = append(b, 1)                                               // has OPK
		b = binary.BigEndian.AppendUint32(b, 8)                        // OPK ID
		b = binary.BigEndian.AppendUint32(b, 9)                        // PQ ID
		b = append(b, seal.PQOneTime)                                  // PQ kind
		b = append(b, bytes.Repeat(sealSeed("kem ciphertext"), 34)...) // 1088 bytes
	} else {
		b = append(b, 0)
	}
	b = binary.BigEndian.AppendUint16(b, uint16(len(s.skipped)))
	for _, n := range s.skipped {
		b = binary.BigEndian.AppendUint32(b, n)
		b = append(b, sealSeed(fmt.Sprint("skipped ", n))...)
	}
	return b
}

func sealInner(cert, msg []byte) []byte {
	b := []byte{1}
	b = binary.BigEndian.AppendUint16(b, uint16(len(cert)))
	return append(append(b, cert...), msg...)
}

func writeSealSeeds(root string) error {
	dir := filepath.Join(root, "sender", "seal")
	alice, err := sealIdentity("alice")
	if err != nil {
		return err
	}
	bob, err := sealIdentity("identity") // fuzzIdentity
	if err != nil {
		return err
	}
	carol, err := sealIdentity("carol")
	if err != nil {
		return err
	}
	provider := ed25519.NewKeyFromSeed(sealSeed("provider"))
	ax, aed := sealPublic(alice)
	cert, err := seal.SignCertificate(seal.Certificate{
		Address: "alice@a.example", IdentityX25519: [32]byte(ax), IdentityEd25519: [32]byte(aed),
		Expires: time.Unix(1_900_000_000, 0),
	}, provider)
	if err != nil {
		return err
	}

	pendingAlice := &sealSession{role: 1, id: sealSeed("session")[:16], self: alice, peer: bob,
		sendCK: sealSeed("send"), recvCK: sealSeed("receive"), pending: true}
	confirmedAlice := &sealSession{role: 1, id: sealSeed("session")[:16], self: alice, peer: bob,
		sendCK: sealSeed("send"), recvCK: sealSeed("receive"), sendN: 12, recvN: 5, skipped: []uint32{1, 3}}
	bobSide := &sealSession{role: 2, id: sealSeed("session")[:16], self: bob, peer: alice,
		sendCK: sealSeed("receive"), recvCK: sealSeed("send"), sendN: 4, recvN: 13, skipped: []uint32{0, 2, 11}}
	usedUp := &sealSession{role: 2, id: sealSeed("other session")[:16], self: bob, peer: carol,
		sendCK: sealSeed("a"), recvCK: sealSeed("b"), sendN: 1<<32 - 1, recvN: 1}

	salts := &sealStream{label: "sealnet seal fuzz salts"}
	sealOn := func(s *sealSession, text string) ([]byte, error) {
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
	add(t2, "initial", sealInner(cert, initial))
	add(t2, "follow-up", sealInner(cert, follow))
	add(t2, "empty-certificate", sealInner(nil, follow))
	add(t2, "no-message", sealInner(cert, nil))
	add(t2, "version-2", append([]byte{2}, sealInner(cert, follow)[1:]...))
	add(t2, "certificate-513", append([]byte{1, 0x02, 0x01}, make([]byte, 600)...))
	add(t2, "truncated-length", []byte{1, 0})
	add(t2, "certificate-flipped", flip(sealInner(cert, follow), 3+20))

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
	rng := &sealStream{label: "sealnet seal fuzz fragments"}
	size := proto.MaxMixEnvelope(mixnet.DefaultGeometry())
	bx, bed := sealPublic(bob)
	to := seal.PublicIdentity{X25519: [32]byte(bx), Ed25519: [32]byte(bed)}
	one, err := seal.SealEnvelope(rng, to, cert, follow, [16]byte(sealSeed("message 1")), size)
	if err != nil {
		return err
	}
	two, err := seal.SealEnvelope(rng, to, cert, initial, [16]byte(sealSeed("message 2")), size)
	if err != nil {
		return err
	}
	small, err := seal.SealEnvelope(rng, to, cert, follow, [16]byte(sealSeed("message 3")), seal.MinFragmentSize)
	if err != nil {
		return err
	}
	cx, ced := sealPublic(carol)
	other, err := seal.SealEnvelope(rng, seal.PublicIdentity{X25519: [32]byte(cx), Ed25519: [32]byte(ced)}, cert, follow, [16]byte(sealSeed("message 4")), size)
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

	keys, err := newPrekeyMaterial()
	if err != nil {
		return err
	}
	add("FuzzParseCertificate", "valid", keys.cert)
	add("FuzzParseCertificate", "truncated", keys.cert[:40])
	add("FuzzParseBundle", "with-one-time", keys.bundle.Marshal())
	add("FuzzParseBundle", "without-one-time", keys.noOneTime().Marshal())
	add("FuzzParsePrekeys", "signed", keys.bundle.Signed.Marshal())
	add("FuzzParsePrekeys", "one-time", keys.bundle.OneTime.Marshal())
	add("FuzzParsePrekeys", "pq", keys.bundle.PQ.Marshal())
	addRatchetSeeds(add)

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

// labelBytes returns n bytes of a ChaCha8 stream keyed by SHA-256(label).
func labelBytes(label string, n int) []byte {
	b := make([]byte, n)
	rand.NewChaCha8(sha256.Sum256([]byte(label))).Read(b)
	return b
}

// prekeyMaterial is the prekey bundle and certificate both the seal
// corpora (certificate, bundle and prekey decoders) and the mailbox/proto
// corpora (bundle and certificate replies, uploads) carry: one identity,
// so the two packages' seeds agree.
type prekeyMaterial struct {
	bundle *seal.PrekeyBundle // with a one-time prekey
	cert   []byte             // for "alice@a", by a fixed provider key
}

func newPrekeyMaterial() (*prekeyMaterial, error) {
	ed := ed25519.NewKeyFromSeed(labelBytes("identity", 32))
	x, _ := ecdh.X25519().NewPrivateKey(labelBytes("x25519", 32))
	sp, _ := ecdh.X25519().NewPrivateKey(labelBytes("signed", 32))
	ot, _ := ecdh.X25519().NewPrivateKey(labelBytes("one-time", 32))
	// ML-KEM keys from a fixed seed are reproducible.
	dk, err := mlkem.NewDecapsulationKey768(labelBytes("pq", 64))
	if err != nil {
		return nil, err
	}
	onetime := seal.OneTimePrekey{ID: 2}
	copy(onetime.Public[:], ot.PublicKey().Bytes())
	bundle := &seal.PrekeyBundle{
		Signed:  seal.NewSignedPrekey(ed, 1, sp.PublicKey()),
		OneTime: &onetime,
		PQ:      seal.NewPQPrekey(ed, 3, seal.PQOneTime, dk.EncapsulationKey()),
	}
	copy(bundle.IdentityX25519[:], x.PublicKey().Bytes())
	copy(bundle.IdentityEd25519[:], ed.Public().(ed25519.PublicKey))
	provider := ed25519.NewKeyFromSeed(labelBytes("provider", 32))
	cert, err := seal.SignCertificate(seal.Certificate{Address: "alice@a", IdentityX25519: bundle.IdentityX25519,
		IdentityEd25519: bundle.IdentityEd25519, Expires: time.Unix(1_900_000_000, 0)}, provider)
	if err != nil {
		return nil, err
	}
	return &prekeyMaterial{bundle: bundle, cert: cert}, nil
}

// noOneTime returns the bundle as a provider hands it out once the
// one-time prekeys have run out.
func (k *prekeyMaterial) noOneTime() *seal.PrekeyBundle {
	b := *k.bundle
	b.OneTime = nil
	return &b
}

// Command protoseed writes the seed corpora of the mailbox protocol's fuzz
// targets (mailbox/proto/fuzz_test.go) from fixed seeds, so that rerunning
// it reproduces them byte for byte:
//
//	go run ./mailbox/internal/protoseed
package main

import (
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/mlkem"
	"crypto/sha256"
	"flag"
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
	dir := flag.String("dir", "mailbox/proto", "the mailbox/proto package directory")
	flag.Parse()
	if err := run(*dir); err != nil {
		log.Fatal(err)
	}
}

func rng(seed string) *rand.ChaCha8 { return rand.NewChaCha8(sha256.Sum256([]byte(seed))) }

func bytesOf(seed string, n int) []byte {
	b := make([]byte, n)
	rng(seed).Read(b)
	return b
}

func run(dir string) error {
	g := mixnet.DefaultGeometry()
	for _, t := range []string{"FuzzUnmarshal", "FuzzParseMixRequest", "FuzzParseReply"} {
		if err := os.RemoveAll(filepath.Join(dir, "testdata", "fuzz", t)); err != nil {
			return err
		}
	}
	seed := func(target, name string, b []byte) error { return fuzzcheck.WriteSeed(dir, target, name, b) }

	// Identity and prekeys from fixed seeds. ML-KEM keys come from
	// NewDecapsulationKey768 with a fixed seed, so they are reproducible.
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
	rawBundle := bundle.Marshal()
	noOneTime := *bundle
	noOneTime.OneTime = nil

	provider := ed25519.NewKeyFromSeed(bytesOf("provider", 32))
	cert, err := seal.SignCertificate(seal.Certificate{Address: "alice@a", IdentityX25519: bundle.IdentityX25519,
		IdentityEd25519: bundle.IdentityEd25519, Expires: time.Unix(1_900_000_000, 0)}, provider)
	if err != nil {
		return err
	}

	mb := proto.MailboxOf("alice@a")
	msgs := map[string]proto.Message{
		"deliver":     &proto.DeliverRequest{Mailbox: mb, EnvelopeID: [16]byte{1}, Token: [32]byte{2}, Data: bytesOf("envelope", 600)},
		"bundle":      &proto.BundleRequest{Mailbox: mb},
		"register":    &proto.RegisterRequest{Address: "alice@a", IdentityEd25519: bundle.IdentityEd25519, AllowUnsolicited: true},
		"certificate": &proto.CertificateRequest{},
		"upload": &proto.UploadRequest{Upload: proto.PrekeyUpload{
			Signed:    &proto.Prekey{ID: 1, Data: signed.Marshal()},
			OneTime:   []proto.Prekey{{ID: 2, Data: onetime.Marshal()}},
			PQOneTime: []proto.Prekey{{ID: 3, Data: pq.Marshal()}},
		}},
		"fetch":                &proto.FetchRequest{Wait: 5 * time.Second},
		"ack":                  &proto.AckRequest{Through: 42},
		"pull":                 &proto.PullRequest{Through: 42},
		"set-token":            &proto.SetTokenRequest{TokenHash: [32]byte{3}},
		"status":               &proto.Status{Code: proto.StatusAccepted, EnvelopeID: [16]byte{1}, Detail: "taken"},
		"status-retry":         &proto.Status{Code: proto.StatusRateLimited, EnvelopeID: [16]byte{1}, RetryAfter: 6 * time.Second},
		"bundle-response":      &proto.BundleResponse{Bundle: rawBundle},
		"certificate-response": &proto.CertificateResponse{Certificate: cert},
		"page": &proto.Page{More: true, Replenish: proto.ReplenishOneTime, Records: []proto.Record{
			{Seq: 7, Kind: proto.EnvelopeSealed, ID: [16]byte{4}, Expires: time.Unix(3600*480000, 0), Data: bytesOf("record", 300)}}},
		"empty-page": &proto.Page{},
	}
	for name, m := range msgs {
		if err := seed("FuzzUnmarshal", name, proto.Marshal(m)); err != nil {
			return err
		}
	}
	if err := seed("FuzzUnmarshal", "unknown-type", []byte{0x7f, 1, 2}); err != nil {
		return err
	}

	surb := bytesOf("surb", g.SURBSize())
	surb[64] = g.Version
	for name, r := range map[string]*proto.MixRequest{
		"deliver": {SURB: surb, Deliver: &proto.MixDeliver{EnvelopeID: [16]byte{5}, Token: [32]byte{6}, Data: bytesOf("mix envelope", 900)}},
		"bundle":  {SURB: surb, Bundle: true},
		"cover":   {SURB: surb, Cover: true},
	} {
		msg, err := proto.MarshalMixRequest(g, r)
		if err != nil {
			return err
		}
		if err := seed("FuzzParseMixRequest", name, msg); err != nil {
			return err
		}
	}
	for name, m := range map[string]proto.Message{"status": msgs["status"], "status-retry": msgs["status-retry"], "bundle": msgs["bundle-response"]} {
		msg, err := proto.MarshalReply(g, m)
		if err != nil {
			return err
		}
		if err := seed("FuzzParseReply", name, msg); err != nil {
			return err
		}
	}
	return nil
}

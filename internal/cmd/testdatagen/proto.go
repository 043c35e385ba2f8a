package main

// The seed corpora of the mailbox protocol's fuzz targets
// (mailbox/proto/testdata/fuzz: FuzzUnmarshal, FuzzParseMixRequest,
// FuzzParseReply), from fixed seeds. The bundle and certificate in the
// replies are the seal corpora's (prekeyMaterial in seal.go).

import (
	"os"
	"path/filepath"
	"time"

	"github.com/sealnet/sealnet/internal/testkit/fuzzcheck"
	"github.com/sealnet/sealnet/mailbox/proto"
	"github.com/sealnet/sealnet/mixnet"
)

func writeProtoSeeds(root string) error {
	dir := filepath.Join(root, "mailbox", "proto")
	g := mixnet.DefaultGeometry()
	for _, t := range []string{"FuzzUnmarshal", "FuzzParseMixRequest", "FuzzParseReply"} {
		if err := os.RemoveAll(filepath.Join(dir, "testdata", "fuzz", t)); err != nil {
			return err
		}
	}
	write := func(target, name string, b []byte) error { return fuzzcheck.WriteSeed(dir, target, name, b) }
	keys, err := newPrekeyMaterial()
	if err != nil {
		return err
	}

	mb := proto.MailboxOf("alice@a")
	msgs := map[string]proto.Message{
		"deliver":     &proto.DeliverRequest{Mailbox: mb, EnvelopeID: [16]byte{1}, Token: [32]byte{2}, Data: labelBytes("envelope", 600)},
		"bundle":      &proto.BundleRequest{Mailbox: mb},
		"register":    &proto.RegisterRequest{Address: "alice@a", IdentityEd25519: keys.bundle.IdentityEd25519, AllowUnsolicited: true},
		"certificate": &proto.CertificateRequest{},
		"upload": &proto.UploadRequest{Upload: proto.PrekeyUpload{
			Signed:    &proto.Prekey{ID: 1, Data: keys.bundle.Signed.Marshal()},
			OneTime:   []proto.Prekey{{ID: 2, Data: keys.bundle.OneTime.Marshal()}},
			PQOneTime: []proto.Prekey{{ID: 3, Data: keys.bundle.PQ.Marshal()}},
		}},
		"fetch":                &proto.FetchRequest{Wait: 5 * time.Second},
		"ack":                  &proto.AckRequest{Through: 42},
		"pull":                 &proto.PullRequest{Through: 42},
		"set-token":            &proto.SetTokenRequest{TokenHash: [32]byte{3}},
		"status":               &proto.Status{Code: proto.StatusAccepted, EnvelopeID: [16]byte{1}, Detail: "taken"},
		"status-retry":         &proto.Status{Code: proto.StatusRateLimited, EnvelopeID: [16]byte{1}, RetryAfter: 6 * time.Second},
		"bundle-response":      &proto.BundleResponse{Bundle: keys.bundle.Marshal()},
		"certificate-response": &proto.CertificateResponse{Certificate: keys.cert},
		"page": &proto.Page{More: true, Replenish: proto.ReplenishOneTime, Records: []proto.Record{
			{Seq: 7, Kind: proto.EnvelopeSealed, ID: [16]byte{4}, Expires: time.Unix(3600*480000, 0), Data: labelBytes("record", 300)}}},
		"empty-page": &proto.Page{},
	}
	for name, m := range msgs {
		if err := write("FuzzUnmarshal", name, proto.Marshal(m)); err != nil {
			return err
		}
	}
	if err := write("FuzzUnmarshal", "unknown-type", []byte{0x7f, 1, 2}); err != nil {
		return err
	}

	surb := labelBytes("surb", g.SURBSize())
	surb[64] = g.Version
	for name, r := range map[string]*proto.MixRequest{
		"deliver": {SURB: surb, Deliver: &proto.MixDeliver{EnvelopeID: [16]byte{5}, Token: [32]byte{6}, Data: labelBytes("mix envelope", 900)}},
		"bundle":  {SURB: surb, Bundle: true},
		"cover":   {SURB: surb, Cover: true},
	} {
		msg, err := proto.MarshalMixRequest(g, r)
		if err != nil {
			return err
		}
		if err := write("FuzzParseMixRequest", name, msg); err != nil {
			return err
		}
	}
	for name, m := range map[string]proto.Message{"status": msgs["status"], "status-retry": msgs["status-retry"], "bundle": msgs["bundle-response"]} {
		msg, err := proto.MarshalReply(g, m)
		if err != nil {
			return err
		}
		if err := write("FuzzParseReply", name, msg); err != nil {
			return err
		}
	}
	return nil
}

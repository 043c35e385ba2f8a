package proto

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/mlkem"
	"errors"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/sealnet/sealnet/internal/testkit/linktest"
	"github.com/sealnet/sealnet/mixnet"
	"github.com/sealnet/sealnet/mixnet/directory"
	"github.com/sealnet/sealnet/mixnet/link"
	"github.com/sealnet/sealnet/sender/seal"
)

var geo = mixnet.DefaultGeometry()

func detRand(seed uint64) *rand.ChaCha8 {
	var s [32]byte
	s[0], s[1] = byte(seed), byte(seed>>8)
	return rand.NewChaCha8(s)
}

// sampleMessages returns one of every message type, with nonzero fields.
func sampleMessages() []Message {
	r := detRand(1)
	var mb MailboxID
	r.Read(mb[:])
	id := [16]byte{1, 2, 3}
	tok := [32]byte{9}
	data := make([]byte, 700)
	r.Read(data)
	full := make([]byte, MaxEnvelopeData)
	r.Read(full)
	return []Message{
		&DeliverRequest{Mailbox: mb, EnvelopeID: id, Token: tok, Data: data},
		&BundleRequest{Mailbox: mb},
		&RegisterRequest{Address: "alice@a", IdentityEd25519: [32]byte{4}, TokenHash: [32]byte{5}, AllowUnsolicited: true, Signature: [64]byte{6}},
		&CertificateRequest{},
		&UploadRequest{Upload: PrekeyUpload{
			Signed:     &Prekey{ID: 7, Data: bytes.Repeat([]byte{7}, seal.SignedPrekeySize)},
			LastResort: &Prekey{ID: 8, Data: bytes.Repeat([]byte{8}, seal.PQPrekeySize)},
			OneTime:    []Prekey{{ID: 9, Data: bytes.Repeat([]byte{9}, seal.OneTimePrekeySize)}, {ID: 10, Data: []byte{1}}},
			PQOneTime:  []Prekey{{ID: 11, Data: bytes.Repeat([]byte{11}, seal.PQPrekeySize)}},
		}},
		&FetchRequest{Wait: 1500 * time.Millisecond},
		&PullRequest{Through: 42},
		&AckRequest{Through: 1 << 40},
		&SetTokenRequest{TokenHash: [32]byte{3}, AllowUnsolicited: false},
		&Status{Code: StatusQuotaFull, EnvelopeID: id, Detail: "mailbox full"},
		&Status{Code: StatusRateLimited, EnvelopeID: id, RetryAfter: 6 * time.Second},
		&BundleResponse{Bundle: bytes.Repeat([]byte{2}, seal.MaxBundle)},
		&CertificateResponse{Certificate: bytes.Repeat([]byte{3}, 200)},
		&Page{More: true, Replenish: ReplenishPQ | ReplenishSigned, Records: []Record{
			{Seq: 1, Kind: EnvelopeSealed, ID: id, Expires: time.Unix(3600*500000, 0), Data: data},
			{Seq: 2, Kind: EnvelopeSURBReply, ID: [16]byte{8}, Expires: time.Unix(3600*500001, 0), Data: full},
		}},
		&Page{},
	}
}

func TestMessageRoundTrip(t *testing.T) {
	for _, m := range sampleMessages() {
		b := Marshal(m)
		got, err := Unmarshal(b)
		if err != nil {
			t.Fatalf("%T: %v", m, err)
		}
		if !reflect.DeepEqual(normalize(got), normalize(m)) {
			t.Fatalf("%T: round trip gave %+v", m, got)
		}
		if !bytes.Equal(Marshal(got), b) {
			t.Fatalf("%T: re-encoding differs", m)
		}
		// Every truncation and any trailing byte is refused.
		for n := 0; n < len(b); n += max(1, len(b)/40) {
			if _, err := Unmarshal(b[:n]); !errors.Is(err, ErrMalformed) {
				t.Fatalf("%T truncated to %d bytes: got %v", m, n, err)
			}
		}
		if _, err := Unmarshal(append(bytes.Clone(b), 0)); !errors.Is(err, ErrMalformed) {
			t.Fatalf("%T with a trailing byte: got %v", m, err)
		}
	}
}

// normalize makes decoded and original values comparable (times in UTC,
// empty slices nil).
func normalize(m Message) Message {
	if p, ok := m.(*Page); ok {
		q := *p
		q.Records = nil
		for _, r := range p.Records {
			r.Expires = r.Expires.UTC()
			q.Records = append(q.Records, r)
		}
		return &q
	}
	return m
}

func TestMalformedMessages(t *testing.T) {
	cases := map[string][]byte{
		"empty":          nil,
		"unknown type":   {0x7f},
		"bad bool":       append(append([]byte{typeSetToken}, make([]byte, 32)...), 2),
		"unknown status": append([]byte{typeStatus, byte(statusMax)}, make([]byte, 17)...),
		"long wait":      {typeFetch, 0xff, 0xff, 0xff, 0xff},
		"oversized data": append(append([]byte{typeDeliver}, make([]byte, 80)...), 0x08, 0x01),
		"upload flags":   {typeUpload, 0x04, 0, 0, 0, 0},
		"page count":     {typePage, 0, PageRecords + 1},
	}
	for name, b := range cases {
		if _, err := Unmarshal(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: got %v, want ErrMalformed", name, err)
		}
	}
}

// TestPageSizeConstant: a page has the same size empty, partly full and
// full, so its size says nothing about the mailbox.
func TestPageSizeConstant(t *testing.T) {
	want := len(Marshal(&Page{}))
	for n := 1; n <= PageRecords; n++ {
		p := &Page{}
		for i := range n {
			p.Records = append(p.Records, Record{Seq: uint64(i), Kind: EnvelopeSealed, Data: make([]byte, 10*i)})
		}
		if got := len(Marshal(p)); got != want {
			t.Fatalf("page with %d records is %d bytes, empty is %d", n, got, want)
		}
	}
	frames := (want + chunkData(geo) - 1) / chunkData(geo)
	t.Logf("a page is %d bytes, %d frames", want, frames)
}

func TestMessagesOverLink(t *testing.T) {
	s, err := linktest.Pair(geo, link.KindUser, "proto")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	msgs := sampleMessages()
	errc := make(chan error, 1)
	go func() {
		for _, m := range msgs {
			if err := WriteMessage(s.Dialer, geo, m); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	for _, want := range msgs {
		got, err := ReadMessage(s.Listener)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(Marshal(got), Marshal(want)) {
			t.Fatalf("%T changed on the link", want)
		}
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	// Every frame on the wire has the link's size: pages, large uploads
	// and one-byte requests alike.
	rec := 2 + link.FrameSize(geo)
	if sent := s.Sent(); len(sent)%rec != 0 {
		t.Fatalf("%d bytes on the wire is not a whole number of %d-byte frames", len(sent), rec)
	}
}

func TestReadMessageBounded(t *testing.T) {
	s, err := linktest.Pair(geo, link.KindClient, "bounded")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// Endless non-final chunks: refused once past MaxMessage.
	go func() {
		f := make([]byte, geo.PacketSize())
		f[1], f[2] = byte(chunkData(geo)>>8), byte(chunkData(geo))
		for range MaxMessage/chunkData(geo) + 5 {
			if s.Dialer.WritePacket(f) != nil {
				return
			}
		}
	}()
	if _, err := ReadMessage(s.Listener); !errors.Is(err, errMessageTooLarge) {
		t.Fatalf("got %v, want errMessageTooLarge", err)
	}
}

func TestMixRequestRoundTrip(t *testing.T) {
	surb := make([]byte, geo.SURBSize())
	detRand(2).Read(surb)
	data := make([]byte, MaxMixEnvelope(geo))
	detRand(3).Read(data)
	for _, r := range []*MixRequest{
		{SURB: surb, Deliver: &MixDeliver{EnvelopeID: [16]byte{1}, Token: [32]byte{2}, Data: data}},
		{SURB: surb, Deliver: &MixDeliver{EnvelopeID: [16]byte{1}}},
		{SURB: surb, Bundle: true},
		{SURB: surb, Cover: true},
	} {
		msg, err := MarshalMixRequest(geo, r)
		if err != nil {
			t.Fatal(err)
		}
		if len(msg) != geo.MessageSize() {
			t.Fatalf("mix request of %d bytes", len(msg))
		}
		got, err := ParseMixRequest(geo, msg)
		if err != nil {
			t.Fatal(err)
		}
		again, _ := MarshalMixRequest(geo, got)
		if !bytes.Equal(again, msg) {
			t.Fatal("mix request round trip differs")
		}
		if r.Deliver != nil && len(r.Deliver.Data) == MaxMixEnvelope(geo) {
			continue // fills the message: no padding to damage
		}
		bad := bytes.Clone(msg)
		bad[len(bad)-1] = 1
		if _, err := ParseMixRequest(geo, bad); !errors.Is(err, ErrMalformed) {
			t.Fatalf("nonzero padding: got %v", err)
		}
	}
	if _, err := MarshalMixRequest(geo, &MixRequest{SURB: surb, Deliver: &MixDeliver{Data: make([]byte, MaxMixEnvelope(geo)+1)}}); err == nil {
		t.Fatal("oversized mix envelope accepted")
	}
	if MaxMixEnvelope(geo) < 1300 {
		t.Fatalf("only %d bytes of envelope per packet", MaxMixEnvelope(geo))
	}
}

func TestReplyRoundTrip(t *testing.T) {
	for _, m := range []Message{&Status{Code: StatusOK, EnvelopeID: [16]byte{7}, Detail: "x"}, &Status{Code: StatusRateLimited, EnvelopeID: [16]byte{7}, RetryAfter: MaxRetryAfter, Detail: "x"}, &BundleResponse{Bundle: make([]byte, seal.MaxBundle)}} {
		msg, err := MarshalReply(geo, m)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseReply(msg)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(Marshal(got), Marshal(m)) {
			t.Fatal("reply round trip differs")
		}
	}
}

// testIdentity returns a user's identity keys.
func testIdentity(seed uint64) (ed25519.PrivateKey, *ecdh.PrivateKey) {
	r := detRand(seed)
	var s [32]byte
	r.Read(s[:])
	ed := ed25519.NewKeyFromSeed(s[:])
	r.Read(s[:])
	x, _ := ecdh.X25519().NewPrivateKey(s[:])
	return ed, x
}

func TestBundleSignatures(t *testing.T) {
	ed, x := testIdentity(4)
	sp, _ := ecdh.X25519().GenerateKey(detRand(5))
	ot, _ := ecdh.X25519().GenerateKey(detRand(6))
	dk, _ := mlkem.GenerateKey768()
	b := &seal.PrekeyBundle{
		Signed:  seal.NewSignedPrekey(ed, 1, sp.PublicKey()),
		OneTime: &seal.OneTimePrekey{ID: 2},
		PQ:      seal.NewPQPrekey(ed, 3, seal.PQOneTime, dk.EncapsulationKey()),
	}
	copy(b.IdentityX25519[:], x.PublicKey().Bytes())
	copy(b.IdentityEd25519[:], ed.Public().(ed25519.PublicKey))
	copy(b.OneTime.Public[:], ot.PublicKey().Bytes())
	if err := b.Verify(); err != nil {
		t.Fatal(err)
	}
	raw := b.Marshal()
	if len(raw) != seal.MaxBundle {
		t.Fatalf("full bundle of %d bytes, seal.MaxBundle %d", len(raw), seal.MaxBundle)
	}
	got, err := seal.ParseBundle(raw)
	if err != nil || !bytes.Equal(got.Marshal(), raw) {
		t.Fatalf("bundle round trip: %v", err)
	}
	// Any byte of a signed part changed: the bundle fails to verify.
	for i := 1 + 32; i < len(raw); i += 7 {
		mod := bytes.Clone(raw)
		mod[i] ^= 0x40
		mb, err := seal.ParseBundle(mod)
		if err != nil {
			continue
		}
		inOneTime := i >= 1+64+seal.SignedPrekeySize && i < 1+64+seal.SignedPrekeySize+1+seal.OneTimePrekeySize
		if mb.Verify() == nil && !inOneTime {
			t.Fatalf("bundle with byte %d changed still verifies", i)
		}
	}
	// Signed by another identity.
	other, _ := testIdentity(7)
	b.Signed = seal.NewSignedPrekey(other, 1, sp.PublicKey())
	if err := b.Verify(); !errors.Is(err, seal.ErrPrekey) {
		t.Fatalf("prekey signed by another key: got %v", err)
	}
}

// TestPageRecordsPublished: the directory's capacity rule for fetching
// (a fetch drains ClientRate·FetchInterval replies) counts the records
// this protocol's pages hold.
func TestPageRecordsPublished(t *testing.T) {
	if directory.PageRecords != PageRecords {
		t.Fatalf("directory.PageRecords %d, a page holds %d", directory.PageRecords, PageRecords)
	}
}

// TestMixEnvelopeIsAFragment: the largest envelope a mix-network delivery
// carries at the default geometry is the client's fragment size, within
// the bounds package seal allows (seal's tests use this figure, 1,388).
func TestMixEnvelopeIsAFragment(t *testing.T) {
	if m := MaxMixEnvelope(mixnet.DefaultGeometry()); m != 1388 || m < seal.MinFragmentSize || m > seal.MaxFragmentSize {
		t.Fatalf("MaxMixEnvelope of the default geometry is %d; seal's tests assume 1388 within [%d, %d]", m, seal.MinFragmentSize, seal.MaxFragmentSize)
	}
}

package proto

import (
	"errors"
	"fmt"
	"time"

	"github.com/sealnet/sealnet/mixnet"
	"github.com/sealnet/sealnet/mixnet/link"
	"github.com/sealnet/sealnet/sender/seal"
	"golang.org/x/crypto/cryptobyte"
)

// The provider protocol (docs/mailbox.md). Every message is a type byte
// and fields. Over a direct link (client or user kind) a message travels in
// one or more fixed-size frames; through the mix network a request is the
// Sphinx message at the provider and carries a SURB for the reply.
const (
	typeDeliver     = 0x01
	typeBundle      = 0x02
	typeRegister    = 0x10
	typeCertificate = 0x11
	typeUpload      = 0x12
	typeFetch       = 0x13
	typeAck         = 0x14
	typeSetToken    = 0x15
	typePull        = 0x16

	typeMixDeliver = 0x41
	typeMixBundle  = 0x42
	typeMixCover   = 0x43

	typeStatus      = 0x81
	typeBundleResp  = 0x82
	typeStatusRetry = 0x84 // a status with a retry-after (issue 16)
	typeCertResp    = 0x91
	typePage        = 0x93
)

// Protocol limits.
const (
	// MaxMessage bounds a message on a direct link.
	MaxMessage = 64 << 10
	// PageRecords is how many envelope slots every page has, full or not.
	PageRecords = 4
	// MaxFetchWait bounds a long poll.
	MaxFetchWait = time.Minute
	maxDetail    = 200
	// maxPrekeyData bounds one encoded prekey in an upload.
	maxPrekeyData = 2048
	// maxOneTimeUpload and maxPQUpload bound one upload.
	maxOneTimeUpload = 200
	maxPQUpload      = 32
)

// StatusCode is the outcome the provider reports.
type StatusCode byte

const (
	// StatusOK: done; for a delivery, stored durably.
	StatusOK StatusCode = iota
	// StatusDuplicate: this envelope was already stored; nothing changed.
	StatusDuplicate
	// StatusAccepted: a delivery without a valid delivery token was taken.
	// The provider does not say whether it was stored: that would tell a
	// stranger whether the address exists (docs/mailbox.md).
	StatusAccepted
	// StatusQuotaFull: the mailbox is full (reported to token holders only).
	StatusQuotaFull
	// StatusRateLimited: too many requests for this mailbox; try later.
	StatusRateLimited
	// StatusUnauthorized: this link may not do that (not the owner, not
	// registered, a bad proof).
	StatusUnauthorized
	// StatusExists: the address is registered to another identity.
	StatusExists
	// StatusBadRequest: the request was malformed or out of range.
	StatusBadRequest
	// StatusUnavailable: the provider could not do it now (shutting down,
	// overloaded, storage error); retry.
	StatusUnavailable
	// StatusPrekeyReused: a one-time prekey ID was used before.
	StatusPrekeyReused
	statusMax
)

// Transient reports whether a refusal means "later": the mailbox is
// full, over a rate limit, or the provider cannot do it now. The sender
// keeps the message and tries again (after Status.RetryAfter if the
// provider said); every other refusal is final.
func (c StatusCode) Transient() bool {
	return c == StatusQuotaFull || c == StatusRateLimited || c == StatusUnavailable
}

var statusNames = [...]string{"ok", "duplicate", "accepted", "quota full", "rate limited", "unauthorized", "address taken", "bad request", "unavailable", "prekey ID reused"}

func (c StatusCode) String() string {
	if int(c) < len(statusNames) {
		return statusNames[c]
	}
	return fmt.Sprintf("status(%d)", byte(c))
}

// Message is any protocol message.
type Message interface{ encode(*cryptobyte.Builder) }

// DeliverRequest delivers a sealed envelope directly (anonymous client
// link). Token is the recipient's delivery token, or zero.
type DeliverRequest struct {
	Mailbox    MailboxID
	EnvelopeID [16]byte
	Token      [32]byte
	Data       []byte
}

// BundleRequest asks for a user's prekey bundle (anonymous client link).
type BundleRequest struct{ Mailbox MailboxID }

// RegisterRequest creates an account on a user link; the link proves the
// X25519 identity key and Signature (over RegistrationMessage) the Ed25519
// one.
type RegisterRequest struct {
	Address          string
	IdentityEd25519  [32]byte
	TokenHash        [32]byte
	AllowUnsolicited bool
	Signature        [64]byte
}

// CertificateRequest asks for a fresh sender certificate (user link).
type CertificateRequest struct{}

// UploadRequest adds prekeys (user link); each Data is an encoded signed
// prekey (bundle.go), verified by the provider.
type UploadRequest struct{ Upload PrekeyUpload }

// FetchRequest asks for the next page of the user's mailbox, waiting up to
// Wait for mail if it is empty (user link).
type FetchRequest struct{ Wait time.Duration }

// AckRequest acknowledges every envelope up to and including Through.
type AckRequest struct{ Through uint64 }

// PullRequest is one step of a client's constant-rate fetch: it
// acknowledges every envelope up to and including Through (0: none) and
// asks for the next page, which the provider sends PullAnswerDelay after
// the request arrived, whatever the mailbox held (docs/mailbox.md §5).
type PullRequest struct{ Through uint64 }

// PullAnswerDelay is when a provider answers a PullRequest, counted from
// its arrival: the same moment whether or not anything arrived, had to be
// acknowledged or had to be read, so that the answer's timing says
// nothing about the mailbox (it covers the commit of the acknowledgement
// and the read of the page with a wide margin).
const PullAnswerDelay = 100 * time.Millisecond

// SetTokenRequest changes the delivery token and the unsolicited policy.
type SetTokenRequest struct {
	TokenHash        [32]byte
	AllowUnsolicited bool
}

// Status answers most requests.
type Status struct {
	Code       StatusCode
	EnvelopeID [16]byte // for deliveries: which envelope
	Detail     string   // human-readable, no secrets
	// RetryAfter, for a transient refusal (StatusCode.Transient), is how
	// long the provider asks the sender to wait before trying again;
	// 0: not said. Whole seconds on the wire, at most MaxRetryAfter; a
	// status that carries one is encoded as type 0x84 (docs/mailbox.md).
	RetryAfter time.Duration
}

// MaxRetryAfter bounds Status.RetryAfter (two bytes of seconds).
const MaxRetryAfter = 65535 * time.Second

// retrySeconds is d on the wire: whole seconds, rounded up, 1 to 65,535.
func retrySeconds(d time.Duration) uint16 {
	s := (d + time.Second - 1) / time.Second
	return uint16(min(max(s, 1), MaxRetryAfter/time.Second))
}

// BundleResponse carries an encoded prekey bundle (seal.ParseBundle).
type BundleResponse struct{ Bundle []byte }

// CertificateResponse carries an encoded sender certificate.
type CertificateResponse struct{ Certificate []byte }

// Replenish flags in a page tell the owner what to upload.
const (
	ReplenishOneTime = 1 << iota // few classical one-time prekeys left
	ReplenishPQ                  // few post-quantum one-time prekeys left
	ReplenishSigned              // no signed or last-resort prekey, or an old one
)

// Page is one fixed-size page of a mailbox: PageRecords slots whatever the
// mailbox holds, so its size says nothing about how much mail there is.
type Page struct {
	More      bool
	Replenish byte
	Records   []Record // at most PageRecords
}

func (m *DeliverRequest) encode(b *cryptobyte.Builder) {
	b.AddUint8(typeDeliver)
	b.AddBytes(m.Mailbox[:])
	b.AddBytes(m.EnvelopeID[:])
	b.AddBytes(m.Token[:])
	addBytes16(b, m.Data)
}

func (m *BundleRequest) encode(b *cryptobyte.Builder) {
	b.AddUint8(typeBundle)
	b.AddBytes(m.Mailbox[:])
}

func (m *RegisterRequest) encode(b *cryptobyte.Builder) {
	b.AddUint8(typeRegister)
	addStr8(b, m.Address)
	b.AddBytes(m.IdentityEd25519[:])
	b.AddBytes(m.TokenHash[:])
	b.AddUint8(b2u(m.AllowUnsolicited))
	b.AddBytes(m.Signature[:])
}

func (m *CertificateRequest) encode(b *cryptobyte.Builder) { b.AddUint8(typeCertificate) }

func encodePrekey(b *cryptobyte.Builder, p *Prekey) {
	b.AddUint32(p.ID)
	addBytes16(b, p.Data)
}

func (m *UploadRequest) encode(b *cryptobyte.Builder) {
	u := &m.Upload
	b.AddUint8(typeUpload)
	var flags byte
	if u.Signed != nil {
		flags |= 1
	}
	if u.LastResort != nil {
		flags |= 2
	}
	b.AddUint8(flags)
	if u.Signed != nil {
		encodePrekey(b, u.Signed)
	}
	if u.LastResort != nil {
		encodePrekey(b, u.LastResort)
	}
	b.AddUint16(uint16(len(u.OneTime)))
	for i := range u.OneTime {
		encodePrekey(b, &u.OneTime[i])
	}
	b.AddUint16(uint16(len(u.PQOneTime)))
	for i := range u.PQOneTime {
		encodePrekey(b, &u.PQOneTime[i])
	}
}

func (m *FetchRequest) encode(b *cryptobyte.Builder) {
	b.AddUint8(typeFetch)
	b.AddUint32(uint32(m.Wait / time.Millisecond))
}

func (m *AckRequest) encode(b *cryptobyte.Builder) { b.AddUint8(typeAck); b.AddUint64(m.Through) }

func (m *PullRequest) encode(b *cryptobyte.Builder) { b.AddUint8(typePull); b.AddUint64(m.Through) }

func (m *SetTokenRequest) encode(b *cryptobyte.Builder) {
	b.AddUint8(typeSetToken)
	b.AddBytes(m.TokenHash[:])
	b.AddUint8(b2u(m.AllowUnsolicited))
}

func (m *Status) encode(b *cryptobyte.Builder) {
	if m.RetryAfter > 0 {
		b.AddUint8(typeStatusRetry)
		b.AddUint8(byte(m.Code))
		b.AddBytes(m.EnvelopeID[:])
		b.AddUint16(retrySeconds(m.RetryAfter))
		addStr8(b, m.Detail)
		return
	}
	b.AddUint8(typeStatus)
	b.AddUint8(byte(m.Code))
	b.AddBytes(m.EnvelopeID[:])
	addStr8(b, m.Detail)
}

func (m *BundleResponse) encode(b *cryptobyte.Builder) {
	b.AddUint8(typeBundleResp)
	addBytes16(b, m.Bundle)
}

func (m *CertificateResponse) encode(b *cryptobyte.Builder) {
	b.AddUint8(typeCertResp)
	addBytes16(b, m.Certificate)
}

// pageSlot is the size of one record slot in a page.
const pageSlot = 8 + 1 + 16 + 4 + 2 + MaxEnvelopeData

func (m *Page) encode(b *cryptobyte.Builder) {
	b.AddUint8(typePage)
	b.AddUint8(b2u(m.More) | m.Replenish<<1)
	b.AddUint8(byte(len(m.Records)))
	for i := range PageRecords {
		// Each slot is written into its own fixed-size builder, so a
		// record too large for a slot fails the message.
		slot := cryptobyte.NewFixedBuilder(make([]byte, 0, pageSlot))
		if i < len(m.Records) {
			r := &m.Records[i]
			slot.AddUint64(r.Seq)
			slot.AddUint8(r.Kind)
			slot.AddBytes(r.ID[:])
			slot.AddUint32(uint32(r.Expires.Unix() / 3600)) // hours: no finer time on the wire
			addBytes16(slot, r.Data)
		}
		v, err := slot.Bytes()
		if err != nil {
			b.SetError(fmt.Errorf("mailbox: page record %d: %w", i, err))
			return
		}
		b.AddBytes(v)
		b.AddBytes(make([]byte, pageSlot-len(v)))
	}
}

// Marshal encodes a message. A field longer than its length prefix
// holds is a caller's bug (no decoded message has one), and Marshal
// panics on it; WriteMessage and MarshalReply return it as an error.
func Marshal(m Message) []byte {
	b, err := marshal(m)
	if err != nil {
		panic(err)
	}
	return b
}

func marshal(m Message) ([]byte, error) {
	b := cryptobyte.NewBuilder(nil)
	m.encode(b)
	return b.Bytes()
}

func decodePrekey(d *dec) Prekey {
	id := d.u32("prekey ID")
	return Prekey{ID: id, Data: d.bytes16(maxPrekeyData, "prekey")}
}

// Unmarshal decodes a message strictly.
func Unmarshal(b []byte) (Message, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: empty message", ErrMalformed)
	}
	d := &dec{s: cryptobyte.String(b[1:])}
	var m Message
	switch b[0] {
	case typeDeliver:
		r := &DeliverRequest{}
		d.fixed(r.Mailbox[:], "mailbox")
		d.fixed(r.EnvelopeID[:], "envelope ID")
		d.fixed(r.Token[:], "token")
		r.Data = d.bytes16(MaxEnvelopeData, "envelope")
		m = r
	case typeBundle:
		r := &BundleRequest{}
		d.fixed(r.Mailbox[:], "mailbox")
		m = r
	case typeRegister:
		r := &RegisterRequest{}
		r.Address = d.str8(seal.MaxAddress, "address")
		d.fixed(r.IdentityEd25519[:], "identity key")
		d.fixed(r.TokenHash[:], "token hash")
		r.AllowUnsolicited = d.bool("unsolicited flag")
		d.fixed(r.Signature[:], "signature")
		m = r
	case typeCertificate:
		m = &CertificateRequest{}
	case typeUpload:
		r := &UploadRequest{}
		flags := d.u8("flags")
		if flags&^3 != 0 {
			d.fail("unknown upload flags")
		}
		if flags&1 != 0 {
			p := decodePrekey(d)
			r.Upload.Signed = &p
		}
		if flags&2 != 0 {
			p := decodePrekey(d)
			r.Upload.LastResort = &p
		}
		if n := int(d.u16("one-time count")); n > maxOneTimeUpload {
			d.fail("too many one-time prekeys")
		} else {
			for range n {
				r.Upload.OneTime = append(r.Upload.OneTime, decodePrekey(d))
			}
		}
		if n := int(d.u16("post-quantum count")); n > maxPQUpload {
			d.fail("too many post-quantum prekeys")
		} else {
			for range n {
				r.Upload.PQOneTime = append(r.Upload.PQOneTime, decodePrekey(d))
			}
		}
		m = r
	case typeFetch:
		ms := d.u32("wait")
		if time.Duration(ms)*time.Millisecond > MaxFetchWait {
			d.fail("wait longer than a minute")
		}
		m = &FetchRequest{Wait: time.Duration(ms) * time.Millisecond}
	case typeAck:
		m = &AckRequest{Through: d.u64("sequence")}
	case typePull:
		m = &PullRequest{Through: d.u64("sequence")}
	case typeSetToken:
		r := &SetTokenRequest{}
		d.fixed(r.TokenHash[:], "token hash")
		r.AllowUnsolicited = d.bool("unsolicited flag")
		m = r
	case typeStatus:
		r := &Status{}
		r.Code = StatusCode(d.u8("status"))
		if r.Code >= statusMax {
			d.fail("unknown status")
		}
		d.fixed(r.EnvelopeID[:], "envelope ID")
		r.Detail = d.str8(maxDetail, "detail")
		m = r
	case typeStatusRetry:
		r := &Status{}
		r.Code = StatusCode(d.u8("status"))
		if r.Code >= statusMax {
			d.fail("unknown status")
		}
		d.fixed(r.EnvelopeID[:], "envelope ID")
		secs := d.u16("retry after")
		if secs == 0 && d.err == nil {
			d.fail("retry after 0 s (a status without one is type 0x81)")
		}
		r.RetryAfter = time.Duration(secs) * time.Second
		r.Detail = d.str8(maxDetail, "detail")
		m = r
	case typeBundleResp:
		m = &BundleResponse{Bundle: d.bytes16(seal.MaxBundle, "bundle")}
	case typeCertResp:
		m = &CertificateResponse{Certificate: d.bytes16(seal.MaxSignedCertificate, "certificate")}
	case typePage:
		m = decodePage(d)
	default:
		return nil, fmt.Errorf("%w: unknown message type 0x%02x", ErrMalformed, b[0])
	}
	if err := d.done(); err != nil {
		return nil, err
	}
	return m, nil
}

func decodePage(d *dec) *Page {
	p := &Page{}
	flags := d.u8("flags")
	p.More = flags&1 != 0
	p.Replenish = flags >> 1
	if p.Replenish&^(ReplenishOneTime|ReplenishPQ|ReplenishSigned) != 0 {
		d.fail("unknown page flags")
	}
	n := int(d.u8("count"))
	if n > PageRecords {
		d.fail("page count")
		return p
	}
	for i := range PageRecords {
		slot := d.take(pageSlot, "page slot")
		if slot == nil {
			return p
		}
		sd := &dec{s: cryptobyte.String(slot)}
		if i >= n {
			if !sd.zeros() {
				d.fail("empty page slot not zero")
				return p
			}
			continue
		}
		var r Record
		r.Seq = sd.u64("sequence")
		r.Kind = sd.u8("kind")
		sd.fixed(r.ID[:], "envelope ID")
		r.Expires = time.Unix(int64(sd.u32("expiry"))*3600, 0)
		r.Data = sd.bytes16(MaxEnvelopeData, "envelope")
		if sd.err == nil && !sd.zeros() {
			sd.fail("slot padding not zero")
		}
		if sd.err != nil {
			d.err = sd.err
			return p
		}
		if r.Kind != EnvelopeSealed && r.Kind != EnvelopeSURBReply {
			d.fail("unknown envelope kind")
		}
		p.Records = append(p.Records, r)
	}
	return p
}

// Frames: a message on a direct link is cut into chunks, one per frame:
//
//	flags (1: bit 0 = last chunk) || length (2) || data (length) || zeros
//
// so that every frame has the link's fixed size.
func chunkData(g mixnet.Geometry) int { return g.PacketSize() - 3 }

// WriteMessage sends m on c.
func WriteMessage(c *link.Conn, g mixnet.Geometry, m Message) error {
	b, err := marshal(m)
	if err != nil {
		return err
	}
	if len(b) > MaxMessage {
		return fmt.Errorf("mailbox: message of %d bytes", len(b))
	}
	per := chunkData(g)
	frames := make([][]byte, 0, (len(b)+per-1)/per)
	for len(b) > 0 || len(frames) == 0 {
		n := min(len(b), per)
		f := make([]byte, g.PacketSize())
		if n == len(b) {
			f[0] = 1
		}
		f[1], f[2] = byte(n>>8), byte(n)
		copy(f[3:], b[:n])
		b = b[n:]
		frames = append(frames, f)
	}
	_, err = c.WritePackets(frames)
	return err
}

// errMessageTooLarge is for a message over MaxMessage.
var errMessageTooLarge = errors.New("mailbox: message too large")

// ReadMessage reads one message from c, refusing more than MaxMessage
// bytes before reading further.
func ReadMessage(c *link.Conn) (Message, error) {
	var msg []byte
	for {
		f, err := c.ReadPacket()
		if err != nil {
			return nil, err
		}
		last, n := f[0], int(f[1])<<8|int(f[2])
		if last > 1 || n > len(f)-3 {
			return nil, fmt.Errorf("%w: bad chunk header", ErrMalformed)
		}
		for _, z := range f[3+n:] {
			if z != 0 {
				return nil, fmt.Errorf("%w: chunk padding not zero", ErrMalformed)
			}
		}
		if len(msg)+n > MaxMessage {
			return nil, errMessageTooLarge
		}
		msg = append(msg, f[3:3+n]...)
		if last == 1 {
			return Unmarshal(msg)
		}
	}
}

// MixRequest is a request carried through the mix network to a provider:
// the Sphinx message at the final hop. The mailbox is the Sphinx Deliver
// command's recipient; the reply goes back through SURB.
type MixRequest struct {
	SURB    []byte // Geometry.SURBSize bytes
	Deliver *MixDeliver
	// Bundle set means a bundle request (and Deliver is nil).
	Bundle bool
	// Cover set means a client's cover packet: the provider discards it
	// and answers through the SURB after the same hold as any reply, so
	// that every packet a client sends brings a reply back, whatever it
	// carried (docs/client.md §5).
	Cover bool
}

// MixDeliver is a delivery through the mix network.
type MixDeliver struct {
	EnvelopeID [16]byte
	Token      [32]byte
	Data       []byte
}

// MaxMixEnvelope is the largest envelope a mix-network delivery carries
// with the default geometry: the Sphinx message less the request header
// and the SURB.
func MaxMixEnvelope(g mixnet.Geometry) int {
	return g.MessageSize() - 1 - g.SURBSize() - 16 - 32 - 2
}

// MarshalMixRequest encodes r as a Sphinx message for geometry g.
func MarshalMixRequest(g mixnet.Geometry, r *MixRequest) ([]byte, error) {
	kinds := 0
	for _, k := range []bool{r.Deliver != nil, r.Bundle, r.Cover} {
		if k {
			kinds++
		}
	}
	if len(r.SURB) != g.SURBSize() || kinds != 1 {
		return nil, fmt.Errorf("%w: a mix request needs a SURB and one of deliver, bundle or cover", ErrMalformed)
	}
	b := cryptobyte.NewFixedBuilder(make([]byte, 0, g.MessageSize()))
	switch {
	case r.Bundle:
		b.AddUint8(typeMixBundle)
		b.AddBytes(r.SURB)
	case r.Cover:
		b.AddUint8(typeMixCover)
		b.AddBytes(r.SURB)
	default:
		if len(r.Deliver.Data) > MaxMixEnvelope(g) {
			return nil, fmt.Errorf("%w: envelope of %d bytes, at most %d through the mix network", ErrMalformed, len(r.Deliver.Data), MaxMixEnvelope(g))
		}
		b.AddUint8(typeMixDeliver)
		b.AddBytes(r.SURB)
		b.AddBytes(r.Deliver.EnvelopeID[:])
		b.AddBytes(r.Deliver.Token[:])
		addBytes16(b, r.Deliver.Data)
	}
	msg, err := b.Bytes()
	if err != nil {
		return nil, fmt.Errorf("mailbox: mix request: %w", err)
	}
	return append(msg, make([]byte, g.MessageSize()-len(msg))...), nil
}

// ParseMixRequest decodes the Sphinx message a provider received. The rest
// of the message after the request must be zeros.
func ParseMixRequest(g mixnet.Geometry, msg []byte) (*MixRequest, error) {
	if len(msg) != g.MessageSize() {
		return nil, fmt.Errorf("%w: mix message of %d bytes", ErrMalformed, len(msg))
	}
	d := &dec{s: cryptobyte.String(msg[1:])}
	r := &MixRequest{SURB: make([]byte, g.SURBSize())}
	switch msg[0] {
	case typeMixBundle:
		d.fixed(r.SURB, "SURB")
		r.Bundle = true
	case typeMixCover:
		d.fixed(r.SURB, "SURB")
		r.Cover = true
	case typeMixDeliver:
		d.fixed(r.SURB, "SURB")
		md := &MixDeliver{}
		d.fixed(md.EnvelopeID[:], "envelope ID")
		d.fixed(md.Token[:], "token")
		md.Data = d.bytes16(MaxMixEnvelope(g), "envelope")
		r.Deliver = md
	default:
		return nil, fmt.Errorf("%w: unknown mix request type 0x%02x", ErrMalformed, msg[0])
	}
	if d.err != nil {
		return nil, d.err
	}
	if !d.zeros() {
		return nil, fmt.Errorf("%w: mix message padding not zero", ErrMalformed)
	}
	return r, nil
}

// MarshalReply encodes a reply (Status or BundleResponse) as a SURB reply
// message for geometry g.
func MarshalReply(g mixnet.Geometry, m Message) ([]byte, error) {
	b, err := marshal(m)
	if err != nil {
		return nil, err
	}
	if len(b) > g.MessageSize() {
		return nil, fmt.Errorf("mailbox: reply of %d bytes does not fit a packet", len(b))
	}
	msg := make([]byte, g.MessageSize())
	copy(msg, b)
	return msg, nil
}

// ParseReply decodes a SURB reply message (zero-padded) from a provider.
func ParseReply(msg []byte) (Message, error) {
	if len(msg) == 0 {
		return nil, fmt.Errorf("%w: empty reply", ErrMalformed)
	}
	// The reply is a Status or a BundleResponse followed by zeros: decode
	// the known prefix length of each, then require zeros.
	var n int
	switch msg[0] {
	case typeStatus:
		if len(msg) < 1+1+16+1 {
			return nil, fmt.Errorf("%w: short status", ErrMalformed)
		}
		n = 1 + 1 + 16 + 1 + int(msg[18])
	case typeStatusRetry:
		if len(msg) < 1+1+16+2+1 {
			return nil, fmt.Errorf("%w: short status", ErrMalformed)
		}
		n = 1 + 1 + 16 + 2 + 1 + int(msg[20])
	case typeBundleResp:
		if len(msg) < 3 {
			return nil, fmt.Errorf("%w: short bundle", ErrMalformed)
		}
		n = 3 + (int(msg[1])<<8 | int(msg[2]))
	default:
		return nil, fmt.Errorf("%w: unknown reply type 0x%02x", ErrMalformed, msg[0])
	}
	if n > len(msg) {
		return nil, fmt.Errorf("%w: truncated reply", ErrMalformed)
	}
	for _, z := range msg[n:] {
		if z != 0 {
			return nil, fmt.Errorf("%w: reply padding not zero", ErrMalformed)
		}
	}
	return Unmarshal(msg[:n])
}

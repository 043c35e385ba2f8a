package badger

import (
	"encoding/binary"
	"fmt"

	"github.com/sealnet/sealnet/mailbox/proto"
	"github.com/sealnet/sealnet/mailbox/store"
	"github.com/sealnet/sealnet/sender/seal"
)

// Keys and values of the store (docs/mailbox-storage.md). Every key starts
// with a type byte; every value starts with a format version byte, and its
// decoder accepts exactly the bytes its encoder writes (strict, canonical,
// never panics), each failure wrapping store.ErrCorrupt.
const (
	tagMeta        = 0x00 // 0x00 "sealnet mailbox store" -> format version
	tagAccount     = 0x01 // 0x01 mailbox -> account
	tagKeyIndex    = 0x02 // 0x02 identity X25519 key -> mailbox
	tagState       = 0x03 // 0x03 mailbox -> head, tail, byte counters
	tagEnvelope    = 0x04 // 0x04 mailbox seq(8) -> envelope record
	tagSeen        = 0x05 // 0x05 mailbox envelopeID(16) -> seen until
	tagPrekey      = 0x06 // 0x06 mailbox kind(1) id(4) -> prekey record
	tagUsed        = 0x07 // 0x07 mailbox kind(1) id(4) -> used marker
	tagPrekeyState = 0x08 // 0x08 mailbox -> one-time prekeys held
	tagPhantom     = 0x09 // 0x09 mailbox -> one-time prekeys handed out by its fake bundles

	recordVersion = 1
	metaName      = "sealnet mailbox store"
)

// Prekey kinds in keys.
const (
	prekeySigned     = 1
	prekeyLastResort = 2
	prekeyOneTime    = 3
	prekeyPQOneTime  = 4
)

// The decoders check the limits of records against seal.MaxAddress and
// the fixed limits of package store (MaxPrekeyData, MaxOneTimeHeld,
// MaxPQHeld): a format change if they ever change.

func mailboxKey(tag byte, mb *proto.MailboxID) []byte {
	k := make([]byte, 1+32)
	k[0] = tag
	copy(k[1:], mb[:])
	return k
}

func keyIndexKey(x25519 *[32]byte) []byte {
	k := make([]byte, 1+32)
	k[0] = tagKeyIndex
	copy(k[1:], x25519[:])
	return k
}

func envelopeKey(mb *proto.MailboxID, seq uint64) []byte {
	k := make([]byte, 1+32+8)
	k[0] = tagEnvelope
	copy(k[1:], mb[:])
	binary.BigEndian.PutUint64(k[33:], seq)
	return k
}

// envelopeSeq returns the sequence number of an envelope key of mb's
// prefix; ok is false for a key of any other shape.
func envelopeSeq(key []byte) (uint64, bool) {
	if len(key) != 1+32+8 || key[0] != tagEnvelope {
		return 0, false
	}
	return binary.BigEndian.Uint64(key[33:]), true
}

func seenKey(mb *proto.MailboxID, id *[16]byte) []byte {
	k := make([]byte, 1+32+16)
	k[0] = tagSeen
	copy(k[1:], mb[:])
	copy(k[33:], id[:])
	return k
}

// prekeyKey is the key of a prekey record (tag tagPrekey) or of a
// used marker (tag tagUsed). The signed and last-resort prekeys are
// stored under ID 0; their own ID is in the record.
func prekeyKey(tag byte, mb *proto.MailboxID, kind byte, id uint32) []byte {
	k := make([]byte, 1+32+1+4)
	k[0] = tag
	copy(k[1:], mb[:])
	k[33] = kind
	binary.BigEndian.PutUint32(k[34:], id)
	return k
}

// prekeyPrefix is the prefix of all of mb's prekeys of one kind.
func prekeyPrefix(mb *proto.MailboxID, kind byte) []byte {
	return prekeyKey(tagPrekey, mb, kind, 0)[:1+32+1]
}

// prekeyID returns the ID of a prekey key; ok is false for a key of
// any other shape.
func prekeyID(key []byte) (uint32, bool) {
	if len(key) != 1+32+1+4 || key[0] != tagPrekey {
		return 0, false
	}
	return binary.BigEndian.Uint32(key[34:]), true
}

func metaKey() []byte { return append([]byte{tagMeta}, metaName...) }

// reader reads a value strictly: each read checks the remaining length
// and the first failure sticks.
type reader struct {
	b    []byte
	what string
	err  error
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: %s: %s", store.ErrCorrupt, r.what, fmt.Sprintf(format, args...))
	}
}

func (r *reader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || len(r.b) < n {
		r.fail("truncated")
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) u8() byte {
	if v := r.take(1); v != nil {
		return v[0]
	}
	return 0
}

func (r *reader) u16() uint16 {
	if v := r.take(2); v != nil {
		return binary.BigEndian.Uint16(v)
	}
	return 0
}

func (r *reader) u32() uint32 {
	if v := r.take(4); v != nil {
		return binary.BigEndian.Uint32(v)
	}
	return 0
}

func (r *reader) u64() uint64 {
	if v := r.take(8); v != nil {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

func (r *reader) fixed(dst []byte) {
	if v := r.take(len(dst)); v != nil {
		copy(dst, v)
	}
}

// version reads and checks the format version byte.
func (r *reader) version() {
	if v := r.u8(); r.err == nil && v != recordVersion {
		r.fail("unknown format version %d", v)
	}
}

// done fails on trailing bytes and returns the first error.
func (r *reader) done() error {
	if r.err == nil && len(r.b) != 0 {
		r.fail("%d trailing bytes", len(r.b))
	}
	return r.err
}

// queueState is a mailbox's queue position. Envelopes with head < Seq <=
// tail are held; Seq <= head are acknowledged (or swept) and never
// returned again. Byte counters are cumulative: cumTail is the sum of the
// data lengths of every envelope ever stored, cumHead of those up to head,
// so the bytes held are cumTail - cumHead and an Ack needs to read only
// the record at its new head.
//
//	version (1) = 1 | head (8) | tail (8) | cumHead (8) | cumTail (8)
type queueState struct {
	head, tail       uint64
	cumHead, cumTail uint64
}

const stateSize = 1 + 4*8

func (st *queueState) count() uint64 { return st.tail - st.head }
func (st *queueState) bytes() uint64 { return st.cumTail - st.cumHead }

func (st *queueState) encode() []byte {
	b := make([]byte, 0, stateSize)
	b = append(b, recordVersion)
	b = binary.BigEndian.AppendUint64(b, st.head)
	b = binary.BigEndian.AppendUint64(b, st.tail)
	b = binary.BigEndian.AppendUint64(b, st.cumHead)
	return binary.BigEndian.AppendUint64(b, st.cumTail)
}

func decodeQueueState(b []byte) (queueState, error) {
	r := reader{b: b, what: "mailbox state"}
	r.version()
	st := queueState{head: r.u64(), tail: r.u64(), cumHead: r.u64(), cumTail: r.u64()}
	if err := r.done(); err != nil {
		return queueState{}, err
	}
	switch {
	case st.head > st.tail:
		r.fail("head %d beyond tail %d", st.head, st.tail)
	case st.cumHead > st.cumTail:
		r.fail("byte counters out of order")
	case st.count() < 1<<40 && st.bytes() > st.count()*proto.MaxEnvelopeData:
		r.fail("%d bytes in %d envelopes", st.bytes(), st.count())
	}
	return st, r.err
}

// envelopeRecord is an envelope record. expires is in hours since the Unix
// epoch (no finer time is kept); cum is the cumulative byte counter
// including this envelope (see queueState).
//
//	version (1) = 1 | kind (1) | ID (16) | expires hours (4) | cum (8) | length (2) | data
type envelopeRecord struct {
	kind    byte
	id      [16]byte
	expires uint32
	cum     uint64
	data    []byte
}

const envelopeHeader = 1 + 1 + 16 + 4 + 8 + 2

func (e *envelopeRecord) encode() []byte {
	b := make([]byte, 0, envelopeHeader+len(e.data))
	b = append(b, recordVersion, e.kind)
	b = append(b, e.id[:]...)
	b = binary.BigEndian.AppendUint32(b, e.expires)
	b = binary.BigEndian.AppendUint64(b, e.cum)
	b = binary.BigEndian.AppendUint16(b, uint16(len(e.data)))
	return append(b, e.data...)
}

// patchEnvelope sets the expiry and the cumulative counter of an
// encoded envelope record.
func patchEnvelope(b []byte, expires uint32, cum uint64) {
	binary.BigEndian.PutUint32(b[18:], expires)
	binary.BigEndian.PutUint64(b[22:], cum)
}

// decodeEnvelopeRecord decodes an envelope record; data aliases b.
func decodeEnvelopeRecord(b []byte) (envelopeRecord, error) {
	r := reader{b: b, what: "envelope record"}
	r.version()
	var e envelopeRecord
	e.kind = r.u8()
	r.fixed(e.id[:])
	e.expires = r.u32()
	e.cum = r.u64()
	n := int(r.u16())
	if r.err == nil && n > proto.MaxEnvelopeData {
		r.fail("%d data bytes", n)
	}
	e.data = r.take(n)
	if err := r.done(); err != nil {
		return envelopeRecord{}, err
	}
	if e.kind != proto.EnvelopeSealed && e.kind != proto.EnvelopeSURBReply {
		r.fail("unknown kind %d", e.kind)
	} else if e.cum < uint64(n) {
		r.fail("cumulative count below length")
	}
	return e, r.err
}

// Account record:
//
//	version (1) = 1 | flags (1: bit 0 = allow unsolicited) | address length (1) | address
//	| identity X25519 (32) | identity Ed25519 (32) | token hash (32)
func encodeAccount(a *store.Account) []byte {
	b := make([]byte, 0, 3+len(a.Address)+96)
	var flags byte
	if a.AllowUnsolicited {
		flags = 1
	}
	b = append(b, recordVersion, flags, byte(len(a.Address)))
	b = append(b, a.Address...)
	b = append(b, a.IdentityX25519[:]...)
	b = append(b, a.IdentityEd25519[:]...)
	return append(b, a.TokenHash[:]...)
}

func decodeAccount(b []byte) (store.Account, error) {
	r := reader{b: b, what: "account record"}
	r.version()
	flags := r.u8()
	n := int(r.u8())
	if r.err == nil && (n == 0 || n > seal.MaxAddress) {
		r.fail("address of %d bytes", n)
	}
	var a store.Account
	a.Address = string(r.take(n))
	r.fixed(a.IdentityX25519[:])
	r.fixed(a.IdentityEd25519[:])
	r.fixed(a.TokenHash[:])
	if err := r.done(); err != nil {
		return store.Account{}, err
	}
	if flags > 1 {
		r.fail("unknown flags %#x", flags)
	}
	a.AllowUnsolicited = flags == 1
	return a, r.err
}

// Prekey record (signed, last-resort and one-time prekeys alike):
//
//	version (1) = 1 | ID (4) | length (2) | data (1..2048)
func encodePrekey(p *proto.Prekey) []byte {
	b := make([]byte, 0, 7+len(p.Data))
	b = append(b, recordVersion)
	b = binary.BigEndian.AppendUint32(b, p.ID)
	b = binary.BigEndian.AppendUint16(b, uint16(len(p.Data)))
	return append(b, p.Data...)
}

// decodePrekey decodes a prekey record; Data aliases b.
func decodePrekey(b []byte) (proto.Prekey, error) {
	r := reader{b: b, what: "prekey record"}
	r.version()
	var p proto.Prekey
	p.ID = r.u32()
	n := int(r.u16())
	if r.err == nil && (n == 0 || n > store.MaxPrekeyData) {
		r.fail("%d data bytes", n)
	}
	p.Data = r.take(n)
	if err := r.done(); err != nil {
		return proto.Prekey{}, err
	}
	return p, nil
}

// prekeyState counts the one-time prekeys a mailbox holds (uploaded,
// not handed out). It is written at registration, so its presence also
// says the mailbox exists.
//
//	version (1) = 1 | one-time held (2) | post-quantum one-time held (2)
type prekeyState struct{ oneTime, pqOneTime uint16 }

func (ps *prekeyState) encode() []byte {
	b := []byte{recordVersion}
	b = binary.BigEndian.AppendUint16(b, ps.oneTime)
	return binary.BigEndian.AppendUint16(b, ps.pqOneTime)
}

func decodePrekeyState(b []byte) (prekeyState, error) {
	r := reader{b: b, what: "prekey state"}
	r.version()
	ps := prekeyState{oneTime: r.u16(), pqOneTime: r.u16()}
	if err := r.done(); err != nil {
		return prekeyState{}, err
	}
	if ps.oneTime > store.MaxOneTimeHeld || ps.pqOneTime > store.MaxPQHeld {
		r.fail("%d and %d one-time prekeys held", ps.oneTime, ps.pqOneTime)
	}
	return ps, r.err
}

// Envelope-ID index entry: the envelope ID counts as seen (a redelivery is
// a Duplicate) while the clock is before this hour.
//
//	version (1) = 1 | seen until, hours since the Unix epoch (4)
func encodeSeen(until uint32) []byte {
	return binary.BigEndian.AppendUint32([]byte{recordVersion}, until)
}

func decodeSeen(b []byte) (uint32, error) {
	r := reader{b: b, what: "envelope index entry"}
	r.version()
	until := r.u32()
	return until, r.done()
}

// Key index entry (identity X25519 key -> mailbox):
//
//	version (1) = 1 | mailbox (32)
func encodeKeyIndex(mb *proto.MailboxID) []byte {
	return append([]byte{recordVersion}, mb[:]...)
}

func decodeKeyIndex(b []byte) (proto.MailboxID, error) {
	r := reader{b: b, what: "key index entry"}
	r.version()
	var mb proto.MailboxID
	r.fixed(mb[:])
	return mb, r.done()
}

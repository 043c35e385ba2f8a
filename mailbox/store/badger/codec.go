package badger

import (
	"encoding/binary"
	"fmt"

	"golang.org/x/crypto/cryptobyte"

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

// The decoders read with cryptobyte.String, inline (no callback: a
// closure would move their variables to the heap on paths every delivery
// and fetch takes). Each reports the first failure, in field order, as
// corrupt(record, ...).

// corrupt is the error for a record of kind what that does not decode.
func corrupt(what, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", store.ErrCorrupt, what, fmt.Sprintf(format, args...))
}

// readVersion reads and checks a record's format version byte. A new
// format version would be a switch on it in the record's decoder.
func readVersion(s *cryptobyte.String, what string) error {
	var v uint8
	switch {
	case !s.ReadUint8(&v):
		return corrupt(what, "truncated")
	case v != recordVersion:
		return corrupt(what, "unknown format version %d", v)
	}
	return nil
}

// readDone is the verdict on a record read inline: ok is whether every
// read succeeded, rest what is left of the input (refused if any).
func readDone(ok bool, rest cryptobyte.String, what string) error {
	if !ok {
		return corrupt(what, "truncated")
	}
	if !rest.Empty() {
		return corrupt(what, "%d trailing bytes", len(rest))
	}
	return nil
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
	const what = "mailbox state"
	s := cryptobyte.String(b)
	if err := readVersion(&s, what); err != nil {
		return queueState{}, err
	}
	var st queueState
	ok := s.ReadUint64(&st.head) && s.ReadUint64(&st.tail) && s.ReadUint64(&st.cumHead) && s.ReadUint64(&st.cumTail)
	if err := readDone(ok, s, what); err != nil {
		return queueState{}, err
	}
	switch {
	case st.head > st.tail:
		return st, corrupt(what, "head %d beyond tail %d", st.head, st.tail)
	case st.cumHead > st.cumTail:
		return st, corrupt(what, "byte counters out of order")
	case st.count() < 1<<40 && st.bytes() > st.count()*proto.MaxEnvelopeData:
		return st, corrupt(what, "%d bytes in %d envelopes", st.bytes(), st.count())
	}
	return st, nil
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
	const what = "envelope record"
	s := cryptobyte.String(b)
	if err := readVersion(&s, what); err != nil {
		return envelopeRecord{}, err
	}
	var e envelopeRecord
	var n uint16
	if !s.ReadUint8(&e.kind) || !s.CopyBytes(e.id[:]) || !s.ReadUint32(&e.expires) || !s.ReadUint64(&e.cum) || !s.ReadUint16(&n) {
		return envelopeRecord{}, corrupt(what, "truncated")
	}
	// The length is checked before the data is read, so an oversized one
	// is named as such even when the record is short.
	if n > proto.MaxEnvelopeData {
		return envelopeRecord{}, corrupt(what, "%d data bytes", n)
	}
	if err := readDone(s.ReadBytes(&e.data, int(n)), s, what); err != nil {
		return envelopeRecord{}, err
	}
	if e.kind != proto.EnvelopeSealed && e.kind != proto.EnvelopeSURBReply {
		return e, corrupt(what, "unknown kind %d", e.kind)
	} else if e.cum < uint64(n) {
		return e, corrupt(what, "cumulative count below length")
	}
	return e, nil
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
	const what = "account record"
	s := cryptobyte.String(b)
	if err := readVersion(&s, what); err != nil {
		return store.Account{}, err
	}
	var flags, n uint8
	if !s.ReadUint8(&flags) || !s.ReadUint8(&n) {
		return store.Account{}, corrupt(what, "truncated")
	}
	if n == 0 || n > seal.MaxAddress {
		return store.Account{}, corrupt(what, "address of %d bytes", n)
	}
	var a store.Account
	var addr []byte
	ok := s.ReadBytes(&addr, int(n)) &&
		s.CopyBytes(a.IdentityX25519[:]) && s.CopyBytes(a.IdentityEd25519[:]) && s.CopyBytes(a.TokenHash[:])
	if err := readDone(ok, s, what); err != nil {
		return store.Account{}, err
	}
	a.Address = string(addr)
	a.AllowUnsolicited = flags == 1
	if flags > 1 {
		return a, corrupt(what, "unknown flags %#x", flags)
	}
	return a, nil
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
	const what = "prekey record"
	s := cryptobyte.String(b)
	if err := readVersion(&s, what); err != nil {
		return proto.Prekey{}, err
	}
	var p proto.Prekey
	var n uint16
	if !s.ReadUint32(&p.ID) || !s.ReadUint16(&n) {
		return proto.Prekey{}, corrupt(what, "truncated")
	}
	if n == 0 || n > store.MaxPrekeyData {
		return proto.Prekey{}, corrupt(what, "%d data bytes", n)
	}
	if err := readDone(s.ReadBytes(&p.Data, int(n)), s, what); err != nil {
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
	const what = "prekey state"
	s := cryptobyte.String(b)
	if err := readVersion(&s, what); err != nil {
		return prekeyState{}, err
	}
	var ps prekeyState
	if err := readDone(s.ReadUint16(&ps.oneTime) && s.ReadUint16(&ps.pqOneTime), s, what); err != nil {
		return prekeyState{}, err
	}
	if ps.oneTime > store.MaxOneTimeHeld || ps.pqOneTime > store.MaxPQHeld {
		return ps, corrupt(what, "%d and %d one-time prekeys held", ps.oneTime, ps.pqOneTime)
	}
	return ps, nil
}

// Envelope-ID index entry: the envelope ID counts as seen (a redelivery is
// a Duplicate) while the clock is before this hour.
//
//	version (1) = 1 | seen until, hours since the Unix epoch (4)
func encodeSeen(until uint32) []byte {
	return binary.BigEndian.AppendUint32([]byte{recordVersion}, until)
}

func decodeSeen(b []byte) (uint32, error) {
	const what = "envelope index entry"
	s := cryptobyte.String(b)
	if err := readVersion(&s, what); err != nil {
		return 0, err
	}
	var until uint32
	return until, readDone(s.ReadUint32(&until), s, what)
}

// Key index entry (identity X25519 key -> mailbox):
//
//	version (1) = 1 | mailbox (32)
func encodeKeyIndex(mb *proto.MailboxID) []byte {
	return append([]byte{recordVersion}, mb[:]...)
}

func decodeKeyIndex(b []byte) (proto.MailboxID, error) {
	const what = "key index entry"
	s := cryptobyte.String(b)
	var mb proto.MailboxID
	if err := readVersion(&s, what); err != nil {
		return mb, err
	}
	return mb, readDone(s.CopyBytes(mb[:]), s, what)
}

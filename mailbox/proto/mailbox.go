package proto

import (
	"crypto/sha256"
	"strings"
	"time"

	"golang.org/x/crypto/cryptobyte"
)

// MailboxID names a mailbox; it is what the Sphinx Deliver command carries
// (mixnet.RecipientID).
type MailboxID [32]byte

// MailboxOf returns SHA-256("sealnet mailbox v1\x00" || strings.ToLower(address)).
func MailboxOf(address string) MailboxID {
	h := sha256.New()
	h.Write([]byte("sealnet mailbox v1\x00"))
	h.Write([]byte(strings.ToLower(address)))
	return MailboxID(h.Sum(nil))
}

// Envelope kinds.
const (
	EnvelopeSealed    byte = 1
	EnvelopeSURBReply byte = 2
)

// MaxEnvelopeData bounds the data of one envelope.
const MaxEnvelopeData = 2048

// Record is a stored envelope as a page carries it.
type Record struct {
	Seq     uint64
	Kind    byte
	ID      [16]byte
	Expires time.Time // on an hour boundary
	Data    []byte
}

// Prekey is an opaque signed prekey blob with a client-chosen ID; the
// service verifies signatures before upload.
type Prekey struct {
	ID   uint32
	Data []byte // 1..2048 bytes
}

// PrekeyUpload is one atomic prekey upload.
type PrekeyUpload struct {
	Signed     *Prekey  // replaces the signed prekey
	LastResort *Prekey  // replaces the post-quantum last-resort prekey
	OneTime    []Prekey // classical one-time prekeys to add (≤ 1000 per upload, ≤ 1000 held)
	PQOneTime  []Prekey // post-quantum one-time prekeys to add (≤ 200 per upload, ≤ 200 held)
}

// RegistrationMessage is what a user signs with its Ed25519 identity key
// to register address with the two identity keys. (An address is at most
// seal.MaxAddress bytes; its length byte is taken modulo 256, as it always
// was, so that this never fails.)
func RegistrationMessage(address string, x25519, ed [32]byte) []byte {
	b := cryptobyte.NewBuilder(nil)
	b.AddBytes([]byte("sealnet register v1\x00"))
	b.AddUint8(byte(len(address)))
	b.AddBytes([]byte(address))
	b.AddBytes(x25519[:])
	b.AddBytes(ed[:])
	return b.BytesOrPanic()
}

package proto

import (
	"errors"
	"fmt"

	"golang.org/x/crypto/cryptobyte"
)

// ErrMalformed is returned for a protocol message that does not decode:
// wrong type, truncated, trailing bytes, a length over its maximum, or a
// field out of range.
var ErrMalformed = errors.New("mailbox: malformed message")

// Encoding: every message is written with a cryptobyte.Builder. A field
// longer than its length prefix holds sets the builder's error, so that
// such a message is refused rather than sent with a wrong length.

// addBytes16 appends a u16-length-prefixed field.
func addBytes16(b *cryptobyte.Builder, v []byte) {
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(v) })
}

// addStr8 appends a u8-length-prefixed string.
func addStr8(b *cryptobyte.Builder, s string) {
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(s)) })
}

func b2u(b bool) byte {
	if b {
		return 1
	}
	return 0
}

// dec reads fields from a cryptobyte.String strictly, with a sticky error
// that names the first field that failed: after it every read returns a
// zero value, and done fails on trailing bytes.
type dec struct {
	s   cryptobyte.String
	err error
}

func (d *dec) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", ErrMalformed, what)
	}
}

// ok records a failed read of what as a truncation.
func (d *dec) ok(read bool, what string) bool {
	if !read {
		d.fail(what + " truncated")
		d.s = nil
	}
	return read
}

func (d *dec) u8(what string) (v uint8) {
	if d.err == nil {
		d.ok(d.s.ReadUint8(&v), what)
	}
	return v
}

func (d *dec) u16(what string) (v uint16) {
	if d.err == nil {
		d.ok(d.s.ReadUint16(&v), what)
	}
	return v
}

func (d *dec) u32(what string) (v uint32) {
	if d.err == nil {
		d.ok(d.s.ReadUint32(&v), what)
	}
	return v
}

func (d *dec) u64(what string) (v uint64) {
	if d.err == nil {
		d.ok(d.s.ReadUint64(&v), what)
	}
	return v
}

// fixed copies exactly len(dst) bytes.
func (d *dec) fixed(dst []byte, what string) {
	if d.err == nil {
		d.ok(d.s.CopyBytes(dst), what)
	}
}

// take returns the next n bytes (not a copy), or nil.
func (d *dec) take(n int, what string) []byte {
	var v []byte
	if d.err == nil && d.ok(d.s.ReadBytes(&v, n), what) {
		return v
	}
	return nil
}

func (d *dec) str8(max int, what string) string {
	var v cryptobyte.String
	if d.err != nil || !d.ok(d.s.ReadUint8LengthPrefixed(&v), what) {
		return ""
	}
	if len(v) > max {
		d.fail(what + " too long")
		return ""
	}
	return string(v)
}

// bytes16 returns a copy of a u16-length field of at most max bytes.
func (d *dec) bytes16(max int, what string) []byte {
	if d.err != nil {
		return nil
	}
	// The length is checked against max before the data, so that an
	// oversized field is reported as such even when it is also truncated.
	var n uint16
	if !d.ok(d.s.ReadUint16(&n), what) {
		return nil
	}
	if int(n) > max {
		d.fail(fmt.Sprintf("%s of %d bytes, at most %d", what, n, max))
		return nil
	}
	v := d.take(int(n), what)
	if v == nil {
		return nil
	}
	return append([]byte(nil), v...)
}

func (d *dec) bool(what string) bool {
	switch d.u8(what) {
	case 0:
		return false
	case 1:
		return true
	}
	d.fail(what + " is not 0 or 1")
	return false
}

// zeros reports whether what is left is all zeros.
func (d *dec) zeros() bool {
	for _, c := range d.s {
		if c != 0 {
			return false
		}
	}
	return true
}

// done reports the first error, or trailing bytes.
func (d *dec) done() error {
	if d.err == nil && !d.s.Empty() {
		d.fail(fmt.Sprintf("%d trailing bytes", len(d.s)))
	}
	return d.err
}

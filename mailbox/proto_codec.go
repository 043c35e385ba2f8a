package mailbox

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrMalformed is returned for a protocol message, certificate or bundle
// that does not decode: wrong type, truncated, trailing bytes, a length
// over its maximum, or a field out of range.
var ErrMalformed = errors.New("mailbox: malformed message")

// enc appends fields to a message.
type enc struct{ b []byte }

func (e *enc) u8(v byte)        { e.b = append(e.b, v) }
func (e *enc) u16(v uint16)     { e.b = binary.BigEndian.AppendUint16(e.b, v) }
func (e *enc) u32(v uint32)     { e.b = binary.BigEndian.AppendUint32(e.b, v) }
func (e *enc) u64(v uint64)     { e.b = binary.BigEndian.AppendUint64(e.b, v) }
func (e *enc) fixed(v []byte)   { e.b = append(e.b, v...) }
func (e *enc) str8(s string)    { e.u8(byte(len(s))); e.b = append(e.b, s...) }
func (e *enc) bytes16(v []byte) { e.u16(uint16(len(v))); e.b = append(e.b, v...) }

// dec reads fields strictly: every read checks the remaining length, and
// done fails on trailing bytes.
type dec struct {
	b   []byte
	err error
}

func (d *dec) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", ErrMalformed, what)
	}
}

func (d *dec) take(n int, what string) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || len(d.b) < n {
		d.fail(what + " truncated")
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *dec) u8(what string) byte {
	if v := d.take(1, what); v != nil {
		return v[0]
	}
	return 0
}

func (d *dec) u16(what string) uint16 {
	if v := d.take(2, what); v != nil {
		return binary.BigEndian.Uint16(v)
	}
	return 0
}

func (d *dec) u32(what string) uint32 {
	if v := d.take(4, what); v != nil {
		return binary.BigEndian.Uint32(v)
	}
	return 0
}

func (d *dec) u64(what string) uint64 {
	if v := d.take(8, what); v != nil {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

// fixed copies exactly len(dst) bytes.
func (d *dec) fixed(dst []byte, what string) {
	if v := d.take(len(dst), what); v != nil {
		copy(dst, v)
	}
}

func (d *dec) str8(max int, what string) string {
	n := int(d.u8(what))
	if n > max {
		d.fail(what + " too long")
		return ""
	}
	return string(d.take(n, what))
}

// bytes16 returns a copy of a u16-length field of at most max bytes.
func (d *dec) bytes16(max int, what string) []byte {
	n := int(d.u16(what))
	if n > max {
		d.fail(fmt.Sprintf("%s of %d bytes, at most %d", what, n, max))
		return nil
	}
	v := d.take(n, what)
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

// done reports the first error, or trailing bytes.
func (d *dec) done() error {
	if d.err == nil && len(d.b) != 0 {
		d.fail(fmt.Sprintf("%d trailing bytes", len(d.b)))
	}
	return d.err
}

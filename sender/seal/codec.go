package seal

import (
	"encoding/binary"
	"fmt"
)

// enc appends big-endian fields.
type enc struct{ b []byte }

func (e *enc) u8(v byte)        { e.b = append(e.b, v) }
func (e *enc) u16(v uint16)     { e.b = binary.BigEndian.AppendUint16(e.b, v) }
func (e *enc) u32(v uint32)     { e.b = binary.BigEndian.AppendUint32(e.b, v) }
func (e *enc) fixed(v []byte)   { e.b = append(e.b, v...) }
func (e *enc) bool(v bool)      { e.u8(boolByte(v)) }
func (e *enc) bytes16(v []byte) { e.u16(uint16(len(v))); e.fixed(v) }

func boolByte(v bool) byte {
	if v {
		return 1
	}
	return 0
}

// dec reads big-endian fields with a sticky error: after the first
// failure every read returns zero values, so decoders check once at the
// end. It never allocates more than the input holds.
type dec struct {
	b   []byte
	err error
}

func (d *dec) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s truncated", ErrMalformed, what)
	}
}

func (d *dec) take(n int, what string) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || len(d.b) < n {
		d.fail(what)
		d.b = nil
		return nil
	}
	v := d.b[:n:n]
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

func (d *dec) fixed(dst []byte, what string) {
	if v := d.take(len(dst), what); v != nil {
		copy(dst, v)
	}
}

// bool reads a byte that must be 0 or 1.
func (d *dec) bool(what string) bool {
	v := d.u8(what)
	if v > 1 && d.err == nil {
		d.err = fmt.Errorf("%w: %s is %d, not 0 or 1", ErrMalformed, what, v)
	}
	return v == 1
}

// bytes16 reads a 2-byte length, refusing one above max before using it,
// and returns that many bytes (aliasing the input).
func (d *dec) bytes16(max int, what string) []byte {
	n := int(d.u16(what + " length"))
	if d.err == nil && n > max {
		d.err = fmt.Errorf("%w: %s of %d bytes, at most %d", ErrMalformed, what, n, max)
	}
	return d.take(n, what)
}

// rest returns everything left.
func (d *dec) rest() []byte {
	if d.err != nil {
		return nil
	}
	v := d.b
	d.b = nil
	return v
}

// done reports the first error, or trailing bytes.
func (d *dec) done() error {
	if d.err != nil {
		return d.err
	}
	if len(d.b) != 0 {
		return fmt.Errorf("%w: %d trailing bytes", ErrMalformed, len(d.b))
	}
	return nil
}

// invalid records a semantic error found by the caller.
func (d *dec) invalid(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
	}
}

package seal

import (
	"bytes"
	"errors"
	"testing"

	"github.com/sealnet/sealnet/internal/testkit/fuzzcheck"
)

// The seed corpora under testdata/fuzz are written by
// internal/cmd/testdatagen (make testdata); its test fails if they are
// stale. FuzzOpenFragment's
// seeds include real fragments for fuzzIdentity().

// FuzzParseSessionMessage: a sentinel error, or a message that re-encodes
// to exactly the input, with the fields where the format puts them.
func FuzzParseSessionMessage(f *testing.F) {
	fuzzcheck.RequireCorpus(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseMessage(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("error without its sentinel: %v", err)
			}
			return
		}
		if again := m.marshal(); !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs:\n got %x\nwant %x", again, b)
		}
		want := followUpHeaderSize
		if m.initial {
			want = initialHeaderSize
		}
		if m.v1 {
			want -= saltSize
		}
		if len(m.header) != want || len(m.ciphertext) < tagSize || !bytes.Equal(m.header, b[:want]) || m.n == maxN {
			t.Fatalf("header of %d bytes, ciphertext %d, n %d", len(m.header), len(m.ciphertext), m.n)
		}
	})
}

// FuzzParseInner: a sentinel error, or a certificate and session message
// that re-encode to exactly the input; and Open, with no sessions and no
// prekeys, never returns a plaintext.
func FuzzParseInner(f *testing.F) {
	fuzzcheck.RequireCorpus(f)
	me := fuzzIdentity()
	verify := func(b []byte) (*Certificate, error) { return ParseCertificate(b) }
	f.Fuzz(func(t *testing.T, b []byte) {
		cert, msg, err := parseInner(b)
		if err == nil {
			if len(cert) == 0 || len(cert) > MaxCertificate || len(msg) == 0 {
				t.Fatalf("certificate of %d bytes, message of %d", len(cert), len(msg))
			}
			if again := appendInner(nil, cert, msg); !bytes.Equal(again, b) {
				t.Fatal("re-encoding differs")
			}
		} else if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTooLarge) {
			t.Fatalf("error without its sentinel: %v", err)
		}
		o, err := Open(me, newPrekeyStore(), noSessions, verify, b)
		if err == nil {
			t.Fatalf("opened %q without any key", o.Plaintext)
		}
		requireSentinel(t, err)
	})
}

// FuzzUnmarshalSession: a sentinel error, or a session that re-encodes to
// exactly the input and can seal its next message in the right form.
func FuzzUnmarshalSession(f *testing.F) {
	fuzzcheck.RequireCorpus(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := UnmarshalSession(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error without its sentinel: %v", err)
			}
			return
		}
		again, err := s.MarshalBinary()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs: %v", err)
		}
		n := s.st.sendN
		msg, err := s.Seal(sealRand, []byte("x"))
		if n == maxN {
			if !errors.Is(err, ErrTooLarge) {
				t.Fatalf("used-up session sealed: %v", err)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		m, err := parseMessage(msg)
		if err != nil {
			t.Fatalf("sealed an unparseable message: %v", err)
		}
		if m.sessionID != s.ID() || m.n != n || m.v1 || m.initial != (s.role == Initiator && s.st.recvN == 0) {
			t.Fatalf("sealed message %d (initial %v) of session %x", m.n, m.initial, m.sessionID)
		}
		if m.initial && m.sender != s.Self() {
			t.Fatal("initial message names another sender")
		}
	})
}

// FuzzOpenFragment: for the fixed test identity, a sentinel error, or a
// fragment within range whose plaintext re-encodes exactly, and which no
// longer opens with any byte changed.
func FuzzOpenFragment(f *testing.F) {
	fuzzcheck.RequireCorpus(f)
	me := fuzzIdentity()
	f.Fuzz(func(t *testing.T, blob []byte) {
		fr, err := OpenFragment(me, blob)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrAuth) {
				t.Fatalf("error without its sentinel: %v", err)
			}
			return
		}
		if fr.Count < 1 || fr.Count > MaxFragments || fr.Index < 0 || fr.Index >= fr.Count ||
			len(fr.Chunk) == 0 || len(fr.Chunk) > len(blob)-FragmentOverhead {
			t.Fatalf("fragment %d/%d with a chunk of %d bytes", fr.Index, fr.Count, len(fr.Chunk))
		}
		pt, err := openFragment(me, blob)
		if err != nil || !bytes.Equal(marshalFragment(fr, len(blob)), pt) {
			t.Fatal("fragment plaintext does not re-encode")
		}
		for _, i := range []int{0, 31, 32, len(blob) / 2, len(blob) - 1} {
			c := bytes.Clone(blob)
			c[i] ^= 0x80
			if _, err := OpenFragment(me, c); !errors.Is(err, ErrAuth) {
				t.Fatalf("byte %d changed: %v", i, err)
			}
		}
	})
}

// FuzzReassembler runs a sequence of fragments through a small
// Reassembler. The input is a list of (message ID byte, index, count,
// chunk length, chunk) records. Invariants: the limits hold after every
// step; a refused fragment changes nothing; a completed message is the
// concatenation, in index order, of the last accepted chunk of each of
// its indices.
func FuzzReassembler(f *testing.F) {
	fuzzcheck.RequireCorpus(f)
	const maxMessages, maxHeld = 4, 1024
	f.Fuzz(func(t *testing.T, ops []byte) {
		r := NewReassemblerLimits(maxMessages, maxHeld)
		type key struct {
			id    byte
			index int
		}
		last := map[key][]byte{}
		for len(ops) >= 4 {
			id, index, count, n := ops[0], int(ops[1]), int(ops[2]), int(ops[3])
			ops = ops[4:]
			if n > len(ops) {
				n = len(ops)
			}
			fr := frag(id, index, count, bytes.Clone(ops[:n]))
			ops = ops[n:]
			m0, h0, d0 := r.Stats()
			inner, complete, err := r.Add(fr)
			m1, h1, d1 := r.Stats()
			if m1 > maxMessages || h1 > maxHeld || h1 < 0 {
				t.Fatalf("%d messages, %d bytes held", m1, h1)
			}
			inRange := count >= 1 && count <= MaxFragments && index < count && n > 0
			if err != nil {
				requireSentinel(t, err)
				if !inRange && !errors.Is(err, ErrMalformed) {
					t.Fatalf("out-of-range fragment refused with %v", err)
				}
				if m0 != m1 || h0 != h1 || d0 != d1 {
					t.Fatal("a refused fragment changed the state")
				}
				continue
			}
			if !inRange {
				t.Fatalf("accepted fragment %d/%d with %d bytes", index, count, n)
			}
			last[key{id, index}] = fr.Chunk
			if !complete {
				continue
			}
			var want []byte
			for i := range count {
				want = append(want, last[key{id, i}]...)
			}
			if !bytes.Equal(inner, want) {
				t.Fatalf("message %d: got %x, want %x", id, inner, want)
			}
		}
	})
}

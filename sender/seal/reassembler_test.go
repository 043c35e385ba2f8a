package seal

import (
	"bytes"
	"errors"
	"testing"
)

func frag(id byte, index, count int, chunk []byte) *Fragment {
	return &Fragment{MessageID: [16]byte{id}, Index: index, Count: count, Chunk: chunk}
}

func mustAdd(t *testing.T, r *Reassembler, f *Fragment) ([]byte, bool) {
	t.Helper()
	inner, complete, err := r.Add(f)
	if err != nil {
		t.Fatal(err)
	}
	return inner, complete
}

// TestReassemblerOrder: chunks are joined by index whatever the order of
// arrival; a one-fragment message completes at once.
func TestReassemblerOrder(t *testing.T) {
	r := NewReassembler()
	mustAdd(t, r, frag(1, 2, 3, []byte("c")))
	mustAdd(t, r, frag(1, 0, 3, []byte("aa")))
	inner, complete := mustAdd(t, r, frag(1, 1, 3, []byte("bbb")))
	if !complete || string(inner) != "aabbbc" {
		t.Fatalf("got %q, %v", inner, complete)
	}
	if inner, complete := mustAdd(t, r, frag(2, 0, 1, []byte("x"))); !complete || string(inner) != "x" {
		t.Fatal("one-fragment message")
	}
	if n, held, _ := r.Stats(); n != 0 || held != 0 {
		t.Fatalf("%d incomplete, %d bytes held after completion", n, held)
	}
}

// TestReassemblerDuplicates: a fragment held already, and any fragment of
// a message completed recently, are ErrDuplicate and change nothing.
func TestReassemblerDuplicates(t *testing.T) {
	r := NewReassembler()
	mustAdd(t, r, frag(1, 0, 2, []byte("a")))
	if _, _, err := r.Add(frag(1, 0, 2, []byte("other"))); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("same index twice: %v", err)
	}
	if n, held, _ := r.Stats(); n != 1 || held != 1 {
		t.Fatalf("state changed: %d, %d", n, held)
	}
	inner, complete := mustAdd(t, r, frag(1, 1, 2, []byte("b")))
	if !complete || string(inner) != "ab" {
		t.Fatal("the first copy of index 0 was not kept")
	}
	for i := range 2 {
		if _, _, err := r.Add(frag(1, i, 2, []byte("a"))); !errors.Is(err, ErrDuplicate) {
			t.Fatalf("fragment %d after completion: %v", i, err)
		}
	}
	mustAdd(t, r, frag(3, 0, 1, []byte("x")))
	if _, _, err := r.Add(frag(3, 0, 1, []byte("x"))); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("one-fragment message twice: %v", err)
	}
	if n, held, _ := r.Stats(); n != 0 || held != 0 {
		t.Fatal("duplicates after completion were kept")
	}
}

// TestReassemblerInconsistentCount: a fragment whose count disagrees with
// its message's earlier fragments is refused; the message still completes
// with consistent ones.
func TestReassemblerInconsistentCount(t *testing.T) {
	r := NewReassembler()
	mustAdd(t, r, frag(1, 0, 3, []byte("a")))
	if _, _, err := r.Add(frag(1, 1, 2, []byte("b"))); !errors.Is(err, ErrMalformed) {
		t.Fatalf("count 2 after count 3: %v", err)
	}
	if _, _, err := r.Add(frag(1, 1, 1, []byte("b"))); !errors.Is(err, ErrMalformed) {
		t.Fatalf("count 1 after count 3: %v", err)
	}
	mustAdd(t, r, frag(1, 1, 3, []byte("b")))
	if inner, complete := mustAdd(t, r, frag(1, 2, 3, []byte("c"))); !complete || string(inner) != "abc" {
		t.Fatal("message with a refused inconsistent fragment did not complete")
	}
}

// TestReassemblerRange: fragments out of range are refused.
func TestReassemblerRange(t *testing.T) {
	r := NewReassembler()
	for name, f := range map[string]*Fragment{
		"nil":         nil,
		"count 0":     frag(1, 0, 0, []byte("a")),
		"count 65":    frag(1, 0, 65, []byte("a")),
		"index count": frag(1, 2, 2, []byte("a")),
		"index -1":    frag(1, -1, 2, []byte("a")),
		"empty chunk": frag(1, 0, 2, nil),
		"huge chunk":  frag(1, 0, 2, make([]byte, MaxChunk+1)),
	} {
		if _, _, err := r.Add(f); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
	small := NewReassemblerLimits(1, 10)
	if _, _, err := small.Add(frag(1, 0, 2, make([]byte, 11))); !errors.Is(err, ErrTooLarge) {
		t.Errorf("chunk beyond the memory limit: %v", err)
	}
}

// TestReassemblerCountBound: at most 256 incomplete messages by default;
// the 257th drops the one that started first.
func TestReassemblerCountBound(t *testing.T) {
	r := NewReassembler()
	for i := range DefaultMaxIncomplete + 1 {
		f := frag(0, 0, 2, []byte{byte(i)})
		f.MessageID[1] = byte(i >> 8)
		f.MessageID[2] = byte(i)
		mustAdd(t, r, f)
		if n, _, _ := r.Stats(); n > DefaultMaxIncomplete {
			t.Fatalf("%d incomplete messages held", n)
		}
	}
	if n, held, dropped := r.Stats(); n != DefaultMaxIncomplete || held != DefaultMaxIncomplete || dropped != 1 {
		t.Fatalf("%d messages, %d bytes, %d dropped", n, held, dropped)
	}
	// Message 1 is intact and completes; message 0 was dropped, so its
	// second fragment starts it over.
	f := frag(0, 1, 2, []byte("y"))
	f.MessageID[2] = 1
	if inner, complete := mustAdd(t, r, f); !complete || !bytes.Equal(inner, []byte{1, 'y'}) {
		t.Fatal("message 1 was dropped instead of message 0")
	}
	if _, complete := mustAdd(t, r, frag(0, 1, 2, []byte("z"))); complete {
		t.Fatal("dropped message completed")
	}
}

// TestReassemblerMemoryBound: never more than 8 MiB of chunks by default;
// the oldest messages go first, and a message never pushes itself out
// while others are there.
func TestReassemblerMemoryBound(t *testing.T) {
	r := NewReassembler()
	chunk := make([]byte, MaxChunk)
	perMessage := (MaxFragments - 1) * MaxChunk
	messages := DefaultMaxHeld/perMessage + 2
	for m := range messages {
		for i := range MaxFragments - 1 { // never complete
			mustAdd(t, r, frag(byte(m), i, MaxFragments, chunk))
			if _, held, _ := r.Stats(); held > DefaultMaxHeld {
				t.Fatalf("%d bytes held", held)
			}
		}
	}
	n, held, dropped := r.Stats()
	if dropped < 2 || n != messages-dropped || held != n*perMessage {
		t.Fatalf("%d messages, %d bytes, %d dropped", n, held, dropped)
	}
	// The newest message is complete-able: it was not the one dropped.
	if _, complete := mustAdd(t, r, frag(byte(messages-1), MaxFragments-1, MaxFragments, chunk)); !complete {
		t.Fatal("newest message was dropped")
	}
	// The oldest is gone.
	if _, complete := mustAdd(t, r, frag(0, MaxFragments-1, MaxFragments, chunk)); complete {
		t.Fatal("oldest message was kept")
	}
	// A limit smaller than one message: the message starts over.
	tiny := NewReassemblerLimits(4, 3)
	mustAdd(t, tiny, frag(9, 0, 3, []byte("aa")))
	mustAdd(t, tiny, frag(9, 1, 3, []byte("bb")))
	if n, held, dropped := tiny.Stats(); n != 1 || held != 2 || dropped != 1 {
		t.Fatalf("tiny: %d messages, %d bytes, %d dropped", n, held, dropped)
	}
}

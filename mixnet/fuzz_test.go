package mixnet

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"testing"

	"github.com/sealnet/sealnet/internal/testkit/fuzzcheck"
)

// FuzzKeySeed derives the mix key the FuzzUnwrap corpus is built for; the
// generator in internal/cmd/testdatagen uses the same derivation.
const fuzzKeySeed = "sealnet fuzz mix key"

func fuzzKey(t testing.TB) *MixKey {
	seed := sha256.Sum256([]byte(fuzzKeySeed))
	k, err := NewMixKey(DefaultGeometry(), seed[:])
	if err != nil {
		t.Fatal(err)
	}
	return k
}

var unwrapErrors = []error{ErrPacketSize, ErrUnsupportedVersion, ErrHeaderAuth, ErrReplay, ErrRouting, ErrPayloadAuth}

// FuzzUnwrap feeds arbitrary bytes to a hop. Whatever the input, Unwrap
// returns a sentinel error or a well-formed result, and a packet it accepts
// is refused as a replay the second time.
func FuzzUnwrap(f *testing.F) {
	fuzzcheck.RequireCorpus(f)
	k := fuzzKey(f)
	g := k.Geometry()
	f.Fuzz(func(t *testing.T, pkt []byte) {
		rc, err := NewReplayCache(1, 4)
		if err != nil {
			t.Fatal(err)
		}
		in := bytes.Clone(pkt)
		res, err := k.Unwrap(pkt, rc)
		if err != nil {
			for _, want := range unwrapErrors {
				if errors.Is(err, want) {
					return
				}
			}
			t.Fatalf("error without a sentinel: %v", err)
		}
		switch {
		case !res.Final && len(res.Packet) != g.PacketSize():
			t.Fatalf("forward packet of %d bytes", len(res.Packet))
		case res.Final && !res.SURBReply && len(res.Payload) != g.MessageSize():
			t.Fatalf("message of %d bytes", len(res.Payload))
		case res.Final && res.SURBReply && len(res.Payload) != g.PayloadSize:
			t.Fatalf("reply payload of %d bytes", len(res.Payload))
		}
		if _, err := k.Unwrap(in, rc); !errors.Is(err, ErrReplay) {
			t.Fatalf("accepted packet replayed: got %v, want ErrReplay", err)
		}
	})
}

func corpusValue(t *testing.T, target, name string) []byte {
	t.Helper()
	b, err := fuzzcheck.ReadBytesSeed(target, name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestFuzzUnwrapCorpusReachesDeep: the checked-in corpus holds packets
// built for the fuzz key, so the fuzzer starts past the header check.
func TestFuzzUnwrapCorpusReachesDeep(t *testing.T) {
	k := fuzzKey(t)
	pkt := corpusValue(t, "FuzzUnwrap", "forward-3-hops")
	rc, _ := NewReplayCache(1, 4)
	if _, err := k.Unwrap(pkt, rc); err != nil {
		t.Fatalf("corpus packet does not unwrap under the fuzz key: %v", err)
	}
}

// FuzzRouting: a slot that decodes re-encodes to the same bytes.
func FuzzRouting(f *testing.F) {
	fuzzcheck.RequireCorpus(f)
	f.Fuzz(func(t *testing.T, slot []byte) {
		var r routing
		if err := decodeRouting(slot, &r); err != nil {
			if !errors.Is(err, ErrRouting) {
				t.Fatalf("error without ErrRouting: %v", err)
			}
			return
		}
		again := make([]byte, len(slot))
		if err := r.encode(again); err != nil {
			t.Fatalf("decoded slot does not re-encode: %v", err)
		}
		if !bytes.Equal(again, slot) {
			t.Fatalf("re-encoding differs:\n%x\n%x", slot, again)
		}
	})
}

// FuzzGeometry: an encoding that decodes is valid and re-encodes exactly.
func FuzzGeometry(f *testing.F) {
	fuzzcheck.RequireCorpus(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		var g Geometry
		if err := g.UnmarshalBinary(b); err != nil {
			if !errors.Is(err, ErrInvalidGeometry) {
				t.Fatalf("error without ErrInvalidGeometry: %v", err)
			}
			return
		}
		if err := g.Validate(); err != nil {
			t.Fatal(err)
		}
		again, err := g.MarshalBinary()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs: %x, %v", again, err)
		}
		if g.PacketSize() <= g.HeaderSize() || g.PacketSize() > MaxPacketSize {
			t.Fatalf("packet size %d out of bounds", g.PacketSize())
		}
	})
}

// FuzzSURB: a SURB that decodes re-encodes exactly.
func FuzzSURB(f *testing.F) {
	fuzzcheck.RequireCorpus(f)
	g := DefaultGeometry()
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := UnmarshalSURB(g, b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnsupportedVersion) {
				t.Fatalf("unexpected error: %v", err)
			}
			return
		}
		again, err := s.MarshalBinary()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatal("re-encoding differs")
		}
		if _, err := s.NewReply(g, []byte("reply")); err != nil {
			t.Fatalf("decoded SURB cannot build a reply: %v", err)
		}
	})
}

// FuzzSURBKeys: stored reply keys that decode re-encode exactly.
func FuzzSURBKeys(f *testing.F) {
	fuzzcheck.RequireCorpus(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := UnmarshalSURBKeys(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error without ErrMalformed: %v", err)
			}
			return
		}
		again, err := k.MarshalBinary()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatal("re-encoding differs")
		}
	})
}

// Journal fuzzing uses this epoch and key ID; the corpus is written for
// them.
const fuzzJournalEpoch = 1

var fuzzJournalKey = [32]byte{'f', 'u', 'z', 'z'}

// FuzzReplayJournal: any file contents either load, within the capacity,
// as a valid prefix that re-encodes exactly, or give an error.
func FuzzReplayJournal(f *testing.F) {
	fuzzcheck.RequireCorpus(f)
	const capacity = 64
	f.Fuzz(func(t *testing.T, data []byte) {
		seen := make(map[ReplayTag]struct{})
		add := func(tag *ReplayTag) error {
			if _, dup := seen[*tag]; dup {
				return ErrReplay
			}
			if len(seen) >= capacity {
				return ErrReplayCacheFull
			}
			seen[*tag] = struct{}{}
			return nil
		}
		valid, err := readJournal(bytes.NewReader(data), fuzzJournalEpoch, &fuzzJournalKey, add)
		if err != nil {
			return
		}
		if valid > int64(len(data)) || (valid-journalHeaderSize)%replayTagSize != 0 {
			t.Fatalf("valid prefix %d of %d bytes", valid, len(data))
		}
		if len(seen) > capacity {
			t.Fatalf("%d tags loaded past capacity %d", len(seen), capacity)
		}
		again := journalHeader(fuzzJournalEpoch, &fuzzJournalKey)
		for off := int64(journalHeaderSize); off < valid; off += replayTagSize {
			tag := ReplayTag(data[off : off+replayTagSize])
			if _, ok := seen[tag]; !ok {
				t.Fatal("a record was not loaded")
			}
			again = append(again, tag[:]...)
		}
		if !bytes.Equal(again, data[:valid]) {
			t.Fatal("valid prefix does not re-encode")
		}
	})
}

package sender

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/sealnet/sealnet/internal/testkit/fuzzcheck"
)

// The seed corpora under testdata/fuzz are written by writeSeeds;
// TestFuzzSeedsCurrent fails if they are stale. Regenerate with
// SEALNET_WRITE_SEEDS=1 go test ./sender -run TestFuzzSeedsCurrent (or make
// testdata, which runs the one generator, internal/cmd/testdatagen).

var fuzzKey = [32]byte{1, 2, 3, 4, 5, 6, 7, 8, 9}

// sealFixed encrypts like the vault, with a fixed nonce (seeds only).
func sealFixed(nonceByte byte, pt []byte, ad string) []byte {
	aead, _ := chacha20poly1305.NewX(fuzzKey[:])
	nonce := bytes.Repeat([]byte{nonceByte}, 24)
	return append(nonce, aead.Seal(nil, nonce, pt, []byte(ad))...)
}

func historyRecord(nonceByte byte, rec []byte) []byte {
	ct := sealFixed(nonceByte, rec, historyAD)
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(ct))), ct...)
}

type seed struct {
	target, name string
	value        []byte
}

func writeSeeds(root string) error {
	sent := time.UnixMilli(1_790_000_000_000)
	id := bytes.Repeat([]byte{7}, 16)
	tok := bytes.Repeat([]byte{9}, 32)
	seeds := []seed{
		{"FuzzDecodePlain", "text", encodePlain(id, sent, tok, []byte("hello bob"))},
		{"FuzzDecodePlain", "empty-body", encodePlain(id, sent, nil, nil)},
		{"FuzzDecodePlain", "bad-version", append([]byte{2}, encodePlain(id, sent, tok, nil)[1:]...)},
		{"FuzzDecodePlain", "truncated", encodePlain(id, sent, tok, nil)[:40]},
	}
	m1, _ := json.Marshal(&Message{ID: "07070707070707070707070707070707", From: "alice@a", To: "bob@b", Body: "hi", Verified: true})
	m2, _ := json.Marshal(&Message{ID: "08080808080808080808080808080808", From: "bob@b", To: "alice@a", Outgoing: true, Status: StatusDelivered})
	two := append(historyRecord(1, m1), historyRecord(2, m2)...)
	flipped := bytes.Clone(two)
	flipped[40] ^= 1
	seeds = append(seeds,
		seed{"FuzzHistory", "two-records", two},
		seed{"FuzzHistory", "torn-last", two[:len(two)-5]},
		seed{"FuzzHistory", "flipped", flipped},
	)
	sp, _ := json.Marshal(spooled{ID: id, To: "bob@b", Body: []byte("via the daemon")})
	hdr := (&vault{kdf: DefaultKDF}).header()
	huge := append(append(bytes.Clone(hdr[:len(stateMagic)+20]), 0xff, 0xff, 0xff, 0xff, 2), make([]byte, 64)...)
	seeds = append(seeds,
		seed{"FuzzSpool", "valid", sealFixed(3, sp, spoolAD)},
		seed{"FuzzSpool", "short", sealFixed(3, sp, spoolAD)[:30]},
		seed{"FuzzSpool", "wrong-ad", sealFixed(3, sp, historyAD)},
		seed{"FuzzStateHeader", "default", append(hdr, make([]byte, 64)...)},
		seed{"FuzzStateHeader", "huge-memory", huge},
		seed{"FuzzStateHeader", "bad-magic", append([]byte("SEALNET-STATE-2\n"), make([]byte, 100)...)},
	)
	marker := sealMarker(&fuzzKey, bytes.Repeat([]byte{4}, 24), 7)
	seeds = append(seeds,
		seed{"FuzzMarker", "valid", marker},
		seed{"FuzzMarker", "generation-max", sealMarker(&fuzzKey, bytes.Repeat([]byte{5}, 24), 1<<64-1)},
		seed{"FuzzMarker", "wrong-ad", sealFixed(6, make([]byte, 8), historyAD)},
		seed{"FuzzMarker", "truncated", marker[:len(marker)-1]},
		seed{"FuzzMarker", "trailing-byte", append(bytes.Clone(marker), 0)},
		seed{"FuzzMarker", "empty", []byte{}},
	)
	for _, s := range seeds {
		if err := fuzzcheck.WriteSeed(root, s.target, s.name, s.value); err != nil {
			return err
		}
	}
	return nil
}

func TestFuzzSeedsCurrent(t *testing.T) { fuzzcheck.CheckSeeds(t, "sender", writeSeeds) }

// FuzzDecodePlain: an error, or fields that encode back to the input.
func FuzzDecodePlain(f *testing.F) {
	fuzzcheck.RequireCorpus(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := decodePlain(b)
		if err != nil {
			if !errors.Is(err, errPlain) {
				t.Fatal(err)
			}
			return
		}
		if again := encodePlain(p.ID[:], p.Sent, p.Token[:], p.Body); !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs")
		}
	})
}

// FuzzHistory: the history reader never panics, returns only records
// that authenticate, and what it returns written again reads back equal.
func FuzzHistory(f *testing.F) {
	fuzzcheck.RequireCorpus(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, historyFile), data, 0o600); err != nil {
			t.Fatal(err)
		}
		v := &vault{dir: dir, key: fuzzKey}
		recs, _ := v.readHistory()
		if len(recs) > len(data)/(4+24+16) {
			t.Fatalf("%d records from %d bytes", len(recs), len(data))
		}
		dir2 := t.TempDir()
		w := &vault{dir: dir2, key: fuzzKey}
		for _, r := range recs {
			if err := w.appendHistory(r); err != nil {
				t.Fatal(err)
			}
		}
		again, err := w.readHistory()
		if err != nil || len(again) != len(recs) {
			t.Fatalf("rewritten history: %d records, %v", len(again), err)
		}
		for i := range recs {
			if !bytes.Equal(recs[i], again[i]) {
				t.Fatalf("record %d differs", i)
			}
		}
	})
}

// FuzzSpool: a spool file decodes only if it authenticates under the key
// and holds a well-formed message.
func FuzzSpool(f *testing.F) {
	fuzzcheck.RequireCorpus(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := decodeSpool(&fuzzKey, data)
		if err != nil {
			return
		}
		if len(s.ID) != 16 || len(s.Body) > MaxMessage {
			t.Fatalf("accepted a malformed spool entry: %+v", s)
		}
	})
}

// FuzzStateHeader: the state header parser never panics and never accepts
// Argon2id costs out of bounds.
func FuzzStateHeader(f *testing.F) {
	fuzzcheck.RequireCorpus(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		v, hl, err := parseStateHeader(data)
		if err != nil {
			return
		}
		if v.kdf.check() != nil || hl > len(data) || !bytes.Equal((&vault{salt: v.salt, kdf: v.kdf}).header(), data[:hl]) {
			t.Fatalf("accepted header %x as %+v", data[:min(hl, len(data))], v.kdf)
		}
	})
}

// FuzzMarker: a marker file decodes only if it has exactly the marker's
// size and authenticates under the key, and what it decodes to seals back
// to the input with the same nonce.
func FuzzMarker(f *testing.F) {
	fuzzcheck.RequireCorpus(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		gen, err := openMarker(&fuzzKey, data)
		if err != nil {
			if !errors.Is(err, errBadMarker) {
				t.Fatalf("error without its sentinel: %v", err)
			}
			return
		}
		if len(data) != markerSize || !bytes.Equal(sealMarker(&fuzzKey, data[:24], gen), data) {
			t.Fatalf("accepted %x as generation %d", data, gen)
		}
	})
}

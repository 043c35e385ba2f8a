package main

// The seed corpora of the Badger mailbox store's record decoders
// (mailbox/store/badger/testdata/fuzz/FuzzStore*). Every record is written
// from the layout in docs/mailbox-storage.md, not through the package's
// encoders, so the seeds also check that the code and the document agree:
// seeds named valid-* must decode, bad-* must not
// (TestStoreSeedsMatchFormat), and the encoders must write the valid
// ones byte for byte (TestStoreEncodersMatchSeeds).

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"

	"github.com/sealnet/sealnet/internal/testkit/fuzzcheck"
)

// storeTargets are the store's fuzz targets, whose corpora this file owns.
var storeTargets = []string{
	"FuzzStoreState",
	"FuzzStoreEnvelope",
	"FuzzStoreAccount",
	"FuzzStorePrekey",
	"FuzzStorePrekeyState",
	"FuzzStoreSeen",
	"FuzzStoreKeyIndex",
}

func writeStoreSeeds(root string) error {
	dir := filepath.Join(root, "mailbox", "store", "badger")
	// rec builds a record field by field: byte, uint16, uint32, uint64
	// values big endian, []byte and string as they are.
	rec := func(fields ...any) []byte {
		var b []byte
		for _, f := range fields {
			switch v := f.(type) {
			case byte:
				b = append(b, v)
			case uint16:
				b = binary.BigEndian.AppendUint16(b, v)
			case uint32:
				b = binary.BigEndian.AppendUint32(b, v)
			case uint64:
				b = binary.BigEndian.AppendUint64(b, v)
			case []byte:
				b = append(b, v...)
			case string:
				b = append(b, v...)
			default:
				panic("testdatagen: store record field type")
			}
		}
		return b
	}
	fill := func(n int, c byte) []byte { return bytes.Repeat([]byte{c}, n) }
	trailing := func(b []byte) []byte { return append(bytes.Clone(b), 0) }
	const v1 = byte(1)
	// hours is 2031-03-04 08:00 UTC in hours since the Unix epoch.
	const hours = uint32(536_216)

	seeds := map[string]map[string][]byte{}
	for _, t := range storeTargets {
		seeds[t] = map[string][]byte{"bad-empty": nil}
	}

	// Mailbox state: version | head | tail | cumHead | cumTail.
	st := seeds["FuzzStoreState"]
	held := rec(v1, uint64(5), uint64(9), uint64(1000), uint64(1800))
	st["valid-new"] = rec(v1, uint64(0), uint64(0), uint64(0), uint64(0))
	st["valid-held"] = held
	st["valid-drained"] = rec(v1, uint64(9), uint64(9), uint64(1800), uint64(1800))
	st["bad-version-2"] = append([]byte{2}, held[1:]...)
	st["bad-truncated"] = held[:len(held)-1]
	st["bad-trailing"] = trailing(held)
	st["bad-head-beyond-tail"] = rec(v1, uint64(10), uint64(9), uint64(0), uint64(0))
	st["bad-bytes-out-of-order"] = rec(v1, uint64(5), uint64(9), uint64(1801), uint64(1800))
	st["bad-too-many-bytes"] = rec(v1, uint64(5), uint64(6), uint64(0), uint64(2049))

	// Envelope record: version | kind | ID | expires hours | cum | length | data.
	env := seeds["FuzzStoreEnvelope"]
	id := fill(16, 0xa5)
	sealed := rec(v1, byte(1), id, hours, uint64(5100), uint16(100), fill(100, 7))
	env["valid-sealed"] = sealed
	env["valid-surb-reply-empty"] = rec(v1, byte(2), id, hours, uint64(0), uint16(0))
	env["valid-max"] = rec(v1, byte(1), id, uint32(1<<32-1), uint64(1<<40), uint16(2048), fill(2048, 1))
	env["bad-kind-0"] = rec(v1, byte(0), id, hours, uint64(100), uint16(1), byte(1))
	env["bad-kind-3"] = rec(v1, byte(3), id, hours, uint64(100), uint16(1), byte(1))
	env["bad-length-2049"] = rec(v1, byte(1), id, hours, uint64(5000), uint16(2049), fill(2049, 1))
	env["bad-cum-below-length"] = rec(v1, byte(1), id, hours, uint64(99), uint16(100), fill(100, 7))
	env["bad-truncated"] = sealed[:len(sealed)-1]
	env["bad-trailing"] = trailing(sealed)
	env["bad-version-0"] = append([]byte{0}, sealed[1:]...)

	// Account: version | flags | address length | address | X25519 | Ed25519 | token hash.
	acc := seeds["FuzzStoreAccount"]
	addr := "alice@provider.example"
	keys := rec(fill(32, 0x11), fill(32, 0x22))
	plain := rec(v1, byte(0), byte(len(addr)), addr, keys, fill(32, 0))
	acc["valid-plain"] = plain
	acc["valid-token-unsolicited"] = rec(v1, byte(1), byte(len(addr)), addr, keys, fill(32, 0x33))
	long := string(fill(128, 'a'))
	acc["valid-address-128"] = rec(v1, byte(0), byte(128), long, keys, fill(32, 0))
	acc["bad-address-129"] = rec(v1, byte(0), byte(129), long+"a", keys, fill(32, 0))
	acc["bad-address-empty"] = rec(v1, byte(0), byte(0), keys, fill(32, 0))
	acc["bad-flags-2"] = rec(v1, byte(2), byte(len(addr)), addr, keys, fill(32, 0))
	acc["bad-truncated"] = plain[:len(plain)-1]
	acc["bad-trailing"] = trailing(plain)
	acc["bad-version-2"] = append([]byte{2}, plain[1:]...)

	// Prekey: version | ID | length | data.
	pk := seeds["FuzzStorePrekey"]
	small := rec(v1, uint32(7), uint16(36), fill(36, 9))
	pk["valid-one-time"] = small
	pk["valid-max"] = rec(v1, uint32(1<<32-1), uint16(2048), fill(2048, 9))
	pk["bad-data-empty"] = rec(v1, uint32(7), uint16(0))
	pk["bad-data-2049"] = rec(v1, uint32(7), uint16(2049), fill(2049, 9))
	pk["bad-truncated"] = small[:len(small)-1]
	pk["bad-trailing"] = trailing(small)
	pk["bad-version-2"] = append([]byte{2}, small[1:]...)

	// Prekey state: version | one-time held | post-quantum one-time held.
	ps := seeds["FuzzStorePrekeyState"]
	ps["valid-zero"] = rec(v1, uint16(0), uint16(0))
	ps["valid-full"] = rec(v1, uint16(1000), uint16(200))
	ps["bad-one-time-1001"] = rec(v1, uint16(1001), uint16(0))
	ps["bad-pq-201"] = rec(v1, uint16(0), uint16(201))
	ps["bad-truncated"] = rec(v1, uint16(1), byte(0))
	ps["bad-trailing"] = rec(v1, uint16(1), uint16(1), byte(0))

	// Envelope-ID index: version | seen until (hours).
	seen := seeds["FuzzStoreSeen"]
	seen["valid"] = rec(v1, hours)
	seen["valid-max"] = rec(v1, uint32(1<<32-1))
	seen["bad-truncated"] = rec(v1, uint16(1))
	seen["bad-trailing"] = rec(v1, hours, byte(0))
	seen["bad-version-2"] = rec(byte(2), hours)

	// Key index: version | mailbox.
	ki := seeds["FuzzStoreKeyIndex"]
	ki["valid"] = rec(v1, fill(32, 0x44))
	ki["bad-truncated"] = rec(v1, fill(31, 0x44))
	ki["bad-trailing"] = rec(v1, fill(33, 0x44))
	ki["bad-version-0"] = rec(byte(0), fill(32, 0x44))

	for _, target := range storeTargets {
		if err := os.RemoveAll(filepath.Join(dir, "testdata", "fuzz", target)); err != nil {
			return err
		}
		for name, b := range seeds[target] {
			if err := fuzzcheck.WriteSeed(dir, target, name, b); err != nil {
				return err
			}
		}
	}
	return nil
}

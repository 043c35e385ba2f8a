package main

import (
	"encoding/binary"
	"fmt"
)

// The seeds of sender/seal's FuzzParseRatchet and FuzzParseDRHeader,
// written from the format in sender/seal/ratchet_codec.go (the ratchet is
// unexported): a responder before its first message, an initiator with a
// sending chain, a receiver with a pending step and skipped keys, and
// broken ones.
func addRatchetSeeds(add func(target, name string, v ...any)) {
	seed := func(label string) []byte { return sealSeed("ratchet " + label) }
	u32 := binary.BigEndian.AppendUint32
	responder := append(append([]byte{}, seed("rk")...), 0x01)
	responder = append(responder, seed("dhs")...)
	responder = u32(u32(responder, 0), 0)
	responder = append(responder, 0)    // chains
	responder = append(responder, 0, 0) // skipped
	responder = binary.BigEndian.AppendUint64(responder, 0)

	initiator := append(append([]byte{}, seed("rk")...), 0x03)
	initiator = append(append(initiator, seed("dhs")...), seed("cks")...)
	initiator = u32(u32(initiator, 5), 2)
	initiator = append(initiator, 0, 0, 0)
	initiator = binary.BigEndian.AppendUint64(initiator, 0)

	pending := append(append([]byte{}, seed("rk")...), 0x00)
	pending = u32(u32(pending, 0), 3)
	pending = append(pending, 2)
	pending = u32(append(pending, seed("old chain")...), 1)
	pending = u32(append(pending, seed("chain")...), 0)
	pending = u32(append(pending, seed("ckr")...), 9)
	pending = binary.BigEndian.AppendUint16(pending, 3)
	for i, k := range []struct {
		chain byte
		n     uint32
	}{{0, 4}, {1, 2}, {1, 7}} {
		pending = u32(append(pending, k.chain), k.n)
		pending = binary.BigEndian.AppendUint64(pending, 1_800_000_000+uint64(i))
		pending = append(pending, seed(fmt.Sprint("mk ", i))...)
	}
	pending = binary.BigEndian.AppendUint64(pending, 1)

	add("FuzzParseRatchet", "responder", responder)
	add("FuzzParseRatchet", "initiator", initiator)
	add("FuzzParseRatchet", "pending-with-skipped", pending)
	add("FuzzParseRatchet", "truncated", pending[:len(pending)-3])
	add("FuzzParseRatchet", "unknown-flag", append(append(append([]byte{}, seed("rk")...), 0x04), responder[33:]...))

	header := u32(u32(append([]byte{}, seed("pub")...), 3), 9)
	add("FuzzParseDRHeader", "valid", header)
	add("FuzzParseDRHeader", "truncated", header[:39])
	add("FuzzParseDRHeader", "trailing", append(append([]byte{}, header...), 0))
}

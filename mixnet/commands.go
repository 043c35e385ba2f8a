package mixnet

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"time"
)

// NodeID names a mix node or provider in the network directory.
type NodeID [32]byte

// String returns the first 8 bytes in hex, enough for logs.
func (id NodeID) String() string { return hex.EncodeToString(id[:8]) }

// RecipientID names a mailbox at the final hop. Its meaning belongs to the
// provider; the packet layer carries it opaquely.
type RecipientID [32]byte

// SURBID names a single-use reply block so that its creator can find the
// keys that open the reply.
type SURBID [16]byte

// Routing commands. A hop's slot of RoutingInfoSize bytes holds a sequence
// of commands in ascending type order, each type at most once, followed by
// zero bytes to the end of the slot (a 0x00 type byte ends the list). Every
// slot holds exactly one of NextHop or Deliver; SURBReply only with
// Deliver; Delay is optional and present only when nonzero.
//
//	0x01 NextHop   node ID (32) || next ephemeral key (32) || next header tag (16)
//	0x02 Deliver   recipient ID (32)
//	0x03 SURBReply SURB ID (16)
//	0x04 Delay     microseconds, uint32 big endian (4)
const (
	cmdEnd       = 0x00
	cmdNextHop   = 0x01
	cmdDeliver   = 0x02
	cmdSURBReply = 0x03
	cmdDelay     = 0x04

	nextHopLen   = 1 + 32 + ephemeralSize + headerTagSize
	deliverLen   = 1 + 32
	surbReplyLen = 1 + 16
	delayLen     = 1 + 4

	// minRoutingInfoSize fits the largest command set a slot can hold.
	minRoutingInfoSize = max(nextHopLen+delayLen, deliverLen+surbReplyLen+delayLen)
)

// MaxDelay is the longest per-hop delay a routing command can carry.
const MaxDelay = time.Duration(1<<32-1) * time.Microsecond

// routing is one hop's decoded slot.
type routing struct {
	next      bool
	nextHop   NodeID
	nextEph   [ephemeralSize]byte
	nextTag   [headerTagSize]byte
	deliver   bool
	recipient RecipientID
	surb      bool
	surbID    SURBID
	delayUS   uint32
}

// delay returns the requested delay.
func (r *routing) delay() time.Duration { return time.Duration(r.delayUS) * time.Microsecond }

// encodeDelay converts a delay to the command's microseconds.
func encodeDelay(d time.Duration) (uint32, error) {
	if d < 0 || d > MaxDelay {
		return 0, fmt.Errorf("%w: delay %v is outside [0, %v]", ErrPath, d, MaxDelay)
	}
	return uint32(d / time.Microsecond), nil
}

// encode writes r into slot, which must be RoutingInfoSize bytes.
func (r *routing) encode(slot []byte) error {
	if r.next == r.deliver || (r.surb && !r.deliver) {
		return fmt.Errorf("%w: a slot needs exactly one of NextHop and Deliver, and SURBReply only with Deliver", ErrRouting)
	}
	need := 0
	if r.next {
		need += nextHopLen
	}
	if r.deliver {
		need += deliverLen
	}
	if r.surb {
		need += surbReplyLen
	}
	if r.delayUS != 0 {
		need += delayLen
	}
	if len(slot) < need {
		return fmt.Errorf("%w: slot of %d bytes is too small", ErrRouting, len(slot))
	}
	clear(slot)
	b := slot[:0]
	if r.next {
		b = append(b, cmdNextHop)
		b = append(b, r.nextHop[:]...)
		b = append(b, r.nextEph[:]...)
		b = append(b, r.nextTag[:]...)
	}
	if r.deliver {
		b = append(b, cmdDeliver)
		b = append(b, r.recipient[:]...)
	}
	if r.surb {
		b = append(b, cmdSURBReply)
		b = append(b, r.surbID[:]...)
	}
	if r.delayUS != 0 {
		b = append(b, cmdDelay)
		b = binary.BigEndian.AppendUint32(b, r.delayUS)
	}
	return nil
}

// decodeRouting parses a slot strictly: anything that encode would not
// have produced is ErrRouting, so decoding and re-encoding is the identity.
func decodeRouting(slot []byte, r *routing) error {
	*r = routing{}
	last := byte(cmdEnd)
	for i := 0; i < len(slot); {
		t := slot[i]
		if t == cmdEnd {
			for _, z := range slot[i:] {
				if z != 0 {
					return fmt.Errorf("%w: nonzero byte after the end of the commands", ErrRouting)
				}
			}
			break
		}
		if t <= last {
			return fmt.Errorf("%w: command 0x%02x out of order or repeated", ErrRouting, t)
		}
		last = t
		var n int
		switch t {
		case cmdNextHop:
			n = nextHopLen
		case cmdDeliver:
			n = deliverLen
		case cmdSURBReply:
			n = surbReplyLen
		case cmdDelay:
			n = delayLen
		default:
			return fmt.Errorf("%w: unknown command 0x%02x", ErrRouting, t)
		}
		if len(slot)-i < n {
			return fmt.Errorf("%w: command 0x%02x truncated", ErrRouting, t)
		}
		body := slot[i+1 : i+n]
		switch t {
		case cmdNextHop:
			r.next = true
			copy(r.nextHop[:], body)
			copy(r.nextEph[:], body[32:])
			copy(r.nextTag[:], body[32+ephemeralSize:])
		case cmdDeliver:
			r.deliver = true
			copy(r.recipient[:], body)
		case cmdSURBReply:
			r.surb = true
			copy(r.surbID[:], body)
		case cmdDelay:
			r.delayUS = binary.BigEndian.Uint32(body)
			if r.delayUS == 0 {
				return fmt.Errorf("%w: zero delay must be omitted", ErrRouting)
			}
		}
		i += n
	}
	if r.next == r.deliver {
		return fmt.Errorf("%w: need exactly one of NextHop and Deliver", ErrRouting)
	}
	if r.surb && !r.deliver {
		return fmt.Errorf("%w: SURBReply without Deliver", ErrRouting)
	}
	return nil
}

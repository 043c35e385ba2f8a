package capture

import (
	"encoding/binary"
	"net/netip"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// tcpSegment is what Read needs of a TCP segment.
type tcpSegment struct {
	src, dst           netip.AddrPort
	seq, ack32         uint32
	syn, ack, fin, rst bool
	n                  int    // payload length on the wire
	payload            []byte // its captured prefix (at most n bytes)
}

// decoder decodes frames into TCP segments. Its layers are reused from
// packet to packet, so that decoding allocates nothing.
type decoder struct {
	eth   layers.Ethernet
	dot1q layers.Dot1Q
	sll   layers.LinuxSLL
	sll2  layers.LinuxSLL2
	loop  layers.Loopback
	ip4   layers.IPv4
	tcp   layers.TCP
}

var nf = gopacket.NilDecodeFeedback

// decode returns the TCP segment in a frame of link type lt, or false.
// extra is how many bytes of the frame were on the wire but not captured.
func (d *decoder) decode(lt layers.LinkType, frame []byte, extra int) (tcpSegment, bool) {
	var seg tcpSegment
	b, version := d.ip(lt, frame)
	var tcpData []byte
	var tcpLen int
	var src, dst netip.Addr
	switch version {
	case 4:
		if d.ip4.DecodeFromBytes(b, nf) != nil || d.ip4.Protocol != layers.IPProtocolTCP ||
			d.ip4.Flags&layers.IPv4MoreFragments != 0 || d.ip4.FragOffset != 0 {
			return seg, false
		}
		// The total length as sent; gopacket replaces a zero one.
		total := int(binary.BigEndian.Uint16(b[2:4]))
		if total == 0 {
			// TCP segmentation offload: the length field is left for the
			// hardware to fill. The frame's length on the wire is all
			// that is known.
			total = len(b) + extra
		}
		tcpLen = total - int(d.ip4.IHL)*4
		tcpData = d.ip4.Payload
		src, _ = netip.AddrFromSlice(d.ip4.SrcIP)
		dst, _ = netip.AddrFromSlice(d.ip4.DstIP)
	case 6:
		var ok bool
		if src, dst, tcpData, tcpLen, ok = ipv6(b, len(b)+extra); !ok {
			return seg, false
		}
	default:
		return seg, false
	}
	if d.tcp.DecodeFromBytes(tcpData, nf) != nil {
		return seg, false // not even the TCP header was captured
	}
	n := tcpLen - int(d.tcp.DataOffset)*4
	if n < 0 {
		return seg, false
	}
	payload := d.tcp.Payload
	if len(payload) > n {
		payload = payload[:n] // link-layer padding
	}
	t := &d.tcp
	return tcpSegment{
		src: netip.AddrPortFrom(src.Unmap(), uint16(t.SrcPort)), dst: netip.AddrPortFrom(dst.Unmap(), uint16(t.DstPort)),
		seq: t.Seq, ack32: t.Ack,
		syn: t.SYN, ack: t.ACK, fin: t.FIN, rst: t.RST,
		n: n, payload: payload,
	}, true
}

// ip returns the IP packet inside a frame and its version, or version 0.
func (d *decoder) ip(lt layers.LinkType, b []byte) ([]byte, int) {
	var et layers.EthernetType
	switch lt {
	case layers.LinkTypeEthernet:
		if d.eth.DecodeFromBytes(b, nf) != nil {
			return nil, 0
		}
		et, b = d.eth.EthernetType, d.eth.Payload
		for range 2 { // VLAN tags, possibly stacked (QinQ)
			if et != layers.EthernetTypeDot1Q && et != layers.EthernetTypeQinQ {
				break
			}
			if d.dot1q.DecodeFromBytes(b, nf) != nil {
				return nil, 0
			}
			et, b = d.dot1q.Type, d.dot1q.Payload
		}
	case layers.LinkTypeLinuxSLL:
		if d.sll.DecodeFromBytes(b, nf) != nil {
			return nil, 0
		}
		et, b = d.sll.EthernetType, d.sll.Payload
	case layers.LinkTypeLinuxSLL2:
		if d.sll2.DecodeFromBytes(b, nf) != nil {
			return nil, 0
		}
		et, b = d.sll2.ProtocolType, d.sll2.Payload
	case layers.LinkTypeNull, layers.LinkTypeLoop:
		if d.loop.DecodeFromBytes(b, nf) != nil {
			return nil, 0
		}
		b = d.loop.Payload
		switch d.loop.Family {
		case layers.ProtocolFamilyIPv4:
			return b, 4
		case layers.ProtocolFamilyIPv6BSD, layers.ProtocolFamilyIPv6FreeBSD, layers.ProtocolFamilyIPv6Darwin, layers.ProtocolFamilyIPv6Linux:
			return b, 6
		}
		return nil, 0
	case layers.LinkTypeRaw, layers.LinkTypeIPv4, layers.LinkTypeIPv6:
		if len(b) == 0 {
			return nil, 0
		}
		return b, int(b[0] >> 4)
	default:
		return nil, 0
	}
	switch et {
	case layers.EthernetTypeIPv4:
		return b, 4
	case layers.EthernetTypeIPv6:
		return b, 6
	}
	return nil, 0
}

// IPv6 next-header values ipv6 steps over.
const (
	ip6HopByHop    = 0
	ip6TCP         = 6
	ip6Routing     = 43
	ip6DestOptions = 60
	ip6JumboOption = 0xc2
)

// ipv6 returns the TCP segment in an IPv6 packet: its captured bytes and
// its length on the wire. wireLen is the packet's length on the wire.
//
// It is not gopacket's IPv6 layer because that one refuses a payload
// length of 0 without a jumbo option, which is how Linux shows BIG TCP
// packets to a capture, and does not step over routing or destination
// options headers.
func ipv6(b []byte, wireLen int) (src, dst netip.Addr, tcp []byte, tcpLen int, ok bool) {
	if len(b) < 40 || b[0]>>4 != 6 {
		return
	}
	plen := int(binary.BigEndian.Uint16(b[4:6]))
	next := b[6]
	src = netip.AddrFrom16([16]byte(b[8:24]))
	dst = netip.AddrFrom16([16]byte(b[24:40]))
	b = b[40:]
	if plen == 0 {
		plen = wireLen - 40 // a jumbogram's length is corrected below
	}
	off := 0
	for range 8 { // extension headers, a bounded number
		switch next {
		case ip6TCP:
			if plen < off {
				return
			}
			end := min(plen, len(b))
			if off > end {
				return
			}
			return src, dst, b[off:end], plen - off, true
		case ip6HopByHop, ip6Routing, ip6DestOptions:
			if len(b) < off+2 {
				return
			}
			hl := (int(b[off+1]) + 1) * 8
			if len(b) < off+hl {
				return
			}
			if next == ip6HopByHop {
				if j, found := jumbo(b[off+2 : off+hl]); found {
					plen = j
				}
			}
			next = b[off]
			off += hl
		default: // fragments, IPsec, no next header, others: not ours
			return
		}
	}
	return
}

// jumbo finds the Jumbo Payload option (RFC 2675) in hop-by-hop options.
func jumbo(opts []byte) (int, bool) {
	for len(opts) > 0 {
		if opts[0] == 0 { // Pad1
			opts = opts[1:]
			continue
		}
		if len(opts) < 2 || len(opts) < 2+int(opts[1]) {
			return 0, false
		}
		if opts[0] == ip6JumboOption && opts[1] == 4 {
			return int(binary.BigEndian.Uint32(opts[2:6])), true
		}
		opts = opts[2+int(opts[1]):]
	}
	return 0, false
}

package capture

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// Synthetic captures: a builder of TCP segments serialized with gopacket
// into a pcap or pcapng file. Everything is deterministic: the fuzz seed
// corpus is written from the same builders.

// testF is the frame ciphertext size of the synthetic links; testRecord is
// the record size Read is given. Small, to keep captures small.
const (
	testF      = 98
	testRecord = 2 + testF
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// ms is t0 plus n milliseconds.
func ms(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }

type frame struct {
	ci   gopacket.CaptureInfo
	data []byte
}

type builder struct {
	lt     layers.LinkType
	snap   int // 0: whole packets
	frames []frame
}

func newBuilder(lt layers.LinkType) *builder { return &builder{lt: lt} }

// flow is one TCP connection; offsets are stream offsets (0 is the first
// byte after the SYN) in each direction.
type flow struct {
	b                *builder
	dialer, listener netip.AddrPort
	isn              [2]uint32 // 0: dialer, 1: listener
}

func (b *builder) flow(dialer, listener string, isnUp, isnDown uint32) *flow {
	return &flow{b: b, dialer: netip.MustParseAddrPort(dialer), listener: netip.MustParseAddrPort(listener), isn: [2]uint32{isnUp, isnDown}}
}

// syn, synAck, ack open the connection.
func (f *flow) syn(t time.Time)    { f.raw(t, true, "S", f.isn[0], 0, nil) }
func (f *flow) synAck(t time.Time) { f.raw(t, false, "SA", f.isn[1], f.isn[0]+1, nil) }

// seg sends payload at stream offset off of direction up, acknowledging
// ackOff of the other direction.
func (f *flow) seg(t time.Time, up bool, off int, payload []byte) {
	f.segAck(t, up, off, 0, payload)
}

func (f *flow) segAck(t time.Time, up bool, off, ackOff int, payload []byte) {
	d, o := 0, 1
	if !up {
		d, o = 1, 0
	}
	f.raw(t, up, "PA", f.isn[d]+1+uint32(off), f.isn[o]+1+uint32(ackOff), payload)
}

// fin closes direction up after off bytes.
func (f *flow) fin(t time.Time, up bool, off int) {
	d := 0
	if !up {
		d = 1
	}
	f.raw(t, up, "FA", f.isn[d]+1+uint32(off), 0, nil)
}

func (f *flow) raw(t time.Time, up bool, flags string, seq, ack uint32, payload []byte) {
	src, dst := f.dialer, f.listener
	if !up {
		src, dst = dst, src
	}
	tcp := &layers.TCP{
		SrcPort: layers.TCPPort(src.Port()), DstPort: layers.TCPPort(dst.Port()),
		Seq: seq, Ack: ack, Window: 65535,
	}
	for _, c := range flags {
		switch c {
		case 'S':
			tcp.SYN = true
		case 'A':
			tcp.ACK = true
		case 'P':
			tcp.PSH = true
		case 'F':
			tcp.FIN = true
		case 'R':
			tcp.RST = true
		}
	}
	f.b.add(t, src.Addr(), dst.Addr(), tcp, payload)
}

// add serializes one segment with correct lengths and checksums.
func (b *builder) add(t time.Time, src, dst netip.Addr, tcp *layers.TCP, payload []byte) {
	var ip gopacket.SerializableLayer
	var et layers.EthernetType
	if src.Is4() {
		ip4 := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: src.AsSlice(), DstIP: dst.AsSlice(), Flags: layers.IPv4DontFragment}
		tcp.SetNetworkLayerForChecksum(ip4)
		ip, et = ip4, layers.EthernetTypeIPv4
	} else {
		ip6 := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolTCP, SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
		tcp.SetNetworkLayerForChecksum(ip6)
		ip, et = ip6, layers.EthernetTypeIPv6
	}
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	buf := gopacket.NewSerializeBuffer()
	var err error
	if b.lt == layers.LinkTypeEthernet {
		eth := &layers.Ethernet{SrcMAC: make([]byte, 6), DstMAC: make([]byte, 6), EthernetType: et}
		err = gopacket.SerializeLayers(buf, opts, eth, ip, tcp, gopacket.Payload(payload))
	} else {
		err = gopacket.SerializeLayers(buf, opts, ip, tcp, gopacket.Payload(payload))
	}
	if err != nil {
		panic(err)
	}
	data := append(linkHeader(b.lt, et), buf.Bytes()...)
	ci := gopacket.CaptureInfo{Timestamp: t, Length: len(data), CaptureLength: len(data)}
	if b.snap > 0 && len(data) > b.snap {
		data = data[:b.snap]
		ci.CaptureLength = b.snap
	}
	b.frames = append(b.frames, frame{ci, data})
}

// linkHeader is the header of link types that gopacket cannot serialize.
func linkHeader(lt layers.LinkType, et layers.EthernetType) []byte {
	switch lt {
	case layers.LinkTypeEthernet, layers.LinkTypeRaw:
		return nil
	case layers.LinkTypeNull: // host byte order, little endian here
		fam := uint32(layers.ProtocolFamilyIPv4)
		if et == layers.EthernetTypeIPv6 {
			fam = uint32(layers.ProtocolFamilyIPv6BSD)
		}
		return binary.LittleEndian.AppendUint32(nil, fam)
	case layers.LinkTypeLinuxSLL: // packet type, ARPHRD, address length, address (8), protocol
		h := []byte{0, 0, 0x03, 0x04, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0}
		return binary.BigEndian.AppendUint16(h, uint16(et))
	case layers.LinkTypeLinuxSLL2: // protocol, reserved, ifindex, ARPHRD, packet type, address length, address (8)
		h := binary.BigEndian.AppendUint16(nil, uint16(et))
		return append(h, 0, 0, 0, 0, 0, 1, 0x03, 0x04, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0)
	}
	panic(fmt.Sprintf("no header for %v", lt))
}

// pcap renders the frames as a pcap file.
func (b *builder) pcap() []byte {
	var out bytes.Buffer
	w := pcapgo.NewWriterNanos(&out)
	snap := uint32(65535)
	if b.snap > 0 {
		snap = uint32(b.snap)
	}
	if err := w.WriteFileHeader(snap, b.lt); err != nil {
		panic(err)
	}
	for _, f := range b.frames {
		if err := w.WritePacket(f.ci, f.data); err != nil {
			panic(err)
		}
	}
	return out.Bytes()
}

// pcapng renders the frames as a pcapng file, with fixed section options
// so that the bytes do not depend on the machine.
func (b *builder) pcapng() []byte {
	var out bytes.Buffer
	intf := pcapgo.NgInterface{Name: "lo", LinkType: b.lt, SnapLength: uint32(b.snap), TimestampResolution: 9}
	w, err := pcapgo.NewNgWriterInterface(&out, intf, pcapgo.NgWriterOptions{SectionInfo: pcapgo.NgSectionInfo{Application: "sealnet wire test"}})
	if err != nil {
		panic(err)
	}
	for _, f := range b.frames {
		if err := w.WritePacket(f.ci, f.data); err != nil {
			panic(err)
		}
	}
	if err := w.Flush(); err != nil {
		panic(err)
	}
	return out.Bytes()
}

// Streams.

// hello is a dialer's handshake: kind ‖ length ‖ message 1 (l bytes).
func hello(kind byte, l int) []byte {
	b := []byte{kind, byte(l >> 8), byte(l)}
	return append(b, bytes.Repeat([]byte{0xa5}, l)...)
}

// reply is a listener's handshake: length ‖ message 2 (l bytes).
func reply(l int) []byte {
	return append([]byte{byte(l >> 8), byte(l)}, bytes.Repeat([]byte{0x5a}, l)...)
}

// records returns n records of testRecord bytes with distinct contents.
func records(n int, seed byte) []byte {
	var b []byte
	for i := range n {
		b = binary.BigEndian.AppendUint16(b, testF)
		for j := range testF {
			b = append(b, seed^byte(i*7+j))
		}
	}
	return b
}

// Handshake sizes of the synthetic links: an NK message 1 and the reply.
const (
	msg1Len = 81
	msg2Len = 48
	upHS    = 3 + msg1Len // dialer bytes before the first record
	downHS  = 2 + msg2Len // listener bytes before the first record
)

// open runs a link's TCP and Noise handshakes from ms(start) to
// ms(start+4).
func (f *flow) open(start int, kind byte) {
	f.syn(ms(start))
	f.synAck(ms(start + 1))
	f.segAck(ms(start+2), true, 0, 0, nil)
	f.segAck(ms(start+3), true, 0, 0, hello(kind, msg1Len))
	f.segAck(ms(start+4), false, 0, upHS, reply(msg2Len))
}

// oneWay is the standard scenario: a client link carrying five records
// dialer → listener in three segments, the first record split across
// two, three records in one segment:
//
//	A = R[0:150]   at 10 ms: record 0
//	B = R[150:400] at 20 ms: records 1, 2, 3
//	C = R[400:500] at 30 ms: record 4
func oneWay(b *builder, isnUp, isnDown uint32) (f *flow, r []byte) {
	f = b.flow("127.0.0.1:40000", "127.0.0.1:9000", isnUp, isnDown)
	f.open(0, 2)
	r = records(5, 1)
	f.seg(ms(10), true, upHS, r[0:150])
	f.seg(ms(20), true, upHS+150, r[150:400])
	f.seg(ms(30), true, upHS+400, r[400:500])
	return f, r
}

// closeFlow ends both directions at ms(at).
func (f *flow) close(at, upLen, downLen int) {
	f.fin(ms(at), true, upLen)
	f.fin(ms(at+1), false, downLen)
}

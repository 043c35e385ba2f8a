package capture

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/sealnet/sealnet/mixnet"
)

// want is an expected record: its time in ms, its conn and direction.
type want struct {
	at   int
	conn int32
	up   bool
}

func up(at ...int) []want {
	var w []want
	for _, a := range at {
		w = append(w, want{a, 0, true})
	}
	return w
}

func mustRead(t *testing.T, file []byte) *Capture {
	t.Helper()
	c, err := Read(bytes.NewReader(file), testRecord)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func checkRecords(t *testing.T, c *Capture, w []want) {
	t.Helper()
	if len(c.Records) != len(w) {
		t.Fatalf("%d records, want %d: %+v\nstats %+v", len(c.Records), len(w), c.Records, c.Stats)
	}
	for i, r := range c.Records {
		if !r.T.Equal(ms(w[i].at)) || r.Conn != w[i].conn || r.Up != w[i].up {
			t.Errorf("record %d: %v conn %d up %v, want +%d ms conn %d up %v",
				i, r.T.Sub(t0), r.Conn, r.Up, w[i].at, w[i].conn, w[i].up)
		}
	}
}

func checkConns(t *testing.T, c *Capture, kinds ...byte) {
	t.Helper()
	if len(c.Conns) != len(kinds) || c.Stats.Links != int64(len(kinds)) {
		t.Fatalf("%d conns (stats %d), want %d: %+v", len(c.Conns), c.Stats.Links, len(kinds), c.Conns)
	}
	for i, k := range kinds {
		if c.Conns[i].Kind != k {
			t.Errorf("conn %d: kind %d, want %d", i, c.Conns[i].Kind, k)
		}
	}
}

func TestRecordSize(t *testing.T) {
	// docs/link.md §3: records of 2,596 bytes for the default geometry.
	if got := RecordSize(mixnet.DefaultGeometry()); got != 2596 {
		t.Fatalf("RecordSize(default) = %d, want 2596", got)
	}
}

func TestOneWayLink(t *testing.T) {
	b := newBuilder(layers.LinkTypeEthernet)
	f, _ := oneWay(b, 1000, 5000)
	f.close(40, upHS+500, downHS)
	for name, file := range map[string][]byte{"pcap": b.pcap(), "pcapng": b.pcapng()} {
		t.Run(name, func(t *testing.T) {
			c := mustRead(t, file)
			checkConns(t, c, 2)
			checkRecords(t, c, up(10, 20, 20, 20, 30))
			want := Conn{Dialer: netip.MustParseAddrPort("127.0.0.1:40000"), Listener: netip.MustParseAddrPort("127.0.0.1:9000"), Kind: 2, Opened: ms(0)}
			if c.Conns[0] != want {
				t.Errorf("conn %+v, want %+v", c.Conns[0], want)
			}
			s := c.Stats
			if s.Packets != 10 || s.TCPSegments != 10 || s.Connections != 1 || !s.First.Equal(ms(0)) || !s.Last.Equal(ms(41)) {
				t.Errorf("stats %+v", s)
			}
			if s.NotLinks+s.LateJoined+s.Unparsed+s.Broken+s.Gaps+s.Retransmitted+s.Reordered != 0 || s.TruncatedFile {
				t.Errorf("unexpected problems: %+v", s)
			}
		})
	}
}

func TestSequenceWraparound(t *testing.T) {
	// Sequence numbers cross 2^32 before, inside and after the records,
	// with a segment out of order and retransmissions on either side of
	// the wrap.
	for _, isn := range []uint32{0xffffffff - upHS - 200, 0xffffffff - 40, 0xffffffff, 0xffffff00} {
		b := newBuilder(layers.LinkTypeEthernet)
		f := b.flow("127.0.0.1:40000", "127.0.0.1:9000", isn, ^isn)
		f.open(0, 2)
		r := records(5, 1)
		f.seg(ms(10), true, upHS, r[0:150])
		f.seg(ms(20), true, upHS+400, r[400:500])
		f.seg(ms(25), true, upHS, r[0:150])
		f.seg(ms(30), true, upHS+150, r[150:400])
		f.seg(ms(35), true, upHS+150, r[150:400])
		f.seg(ms(36), true, 0, hello(2, msg1Len))
		f.close(40, upHS+500, downHS)
		c := mustRead(t, b.pcap())
		checkConns(t, c, 2)
		checkRecords(t, c, up(10, 20, 30, 30, 30))
		if c.Stats.Retransmitted != 150+250+upHS || c.Stats.Reordered != 1 {
			t.Errorf("isn %#x: stats %+v", isn, c.Stats)
		}
	}
}

func TestRetransmission(t *testing.T) {
	b := newBuilder(layers.LinkTypeEthernet)
	f, r := oneWay(b, 1000, 5000)
	f.seg(ms(35), true, upHS+150, r[150:400]) // B again: nothing new
	f.seg(ms(36), true, upHS+350, r[350:500]) // overlaps B and C
	f.seg(ms(37), true, upHS, hello(2, msg1Len)[upHS-10:])
	c := mustRead(t, b.pcap())
	checkRecords(t, c, up(10, 20, 20, 20, 30))
	if got, want := c.Stats.Retransmitted, int64(250+150+10); got != want {
		t.Errorf("retransmitted %d bytes, want %d", got, want)
	}
}

func TestPartialRetransmissionCompletesRecord(t *testing.T) {
	// The segment carrying record 4's last byte is a retransmission that
	// overlaps bytes already seen: the record is timed by it.
	b := newBuilder(layers.LinkTypeEthernet)
	f := b.flow("10.0.0.1:5000", "10.0.0.2:443", 7, 9)
	f.open(0, 1)
	r := records(2, 3)
	f.seg(ms(10), true, upHS, r[:150])
	f.seg(ms(20), true, upHS+120, r[120:200])
	c := mustRead(t, b.pcap())
	checkConns(t, c, 1)
	checkRecords(t, c, up(10, 20))
}

func TestOutOfOrder(t *testing.T) {
	b := newBuilder(layers.LinkTypeEthernet)
	f := b.flow("127.0.0.1:40000", "127.0.0.1:9000", 1000, 5000)
	f.open(0, 2)
	r := records(5, 1)
	f.seg(ms(10), true, upHS, r[0:150])
	f.seg(ms(20), true, upHS+400, r[400:500]) // C before B
	f.seg(ms(21), true, upHS+400, r[400:500]) // and again
	f.seg(ms(30), true, upHS+150, r[150:400])
	c := mustRead(t, b.pcap())
	// Record 4's last byte crossed the wire at 20 ms, ahead of the hole.
	checkRecords(t, c, up(10, 20, 30, 30, 30))
	if c.Stats.Reordered != 1 || c.Stats.Retransmitted != 100 || c.Stats.Gaps != 0 {
		t.Errorf("stats %+v", c.Stats)
	}
}

func TestGapAtEnd(t *testing.T) {
	b := newBuilder(layers.LinkTypeEthernet)
	f := b.flow("127.0.0.1:40000", "127.0.0.1:9000", 1000, 5000)
	f.open(0, 2)
	r := records(5, 1)
	f.seg(ms(10), true, upHS, r[0:150])
	f.seg(ms(20), true, upHS+400, r[400:500]) // B never captured
	c := mustRead(t, b.pcap())
	checkRecords(t, c, up(10))
	if c.Stats.Gaps != 1 {
		t.Errorf("gaps %d, want 1", c.Stats.Gaps)
	}
}

func TestReorderBufferBounded(t *testing.T) {
	b := newBuilder(layers.LinkTypeEthernet)
	f, _ := oneWay(b, 1000, 5000) // C arrives after B: nothing held
	g := b.flow("127.0.0.1:40001", "127.0.0.1:9000", 1000, 5000)
	g.open(50, 2)
	r := records(5, 1)
	g.seg(ms(60), true, upHS+400, r[400:500]) // held: 100 bytes
	g.seg(ms(61), true, upHS+300, r[300:400]) // 200: over the limit
	g.seg(ms(62), true, upHS, r[:300])
	_ = f
	lim := defaultLimits
	lim.heldSpan = 150
	c, err := read(bytes.NewReader(b.pcap()), testRecord, lim)
	if err != nil {
		t.Fatal(err)
	}
	checkConns(t, c, 2, 2)
	// The second link's direction is abandoned when the buffer overflows.
	checkRecords(t, c, up(10, 20, 20, 20, 30))
	if c.Stats.Broken != 1 || c.Stats.Reordered != 1 {
		t.Errorf("stats %+v", c.Stats)
	}
}

func TestDialerHeaderNeverRead(t *testing.T) {
	// The dialer's first bytes are never captured and its direction
	// breaks while the listener answers and sends records: not a link
	// (found by FuzzRead).
	b := newBuilder(layers.LinkTypeEthernet)
	f := b.flow("127.0.0.1:50000", "127.0.0.1:9001", 10, 20)
	f.syn(ms(0))
	f.synAck(ms(1))
	f.seg(ms(3), true, 50, hello(3, msg1Len)[50:])
	f.seg(ms(4), false, 0, reply(msg2Len))
	f.seg(ms(5), false, downHS, records(2, 2))
	f.seg(ms(6), true, upHS, records(1, 1))
	lim := defaultLimits
	lim.heldSpan = 100
	c, err := read(bytes.NewReader(b.pcap()), testRecord, lim)
	if err != nil {
		t.Fatal(err)
	}
	checkConns(t, c)
	if len(c.Records) != 0 || c.Stats.Unparsed != 1 || c.Stats.Broken != 1 {
		t.Errorf("%d records, stats %+v", len(c.Records), c.Stats)
	}
}

func TestSnaplen(t *testing.T) {
	const headers = 14 + 20 + 20 // Ethernet, IPv4, TCP without options
	for _, tc := range []struct {
		snap     int
		unparsed bool
	}{
		{headers + 3, false}, // the dialer's kind and length: enough
		{headers + 2, true},  // the dialer's length cut
		{headers, true},
	} {
		b := newBuilder(layers.LinkTypeEthernet)
		b.snap = tc.snap
		f, _ := oneWay(b, 1000, 5000)
		f.close(40, upHS+500, downHS)
		for name, file := range map[string][]byte{"pcap": b.pcap(), "pcapng": b.pcapng()} {
			c := mustRead(t, file)
			if tc.unparsed {
				if len(c.Conns) != 0 || len(c.Records) != 0 || c.Stats.Unparsed != 1 {
					t.Errorf("snaplen %d %s: %d conns, %d records, stats %+v", tc.snap, name, len(c.Conns), len(c.Records), c.Stats)
				}
				continue
			}
			checkConns(t, c, 2)
			checkRecords(t, c, up(10, 20, 20, 20, 30))
		}
	}
}

func TestNotLink(t *testing.T) {
	b := newBuilder(layers.LinkTypeEthernet)
	h := b.flow("127.0.0.1:41000", "127.0.0.1:8080", 1, 2)
	h.syn(ms(0))
	h.synAck(ms(1))
	h.seg(ms(2), true, 0, []byte("GET /v1/consensus HTTP/1.1\r\nHost: dirauth\r\n\r\n"))
	h.seg(ms(3), false, 0, []byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"))
	// A first byte that is a kind, but a length no link uses.
	k := b.flow("127.0.0.1:41001", "127.0.0.1:8080", 1, 2)
	k.syn(ms(4))
	k.seg(ms(5), true, 0, []byte{1, 0x10, 0})
	// A connection that never carries data.
	e := b.flow("127.0.0.1:41002", "127.0.0.1:8080", 1, 2)
	e.syn(ms(6))
	e.raw(ms(7), false, "RA", 0, 2, nil)
	c := mustRead(t, b.pcap())
	checkConns(t, c)
	if len(c.Records) != 0 || c.Stats.NotLinks != 2 || c.Stats.Empty != 1 || c.Stats.Connections != 3 {
		t.Errorf("%d records, stats %+v", len(c.Records), c.Stats)
	}
}

func TestUserLinkBothWays(t *testing.T) {
	b := newBuilder(layers.LinkTypeEthernet)
	f := b.flow("[::1]:50000", "[::1]:9001", 0xfffffff0, 77)
	f.open(0, 3)
	req, resp := records(3, 1), records(4, 2)
	f.seg(ms(10), true, upHS, req[:200])          // requests 0, 1
	f.seg(ms(12), false, downHS, resp[:50])       // response 0 begins
	f.seg(ms(14), false, downHS+50, resp[50:300]) // responses 0, 1, 2
	f.seg(ms(16), true, upHS+200, req[200:])      // request 2
	f.seg(ms(18), false, downHS+300, resp[300:])  // response 3
	f.close(20, upHS+300, downHS+400)
	c := mustRead(t, b.pcap())
	checkConns(t, c, 3)
	checkRecords(t, c, []want{{10, 0, true}, {10, 0, true}, {14, 0, false}, {14, 0, false}, {14, 0, false}, {16, 0, true}, {18, 0, false}})
}

func TestMissingSynAck(t *testing.T) {
	// The listener's stream starts where the dialer's acknowledgement says.
	b := newBuilder(layers.LinkTypeEthernet)
	f := b.flow("127.0.0.1:50000", "127.0.0.1:9001", 10, 20)
	f.syn(ms(0))
	f.segAck(ms(2), true, 0, 0, nil)
	f.segAck(ms(3), true, 0, 0, hello(3, msg1Len))
	f.segAck(ms(4), false, 0, upHS, reply(msg2Len))
	f.seg(ms(10), false, downHS, records(1, 2))
	c := mustRead(t, b.pcap())
	checkConns(t, c, 3)
	checkRecords(t, c, []want{{10, 0, false}})
}

func TestLateJoined(t *testing.T) {
	b := newBuilder(layers.LinkTypeEthernet)
	late := b.flow("127.0.0.1:40000", "127.0.0.1:9000", 1000, 5000)
	r := records(3, 1)
	late.seg(ms(1), true, upHS, r[:100]) // SYN and handshake before the capture
	late.seg(ms(2), false, downHS, nil)
	late.seg(ms(3), true, upHS+100, r[100:])
	f := b.flow("127.0.0.1:40001", "127.0.0.1:9000", 1000, 5000)
	f.open(5, 1)
	f.seg(ms(10), true, upHS, r)
	c := mustRead(t, b.pcap())
	checkConns(t, c, 1)
	checkRecords(t, c, up(10, 10, 10))
	if c.Stats.LateJoined != 1 || c.Stats.Connections != 1 {
		t.Errorf("stats %+v", c.Stats)
	}
	if c.Conns[0].Dialer.Port() != 40001 {
		t.Errorf("conn %+v", c.Conns[0])
	}
}

func TestReusedTuple(t *testing.T) {
	b := newBuilder(layers.LinkTypeEthernet)
	f, _ := oneWay(b, 1000, 5000)
	f.close(40, upHS+500, downHS)
	g := b.flow("127.0.0.1:40000", "127.0.0.1:9000", 900_000, 800_000) // same 4-tuple
	g.open(100, 1)
	g.seg(ms(110), true, upHS, records(1, 9))
	c := mustRead(t, b.pcap())
	checkConns(t, c, 2, 1)
	w := up(10, 20, 20, 20, 30)
	checkRecords(t, c, append(w, want{110, 1, true}))
}

func TestRetransmittedSyn(t *testing.T) {
	b := newBuilder(layers.LinkTypeEthernet)
	f := b.flow("127.0.0.1:40000", "127.0.0.1:9000", 1000, 5000)
	f.syn(ms(0))
	f.syn(ms(1000)) // the same SYN again: the same connection
	f.synAck(ms(1001))
	f.segAck(ms(1003), true, 0, 0, hello(2, msg1Len))
	f.segAck(ms(1004), false, 0, upHS, reply(msg2Len))
	f.seg(ms(1010), true, upHS, records(1, 1))
	c := mustRead(t, b.pcap())
	checkConns(t, c, 2)
	checkRecords(t, c, up(1010))
	if !c.Conns[0].Opened.Equal(ms(0)) || c.Stats.Connections != 1 {
		t.Errorf("conn %+v, stats %+v", c.Conns[0], c.Stats)
	}
}

func TestWrongRecordSize(t *testing.T) {
	b := newBuilder(layers.LinkTypeEthernet)
	oneWay(b, 1000, 5000)
	c, err := Read(bytes.NewReader(b.pcap()), testRecord+1)
	if err != nil {
		t.Fatal(err)
	}
	checkConns(t, c, 2)
	if len(c.Records) != 0 || c.Stats.BadFrames != 1 || c.Stats.Broken != 1 {
		t.Errorf("%d records, stats %+v", len(c.Records), c.Stats)
	}
}

func TestLinkTypes(t *testing.T) {
	for _, tc := range []struct {
		lt     layers.LinkType
		dialer string
	}{
		{layers.LinkTypeEthernet, "[::1]:40000"},
		{layers.LinkTypeRaw, "127.0.0.1:40000"},
		{layers.LinkTypeRaw, "[::1]:40000"},
		{layers.LinkTypeNull, "127.0.0.1:40000"},
		{layers.LinkTypeNull, "[::1]:40000"},
		{layers.LinkTypeLinuxSLL, "127.0.0.1:40000"},
		{layers.LinkTypeLinuxSLL2, "[fd00::1]:40000"},
	} {
		b := newBuilder(tc.lt)
		d := netip.MustParseAddrPort(tc.dialer)
		f := b.flow(tc.dialer, netip.AddrPortFrom(d.Addr(), 9000).String(), 1000, 5000)
		f.open(0, 1)
		f.seg(ms(10), true, upHS, records(2, 1))
		for name, file := range map[string][]byte{"pcap": b.pcap(), "pcapng": b.pcapng()} {
			c := mustRead(t, file)
			if len(c.Conns) != 1 || c.Conns[0].Dialer != d || len(c.Records) != 2 {
				t.Errorf("%v %s %s: conns %+v, %d records, stats %+v", tc.lt, tc.dialer, name, c.Conns, len(c.Records), c.Stats)
			}
		}
	}
}

func TestNonTCPIgnored(t *testing.T) {
	b := newBuilder(layers.LinkTypeEthernet)
	f, _ := oneWay(b, 1000, 5000)
	_ = f
	// An ARP frame and a UDP datagram.
	arp := append(make([]byte, 12), 0x08, 0x06)
	arp = append(arp, make([]byte, 28)...)
	b.frames = append(b.frames, frame{capInfo(ms(50), len(arp)), arp})
	udp := []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x08, 0x00,
		0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1,
		0, 53, 0, 53, 0, 8, 0, 0}
	b.frames = append(b.frames, frame{capInfo(ms(51), len(udp)), udp})
	c := mustRead(t, b.pcap())
	checkRecords(t, c, up(10, 20, 20, 20, 30))
	if c.Stats.NonTCP != 2 || c.Stats.Packets != 10 {
		t.Errorf("stats %+v", c.Stats)
	}
}

func capInfo(t time.Time, n int) gopacket.CaptureInfo {
	return gopacket.CaptureInfo{Timestamp: t, Length: n, CaptureLength: n}
}

func TestConnCap(t *testing.T) {
	// Two links at once with room for one: the second is not tracked.
	b := newBuilder(layers.LinkTypeEthernet)
	f := b.flow("127.0.0.1:40000", "127.0.0.1:9000", 1, 2)
	g := b.flow("127.0.0.1:40001", "127.0.0.1:9000", 1, 2)
	f.open(0, 1)
	g.open(10, 1)
	f.seg(ms(20), true, upHS, records(1, 1))
	g.seg(ms(21), true, upHS, records(1, 1))
	f.close(30, upHS+testRecord, downHS)
	// Once the first has closed, a third fits.
	h := b.flow("127.0.0.1:40002", "127.0.0.1:9000", 1, 2)
	h.open(40, 1)
	h.seg(ms(50), true, upHS, records(1, 1))
	lim := defaultLimits
	lim.conns = 1
	c, err := read(bytes.NewReader(b.pcap()), testRecord, lim)
	if err != nil {
		t.Fatal(err)
	}
	checkConns(t, c, 1, 1)
	checkRecords(t, c, []want{{20, 0, true}, {50, 1, true}})
	if c.Stats.Untracked == 0 {
		t.Errorf("stats %+v", c.Stats)
	}
}

func TestRecordCap(t *testing.T) {
	b := newBuilder(layers.LinkTypeEthernet)
	oneWay(b, 1000, 5000)
	lim := defaultLimits
	lim.records = 3
	_, err := read(bytes.NewReader(b.pcap()), testRecord, lim)
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
}

func TestGzip(t *testing.T) {
	b := newBuilder(layers.LinkTypeEthernet)
	oneWay(b, 1000, 5000)
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write(b.pcapng())
	zw.Close()
	checkRecords(t, mustRead(t, z.Bytes()), up(10, 20, 20, 20, 30))
}

func TestTruncatedFile(t *testing.T) {
	b := newBuilder(layers.LinkTypeEthernet)
	oneWay(b, 1000, 5000)
	file := b.pcap()
	c := mustRead(t, file[:len(file)-20]) // the last packet cut short
	if !c.Stats.TruncatedFile || c.Stats.Packets != 7 {
		t.Errorf("stats %+v", c.Stats)
	}
	checkRecords(t, c, up(10, 20, 20, 20))
}

func TestErrors(t *testing.T) {
	for name, in := range map[string][]byte{
		"empty": nil,
		"text":  []byte("GET / HTTP/1.1\r\n\r\n"),
		"short": {0xd4, 0xc3, 0xb2, 0xa1, 2, 0},
		"gzip":  {0x1f, 0x8b, 8, 0},
	} {
		if _, err := Read(bytes.NewReader(in), testRecord); !errors.Is(err, ErrFormat) {
			t.Errorf("%s: err = %v, want ErrFormat", name, err)
		}
	}
	// A pcapng packet naming an interface the file never described.
	b := newBuilder(layers.LinkTypeEthernet)
	oneWay(b, 1000, 5000)
	file := b.pcapng()
	i := 0 // the first enhanced packet block
	for binary.LittleEndian.Uint32(file[i:]) != 6 {
		i += int(binary.LittleEndian.Uint32(file[i+4:]))
	}
	bad := bytes.Clone(file)
	bad[i+8] = 9
	if _, err := Read(bytes.NewReader(bad), testRecord); !errors.Is(err, ErrCorrupt) {
		t.Errorf("bad interface: err = %v, want ErrCorrupt", err)
	}
	if _, err := Read(bytes.NewReader(file), 2); err == nil {
		t.Error("record size 2 accepted")
	}
}

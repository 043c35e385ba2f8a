// Package capture is the observer's view of a sealnet network from the wire:
// given a packet capture (tcpdump, pcap or pcapng) of sealnet links, it
// tells which link each fixed-size record crossed, in which direction and
// when. That is what a passive adversary on the links holds, so
// traffic-analysis measurements can be run on real traffic instead of on
// what the nodes say they sent.
//
// It reads only lengths and timing: TCP sequence numbers, the IP length
// fields, the three clear bytes that open every link (docs/link.md §2:
// the kind and the length of the first Noise message), the listener's
// two-byte reply length and, where captured, each record's two-byte length
// field (to catch a wrong record size). It never decrypts anything, and
// needs no more of each packet than its headers, so a capture taken with a
// short snap length (tcpdump -s 128) is enough.
//
// Read reassembles every TCP connection by sequence number, recognizes
// sealnet links by their handshake header, skips the handshake and then
// cuts each direction into records of the fixed wire size (RecordSize):
// every record is timed by the capture timestamp of the segment carrying
// its last byte. Start runs tcpdump to take such a capture.
package capture

import (
	"bufio"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"
	"slices"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/sealnet/sealnet/mixnet"
	"github.com/sealnet/sealnet/mixnet/link"
)

// Errors. Every error Read returns for a bad file wraps one of the first
// three; an error of the io.Reader itself is wrapped as it is (after the
// file header, in ErrCorrupt too: the pcap readers cannot tell them apart).
var (
	// ErrFormat: the input is not a pcap or pcapng file, or its file
	// header is unreadable.
	ErrFormat = errors.New("capture: not a pcap or pcapng capture")
	// ErrCorrupt: the file is damaged after its header.
	ErrCorrupt = errors.New("capture: damaged capture file")
	// ErrTooLarge: the capture holds more records or links than Read
	// keeps in memory.
	ErrTooLarge = errors.New("capture: capture too large")
	// ErrNoTcpdump: Start found no tcpdump binary.
	ErrNoTcpdump = errors.New("capture: tcpdump not found (apt-get install tcpdump)")
	// ErrPermission: tcpdump was not allowed to capture.
	ErrPermission = errors.New("capture: packet capture needs root or CAP_NET_RAW")
)

// RecordSize is the size on the wire of every record of a link carrying
// geometry g, in both directions and for every kind of link: the 2-byte
// length and the frame's ciphertext (2 + 1 + PacketSize + 16). It is the
// frameSize argument of Read.
func RecordSize(g mixnet.Geometry) int { return 2 + link.FrameSize(g) }

// Conn is one sealnet link: a TCP connection whose dialer opened it with a
// link handshake header.
type Conn struct {
	Dialer, Listener netip.AddrPort
	Kind             byte      // 1 peer, 2 client, 3 user (link.Kind)
	Opened           time.Time // the dialer's SYN
}

// Record is one fixed-size record that crossed a link.
type Record struct {
	// T is the capture timestamp of the segment that carried the record's
	// last byte.
	T    time.Time
	Conn int32 // index into Capture.Conns
	Up   bool  // true: dialer → listener; false: listener → dialer
}

// Capture is what an observer extracts from a capture file.
type Capture struct {
	// Conns are the sealnet links, in the order of their SYNs.
	Conns []Conn
	// Records are sorted by T; records with equal times keep the order in
	// which Read completed them.
	Records []Record
	Stats   Stats
}

// Stats counts what Read saw and what it had to skip. Non-zero LateJoined,
// Unparsed, Broken or Gaps mean that Records misses traffic.
type Stats struct {
	Packets     int64 // packets in the file
	TCPSegments int64 // TCP segments over IPv4 or IPv6
	// NonTCP: other packets (other protocols, IP fragments, undecodable
	// frames, packets cut before the end of their TCP header).
	NonTCP int64
	// Connections: TCP connections whose SYN was captured.
	Connections int64
	// Links: connections that were sealnet links (len(Capture.Conns)).
	Links int64
	// NotLinks: connections that did not open with a link handshake
	// header (HTTP to a directory authority, say). Skipped.
	NotLinks int64
	// Empty: connections over which the dialer sent nothing (refused,
	// scans, or the capture ended first).
	Empty int64
	// LateJoined: connections that carried data but whose SYN was not
	// captured (open before the capture started): where the streams
	// begin is unknown. Skipped.
	LateJoined int64
	// Unparsed: connections whose handshake header bytes were not
	// captured (a snap length below the headers?) or whose streams'
	// beginnings were lost. Skipped.
	Unparsed int64
	// Broken: directions abandoned midway: reordering beyond the buffer,
	// or a record whose length field was not frameSize-2 (see BadFrames).
	Broken int64
	// BadFrames: records whose captured length field was not
	// frameSize-2. Usually a frameSize for another geometry.
	BadFrames int64
	// Gaps: directions that ended with bytes that never arrived in the
	// capture (packets tcpdump dropped): the records after the hole are
	// lost.
	Gaps int64
	// Untracked: segments ignored because too many connections were
	// tracked at once.
	Untracked int64
	// Retransmitted: payload bytes seen more than once.
	Retransmitted int64
	// Reordered: segments that arrived ahead of missing bytes and were
	// held until the hole filled.
	Reordered int64
	// TruncatedFile: the file ends in the middle of a packet (tcpdump
	// killed, or the file still being written). What came before is read.
	TruncatedFile bool
	// First and Last are the earliest and latest packet timestamps.
	First, Last time.Time
}

// limits bound what Read holds in memory; tests shrink them.
type limits struct {
	conns     int   // connections tracked at once
	heldSpan  int64 // sequence space held out of order, per direction
	heldSegs  int   // segments held out of order, per direction
	heldBytes int   // captured bytes held out of order, in all
	records   int   // records in the result
	links     int   // links in the result
}

var defaultLimits = limits{
	conns:     100_000,
	heldSpan:  4 << 20,
	heldSegs:  8192,
	heldBytes: 64 << 20,
	records:   1 << 25, // 1 GiB of Records
	links:     1 << 22,
}

// Read reads a pcap or pcapng capture (optionally gzip-compressed) and
// returns the sealnet links in it and the records that crossed them.
// frameSize is the size of a record on the wire, RecordSize(geometry).
//
// Link types Ethernet (tcpdump -i lo on Linux), Linux cooked (SLL, SLL2),
// raw IP and BSD loopback are decoded, IPv4 and IPv6, TCP only; anything
// else is counted in Stats.NonTCP. Payload lengths come from the IP and TCP
// headers, never from the captured bytes, so a snap length of 128 is
// enough: of the payload only the first 3 bytes of the dialer's stream and
// the first 2 of the listener's must be captured.
func Read(r io.Reader, frameSize int) (*Capture, error) {
	return read(r, frameSize, defaultLimits)
}

func read(r io.Reader, frameSize int, lim limits) (*Capture, error) {
	if frameSize < 3 || frameSize > 2+math.MaxUint16 {
		return nil, fmt.Errorf("capture: record size %d is outside [3, %d]; pass capture.RecordSize(geometry)", frameSize, 2+math.MaxUint16)
	}
	src, err := open(r)
	if err != nil {
		return nil, err
	}
	rd := newReader(frameSize, lim)
	for {
		data, ci, lt, err := src.next()
		if err == io.EOF {
			break
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			rd.stats.TruncatedFile = true
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: after packet %d: %w (is the file complete and unmodified?)", ErrCorrupt, rd.stats.Packets, err)
		}
		rd.packet(data, ci, lt)
		if rd.err != nil {
			return nil, rd.err
		}
	}
	return rd.result(), nil
}

// source yields the packets of a pcap or pcapng file with their link type.
type source interface {
	next() ([]byte, gopacket.CaptureInfo, layers.LinkType, error)
}

type pcapSource struct {
	r  *pcapgo.Reader
	lt layers.LinkType
}

func (s pcapSource) next() ([]byte, gopacket.CaptureInfo, layers.LinkType, error) {
	data, ci, err := s.r.ZeroCopyReadPacketData()
	return data, ci, s.lt, err
}

type ngSource struct{ r *pcapgo.NgReader }

func (s ngSource) next() ([]byte, gopacket.CaptureInfo, layers.LinkType, error) {
	data, ci, err := s.r.ZeroCopyReadPacketData()
	if err != nil {
		return nil, ci, 0, err
	}
	// With WantMixedLinkType every packet names its interface's link type:
	// a pcapng file may hold several interfaces (tcpdump -i any, merges).
	lt, _ := ci.AncillaryData[0].(layers.LinkType)
	return data, ci, lt, nil
}

// open detects the file format by its magic number.
func open(r io.Reader) (source, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	magic, err := br.Peek(4)
	if err == io.EOF {
		return nil, fmt.Errorf("%w: %d-byte input; capture with tcpdump -w FILE", ErrFormat, len(magic))
	}
	if err != nil {
		return nil, fmt.Errorf("capture: read capture: %w", err)
	}
	if magic[0] == 0x1f && magic[1] == 0x8b {
		gz, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("%w: gzip: %w", ErrFormat, err)
		}
		br = bufio.NewReaderSize(gz, 64<<10)
		if magic, err = br.Peek(4); err != nil {
			return nil, fmt.Errorf("%w: gzip stream of %d bytes", ErrFormat, len(magic))
		}
	}
	switch string(magic) {
	case "\xd4\xc3\xb2\xa1", "\xa1\xb2\xc3\xd4", "\x4d\x3c\xb2\xa1", "\xa1\xb2\x3c\x4d":
		pr, err := pcapgo.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("%w: pcap file header: %w", ErrFormat, err)
		}
		return pcapSource{pr, pr.LinkType()}, nil
	case "\x0a\x0d\x0d\x0a":
		nr, err := pcapgo.NewNgReader(br, pcapgo.NgReaderOptions{WantMixedLinkType: true})
		if err != nil {
			return nil, fmt.Errorf("%w: pcapng section header: %w", ErrFormat, err)
		}
		return ngSource{nr}, nil
	}
	return nil, fmt.Errorf("%w: starts with %x; capture with tcpdump -w FILE (pcap or pcapng)", ErrFormat, magic)
}

// --- connections ------------------------------------------------------------

type flowKey struct{ a, b netip.AddrPort }

type connState uint8

const (
	tracking connState = iota
	done               // closed, rejected or joined late: packets ignored
)

type conn struct {
	state            connState
	id               int32 // index into reader.links, -1 until the conn is a link
	dialer, listener netip.AddrPort
	opened           time.Time
	isn              uint32    // the dialer's initial sequence number
	kind             byte      // from the dialer's header; 0 until it is read
	late             bool      // joined late: its SYN was not captured
	dir              [2]stream // 0: dialer → listener, 1: listener → dialer
	fin              [2]bool
}

// phase of a direction's parser.
type phase uint8

const (
	phHeader    phase = iota // reading the clear header: kind and length, or length
	phHandshake              // skipping the Noise handshake message
	phRecords                // counting records
	phStopped                // rejected or broken: nothing more is read
)

// stream is one direction of a connection: reassembly and parsing.
type stream struct {
	started  bool
	off      int64  // stream offset of the next byte expected (0: after SYN)
	seq      uint32 // its sequence number
	held     []segment
	heldSpan int64 // payload bytes of held, in sequence space
	sawData  bool  // some payload arrived, delivered or not

	phase phase
	hdr   [3]byte
	hdrN  int
	skip  int // handshake bytes still to skip
	pos   int // bytes of the current record seen
}

// segment is payload held ahead of a hole.
type segment struct {
	start int64
	n     int    // payload length on the wire
	data  []byte // its captured prefix
	t     time.Time
}

func (s *stream) begin(seq uint32) {
	s.started, s.off, s.seq = true, 0, seq
}

// reader is the state of one Read.
type reader struct {
	lim       limits
	frameSize int
	lenField  [2]byte // what every record's length field must be
	stats     Stats
	err       error

	conns       map[flowKey]*conn
	sweepCredit int
	heldBytes   int

	links   []Conn
	valid   []bool // links[i] is still a link
	records []Record

	dec decoder
}

func newReader(frameSize int, lim limits) *reader {
	rd := &reader{lim: lim, frameSize: frameSize, conns: make(map[flowKey]*conn)}
	rd.lenField = [2]byte{byte((frameSize - 2) >> 8), byte(frameSize - 2)}
	return rd
}

func (rd *reader) packet(data []byte, ci gopacket.CaptureInfo, lt layers.LinkType) {
	rd.stats.Packets++
	if t := ci.Timestamp; rd.stats.First.IsZero() || t.Before(rd.stats.First) {
		rd.stats.First = t
	}
	if t := ci.Timestamp; t.After(rd.stats.Last) {
		rd.stats.Last = t
	}
	// Bytes of the packet that were on the wire but not captured: the
	// fallback for IP length fields that say nothing (TSO, BIG TCP).
	extra := max(ci.Length-len(data), 0)
	seg, ok := rd.dec.decode(lt, data, extra)
	if !ok {
		rd.stats.NonTCP++
		return
	}
	rd.stats.TCPSegments++
	rd.segment(&seg, ci.Timestamp)
}

// lookup finds the connection of a segment from src to dst, and whether
// src is its dialer.
func (rd *reader) lookup(src, dst netip.AddrPort) (*conn, bool) {
	if c := rd.conns[flowKey{src, dst}]; c != nil {
		return c, true
	}
	if c := rd.conns[flowKey{dst, src}]; c != nil {
		return c, false
	}
	return nil, false
}

func (rd *reader) segment(s *tcpSegment, t time.Time) {
	c, up := rd.lookup(s.src, s.dst)
	if s.syn && !s.ack {
		if c != nil {
			if up && !c.late && c.isn == s.seq {
				return // the same SYN again
			}
			// A new SYN on a reused 4-tuple: the old connection is over.
			rd.finish(c)
			rd.remove(c)
		}
		c = rd.add(flowKey{s.src, s.dst}, t)
		if c == nil {
			return
		}
		rd.stats.Connections++
		c.isn = s.seq
		c.dir[0].begin(s.seq + 1)
		if s.n > 0 { // TCP Fast Open: data rides on the SYN
			rd.data(c, 0, s.seq+1, s.n, s.payload, t)
		}
		return
	}
	if c == nil {
		if s.n == 0 {
			// A bare ACK, FIN or RST: the tail of a connection that was
			// forgotten or began before the capture. Nothing to count.
			return
		}
		// Its SYN was not captured: where either stream begins is
		// unknown, so the connection is remembered only to be skipped.
		c = rd.add(flowKey{s.src, s.dst}, t)
		if c != nil {
			c.state, c.late = done, true
			rd.stats.LateJoined++
		}
		return
	}
	if c.state != tracking {
		return
	}
	d := 0
	if !up {
		d = 1
	}
	seq := s.seq
	switch {
	case s.syn && !up: // SYN-ACK: the listener's stream begins after it
		if !c.dir[1].started {
			c.dir[1].begin(s.seq + 1)
		}
		seq++
	case s.syn:
		return // a simultaneous open: not how links are made
	case up && s.ack && !c.dir[1].started && !c.dir[1].sawData:
		// The SYN-ACK was not captured; the dialer's acknowledgement
		// names the listener's first byte, as long as the listener has
		// sent nothing yet.
		c.dir[1].begin(s.ack32)
	}
	if s.rst {
		rd.finish(c)
		return
	}
	if s.n > 0 {
		rd.data(c, d, seq, s.n, s.payload, t)
	}
	if s.fin && c.state == tracking {
		c.fin[d] = true
		if c.fin[0] && c.fin[1] && len(c.dir[0].held) == 0 && len(c.dir[1].held) == 0 {
			rd.finish(c)
		}
	}
}

// add starts tracking a connection, or returns nil (counted) when too many
// are tracked.
func (rd *reader) add(k flowKey, t time.Time) *conn {
	if len(rd.conns) >= rd.lim.conns {
		rd.sweep()
		if len(rd.conns) >= rd.lim.conns {
			rd.stats.Untracked++
			return nil
		}
	}
	c := &conn{id: -1, dialer: k.a, listener: k.b, opened: t}
	rd.conns[k] = c
	return c
}

func (rd *reader) remove(c *conn) {
	if k := (flowKey{c.dialer, c.listener}); rd.conns[k] == c {
		delete(rd.conns, k)
	}
}

// sweep forgets finished connections to make room. A sweep costs a pass
// over the table, so when it frees little the next ones are skipped for a
// while: a table full of live connections must not make every new SYN
// cost a full pass.
func (rd *reader) sweep() {
	if rd.sweepCredit > 0 {
		rd.sweepCredit--
		return
	}
	freed := 0
	for k, c := range rd.conns {
		if c.state != tracking {
			delete(rd.conns, k)
			freed++
		}
	}
	if freed < rd.lim.conns/8 {
		rd.sweepCredit = rd.lim.conns / 8
	}
}

// rejection is why a connection is skipped.
type rejection int

const (
	notLink rejection = iota
	unparsed
	empty
)

// reject skips c, counting why once.
func (rd *reader) reject(c *conn, why rejection) {
	if c.state != tracking {
		return
	}
	switch why {
	case notLink:
		rd.stats.NotLinks++
	case unparsed:
		rd.stats.Unparsed++
	case empty:
		rd.stats.Empty++
	}
	rd.drop(c)
	if c.id >= 0 {
		rd.valid[c.id] = false
	}
}

// drop ends c and frees its buffers.
func (rd *reader) drop(c *conn) {
	c.state = done
	for d := range c.dir {
		rd.stop(&c.dir[d])
	}
}

// stop ends a direction's parsing and frees what it held.
func (rd *reader) stop(s *stream) {
	for _, h := range s.held {
		rd.heldBytes -= len(h.data)
	}
	s.held, s.heldSpan, s.phase = nil, 0, phStopped
}

// finish ends a connection at its close, its replacement or the end of
// the file, deciding what it was if that is still open.
func (rd *reader) finish(c *conn) {
	if c.state != tracking {
		return
	}
	for d := range c.dir {
		if len(c.dir[d].held) > 0 {
			rd.stats.Gaps++
		}
	}
	switch {
	case c.kind == 0 && !c.dir[0].sawData:
		rd.reject(c, empty)
	case c.kind == 0:
		// The dialer's header never completed: its bytes were lost, it
		// sent fewer than three, or the direction broke first.
		rd.reject(c, unparsed)
	default:
		rd.drop(c)
	}
}

// linkID returns c's index in rd.links, making c a link if it is not yet.
func (rd *reader) linkID(c *conn) int32 {
	if c.id < 0 {
		if len(rd.links) >= rd.lim.links {
			rd.err = fmt.Errorf("%w: more than %d links; split the capture (editcap -c, tcpdump -C)", ErrTooLarge, rd.lim.links)
			return 0
		}
		c.id = int32(len(rd.links))
		rd.links = append(rd.links, Conn{Dialer: c.dialer, Listener: c.listener, Opened: c.opened})
		rd.valid = append(rd.valid, true)
	}
	return c.id
}

// --- reassembly --------------------------------------------------------------

// data places n payload bytes starting at sequence number seq (data is
// their captured prefix) into direction d of c.
func (rd *reader) data(c *conn, d int, seq uint32, n int, data []byte, t time.Time) {
	s := &c.dir[d]
	s.sawData = true
	if s.phase == phStopped {
		return
	}
	if !s.started {
		// Only the listener's stream can be unstarted here: its SYN-ACK
		// and the dialer's acknowledgement were both missed.
		rd.reject(c, unparsed)
		return
	}
	// The signed 32-bit difference handles sequence-number wraparound.
	start := s.off + int64(int32(seq-s.seq))
	if start > s.off {
		rd.hold(c, d, segment{start: start, n: n, data: data, t: t})
		return
	}
	rd.place(c, d, segment{start: start, n: n, data: data, t: t})
	// Held segments the hole's filling made contiguous.
	for c.state == tracking && s.phase != phStopped && len(s.held) > 0 && s.held[0].start <= s.off {
		h := s.held[0]
		s.held = slices.Delete(s.held, 0, 1)
		s.heldSpan -= int64(h.n)
		rd.heldBytes -= len(h.data)
		rd.place(c, d, h)
	}
}

// place delivers a segment that starts at or before the next expected
// byte, dropping what was delivered already.
func (rd *reader) place(c *conn, d int, g segment) {
	s := &c.dir[d]
	if skip := s.off - g.start; skip > 0 {
		if skip >= int64(g.n) {
			rd.stats.Retransmitted += int64(g.n)
			return
		}
		rd.stats.Retransmitted += skip
		g.n -= int(skip)
		g.data = g.data[min(int(skip), len(g.data)):]
	}
	s.off += int64(g.n)
	s.seq += uint32(g.n)
	rd.parse(c, d, g.n, g.data, g.t)
}

// hold keeps a segment that arrived ahead of a hole, within the limits.
func (rd *reader) hold(c *conn, d int, g segment) {
	s := &c.dir[d]
	i, found := slices.BinarySearchFunc(s.held, g.start, func(h segment, start int64) int {
		return int(min(max(h.start-start, -1), 1))
	})
	if found && s.held[i].n >= g.n {
		rd.stats.Retransmitted += int64(g.n) // the same out-of-order segment again
		return
	}
	if s.heldSpan+int64(g.n) > rd.lim.heldSpan || len(s.held) >= rd.lim.heldSegs || rd.heldBytes+len(g.data) > rd.lim.heldBytes {
		rd.stats.Broken++
		rd.stop(s)
		return
	}
	rd.stats.Reordered++
	g.data = slices.Clone(g.data) // the packet buffer is reused
	s.held = slices.Insert(s.held, i, g)
	s.heldSpan += int64(g.n)
	rd.heldBytes += len(g.data)
}

// --- parsing -----------------------------------------------------------------

// parse consumes the next n bytes of direction d, of which data is the
// captured prefix, all carried by a segment captured at t.
func (rd *reader) parse(c *conn, d int, n int, data []byte, t time.Time) {
	s := &c.dir[d]
	hdrLen := 3 // kind ‖ length
	if d == 1 {
		hdrLen = 2 // length
	}
	for n > 0 && s.phase != phStopped && c.state == tracking && rd.err == nil {
		var k int
		switch s.phase {
		case phHeader:
			k = min(hdrLen-s.hdrN, n)
			if len(data) < k {
				rd.reject(c, unparsed) // the snap length cut the header
				return
			}
			copy(s.hdr[s.hdrN:], data[:k])
			s.hdrN += k
			if d == 0 && (s.hdr[0] < 1 || s.hdr[0] > 3) {
				rd.reject(c, notLink)
				return
			}
			if s.hdrN == hdrLen {
				l := int(s.hdr[hdrLen-2])<<8 | int(s.hdr[hdrLen-1])
				if l < 1 || l > 256 {
					rd.reject(c, notLink)
					return
				}
				id := rd.linkID(c)
				if d == 0 && rd.err == nil {
					c.kind = s.hdr[0]
					rd.links[id].Kind = c.kind
				}
				s.phase, s.skip = phHandshake, l
			}
		case phHandshake:
			k = min(s.skip, n)
			s.skip -= k
			if s.skip == 0 {
				s.phase = phRecords
			}
		case phRecords:
			k = min(rd.frameSize-s.pos, n)
			// Check the length field where it was captured: anything but
			// the frame size means this is not the record size of this
			// network, and counting on would be counting garbage.
			for i := 0; s.pos+i < 2 && i < k && i < len(data); i++ {
				if data[i] != rd.lenField[s.pos+i] {
					rd.stats.BadFrames++
					rd.stats.Broken++
					rd.stop(s)
					return
				}
			}
			s.pos += k
			if s.pos == rd.frameSize {
				s.pos = 0
				if len(rd.records) >= rd.lim.records {
					rd.err = fmt.Errorf("%w: more than %d records; split the capture (editcap -c, tcpdump -C)", ErrTooLarge, rd.lim.records)
					return
				}
				rd.records = append(rd.records, Record{T: t, Conn: rd.linkID(c), Up: d == 0})
			}
		}
		n -= k
		data = data[min(k, len(data)):]
	}
}

// result finishes every connection and builds the Capture.
func (rd *reader) result() *Capture {
	for _, c := range rd.conns {
		rd.finish(c)
	}
	// Links in the order of their SYNs; ids were handed out as their
	// first bytes were parsed.
	order := make([]int32, 0, len(rd.links))
	for i, ok := range rd.valid {
		if ok {
			order = append(order, int32(i))
		}
	}
	slices.SortStableFunc(order, func(a, b int32) int { return rd.links[a].Opened.Compare(rd.links[b].Opened) })
	index := make([]int32, len(rd.links))
	capt := &Capture{Conns: make([]Conn, len(order))}
	for i, id := range order {
		index[id] = int32(i)
		capt.Conns[i] = rd.links[id]
	}
	recs := rd.records[:0]
	for _, r := range rd.records {
		if rd.valid[r.Conn] {
			r.Conn = index[r.Conn]
			recs = append(recs, r)
		}
	}
	slices.SortStableFunc(recs, func(a, b Record) int { return a.T.Compare(b.T) })
	capt.Records = slices.Clip(recs)
	rd.stats.Links = int64(len(capt.Conns))
	capt.Stats = rd.stats
	return capt
}

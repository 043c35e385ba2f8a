package capture

import (
	"bytes"
	"errors"
	"os"
	"reflect"
	"testing"

	"github.com/gopacket/gopacket/layers"

	"github.com/sealnet/sealnet/internal/testkit/fuzzcheck"
)

// The FuzzRead seed corpus is written by writeSeeds from the synthetic
// capture builders; TestFuzzSeedsCurrent fails if it is stale. Regenerate
// with SEALNET_WRITE_SEEDS=1 go test ./internal/testbed/capture -run TestFuzzSeedsCurrent
// (or make testdata, which runs the one generator, internal/cmd/testdatagen).

func writeSeeds(root string) error {
	seeds := map[string][]byte{}

	b := newBuilder(layers.LinkTypeEthernet)
	f, _ := oneWay(b, 1000, 5000)
	f.close(40, upHS+500, downHS)
	seeds["pcap-client-link"] = b.pcap()

	b = newBuilder(layers.LinkTypeEthernet)
	f = b.flow("[::1]:50000", "[::1]:9001", 0xfffffff0, 77)
	f.open(0, 3)
	req, resp := records(2, 1), records(2, 2)
	f.seg(ms(10), true, upHS, req)
	f.seg(ms(12), false, downHS, resp[:50])
	f.seg(ms(14), false, downHS+50, resp[50:])
	f.close(20, upHS+200, downHS+200)
	seeds["pcapng-user-link-ipv6"] = b.pcapng()

	b = newBuilder(layers.LinkTypeEthernet)
	b.snap = 14 + 20 + 20 + 3
	f = b.flow("127.0.0.1:40000", "127.0.0.1:9000", 0xffffff80, 5000)
	f.open(0, 1)
	r := records(4, 1)
	f.seg(ms(10), true, upHS, r[0:150])
	f.seg(ms(20), true, upHS+300, r[300:400]) // out of order
	f.seg(ms(30), true, upHS+150, r[150:300])
	f.seg(ms(31), true, upHS+150, r[150:300]) // retransmitted
	seeds["pcap-snaplen-reordered-wrap"] = b.pcap()

	b = newBuilder(layers.LinkTypeLinuxSLL2)
	h := b.flow("127.0.0.1:41000", "127.0.0.1:8080", 1, 2)
	h.syn(ms(0))
	h.synAck(ms(1))
	h.seg(ms(2), true, 0, []byte("GET / HTTP/1.1\r\n\r\n"))
	late := b.flow("127.0.0.1:40000", "127.0.0.1:9000", 1000, 5000)
	late.seg(ms(3), true, upHS, records(1, 1))
	f = b.flow("127.0.0.1:40001", "127.0.0.1:9000", 1000, 5000)
	f.open(4, 2)
	f.seg(ms(10), true, upHS, records(1, 1))
	f.raw(ms(11), false, "RA", 5000+1+downHS, 0, nil)
	seeds["pcap-sll2-http-late-rst"] = b.pcap()

	b = newBuilder(layers.LinkTypeNull)
	f = b.flow("127.0.0.1:40000", "127.0.0.1:9000", 1, 2)
	f.open(0, 1)
	f.seg(ms(10), true, upHS, records(1, 1))
	f.close(20, upHS+testRecord, downHS)
	f = b.flow("127.0.0.1:40000", "127.0.0.1:9000", 900, 800) // reused
	f.open(30, 2)
	f.seg(ms(40), true, upHS, records(1, 2))
	seeds["pcapng-null-reused-tuple"] = b.pcapng()

	for name, v := range seeds {
		if err := fuzzcheck.WriteSeed(root, "FuzzRead", name, v); err != nil {
			return err
		}
	}
	return nil
}

func TestFuzzSeedsCurrent(t *testing.T) {
	fuzzcheck.CheckSeeds(t, "internal/testbed/capture", writeSeeds)
}

// fuzzLimits are small, so that the fuzzer reaches every cap.
var fuzzLimits = limits{conns: 3, heldSpan: 1000, heldSegs: 4, heldBytes: 2000, records: 64, links: 4}

// FuzzRead: any input gives an error wrapping a sentinel, or a capture
// whose records are sorted and name existing links, the same on a second
// read.
func FuzzRead(f *testing.F) {
	fuzzcheck.RequireCorpus(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := read(bytes.NewReader(data), testRecord, fuzzLimits)
		if err != nil {
			if !errors.Is(err, ErrFormat) && !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("error wraps no sentinel: %v", err)
			}
			return
		}
		s := c.Stats
		if s.Links != int64(len(c.Conns)) || s.Links > s.Connections || s.Packets != s.TCPSegments+s.NonTCP {
			t.Fatalf("inconsistent stats %+v with %d conns", s, len(c.Conns))
		}
		for i, k := range c.Conns {
			if k.Kind < 1 || k.Kind > 3 || (i > 0 && k.Opened.Before(c.Conns[i-1].Opened)) {
				t.Fatalf("conn %d: %+v", i, k)
			}
		}
		for i, r := range c.Records {
			if r.Conn < 0 || int(r.Conn) >= len(c.Conns) {
				t.Fatalf("record %d names conn %d of %d", i, r.Conn, len(c.Conns))
			}
			if i > 0 && r.T.Before(c.Records[i-1].T) {
				t.Fatalf("record %d at %v before record %d at %v", i, r.T, i-1, c.Records[i-1].T)
			}
		}
		again, err := read(bytes.NewReader(data), testRecord, fuzzLimits)
		if err != nil || !reflect.DeepEqual(c, again) {
			t.Fatalf("a second read differs: %v", err)
		}
	})
}

// TestFuzzCorpusIsValid: every seed is a capture with a link and records,
// so the fuzzer starts past the format checks.
func TestFuzzCorpusIsValid(t *testing.T) {
	entries, err := os.ReadDir("testdata/fuzz/FuzzRead")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		raw, err := fuzzcheck.ReadBytesSeed("FuzzRead", e.Name())
		if err != nil {
			t.Fatal(err)
		}
		c, err := read(bytes.NewReader(raw), testRecord, fuzzLimits)
		if err != nil || len(c.Conns) == 0 || len(c.Records) == 0 {
			t.Errorf("%s: %v, %d conns, %d records", e.Name(), err, len(c.Conns), len(c.Records))
		}
	}
}

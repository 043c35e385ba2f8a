package capture

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/sealnet/sealnet/internal/testkit/linktest"
	"github.com/sealnet/sealnet/mixnet"
	"github.com/sealnet/sealnet/mixnet/link"
)

// TestRealCapture captures real links on 127.0.0.1 with tcpdump and reads
// them back: a client link carrying 50 packets (one way), and a user link
// carrying requests and responses both ways. Skipped without tcpdump or
// the right to capture, unless SEALNET_REQUIRE_CAPTURE=1.
func TestRealCapture(t *testing.T) {
	t.Run("client", func(t *testing.T) { realLink(t, link.KindClient, 50, 0) })
	t.Run("user", func(t *testing.T) { realLink(t, link.KindUser, 20, 10) })
}

// realLink runs a link of the given kind over which the dialer sends up
// packets and the listener down, captures it and checks what Read finds.
func realLink(t *testing.T, kind link.Kind, up, down int) {
	// The dialer's first record is its confirmation frame (docs/link.md
	// §2): one more record up than packets.
	wantUp := up + 1
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	path := filepath.Join(t.TempDir(), "link.pcap")

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	capt, err := Start(ctx, Options{Filter: fmt.Sprintf("tcp and host 127.0.0.1 and port %d", port), Path: path})
	if errors.Is(err, ErrNoTcpdump) || errors.Is(err, ErrPermission) {
		if os.Getenv("SEALNET_REQUIRE_CAPTURE") == "1" {
			t.Fatalf("SEALNET_REQUIRE_CAPTURE=1: %v", err)
		}
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer capt.Stop()

	geo := mixnet.DefaultGeometry()
	pkt := make([]byte, geo.PacketSize())
	scfg := linktest.Config(geo, "wire listener")
	got := make(chan error, 1)
	go func() {
		got <- func() error {
			nc, err := ln.Accept()
			if err != nil {
				return err
			}
			sc, err := link.Server(ctx, nc, scfg, []link.Kind{kind}, func(link.Kind, [32]byte, net.Addr) error { return nil })
			if err != nil {
				return err
			}
			defer sc.Close()
			for i := range up {
				if _, err := sc.ReadPacket(); err != nil {
					return fmt.Errorf("packet %d: %w", i, err)
				}
			}
			for range down {
				if err := sc.WritePacket(pkt); err != nil {
					return err
				}
			}
			return nil
		}()
	}()

	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	ccfg := link.Config{Geometry: geo}
	if kind == link.KindUser {
		ccfg = linktest.Config(geo, "wire user")
	}
	cc, err := link.Client(ctx, nc, ccfg, kind, linktest.Public(scfg.Static))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	dialer := nc.LocalAddr().(*net.TCPAddr).AddrPort()
	// Single writes, then batches that put several records in a segment.
	for range up / 2 {
		if err := cc.WritePacket(pkt); err != nil {
			t.Fatal(err)
		}
	}
	for range up / 2 / 5 {
		if _, err := cc.WritePackets([][]byte{pkt, pkt, pkt, pkt, pkt}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range down {
		if _, err := cc.ReadPacket(); err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
	}
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	cc.Close()

	// tcpdump writes each packet as it arrives (-U, --immediate-mode);
	// wait, bounded, until the last record is in the file before stopping.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := readFile(path); err == nil && len(c.Records) >= wantUp+down {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	st, err := capt.Stop()
	if err != nil {
		t.Fatal(err)
	}
	c, err := readFile(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("tcpdump %+v; Read %+v", st, c.Stats)
	if len(c.Conns) != 1 {
		t.Fatalf("%d conns, want 1: %+v", len(c.Conns), c.Conns)
	}
	if k := c.Conns[0]; k.Kind != byte(kind) || k.Dialer != dialer || k.Listener.Port() != uint16(port) {
		t.Errorf("conn %+v, want kind %d from %v to port %d", k, kind, dialer, port)
	}
	if len(c.Records) != wantUp+down {
		t.Fatalf("%d records, want %d", len(c.Records), wantUp+down)
	}
	n := 0
	for i, r := range c.Records {
		if r.Conn != 0 || r.T.Before(c.Conns[0].Opened) || (i > 0 && r.T.Before(c.Records[i-1].T)) {
			t.Fatalf("record %d: %+v", i, r)
		}
		if r.Up {
			n++
		}
	}
	if n != wantUp {
		t.Errorf("%d records up, %d down; want %d, %d", n, len(c.Records)-n, wantUp, down)
	}
	if st.Captured != c.Stats.Packets || st.Dropped != 0 {
		t.Errorf("tcpdump captured %d packets (dropped %d), the file holds %d", st.Captured, st.Dropped, c.Stats.Packets)
	}
}

func readFile(path string) (*Capture, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Read(bytes.NewReader(b), RecordSize(mixnet.DefaultGeometry()))
}

func TestStartCaptureErrors(t *testing.T) {
	ctx := context.Background()
	_, err := Start(ctx, Options{Binary: "/nonexistent/tcpdump", Path: filepath.Join(t.TempDir(), "x.pcap")})
	if !errors.Is(err, ErrNoTcpdump) {
		t.Errorf("missing binary: %v", err)
	}
	if _, err := Start(ctx, Options{}); err == nil {
		t.Error("no path accepted")
	}
	if _, err := Start(ctx, Options{Path: "x", Filter: "-w /etc/passwd"}); err == nil {
		t.Error("option as filter accepted")
	}
}

func TestTcpdumpCounts(t *testing.T) {
	text := "tcpdump: listening on lo, link-type EN10MB (Ethernet), snapshot length 128 bytes\n" +
		"1 packet captured\n412 packets received by filter\n3 packets dropped by kernel\n"
	if c, r, d := count(text, "captured"), count(text, "received by filter"), count(text, "dropped by kernel"); c != 1 || r != 412 || d != 3 {
		t.Errorf("counts %d %d %d", c, r, d)
	}
}

// fakeTcpdump writes a shell script standing in for tcpdump.
func fakeTcpdump(t *testing.T, script string) string {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("needs /bin/sh")
	}
	p := filepath.Join(t.TempDir(), "tcpdump")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestStartCapturePermission(t *testing.T) {
	bin := fakeTcpdump(t, `echo "tcpdump: lo: You don't have permission to perform this capture on that device" >&2
echo "(socket: Operation not permitted)" >&2
exit 1
`)
	_, err := Start(context.Background(), Options{Binary: bin, Path: filepath.Join(t.TempDir(), "x.pcap")})
	if !errors.Is(err, ErrPermission) {
		t.Fatalf("err = %v, want ErrPermission", err)
	}
}

func TestCapturerStop(t *testing.T) {
	// Reports listening, then the final counts when interrupted, as
	// tcpdump does; the arguments are checked on the way.
	bin := fakeTcpdump(t, `case "$*" in
*"-i lo -s 128 -U -n --immediate-mode -w /"*"tcp and port 1") ;;
*) echo "bad arguments: $*" >&2; exit 2 ;;
esac
trap 'echo "7 packets captured" >&2; echo "14 packets received by filter" >&2; echo "0 packets dropped by kernel" >&2; exit 0' INT
echo "tcpdump: listening on lo, link-type EN10MB (Ethernet), snapshot length 128 bytes" >&2
while :; do sleep 0.01; done
`)
	c, err := Start(context.Background(), Options{Binary: bin, Path: filepath.Join(t.TempDir(), "x.pcap"), Filter: "tcp and port 1"})
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.Stop()
	if err != nil || st != (CapturerStats{Captured: 7, Received: 14}) {
		t.Fatalf("Stop = %+v, %v", st, err)
	}
	if again, err := c.Stop(); err != nil || again != st {
		t.Fatalf("second Stop = %+v, %v", again, err)
	}
}

package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sealnet/sealnet/internal/config"
	"github.com/sealnet/sealnet/internal/testbed/testnet"
	"github.com/sealnet/sealnet/mailbox/proto"
	"github.com/sealnet/sealnet/mixnet"
	"github.com/sealnet/sealnet/mixnet/directory"
	"github.com/sealnet/sealnet/mixnet/link"
)

var hostileFull = flag.Bool("hostile.full", false, "TestHostileInput at full size: floods near max_conns and more of every attack (make hostile)")

// hostileSize is how much of each attack TestHostileInput sends to every
// listener, and how long it gives the daemons to shed it.
type hostileSize struct {
	truncated, oversized, random int // short-lived connections each
	halfOpen, slow, flood        int // connections held open each
	slowEvery                    time.Duration
	// rssGrowth is the most a daemon's resident memory may grow over its
	// level before the attack.
	rssGrowth int
	// shed bounds how long a daemon may keep a connection that never
	// completes a handshake or a request: the link handshake timeout
	// (10 s) or the HTTP servers' header timeout (5 s), plus slack for a
	// loaded machine.
	shed time.Duration
}

var (
	// hostileShort fits the CI budget (about a minute on 2 cores, the
	// network's start included).
	hostileShort = hostileSize{truncated: 20, oversized: 10, random: 20, halfOpen: 30, slow: 8, flood: 200,
		slowEvery: 500 * time.Millisecond, shed: 20 * time.Second, rssGrowth: 32 << 20}
	// hostileLong floods each link listener to near its max_conns (1024).
	hostileLong = hostileSize{truncated: 200, oversized: 100, random: 200, halfOpen: 100, slow: 50, flood: 800,
		slowEvery: 500 * time.Millisecond, shed: 25 * time.Second, rssGrowth: 64 << 20}
)

// rssBound is the resident memory no daemon may exceed during or after the
// attack (VmHWM, the peak, included). A daemon of this small network sits
// near 20-25 MiB idle and grows by 4-6 MiB under the short attack (about
// 2,000 connections over its seven listeners) and by 14-26 MiB under the
// full one (about 10,000); a buffer sized by what an attacker announces (a
// 64 KiB length prefix, a 1 GiB Content-Length) or one that outlives its
// connection would cross hostileSize.rssGrowth (a 256 KiB buffer held per
// handshaking connection, tried as a control, grows the link daemons by
// 60-80 MiB) or this bound.
const rssBound = 128 << 20

// daemonProc is one daemon of the network, run as its own process.
type daemonProc struct {
	name, proto string // proto of its link listener: "link" (relays), none for authorities
	cmd         *exec.Cmd
	log         string
	done        chan struct{}
}

// stop ends the daemon (SIGTERM, then SIGKILL after 10 s) and waits.
func (d *daemonProc) stop() {
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(10 * time.Second):
		d.cmd.Process.Kill()
		<-d.done
	}
}

func (d *daemonProc) alive() bool {
	select {
	case <-d.done:
		return false
	default:
		return true
	}
}

// target is one listening port of one daemon.
type target struct {
	daemon *daemonProc
	addr   string
	proto  string // "link" or "http"
	key    [32]byte
	client bool // accepts client links (entry mixes, providers)
	user   bool // accepts user links (providers)
}

// TestHostileInput starts a network as real `sealnet` processes (an
// authority, an entry mix, a middle mix, a provider), finds every port
// each process listens on, and sends each one, at once: truncated
// handshakes or requests, oversized length prefixes and headers, random
// bytes, silent (half-open) connections, slow-loris connections sending a
// byte every half second, and a flood of connections from loopback; on
// the link listeners that take client or user links also garbage after a
// completed Noise handshake. Then every process must still run, must have
// closed every connection that never completed a handshake within its
// timeout, must have stayed under a memory bound, and a real message must
// still go through the mix network into a mailbox and out of it. Last, a
// mix limited to 64 open files is flooded: it must pause accepting, not
// die, and carry a message after. -hostile.full (make hostile) floods each
// link listener to near its connection cap.
func TestHostileInput(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and starts four processes")
	}
	size := hostileShort
	if *hostileFull {
		size = hostileLong
	}
	start := time.Now()
	exe := sealnetBinary(t)
	nw, err := testnet.Create(filepath.Join(t.TempDir(), "net"), testnet.Spec{Layers: 2, Width: 1, Providers: 1,
		EpochPeriod: 20 * time.Minute, Metrics: true, LogLevel: "warn"})
	if err != nil {
		t.Fatal(err)
	}
	// Relays poll the directory quickly, so the network is ready in seconds.
	for _, n := range nw.Nodes {
		var c any
		if n.Role == "provider" {
			mc, err := nw.MailboxConfig(n)
			if err != nil {
				t.Fatal(err)
			}
			mc.Directory.Poll.UnmarshalText([]byte("200ms"))
			c = mc
		} else {
			rc, err := nw.RelayConfig(n)
			if err != nil {
				t.Fatal(err)
			}
			rc.Directory.Poll.UnmarshalText([]byte("200ms"))
			c = rc
		}
		var buf bytes.Buffer
		if err := config.Encode(&buf, c); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(nw.Path(n.Config), buf.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var procs []*daemonProc
	// run starts a daemon; with fds > 0, limited to that many open files.
	run := func(name, cmd, cfg string, fds int) *daemonProc {
		logPath := filepath.Join(t.TempDir(), name+".log")
		f, err := os.Create(logPath)
		if err != nil {
			t.Fatal(err)
		}
		d := &daemonProc{name: name, log: logPath, done: make(chan struct{}), cmd: exec.Command(exe, cmd, "--config", cfg)}
		if fds > 0 {
			d.cmd = exec.Command("/bin/sh", "-c", fmt.Sprintf(`ulimit -n %d && exec "$0" "$@"`, fds), exe, cmd, "--config", cfg)
		}
		d.cmd.Stdout, d.cmd.Stderr = f, f
		if err := d.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() {
			d.cmd.Wait()
			f.Close()
			close(d.done)
		}()
		t.Cleanup(func() {
			d.stop()
			if t.Failed() {
				log, _ := os.ReadFile(d.log)
				if len(log) > 4000 {
					log = log[len(log)-4000:]
				}
				t.Logf("%s's log (end):\n%s", d.name, log)
			}
		})
		procs = append(procs, d)
		return d
	}
	byName := map[string]*daemonProc{}
	for _, a := range nw.Authorities {
		byName[a.Name] = run(a.Name, "dirauth", nw.Path(a.Config), 0)
	}
	for _, n := range nw.Nodes {
		cmd := "relay"
		if n.Role == "provider" {
			cmd = "mailbox"
		}
		byName[n.Name] = run(n.Name, cmd, nw.Path(n.Config), 0)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	doc, err := nw.WaitDocument(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("network up in %v", time.Since(start).Round(time.Millisecond))

	// Every port the processes listen on, each attacked as what it is.
	var targets []target
	known := map[string]target{}
	for _, a := range nw.Authorities {
		known[strings.TrimPrefix(a.URL, "http://")] = target{daemon: byName[a.Name], proto: "http"}
	}
	for _, n := range nw.Nodes {
		d, ok := doc.Doc.Node(nodeID(doc.Doc, n.Name))
		if !ok {
			t.Fatalf("%s is not in the document", n.Name)
		}
		known[n.Address] = target{daemon: byName[n.Name], proto: "link", key: d.LinkKey,
			client: n.Role == "provider" || n.Layer == 1, user: n.Role == "provider"}
		if n.Metrics != "" {
			known[n.Metrics] = target{daemon: byName[n.Name], proto: "http"}
		}
	}
	for _, d := range procs {
		ports, err := listeningPorts(d.cmd.Process.Pid)
		if err != nil {
			t.Skipf("cannot read the listening sockets of %s: %v", d.name, err)
		}
		if len(ports) == 0 {
			t.Fatalf("%s listens on nothing", d.name)
		}
		for _, addr := range ports {
			tg, ok := known[addr]
			if !ok || tg.daemon != d {
				t.Fatalf("%s listens on %s, which this test does not know how to attack", d.name, addr)
			}
			tg.addr = addr
			targets = append(targets, tg)
		}
	}
	slices.SortFunc(targets, func(a, b target) int { return strings.Compare(a.daemon.name+a.addr, b.daemon.name+b.addr) })
	for _, tg := range targets {
		t.Logf("listener %-12s %-5s %s", tg.daemon.name, tg.proto, tg.addr)
	}

	// A real message before the attack: the harness works.
	deliverThroughMix(t, ctx, nw, 1)
	base := map[*daemonProc]int{}
	for _, d := range procs {
		base[d] = procMem(t, d, "VmRSS")
	}

	// Sample every daemon's memory while the attack runs.
	peak := map[*daemonProc]int{}
	var pmu sync.Mutex
	sampleDone := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Go(func() {
		for {
			for _, d := range procs {
				if rss := procMem(t, d, "VmRSS"); rss > 0 {
					pmu.Lock()
					peak[d] = max(peak[d], rss)
					pmu.Unlock()
				}
			}
			select {
			case <-sampleDone:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	})

	attackStart := time.Now()
	var wg sync.WaitGroup
	var emu sync.Mutex
	failures := map[string]int{} // message -> times
	fail := func(format string, args ...any) {
		emu.Lock()
		defer emu.Unlock()
		failures[fmt.Sprintf(format, args...)]++
	}
	stats := &attackStats{}
	for _, tg := range targets {
		attack(&wg, tg, size, stats, fail)
	}
	wg.Wait()
	close(sampleDone)
	sampler.Wait()
	t.Logf("attack: %d connections opened, %d refused or reset at once, %d held ones closed by the daemons (slowest after %v), in %v",
		stats.opened.Load(), stats.refused.Load(), stats.shed.Load(), time.Duration(stats.slowest.Load()).Round(time.Millisecond),
		time.Since(attackStart).Round(time.Millisecond))
	for _, f := range slices.Sorted(maps.Keys(failures)) {
		t.Errorf("%s (%d times)", f, failures[f])
	}

	for _, d := range procs {
		if !d.alive() {
			log, _ := os.ReadFile(d.log)
			t.Fatalf("%s exited during the attack (%v); log:\n%s", d.name, d.cmd.ProcessState, log)
		}
		now, hwm := procMem(t, d, "VmRSS"), procMem(t, d, "VmHWM")
		t.Logf("%-12s RSS %5.1f MiB before, %5.1f MiB peak during, %5.1f MiB after, high-water %5.1f MiB",
			d.name, mib(base[d]), mib(peak[d]), mib(now), mib(hwm))
		if hwm > rssBound || peak[d] > rssBound {
			t.Errorf("%s: resident memory reached %.1f MiB; bound %.0f MiB", d.name, mib(max(hwm, peak[d])), mib(rssBound))
		}
		if g := peak[d] - base[d]; g > size.rssGrowth {
			t.Errorf("%s: resident memory grew by %.1f MiB under the attack; bound %.0f MiB", d.name, mib(g), mib(size.rssGrowth))
		}
		if log, _ := os.ReadFile(d.log); bytes.Contains(log, []byte("panic")) {
			t.Errorf("%s logged a panic:\n%s", d.name, log)
		}
	}

	// And a real message after it.
	deliverThroughMix(t, ctx, nw, 2)

	// Descriptor exhaustion: the mix again, allowed only exhaustFDs open
	// files, and a flood that takes them all. Accepting must pause, not
	// end: the mix stays up and takes links again once the flood is gone.
	var mixNode testnet.Node
	for _, n := range nw.Nodes {
		if n.Role == "mix" {
			mixNode = n
		}
	}
	old := byName[mixNode.Name]
	old.stop()
	mix := run(mixNode.Name, "relay", nw.Path(mixNode.Config), exhaustFDs)
	var conns []net.Conn
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.DialTimeout("tcp", mixNode.Address, time.Second); err == nil {
			conns = append(conns, c)
			break
		}
		if time.Now().After(deadline) || !mix.alive() {
			log, _ := os.ReadFile(mix.log)
			t.Fatalf("the mix limited to %d files never listened:\n%s", exhaustFDs, log)
		}
	}
	for range 2 * exhaustFDs {
		c, err := net.DialTimeout("tcp", mixNode.Address, time.Second)
		if err != nil {
			break // the kernel's backlog is full too
		}
		conns = append(conns, c)
	}
	time.Sleep(time.Second)
	for _, c := range conns {
		c.Close()
	}
	log, _ := os.ReadFile(mix.log)
	if !bytes.Contains(log, []byte("cannot accept")) {
		t.Errorf("control: %d connections to a mix limited to %d files did not exhaust them; log:\n%s", len(conns), exhaustFDs, log)
	}
	if !mix.alive() {
		t.Fatalf("the mix exited when its file descriptors ran out (%v):\n%s", mix.cmd.ProcessState, log)
	}
	deliverThroughMix(t, ctx, nw, 3)
	t.Logf("total %v", time.Since(start).Round(time.Millisecond))
}

// exhaustFDs is the open-file limit of the mix in TestHostileInput's last
// phase: room for its journals, listeners and links, not for a flood.
const exhaustFDs = 64

func mib(b int) float64 { return float64(b) / (1 << 20) }

func nodeID(doc *directory.Document, name string) mixnet.NodeID {
	for _, l := range doc.Layers {
		for _, d := range l {
			if d.Name == name {
				return d.ID()
			}
		}
	}
	for _, d := range doc.Providers {
		if d.Name == name {
			return d.ID()
		}
	}
	return mixnet.NodeID{}
}

// procMem reads a field of /proc/PID/status (VmRSS, VmHWM) in bytes; 0 if
// the process is gone.
func procMem(t *testing.T, d *daemonProc, field string) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(d.cmd.Process.Pid) + "/status")
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			f := strings.Fields(v)
			if len(f) == 2 && f[1] == "kB" {
				n, _ := strconv.Atoi(f[0])
				return n << 10
			}
		}
	}
	return 0
}

// listeningPorts returns the TCP addresses process pid listens on: the
// sockets among its open files that /proc/PID/net/tcp{,6} lists in state
// LISTEN.
func listeningPorts(pid int) ([]string, error) {
	dir := "/proc/" + strconv.Itoa(pid)
	fds, err := os.ReadDir(dir + "/fd")
	if err != nil {
		return nil, err
	}
	inodes := map[string]bool{}
	for _, fd := range fds {
		l, err := os.Readlink(dir + "/fd/" + fd.Name())
		if err == nil && strings.HasPrefix(l, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = true
		}
	}
	var out []string
	for _, file := range []string{"tcp", "tcp6"} {
		b, err := os.ReadFile(dir + "/net/" + file)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 10 || f[3] != "0A" || !inodes[f[9]] {
				continue
			}
			host, port, _ := strings.Cut(f[1], ":")
			ip, err := hex.DecodeString(host)
			if err != nil {
				return nil, err
			}
			// /proc prints each 32-bit word in host (little-endian) order.
			for i := 0; i+4 <= len(ip); i += 4 {
				slices.Reverse(ip[i : i+4])
			}
			p, err := strconv.ParseUint(port, 16, 16)
			if err != nil {
				return nil, err
			}
			out = append(out, net.JoinHostPort(net.IP(ip).String(), strconv.FormatUint(p, 10)))
		}
	}
	return out, nil
}

// deliverThroughMix registers a fresh user at provider a over a user link and
// sends it an envelope through the mix network (a client link to the
// entry mix), until one arrives in its mailbox; at most a handful of
// tries.
func deliverThroughMix(t *testing.T, ctx context.Context, nw *testnet.Network, n int) {
	t.Helper()
	// The document of the epoch now (one may have begun since the last
	// message): its mix keys are the ones the relays take.
	doc, err := nw.WaitDocument(ctx)
	if err != nil {
		t.Fatal(err)
	}
	prov, ok := doc.Doc.Provider("a")
	if !ok {
		t.Fatal("no provider a in the document")
	}
	addr := fmt.Sprintf("user%d@%s", n, prov.Domain)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	x, _ := link.GenerateKey(rand.Reader)
	var token [32]byte
	rand.Read(token[:])
	owner, err := proto.Dial(ctx, doc.Doc.Geometry, prov.Address, prov.LinkKey, proto.DialOptions{Identity: x})
	if err != nil {
		t.Fatalf("user link to the provider: %v", err)
	}
	defer owner.Close()
	if err := owner.Register(ctx, addr, [32]byte(x.Public), ed, sha256.Sum256(token[:]), false); err != nil {
		t.Fatalf("register: %v", err)
	}
	inj := testnet.NewInjector(doc.Doc)
	defer func() { inj.Close() }()
	mb := proto.MailboxOf(addr)
	for try := range 20 {
		if try > 0 && directory.EpochAt(time.Now(), doc.Doc.Period) != doc.Doc.Epoch {
			if doc, err = nw.WaitDocument(ctx); err != nil {
				t.Fatal(err)
			}
			inj.Close()
			inj = testnet.NewInjector(doc.Doc)
		}
		if err := sendDelivery(ctx, inj, doc, prov, mb, [16]byte{byte(n), byte(try), 7}, token, []byte("after the storm")); err != nil {
			t.Fatalf("sending through the entry mix: %v", err)
		}
		p, err := owner.Fetch(ctx, 2*time.Second)
		if err != nil {
			t.Fatalf("fetch: %v", err)
		}
		for _, r := range p.Records {
			if r.Kind == proto.EnvelopeSealed && bytes.Contains(r.Data, []byte("after the storm")) {
				t.Logf("message %d went through the mix network (try %d)", n, try+1)
				return
			}
		}
	}
	t.Fatalf("message %d never came through the mix network", n)
}

type attackStats struct {
	opened, refused, shed atomicInt
	slowest               atomicInt // nanoseconds
}

type atomicInt struct {
	mu sync.Mutex
	v  int64
}

func (a *atomicInt) Add(d int64) {
	a.mu.Lock()
	a.v += d
	a.mu.Unlock()
}

func (a *atomicInt) Max(v int64) {
	a.mu.Lock()
	a.v = max(a.v, v)
	a.mu.Unlock()
}

func (a *atomicInt) Load() int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.v
}

// attack starts every attack on tg on wg. fail reports a defect.
func attack(wg *sync.WaitGroup, tg target, size hostileSize, st *attackStats, fail func(string, ...any)) {
	dial := func() net.Conn {
		c, err := net.DialTimeout("tcp", tg.addr, 5*time.Second)
		if err != nil {
			st.refused.Add(1)
			return nil
		}
		st.opened.Add(1)
		return c
	}
	// hold waits for the daemon to close c (having written first), and
	// reports it if that takes longer than size.shed.
	hold := func(what string, c net.Conn, opened time.Time) {
		c.SetReadDeadline(opened.Add(size.shed))
		_, err := io.Copy(io.Discard, c)
		c.Close()
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			fail("%s %s (%s): a %s connection still open after %v", tg.daemon.name, tg.addr, tg.proto, what, size.shed)
			return
		}
		st.shed.Add(1)
		st.slowest.Max(int64(time.Since(opened)))
	}
	rnd := func(n int) []byte {
		b := make([]byte, n)
		rand.Read(b)
		return b
	}
	kinds := []byte{byte(link.KindPeer), byte(link.KindClient), byte(link.KindUser), 0x00, 0x7f}

	// Truncated handshakes and requests: a prefix, then the dialer closes.
	wg.Go(func() {
		for i := range size.truncated {
			c := dial()
			if c == nil {
				continue
			}
			c.SetDeadline(time.Now().Add(5 * time.Second))
			switch tg.proto {
			case "link":
				// kind, a length prefix, and fewer bytes than it announces.
				b := []byte{kinds[i%len(kinds)]}
				b = binary.BigEndian.AppendUint16(b, uint16(48+i%64))
				b = append(b, rnd(i%40)...)
				c.Write(b[:1+i%len(b)])
			case "http":
				req := "GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n12345"
				c.Write([]byte(req[:1+i%len(req)]))
			}
			c.Close()
		}
	})
	// Oversized: a length prefix or a header far over any limit; the
	// daemon must refuse it without reading it all.
	wg.Go(func() {
		for i := range size.oversized {
			c := dial()
			if c == nil {
				continue
			}
			opened := time.Now()
			c.SetWriteDeadline(time.Now().Add(5 * time.Second))
			switch tg.proto {
			case "link":
				b := []byte{kinds[i%3]}
				b = binary.BigEndian.AppendUint16(b, 0xffff)
				c.Write(append(b, rnd(64<<10)...))
			case "http":
				if i%2 == 0 {
					c.Write([]byte("GET /metrics HTTP/1.1\r\nHost: x\r\nX-Long: " + strings.Repeat("a", 1<<20)))
				} else {
					c.Write([]byte("POST /v1/descriptor HTTP/1.1\r\nHost: x\r\nContent-Length: 1073741824\r\n\r\n"))
					c.Write(rnd(1 << 20))
				}
			}
			hold("oversized", c, opened)
		}
	})
	// Random bytes.
	wg.Go(func() {
		for i := range size.random {
			c := dial()
			if c == nil {
				continue
			}
			opened := time.Now()
			c.SetWriteDeadline(time.Now().Add(5 * time.Second))
			c.Write(rnd(1 + (i*7919)%(64<<10)))
			hold("random-bytes", c, opened)
		}
	})
	// Half-open: connect, send nothing.
	for range size.halfOpen {
		wg.Go(func() {
			if c := dial(); c != nil {
				hold("silent", c, time.Now())
			}
		})
	}
	// Slow-loris: a plausible start, one byte per slowEvery, until the
	// daemon hangs up.
	for i := range size.slow {
		wg.Go(func() {
			c := dial()
			if c == nil {
				return
			}
			opened := time.Now()
			var msg []byte
			switch tg.proto {
			case "link":
				msg = append([]byte{kinds[i%3], 0x00, 0x60}, rnd(0x60)...)
			case "http":
				msg = []byte("GET /metrics HTTP/1.1\r\nHost: x\r\nUser-Agent: " + strings.Repeat("s", 200) + "\r\n\r\n")
			}
			closed := make(chan struct{})
			go func() {
				hold("slow-loris", c, opened)
				close(closed)
			}()
			for _, b := range msg {
				c.SetWriteDeadline(time.Now().Add(time.Second))
				if _, err := c.Write([]byte{b}); err != nil {
					break
				}
				select {
				case <-closed:
					return
				case <-time.After(size.slowEvery):
				}
			}
			<-closed
		})
	}
	// Flood: many connections at once, each sending a first byte and
	// then nothing.
	wg.Go(func() {
		var fw sync.WaitGroup
		for i := range size.flood {
			c := dial()
			if c == nil {
				continue
			}
			opened := time.Now()
			if tg.proto == "link" {
				c.Write([]byte{kinds[i%3]})
			} else {
				c.Write([]byte("G"))
			}
			fw.Go(func() { hold("flood", c, opened) })
		}
		fw.Wait()
	})
	if tg.proto != "link" || !tg.client {
		return
	}
	// After a completed Noise handshake (client links, and user links
	// with a fresh key where accepted): frames that fail to decrypt, an
	// oversized frame length, a truncated frame.
	wg.Go(func() {
		for i := range 12 {
			nc := dial()
			if nc == nil {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			cfg, kind := link.Config{Geometry: mixnet.DefaultGeometry()}, link.KindClient
			if tg.user && i%2 == 1 {
				k, _ := link.GenerateKey(rand.Reader)
				cfg.Static, kind = k, link.KindUser
			}
			_, err := link.Client(ctx, nc, cfg, kind, tg.key)
			cancel()
			if err != nil {
				fail("%s %s: %v handshake during the attack: %v", tg.daemon.name, tg.addr, kind, err)
				continue
			}
			opened := time.Now()
			fs := link.FrameSize(mixnet.DefaultGeometry())
			var b []byte
			switch i % 3 {
			case 0:
				b = binary.BigEndian.AppendUint16(nil, uint16(fs))
				b = append(b, rnd(fs)...)
			case 1:
				b = append(binary.BigEndian.AppendUint16(nil, 0xffff), rnd(4096)...)
			case 2:
				b = binary.BigEndian.AppendUint16(nil, uint16(fs))
				b = append(b, rnd(fs/2)...)
			}
			nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
			nc.Write(b)
			if i%3 == 2 {
				nc.Close() // truncated: the dialer goes away mid-frame
				continue
			}
			hold("post-handshake garbage", nc, opened)
		}
	})
}

// Package tornet runs a private Tor network on loopback, as Tor's chutney
// tool does, for tests and demonstrations: one directory authority that
// is also a relay, a few more relays, and one client tor, each a process
// of the system tor binary with its own directory under Options.Dir.
//
// Every address is 127.0.0.1 and every torrc (the shared one a joining
// tor uses included) names the private authority and sets
// TestingTorNetwork 1, so no tor of the network ever uses the built-in
// public authorities. The relays are exits, so a client of the network
// reaches plain TCP services on 127.0.0.1 as well as onion services.
//
// Exits and loopback: clients choose exits by the exit policy summary in
// the relays' microdescriptors, and that summary ignores accept lines
// for anything narrower than all addresses, so a relay whose policy
// accepts only 127.0.0.0/8 looks like a non-exit and clients find no
// exit ("The current consensus has no exit nodes"). Clients using full
// descriptors instead (UseMicrodescriptors 0) do see such exits, but then
// path selection for onion services fails in a network this small. So
// the relays' policy is "accept *:*", and what keeps their exit traffic
// on loopback is OutboundBindAddressExit 127.0.0.1 (Linux refuses to
// connect a socket bound to 127.0.0.1 to any address off loopback, with
// EINVAL) and a resolv.conf naming only 127.0.0.1, with DNS hijacking
// tests off.
package tornet

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sealnet/sealnet/internal/torctl"
)

// Options describe the network Start makes.
type Options struct {
	// Dir holds everything: one directory per node (auth, relay1...,
	// client), the shared torrc and a README. It is created (0700) if
	// need be; node directories left by an earlier network are replaced.
	// Required.
	Dir string
	// Relays is the number of relays besides the authority (which is a
	// relay too): at least 2, as a circuit needs three distinct relays.
	// Default (0): 3.
	Relays int
	// TorPath is the tor binary. Default: tor on $PATH, then
	// /usr/sbin/tor, then /usr/bin/tor. tor-gencert is looked for beside
	// it, then on $PATH.
	TorPath string
	// Timeout bounds Start, up to the client tor's full bootstrap.
	// Default 90 s.
	Timeout time.Duration
}

// Network is a running private Tor network. Close stops it.
type Network struct {
	// Dir is the absolute form of Options.Dir.
	Dir string
	// Torrc is the path of a file with what every extra tor joining the
	// network needs (TestingTorNetwork 1, the DirAuthority line, the
	// testing voting intervals, ...) and no SocksPort, ControlPort or
	// DataDirectory line: start such a tor with -f Torrc plus its own
	// --DataDirectory, --SocksPort, --ControlPort (for instance bine's
	// tor.Start with StartConf.TorrcFile = Torrc).
	Torrc string
	// SocksAddr is the SOCKS port of the network's client tor,
	// "127.0.0.1:PORT".
	SocksAddr string
	// ControlAddr is the control port of the client tor,
	// "127.0.0.1:PORT"; it uses cookie authentication.
	ControlAddr string
	// CookiePath is the control_auth_cookie file of the client tor.
	CookiePath string
	// Bootstrap is the wall time from the call of Start until the client
	// tor reported 100 % bootstrap.
	Bootstrap time.Duration

	nodes []*node

	mu     sync.Mutex
	closed bool
}

// node is one tor process of the network.
type node struct {
	name string
	cmd  *exec.Cmd
	log  string        // NAME/tor.log (Log notice file)
	out  string        // NAME/stdout (what tor prints before its log is open)
	done chan struct{} // closed once cmd.Wait has returned
}

// shared holds the options of every tor of the network, the client's and
// any joining tor's included (the fast testing-network settings of
// chutney, as verified on these machines); the DirAuthority line is
// added to it.
const shared = `# Options every tor of this private network needs.
TestingTorNetwork 1
PathsNeededToBuildCircuits 0.25
TestingDirAuthVoteExit *
TestingDirAuthVoteHSDir *
TestingDirAuthVoteGuard *
TestingMinExitFlagThreshold 0
V3AuthNIntervalsValid 2
TestingV3AuthInitialVotingInterval 5 seconds
TestingV3AuthInitialVoteDelay 2 seconds
TestingV3AuthInitialDistDelay 2 seconds
V3AuthVotingInterval 10 seconds
V3AuthVoteDelay 2 seconds
V3AuthDistDelay 2 seconds
AssumeReachable 1
# Clients may ask exits for 127.0.0.1 (TestingTorNetwork's default too).
ClientRejectInternalAddresses 0
`

// relayOpts are the options of the authority and the relays, after
// shared and the DirAuthority line.
const relayOpts = `Nickname %s
Address 127.0.0.1
ORPort 127.0.0.1:%d
DirPort 127.0.0.1:%d
SocksPort 0
ContactInfo tornet@localhost
ExitRelay 1
ExitPolicyRejectPrivate 0
ExitPolicyRejectLocalInterfaces 0
ExitPolicy accept 127.0.0.0/8:*
# Without this the relay is no exit in its microdescriptor (see the
# package comment); the next line keeps exit connections on loopback.
ExitPolicy accept *:*
OutboundBindAddressExit 127.0.0.1
ServerDNSResolvConfFile %s
ServerDNSDetectHijacking 0
ServerDNSTestAddresses
`

// votingOffset returns a TestingV3AuthVotingStartOffset for an
// authority started at now. Consensuses are valid from multiples of the
// 5 s initial voting interval after midnight UTC plus the offset, and the
// authority votes 2 s before (as observed with tor 0.4.9): a vote less
// than ~2 s after the start comes before the relays' descriptors, the
// first consensus lists no relay and the next comes 10 s later. With this
// offset the first vote comes ~4.5 s after the start.
func votingOffset(now time.Time) int {
	y, m, d := now.UTC().Date()
	since := now.Sub(time.Date(y, m, d, 0, 0, 0, 0, time.UTC))
	return int((since+6500*time.Millisecond)/time.Second) % 5
}

// findGencert finds tor-gencert beside tor, then on $PATH.
func findGencert(tor string) (string, error) {
	p := filepath.Join(filepath.Dir(tor), "tor-gencert")
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	if p, err := exec.LookPath("tor-gencert"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/bin/tor-gencert", "/usr/sbin/tor-gencert"} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", errors.New("tornet: no tor-gencert (it comes with Debian's tor package)")
}

// Start makes a private Tor network under o.Dir, starts every node and
// returns once the client tor has bootstrapped, within ctx and
// o.Timeout. If a node fails early (a port picked at random taken in the
// meantime, say), the whole network is started once more on fresh
// ports. On failure every tor started is stopped and the error names the
// log files to read.
func Start(ctx context.Context, o Options) (*Network, error) {
	began := time.Now()
	if o.Dir == "" {
		return nil, errors.New("tornet: Options.Dir is required")
	}
	if o.Relays == 0 {
		o.Relays = 3
	}
	if o.Relays < 2 {
		return nil, fmt.Errorf("tornet: %d relays; a circuit needs at least 2 besides the authority", o.Relays)
	}
	if o.Timeout <= 0 {
		o.Timeout = 90 * time.Second
	}
	tor, err := torctl.FindBinary(o.TorPath)
	if err != nil {
		return nil, err
	}
	gencert, err := findGencert(tor)
	if err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	for attempt := 1; ; attempt++ {
		n, err := start(ctx, dir, tor, gencert, o.Relays)
		if err == nil {
			n.Bootstrap = time.Since(began)
			return n, nil
		}
		var early *earlyExit
		if attempt >= 2 || !errors.As(err, &early) || ctx.Err() != nil {
			return nil, err
		}
	}
}

// earlyExit reports a node that exited while the network started.
type earlyExit struct {
	name, detail string
	logs         []string
}

func (e *earlyExit) Error() string {
	return fmt.Sprintf("tornet: tor %s exited during start; read %s:%s", e.name, strings.Join(e.logs, " "), e.detail)
}

// start is one attempt of Start.
func start(ctx context.Context, dir, tor, gencert string, relays int) (_ *Network, err error) {
	names := []string{"auth"}
	for i := 1; i <= relays; i++ {
		names = append(names, "relay"+strconv.Itoa(i))
	}
	names = append(names, "client")
	// Fresh node directories: keys and caches of another network would
	// not fit this one.
	old, _ := filepath.Glob(filepath.Join(dir, "relay[0-9]*"))
	for _, d := range append(old, filepath.Join(dir, "auth"), filepath.Join(dir, "client")) {
		if err := os.RemoveAll(d); err != nil {
			return nil, err
		}
	}
	for _, name := range names {
		if err := os.Mkdir(filepath.Join(dir, name), 0o700); err != nil {
			return nil, err
		}
	}

	// ports: OR and Dir of the authority and of each relay, then the
	// client's SOCKS and control ports.
	ports, err := pickPorts(2*(relays+1) + 2)
	if err != nil {
		return nil, err
	}
	orPort := func(i int) int { return ports[2*i] }
	dirPort := func(i int) int { return ports[2*i+1] }
	socks, control := ports[2*(relays+1)], ports[2*(relays+1)+1]

	// An empty defaults torrc keeps a system's /etc/tor/torrc-defaults
	// out of the network.
	empty := filepath.Join(dir, "empty-torrc")
	if err := os.WriteFile(empty, []byte("# Empty on purpose: tornet's tors use it as --defaults-torrc.\n"), 0o600); err != nil {
		return nil, err
	}
	// Exits resolve names with a nameserver on loopback only.
	resolv := filepath.Join(dir, "resolv.conf")
	if err := os.WriteFile(resolv, []byte("# The exits of the private network ask no nameserver off loopback.\nnameserver 127.0.0.1\n"), 0o600); err != nil {
		return nil, err
	}
	authDir := filepath.Join(dir, "auth")
	v3ident, err := authorityKeys(ctx, gencert, authDir, dirPort(0))
	if err != nil {
		return nil, err
	}
	fp, err := relayFingerprint(ctx, tor, empty, authDir, orPort(0))
	if err != nil {
		return nil, err
	}
	common := shared + fmt.Sprintf("DirAuthority auth orport=%d no-v2 v3ident=%s 127.0.0.1:%d %s\n", orPort(0), v3ident, dirPort(0), fp)

	n := &Network{
		Dir:         dir,
		Torrc:       filepath.Join(dir, "torrc"),
		SocksAddr:   net.JoinHostPort("127.0.0.1", strconv.Itoa(socks)),
		ControlAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(control)),
		CookiePath:  filepath.Join(dir, "client", "control_auth_cookie"),
	}
	defer func() {
		if err != nil {
			n.Close()
		}
	}()
	if err := os.WriteFile(n.Torrc, []byte(common), 0o600); err != nil {
		return nil, err
	}
	for i, name := range names {
		var own string
		switch {
		case name == "auth":
			own = fmt.Sprintf(relayOpts, name, orPort(i), dirPort(i), resolv) + "AuthoritativeDirectory 1\nV3AuthoritativeDirectory 1\n" +
				fmt.Sprintf("TestingV3AuthVotingStartOffset %d seconds\n", votingOffset(time.Now()))
		case name == "client":
			own = fmt.Sprintf("Nickname client\nSocksPort 127.0.0.1:%d\nControlPort 127.0.0.1:%d\nCookieAuthentication 1\n", socks, control)
		default:
			own = fmt.Sprintf(relayOpts, name, orPort(i), dirPort(i), resolv)
		}
		if name == "client" {
			// Directory information first (see waitDirInfo).
			var dirPorts []int
			for k := range relays + 1 {
				dirPorts = append(dirPorts, dirPort(k))
			}
			if err := n.waitDirInfo(ctx, dirPorts, relays+1); err != nil {
				return nil, err
			}
		}
		if err := n.startNode(tor, empty, name, common+own); err != nil {
			return nil, err
		}
	}
	if err := n.waitBootstrap(ctx); err != nil {
		return nil, err
	}
	if err := n.writeReadme(relays); err != nil {
		return nil, err
	}
	return n, nil
}

// pickPorts is freePorts; tests replace it.
var pickPorts = freePorts

// freePorts picks count distinct free TCP ports on 127.0.0.1. They are
// free when picked only: Start retries once if a tor cannot bind.
func freePorts(count int) ([]int, error) {
	var ports []int
	for range count {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("tornet: pick a port: %w", err)
		}
		defer l.Close() // held until all are picked, so all differ
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// authorityKeys makes the authority's v3 keys in authDir/keys with
// tor-gencert and returns the v3ident (the certificate's fingerprint).
func authorityKeys(ctx context.Context, gencert, authDir string, dirPort int) (string, error) {
	keys := filepath.Join(authDir, "keys")
	if err := os.Mkdir(keys, 0o700); err != nil {
		return "", err
	}
	cert := filepath.Join(keys, "authority_certificate")
	cmd := exec.CommandContext(ctx, gencert, "--create-identity-key", "-m", "12",
		"-a", "127.0.0.1:"+strconv.Itoa(dirPort),
		"-i", filepath.Join(keys, "authority_identity_key"),
		"-s", filepath.Join(keys, "authority_signing_key"),
		"-c", cert, "--passphrase-fd", "0")
	cmd.Dir = keys
	cmd.Stdin = strings.NewReader("tornet-private-network\n")
	cmd.WaitDelay = 5 * time.Second
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("tornet: tor-gencert: %v: %s", err, out)
	}
	b, err := os.ReadFile(cert)
	if err != nil {
		return "", err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f, ok := strings.CutPrefix(l, "fingerprint "); ok {
			if v := strings.TrimSpace(f); len(v) == 40 {
				return v, nil
			}
		}
	}
	return "", fmt.Errorf("tornet: no fingerprint line in %s", cert)
}

// relayFingerprint makes the authority's relay keys in authDir and
// returns its relay identity fingerprint (40 hex digits).
func relayFingerprint(ctx context.Context, tor, empty, authDir string, orPort int) (string, error) {
	cmd := exec.CommandContext(ctx, tor, "--list-fingerprint", "-f", empty, "--defaults-torrc", empty,
		"--DataDirectory", authDir, "--ORPort", "127.0.0.1:"+strconv.Itoa(orPort), "--Address", "127.0.0.1", "--SocksPort", "0", "--hush")
	cmd.WaitDelay = 5 * time.Second
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("tornet: tor --list-fingerprint: %v: %s", err, out)
	}
	b, err := os.ReadFile(filepath.Join(authDir, "fingerprint"))
	if err != nil {
		return "", fmt.Errorf("tornet: tor --list-fingerprint: %w", err)
	}
	f := strings.Fields(string(b)) // "NICKNAME FINGERPRINT" (the fingerprint maybe in groups of 4)
	if len(f) < 2 {
		return "", fmt.Errorf("tornet: odd fingerprint file %q", b)
	}
	fp := strings.Join(f[1:], "")
	if _, err := hex.DecodeString(fp); err != nil || len(fp) != 40 {
		return "", fmt.Errorf("tornet: odd fingerprint file %q", b)
	}
	return fp, nil
}

// startNode writes Dir/NAME/torrc and starts tor on it.
func (n *Network) startNode(tor, empty, name, torrc string) error {
	d := filepath.Join(n.Dir, name)
	nd := &node{name: name, log: filepath.Join(d, "tor.log"), out: filepath.Join(d, "stdout"), done: make(chan struct{})}
	torrc += fmt.Sprintf("DataDirectory %s\nLog notice file %s\n", d, nd.log)
	path := filepath.Join(d, "torrc")
	if err := os.WriteFile(path, []byte(torrc), 0o600); err != nil {
		return err
	}
	out, err := os.OpenFile(nd.out, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer out.Close()
	// __OwningControllerProcess: should this process die without Close,
	// tor notices within 15 s and exits too.
	nd.cmd = exec.Command(tor, "-f", path, "--defaults-torrc", empty,
		"--__OwningControllerProcess", strconv.Itoa(os.Getpid()))
	nd.cmd.Dir = d
	nd.cmd.Stdout = out
	nd.cmd.Stderr = out
	nd.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // a terminal's ^C is for us, not for them
	if err := nd.cmd.Start(); err != nil {
		return fmt.Errorf("tornet: start tor %s: %w", name, err)
	}
	go func() {
		nd.cmd.Wait()
		close(nd.done)
	}()
	n.nodes = append(n.nodes, nd)
	return nil
}

// pollEvery is the pace of the directory and bootstrap polls.
const pollEvery = 250 * time.Millisecond

// dirInfoWait bounds waitDirInfo: after it the client is started
// anyway.
const dirInfoWait = 40 * time.Second

// exited returns an error if a node has exited.
func (n *Network) exited() error {
	for _, nd := range n.nodes {
		select {
		case <-nd.done:
			return &earlyExit{name: nd.name, logs: n.Logs(), detail: torctl.LogTail(nd.log, 6) + torctl.LogTail(nd.out, 6)}
		default:
		}
	}
	return nil
}

// waitDirInfo polls the DirPorts until the authority's microdescriptor
// consensus lists want relays and every DirPort serves the
// microdescriptors of all of them; or a node exits, ctx ends or
// dirInfoWait has passed (then it returns nil: the client may still
// bootstrap, later). dirPorts[k] is the DirPort of n.nodes[k], the
// authority's first.
//
// A client started earlier fetches an emptier consensus first and the
// next one only after the next vote; and a client asking a relay for
// microdescriptors the relay has not fetched yet gets 404 and asks again
// only 10 s later. Relays are slow to fetch them too: their requests for
// the microdescriptor consensus before the first one exists fail, and
// their retries back off to ~10 s. So a relay that lacks them once the
// consensus is out gets a SIGHUP, on which tor retries its directory
// downloads at once. Started after this, the client bootstraps in 1-2 s.
func (n *Network) waitDirInfo(ctx context.Context, dirPorts []int, want int) error {
	ctx, cancel := context.WithTimeout(ctx, dirInfoWait)
	defer cancel()
	hc := &http.Client{
		Transport: &http.Transport{Proxy: nil, DisableCompression: true, DisableKeepAlives: true},
		Timeout:   2 * time.Second,
	}
	hupped := make([]time.Time, len(dirPorts))
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	for range int(dirInfoWait/pollEvery) + 2 {
		if err := n.exited(); err != nil {
			return err
		}
		lacking, ok := dirInfoLacking(ctx, hc, dirPorts, want)
		if ok && len(lacking) == 0 {
			return nil
		}
		for _, k := range lacking {
			if k > 0 && time.Since(hupped[k]) > 3*time.Second {
				n.nodes[k].cmd.Process.Signal(syscall.SIGHUP)
				hupped[k] = time.Now()
			}
		}
		select {
		case <-ctx.Done():
			return nil // the caller's ctx is checked next, by waitBootstrap
		case <-tick.C:
		}
	}
	return nil
}

// dirInfoLacking tells whether the consensus at dirPorts[0] lists want
// relays and, if so, which DirPorts (indices) do not serve all their
// microdescriptors yet.
func dirInfoLacking(ctx context.Context, hc *http.Client, dirPorts []int, want int) (lacking []int, ok bool) {
	var digests []string
	relays := 0
	err := dirGet(ctx, hc, dirPorts[0], "/tor/status-vote/current/consensus-microdesc", func(l string) {
		if strings.HasPrefix(l, "r ") {
			relays++
		} else if m, ok := strings.CutPrefix(l, "m "); ok {
			digests = append(digests, strings.TrimSpace(m))
		}
	})
	if err != nil || relays < want || len(digests) < want {
		return nil, false
	}
	for k, p := range dirPorts {
		mds := 0
		err := dirGet(ctx, hc, p, "/tor/micro/d/"+strings.Join(digests, "-"), func(l string) {
			if strings.HasPrefix(l, "onion-key") {
				mds++
			}
		})
		if err != nil || mds < len(digests) {
			lacking = append(lacking, k)
		}
	}
	return lacking, true
}

// dirGet fetches path from the DirPort 127.0.0.1:port and hands each
// line of the answer (at most 1 MiB) to line.
func dirGet(ctx context.Context, hc *http.Client, port int, path string, line func(string)) error {
	req, err := http.NewRequestWithContext(ctx, "GET", fmt.Sprintf("http://127.0.0.1:%d%s", port, path), nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", path, resp.Status)
	}
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 1<<20))
	for sc.Scan() {
		line(sc.Text())
	}
	return sc.Err()
}

// waitBootstrap polls the client tor's control port until it reports
// PROGRESS=100, ctx ends or a node exits.
func (n *Network) waitBootstrap(ctx context.Context) error {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(90 * time.Second) // not reached: Start sets one
	}
	var ctl *control
	defer func() {
		if ctl != nil {
			ctl.c.Close()
		}
	}()
	last, lastErr := "", "no answer yet"
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	for range int(time.Until(deadline)/pollEvery) + 2 {
		if err := n.exited(); err != nil {
			return err
		}
		var err error
		if ctl == nil {
			ctl, err = n.dialControl(ctx)
		}
		if err == nil {
			var phase string
			if phase, err = ctl.bootstrapPhase(ctx); err == nil {
				last = phase
				if strings.Contains(phase, " PROGRESS=100 ") {
					return nil
				}
			} else {
				ctl.c.Close()
				ctl = nil
			}
		}
		if err != nil && ctx.Err() == nil {
			lastErr = err.Error()
		}
		select {
		case <-ctx.Done():
			return n.bootstrapError(ctx.Err(), last, lastErr)
		case <-tick.C:
		}
	}
	return n.bootstrapError(context.DeadlineExceeded, last, lastErr)
}

func (n *Network) bootstrapError(err error, last, lastErr string) error {
	status := "last status " + strings.TrimSpace(last)
	if last == "" {
		status = "no status from its control port: " + lastErr
	}
	return fmt.Errorf("tornet: the client tor did not bootstrap (%v; %s); read the logs %s; the client's ends with:%s",
		err, status, strings.Join(n.Logs(), " "), torctl.LogTail(filepath.Join(n.Dir, "client", "tor.log"), 8))
}

// control is an authenticated control connection to the client tor.
type control struct {
	c net.Conn
	r *bufio.Reader
}

// dialControl connects to the client tor's control port and
// authenticates with its cookie, within 2 s.
func (n *Network) dialControl(ctx context.Context) (*control, error) {
	cookie, err := os.ReadFile(n.CookiePath)
	if err != nil {
		return nil, err
	}
	dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(dctx, "tcp", n.ControlAddr)
	if err != nil {
		return nil, err
	}
	ctl := &control{c: c, r: bufio.NewReader(c)}
	if _, err := ctl.do(ctx, "AUTHENTICATE "+hex.EncodeToString(cookie)); err != nil {
		c.Close()
		return nil, err
	}
	return ctl, nil
}

// do sends one command and reads its reply (at most 20 lines, 2 s).
func (ctl *control) do(ctx context.Context, cmd string) ([]string, error) {
	dl := time.Now().Add(2 * time.Second)
	if d, ok := ctx.Deadline(); ok && d.Before(dl) {
		dl = d
	}
	ctl.c.SetDeadline(dl)
	if _, err := io.WriteString(ctl.c, cmd+"\r\n"); err != nil {
		return nil, err
	}
	var lines []string
	for range 20 {
		l, err := ctl.r.ReadString('\n')
		if err != nil {
			return nil, err
		}
		l = strings.TrimRight(l, "\r\n")
		lines = append(lines, l)
		if len(l) < 4 || l[3] == ' ' { // "250 OK", "515 Authentication failed", ...
			if !strings.HasPrefix(l, "250") {
				return nil, fmt.Errorf("control port: %q", l)
			}
			return lines, nil
		}
	}
	return nil, errors.New("control port: reply too long")
}

// bootstrapPhase returns the client tor's status/bootstrap-phase, with a
// space at the end.
func (ctl *control) bootstrapPhase(ctx context.Context) (string, error) {
	lines, err := ctl.do(ctx, "GETINFO status/bootstrap-phase")
	if err != nil {
		return "", err
	}
	for _, l := range lines {
		if v, ok := strings.CutPrefix(l, "250-status/bootstrap-phase="); ok {
			return v + " ", nil
		}
	}
	return "", fmt.Errorf("control port: no bootstrap phase in %q", lines)
}

func (n *Network) writeReadme(relays int) error {
	var pids strings.Builder
	for _, nd := range n.nodes {
		fmt.Fprintf(&pids, "  %-8s pid %d\n", nd.name, nd.cmd.Process.Pid)
	}
	text := fmt.Sprintf(`A private Tor network on loopback, made by sealnet's internal/testbed/tornet.
Nothing here talks to the public Tor network: every torrc names only the
authority below and sets TestingTorNetwork 1.

Nodes (each NODE/ holds torrc, tor.log, stdout and tor's data):
  auth      directory authority, also a relay and an exit
  relay1..relay%d  relays and exits
  (Exits connect from 127.0.0.1 only, so they reach loopback only;
  their DNS is %s/resolv.conf, loopback only too.)
  client    a client tor: SOCKS %s, control %s
            (cookie authentication, cookie in %s)

Processes (Close stops them; should their owner die, they exit within 15 s):
%s
Options every tor joining the network needs: %s
  tor -f %s --DataDirectory D --SocksPort auto --ControlPort auto

Inspect:
  tail -f %s/*/tor.log
  cat %s/auth/cached-consensus      the consensus (every relay, its flags)
  curl --socks5-hostname %s http://127.0.0.1:PORT/   a loopback service, through an exit
  printf 'AUTHENTICATE %%s\r\nGETINFO status/bootstrap-phase\r\nQUIT\r\n' \
    "$(xxd -p -c 64 %s)" | nc 127.0.0.1 %s
`, relays, n.Dir, n.SocksAddr, n.ControlAddr, n.CookiePath, pids.String(), n.Torrc, n.Torrc,
		n.Dir, n.Dir, n.SocksAddr, n.CookiePath, n.ControlAddr[len("127.0.0.1:"):])
	return os.WriteFile(filepath.Join(n.Dir, "README"), []byte(text), 0o600)
}

// Logs returns the path of every node's log file (Dir/NAME/tor.log),
// for error messages and test failure output.
func (n *Network) Logs() []string {
	var ls []string
	for _, nd := range n.nodes {
		ls = append(ls, nd.log)
	}
	return ls
}

// Close stops every tor of the network: SIGTERM, then SIGKILL for those
// still running 5 s later (rare: a tor now and then hangs after "Catching
// signal TERM, exiting cleanly"; that is no error), and waits until each
// has exited. It is safe to call more than once and from several
// goroutines. The error is always nil for now: a process is always
// stopped in the end.
func (n *Network) Close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil
	}
	n.closed = true
	for _, nd := range n.nodes {
		select {
		case <-nd.done:
		default:
			nd.cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	grace := time.NewTimer(5 * time.Second)
	defer grace.Stop()
	late := false
	for _, nd := range n.nodes {
		if !late {
			select {
			case <-nd.done:
				continue
			case <-grace.C:
				late = true
			}
		}
		select {
		case <-nd.done:
			continue
		default:
		}
		nd.cmd.Process.Kill()
		<-nd.done
	}
	return nil
}

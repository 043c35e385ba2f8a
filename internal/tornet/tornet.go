// Package tornet runs a private Tor network on loopback, as Tor's own
// chutney tool does, for tests and demonstrations: one directory
// authority that is also a relay, a few relays that exit only to
// 127.0.0.0/8, and one client tor, each a separate process of the system
// binary under one directory. Every torrc names only the private
// authority and sets TestingTorNetwork, so the public Tor network is
// never contacted.
//
// The relays are exits with the policy "accept *:*": a client decides
// whether a relay exits from the port summary in its microdescriptor,
// which leaves out private addresses, so a policy that accepts only
// 127.0.0.0/8 reads as "no exits" and loopback services cannot be
// reached. The only clients are the tests', which ask for loopback
// addresses only.
package tornet

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Options describe the network to start.
type Options struct {
	// Dir holds everything (created 0700). Required.
	Dir string
	// Relays besides the authority; default 3.
	Relays int
	// TorPath is the tor binary; default tor on $PATH, /usr/sbin/tor,
	// /usr/bin/tor. tor-gencert is looked up beside it.
	TorPath string
	// Timeout bounds Start; default 90 s.
	Timeout time.Duration
}

// Network is a running private Tor network.
type Network struct {
	Dir string
	// Torrc holds what another tor needs to join the network (the
	// DirAuthority line and the testing options), with no port or data
	// directory lines: start it with -f Torrc plus its own.
	Torrc string
	// SocksAddr and ControlAddr are the client tor's (cookie
	// authentication; CookiePath is the cookie).
	SocksAddr   string
	ControlAddr string
	CookiePath  string
	// Bootstrap is the time from Start until the client tor reported
	// 100 % bootstrapped.
	Bootstrap time.Duration

	procs []*exec.Cmd
	logs  []string
}

// shared are the options of every tor in the network
// (../shared/notes/private-tor-network.md).
const shared = `TestingTorNetwork 1
PathsNeededToBuildCircuits 0.25
TestingDirAuthVoteExit *
TestingDirAuthVoteHSDir *
TestingDirAuthVoteGuard *
V3AuthNIntervalsValid 2
TestingV3AuthInitialVotingInterval 5 seconds
TestingV3AuthInitialVoteDelay 2 seconds
TestingV3AuthInitialDistDelay 2 seconds
V3AuthVotingInterval 10 seconds
V3AuthVoteDelay 2 seconds
V3AuthDistDelay 2 seconds
AssumeReachable 1
ClientRejectInternalAddresses 0
`

func findTor(path string) (string, error) {
	if path != "" {
		return path, nil
	}
	if p, err := exec.LookPath("tor"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/sbin/tor", "/usr/bin/tor"} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", errors.New("tornet: no tor binary (Debian: apt-get install tor)")
}

func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// Start creates and starts the network and waits for the client tor to
// bootstrap. On failure everything started is stopped.
func Start(ctx context.Context, o Options) (*Network, error) {
	if o.Dir == "" {
		return nil, errors.New("tornet: Dir is required")
	}
	if o.Relays == 0 {
		o.Relays = 3
	}
	if o.Timeout == 0 {
		o.Timeout = 90 * time.Second
	}
	torBin, err := findTor(o.TorPath)
	if err != nil {
		return nil, err
	}
	gencert := filepath.Join(filepath.Dir(torBin), "tor-gencert")
	if _, err := os.Stat(gencert); err != nil {
		if gencert, err = exec.LookPath("tor-gencert"); err != nil {
			return nil, errors.New("tornet: no tor-gencert (it comes with Debian's tor package)")
		}
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, err
	}
	os.RemoveAll(dir) // a network is made fresh each time
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	began := time.Now()
	n := &Network{Dir: dir}
	ok := false
	defer func() {
		if !ok {
			n.Close()
		}
	}()

	ports, err := freePorts(4 + 2*o.Relays)
	if err != nil {
		return nil, err
	}
	authOR, authDir, socks, ctl := ports[0], ports[1], ports[2], ports[3]

	// Authority keys and fingerprints.
	ad := filepath.Join(dir, "auth")
	kd := filepath.Join(ad, "keys")
	if err := os.MkdirAll(kd, 0o700); err != nil {
		return nil, err
	}
	gc := exec.CommandContext(ctx, gencert, "--create-identity-key", "-m", "12", "-a", "127.0.0.1:"+strconv.Itoa(authDir),
		"-i", filepath.Join(kd, "authority_identity_key"), "-s", filepath.Join(kd, "authority_signing_key"),
		"-c", filepath.Join(kd, "authority_certificate"), "--passphrase-fd", "0")
	gc.Stdin = strings.NewReader("sealnet-test\n")
	if out, err := gc.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("tornet: tor-gencert: %v: %s", err, out)
	}
	cert, err := os.ReadFile(filepath.Join(kd, "authority_certificate"))
	if err != nil {
		return nil, err
	}
	var v3ident string
	for _, l := range strings.Split(string(cert), "\n") {
		if f, ok := strings.CutPrefix(l, "fingerprint "); ok {
			v3ident = strings.TrimSpace(f)
		}
	}
	if v3ident == "" {
		return nil, errors.New("tornet: no fingerprint in the authority certificate")
	}
	fp := exec.CommandContext(ctx, torBin, "--list-fingerprint", "--DataDirectory", ad, "--ORPort", strconv.Itoa(authOR), "--SocksPort", "0")
	if out, err := fp.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("tornet: tor --list-fingerprint: %v: %s", err, out)
	}
	fpb, err := os.ReadFile(filepath.Join(ad, "fingerprint"))
	if err != nil {
		return nil, err
	}
	fields := strings.Fields(string(fpb))
	if len(fields) < 2 {
		return nil, fmt.Errorf("tornet: odd fingerprint file %q", fpb)
	}
	relayFP := strings.Join(fields[1:], "")

	common := shared + fmt.Sprintf("DirAuthority auth orport=%d no-v2 v3ident=%s 127.0.0.1:%d %s\n", authOR, v3ident, authDir, relayFP)
	n.Torrc = filepath.Join(dir, "torrc")
	if err := os.WriteFile(n.Torrc, []byte(common), 0o600); err != nil {
		return nil, err
	}
	relayOpts := func(name string, or, dirp int) string {
		return fmt.Sprintf("Nickname %s\nAddress 127.0.0.1\nORPort 127.0.0.1:%d\nDirPort 127.0.0.1:%d\nSocksPort 0\nContactInfo sealnet-test\n"+
			"ExitRelay 1\nExitPolicyRejectPrivate 0\nExitPolicyRejectLocalInterfaces 0\nExitPolicy accept *:*\n", name, or, dirp)
	}
	if err := n.start(torBin, "auth", common+relayOpts("auth", authOR, authDir)+"AuthoritativeDirectory 1\nV3AuthoritativeDirectory 1\n"); err != nil {
		return nil, err
	}
	for i := range o.Relays {
		name := "relay" + strconv.Itoa(i+1)
		if err := n.start(torBin, name, common+relayOpts(name, ports[4+2*i], ports[5+2*i])); err != nil {
			return nil, err
		}
	}
	cd := filepath.Join(dir, "client")
	if err := n.start(torBin, "client", common+fmt.Sprintf("SocksPort 127.0.0.1:%d\nControlPort 127.0.0.1:%d\nCookieAuthentication 1\n", socks, ctl)); err != nil {
		return nil, err
	}
	n.SocksAddr = "127.0.0.1:" + strconv.Itoa(socks)
	n.ControlAddr = "127.0.0.1:" + strconv.Itoa(ctl)
	n.CookiePath = filepath.Join(cd, "control_auth_cookie")
	if err := n.waitBootstrap(ctx); err != nil {
		return nil, err
	}
	n.Bootstrap = time.Since(began)
	readme := fmt.Sprintf("A private Tor network on loopback (sealnet internal/tornet).\n\n"+
		"Nodes: auth (directory authority and relay), relay1..relay%d, client.\nEach NODE/ has its torrc and tor.log.\n"+
		"Join it: tor -f %s --DataDirectory D ...\nClient tor: SOCKS %s, control %s (cookie %s).\n",
		o.Relays, n.Torrc, n.SocksAddr, n.ControlAddr, n.CookiePath)
	os.WriteFile(filepath.Join(dir, "README"), []byte(readme), 0o644)
	ok = true
	return n, nil
}

// start writes NAME/torrc and runs tor on it.
func (n *Network) start(torBin, name, torrc string) error {
	d := filepath.Join(n.Dir, name)
	if err := os.MkdirAll(d, 0o700); err != nil {
		return err
	}
	log := filepath.Join(d, "tor.log")
	torrc += fmt.Sprintf("DataDirectory %s\nLog notice file %s\nRunAsDaemon 0\n", d, log)
	path := filepath.Join(d, "torrc")
	if err := os.WriteFile(path, []byte(torrc), 0o600); err != nil {
		return err
	}
	cmd := exec.Command(torBin, "-f", path, "--hush")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("tornet: start %s: %w", name, err)
	}
	n.procs = append(n.procs, cmd)
	n.logs = append(n.logs, log)
	return nil
}

// waitBootstrap polls the client's control port until 100 %.
func (n *Network) waitBootstrap(ctx context.Context) error {
	last := ""
	for i := 0; ; i++ {
		if p, err := n.phase(ctx); err == nil {
			last = p
			if strings.Contains(p, "PROGRESS=100") {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("tornet: the client tor did not bootstrap (last: %q); read the logs: %s%s",
				last, strings.Join(n.logs, " "), tail(filepath.Join(n.Dir, "client", "tor.log")))
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// phase asks the client tor for its bootstrap phase.
func (n *Network) phase(ctx context.Context) (string, error) {
	cookie, err := os.ReadFile(n.CookiePath)
	if err != nil {
		return "", err
	}
	var d net.Dialer
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	c, err := d.DialContext(cctx, "tcp", n.ControlAddr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	fmt.Fprintf(c, "AUTHENTICATE %s\r\nGETINFO status/bootstrap-phase\r\nQUIT\r\n", hex.EncodeToString(cookie))
	var out bytes.Buffer
	sc := bufio.NewScanner(c)
	for i := 0; sc.Scan() && i < 20; i++ {
		out.WriteString(sc.Text() + "\n")
	}
	if !strings.Contains(out.String(), "250-status/bootstrap-phase=") {
		return "", fmt.Errorf("tornet: control answer %q", out.String())
	}
	return out.String(), nil
}

func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 6 {
		lines = lines[len(lines)-6:]
	}
	return "\n  " + strings.Join(lines, "\n  ")
}

// Logs returns the log file of every node.
func (n *Network) Logs() []string { return append([]string(nil), n.logs...) }

// Close stops every tor (SIGTERM, SIGKILL after 5 s) and waits for them.
// It is idempotent.
func (n *Network) Close() error {
	for _, p := range n.procs {
		p.Process.Signal(syscall.SIGTERM)
	}
	for _, p := range n.procs {
		done := make(chan struct{})
		go func() { p.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			p.Process.Kill()
			<-done
		}
	}
	n.procs = nil
	return nil
}

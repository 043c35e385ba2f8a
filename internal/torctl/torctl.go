// Package torctl gives sealnet what it needs from Tor, through
// github.com/cretz/bine: a tor process it starts from the system binary or
// one the user already runs, SOCKS connections that each get a circuit of
// their own, and v3 onion services with a key kept on disk.
//
// Every call that talks to tor runs under a deadline. bine v0.2.0 can
// block for ever in EnableNetwork and Listen (bine issues #39 and #40: an
// event it waits for may have passed before it subscribed), so this
// package never uses bine's event waits on the connection it keeps:
// bootstrap is polled with GETINFO, and the wait for an onion service's
// descriptor runs on a second, disposable control connection. When a
// deadline passes, the call returns an error that names tor's log, and a
// tor this package started is stopped.
package torctl

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/cretz/bine/control"
	"github.com/cretz/bine/tor"
	"golang.org/x/net/proxy"
)

// Errors callers branch on.
var (
	// ErrNoTor: no tor binary was found. Its message says how to install
	// one.
	ErrNoTor = errors.New("torctl: no tor binary found; install it (Debian/Ubuntu: apt-get install tor) or set the path of one")
	// ErrBootstrap: tor did not finish bootstrapping in time.
	ErrBootstrap = errors.New("torctl: tor did not bootstrap")
	// ErrControl: the control port could not be reached or refused us.
	ErrControl = errors.New("torctl: tor control port")
	// ErrPublish: an onion service's descriptor was not published in time.
	ErrPublish = errors.New("torctl: onion service not published")
	// ErrDial: a connection through Tor failed (the destination is
	// unreachable, or the circuit could not be built).
	ErrDial = errors.New("torctl: connection through Tor failed")
)

// Modes of Config.Mode.
const (
	// ModeStart starts a tor process from the system binary, owned by
	// this process and stopped with it.
	ModeStart = "start"
	// ModeAttach uses a tor the user already runs (system tor, Tor
	// Browser): its SOCKS port, and its control port if an onion service
	// is needed.
	ModeAttach = "attach"
)

// Config says which tor to use. The zero value of every field but Mode
// has a safe default.
type Config struct {
	// Mode is ModeStart or ModeAttach.
	Mode string `toml:"mode"`
	// Binary is tor's path (start). Default: "tor" on $PATH, then
	// /usr/sbin/tor and /usr/bin/tor.
	Binary string `toml:"binary"`
	// DataDir is tor's data directory (start); created 0700. Required
	// for start.
	DataDir string `toml:"data_dir"`
	// Torrc is an extra torrc file (start), for example the options of a
	// private test network. Default: none.
	Torrc string `toml:"torrc"`
	// Control is the control port, host:port (attach). Cookie or
	// no-password authentication are used as tor offers them; Password
	// for HashedControlPassword.
	Control  string `toml:"control"`
	Password string `toml:"password"`
	// Socks is the SOCKS port, host:port (attach). Default: asked from
	// the control port, else 127.0.0.1:9050.
	Socks string `toml:"socks"`
	// Bootstrap bounds the wait for tor to bootstrap. Default 3m (the
	// public network can be slow on a first start).
	Bootstrap time.Duration `toml:"-"`
}

// Tor is a running tor, started or attached.
type Tor struct {
	t       *tor.Tor
	socks   string
	control string // host:port of the control port; "" if none
	logPath string // tor's notice log, "" when attached
	cookie  string
	pass    string
	log     *slog.Logger

	mu     sync.Mutex // serialises use of t.Control
	closed bool
	cancel context.CancelFunc // stops a started process
	// Bootstrapped is how long bootstrapping took (start), 0 if attached.
	Bootstrapped time.Duration
}

// Open starts or attaches to tor as cfg.Mode says.
func Open(ctx context.Context, cfg Config, log *slog.Logger) (*Tor, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	switch cfg.Mode {
	case ModeStart:
		return start(ctx, cfg, log)
	case ModeAttach:
		return attach(ctx, cfg, log)
	default:
		return nil, fmt.Errorf("torctl: mode %q: want %q (run a tor from the system binary) or %q (use a running tor)", cfg.Mode, ModeStart, ModeAttach)
	}
}

// FindBinary returns the path of the tor binary: path if set, else tor on
// $PATH, /usr/sbin/tor or /usr/bin/tor. The error wraps ErrNoTor.
func FindBinary(path string) (string, error) {
	if path != "" {
		if st, err := os.Stat(path); err != nil || st.IsDir() {
			return "", fmt.Errorf("%w (%s is not a file)", ErrNoTor, path)
		}
		return path, nil
	}
	if p, err := exec.LookPath("tor"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/sbin/tor", "/usr/bin/tor"} {
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
	}
	return "", ErrNoTor
}

func bootstrapBound(cfg Config) time.Duration {
	if cfg.Bootstrap > 0 {
		return cfg.Bootstrap
	}
	return 3 * time.Minute
}

func start(ctx context.Context, cfg Config, log *slog.Logger) (*Tor, error) {
	bin, err := FindBinary(cfg.Binary)
	if err != nil {
		return nil, err
	}
	if cfg.DataDir == "" {
		return nil, errors.New("torctl: a data directory for tor is required")
	}
	dir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("torctl: tor data directory: %w", err)
	}
	// tor refuses a data directory others can read.
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, "notice.log")
	torrc := cfg.Torrc
	if torrc == "" {
		// bine would write an empty torrc-* file per start; one fixed
		// empty file keeps the directory tidy.
		torrc = filepath.Join(dir, "torrc")
		if err := os.WriteFile(torrc, nil, 0o600); err != nil {
			return nil, err
		}
	} else if _, err := os.Stat(torrc); err != nil {
		return nil, fmt.Errorf("torctl: torrc: %w", err)
	}
	bound := bootstrapBound(cfg)
	began := time.Now()
	deadline, cancelDeadline := context.WithTimeout(ctx, bound)
	defer cancelDeadline()

	// The process lives as long as procCtx, which only Close (or a failed
	// start) cancels: bine kills tor when the context given to Start ends,
	// so a deadline must not be that context.
	procCtx, procCancel := context.WithCancel(context.Background())
	type result struct {
		t   *tor.Tor
		err error
	}
	ch := make(chan result, 1)
	go func() {
		t, err := tor.Start(procCtx, &tor.StartConf{
			ExePath:       bin,
			DataDir:       dir,
			TorrcFile:     torrc,
			EnableNetwork: true, // no later EnableNetwork call: see the package doc
			// The log goes to a file only: nothing on our stderr.
			ExtraArgs: []string{"--Log", "notice file " + logPath, "--quiet"},
		})
		ch <- result{t, err}
	}()
	var r result
	select {
	case r = <-ch:
	case <-deadline.Done():
		procCancel() // kills tor, which ends whatever Start waits for
		select {
		case r = <-ch:
			if r.t != nil {
				r.t.Close()
			}
		case <-time.After(5 * time.Second):
		}
		return nil, fmt.Errorf("%w: tor did not start within %v; read its log: %s", ErrBootstrap, bound, logPath)
	}
	if r.err != nil {
		procCancel()
		return nil, fmt.Errorf("torctl: starting %s: %v; read its log: %s%s", bin, r.err, logPath, LogTail(logPath, 5))
	}
	t := &Tor{t: r.t, logPath: logPath, log: log, cancel: procCancel,
		control: fmt.Sprintf("127.0.0.1:%d", r.t.ControlPort), cookie: filepath.Join(dir, "control_auth_cookie")}
	if err := t.waitBootstrap(deadline, bound); err != nil {
		t.Close()
		return nil, err
	}
	t.Bootstrapped = time.Since(began)
	socks, err := t.getInfo(deadline, "net/listeners/socks")
	if err != nil {
		t.Close()
		return nil, err
	}
	t.socks = strings.Trim(strings.Fields(socks + " ")[0], `"`)
	log.Info("tor bootstrapped", "took", t.Bootstrapped.Round(time.Millisecond), "log", logPath)
	return t, nil
}

func attach(ctx context.Context, cfg Config, log *slog.Logger) (*Tor, error) {
	t := &Tor{log: log, socks: cfg.Socks, control: cfg.Control, pass: cfg.Password}
	if cfg.Control == "" {
		if t.socks == "" {
			t.socks = "127.0.0.1:9050"
		}
		return t, nil // SOCKS only: enough for a client
	}
	bound := bootstrapBound(cfg)
	deadline, cancel := context.WithTimeout(ctx, bound)
	defer cancel()
	c, err := t.dialControl(deadline)
	if err != nil {
		return nil, err
	}
	t.t = &tor.Tor{Control: c, StopProcessOnClose: false}
	if err := t.waitBootstrap(deadline, bound); err != nil {
		t.Close()
		return nil, err
	}
	if t.socks == "" {
		socks, err := t.getInfo(deadline, "net/listeners/socks")
		if err != nil || strings.TrimSpace(socks) == "" {
			t.Close()
			return nil, fmt.Errorf("%w: the tor at %s has no SOCKS port; give one", ErrControl, cfg.Control)
		}
		t.socks = strings.Trim(strings.Fields(socks)[0], `"`)
	}
	return t, nil
}

// dialControl opens and authenticates a control connection, under ctx.
func (t *Tor) dialControl(ctx context.Context) (*control.Conn, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", t.control)
	if err != nil {
		return nil, fmt.Errorf("%w: %v (is tor running with ControlPort %s?)", ErrControl, err, t.control)
	}
	c := control.NewConn(textproto.NewConn(nc))
	err = guard(ctx, func() { c.Close() }, func() error { return c.Authenticate(t.pass) })
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("%w: authenticating to %s: %v", ErrControl, t.control, err)
	}
	return c, nil
}

// guard runs f; if ctx ends first it calls abort (which must make f
// return, e.g. by closing its connection) and returns ctx's error.
func guard(ctx context.Context, abort func(), f func() error) error {
	ch := make(chan error, 1)
	go func() { ch <- f() }()
	select {
	case err := <-ch:
		return err
	case <-ctx.Done():
		abort()
		select {
		case <-ch:
		case <-time.After(5 * time.Second):
		}
		return ctx.Err()
	}
}

// ctl runs f on the kept control connection under ctx. A deadline that
// passes leaves the connection closed (its state is unknown).
func (t *Tor) ctl(ctx context.Context, f func(c *control.Conn) error) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed || t.t == nil || t.t.Control == nil {
		return fmt.Errorf("%w: no control connection", ErrControl)
	}
	c := t.t.Control
	return guard(ctx, func() { c.Close() }, func() error { return f(c) })
}

func (t *Tor) getInfo(ctx context.Context, key string) (string, error) {
	var val string
	err := t.ctl(ctx, func(c *control.Conn) error {
		kv, err := c.GetInfo(key)
		if err != nil {
			return err
		}
		for _, e := range kv {
			if e.Key == key {
				val = e.Val
				return nil
			}
		}
		return fmt.Errorf("no %s in the answer", key)
	})
	if err != nil {
		return "", fmt.Errorf("%w: GETINFO %s: %v", ErrControl, key, err)
	}
	return val, nil
}

// waitBootstrap polls the bootstrap phase until it reaches 100 %.
func (t *Tor) waitBootstrap(ctx context.Context, bound time.Duration) error {
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	last := ""
	for {
		phase, err := t.getInfo(ctx, "status/bootstrap-phase")
		if err == nil {
			last = phase
			if strings.Contains(phase, "PROGRESS=100") {
				return nil
			}
		} else if ctx.Err() == nil {
			return fmt.Errorf("%w: %v%s", ErrBootstrap, err, t.readLog())
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w within %v (last status: %s)%s", ErrBootstrap, bound, summary(last), t.readLog())
		case <-tick.C:
		}
	}
}

// readLog names the log to read, with its last lines.
func (t *Tor) readLog() string {
	if t.logPath == "" {
		return "; read the log of the tor you attached to"
	}
	if lines := LogTail(t.logPath, 5); lines != "" {
		return "; read its log: " + t.logPath + "\n  last lines:" + lines
	}
	return "; read its log: " + t.logPath
}

// summary shortens a bootstrap-phase line to its progress and summary.
func summary(phase string) string {
	if phase == "" {
		return "none"
	}
	var out []string
	for _, f := range []string{"PROGRESS=", "TAG="} {
		if i := strings.Index(phase, f); i >= 0 {
			v := phase[i:]
			if j := strings.IndexByte(v, ' '); j > 0 {
				v = v[:j]
			}
			out = append(out, v)
		}
	}
	if i := strings.Index(phase, "SUMMARY="); i >= 0 {
		v := phase[i+len("SUMMARY="):]
		if j := strings.Index(v, `" `); j > 0 {
			v = v[:j+1]
		}
		out = append(out, "SUMMARY="+v)
	}
	return strings.Join(out, " ")
}

// LogTail returns the last n lines of a log file, each on a new line
// indented by four spaces, for an error message; "" if there are none.
// It reads at most 100,000 lines.
func LogTail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for i := 0; sc.Scan() && i < 100_000; i++ {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	if len(lines) == 0 {
		return ""
	}
	return "\n    " + strings.Join(lines, "\n    ")
}

// SocksAddr is the SOCKS port connections go through.
func (t *Tor) SocksAddr() string { return t.socks }

// LogPath is the notice log of a started tor ("" when attached).
func (t *Tor) LogPath() string { return t.logPath }

// Dial opens a TCP connection to addr (host:port; host may be a .onion
// name) through Tor. Each call uses fresh random SOCKS credentials, and
// tor's IsolateSOCKSAuth (on by default) puts connections with different
// credentials on different circuits: two connections cannot be linked
// by a shared circuit, as Pond did for each delivery.
func (t *Tor) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var user, pass [16]byte
	rand.Read(user[:])
	rand.Read(pass[:])
	auth := &proxy.Auth{User: hex.EncodeToString(user[:]), Password: hex.EncodeToString(pass[:])}
	d, err := proxy.SOCKS5("tcp", t.socks, auth, proxy.Direct)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrDial, err)
	}
	nc, err := d.(proxy.ContextDialer).DialContext(ctx, network, addr)
	if err != nil {
		msg := err.Error()
		if r := redact(addr); r != addr {
			msg = strings.ReplaceAll(msg, addr, r)
		}
		return nil, fmt.Errorf("%w: to %s: %s", ErrDial, redact(addr), msg)
	}
	return nc, nil
}

// redact keeps an address out of errors unless it is an onion service
// (a provider's published address, not a user's).
func redact(addr string) string {
	host, _, _ := net.SplitHostPort(addr)
	if strings.HasSuffix(host, ".onion") {
		return addr
	}
	return "the destination"
}

// Close stops a tor this package started (an attached tor keeps
// running) and closes the control connection. It is idempotent.
func (t *Tor) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil
	}
	t.closed = true
	var err error
	if t.t != nil {
		done := make(chan error, 1)
		go func() { done <- t.t.Close() }()
		select {
		case err = <-done:
		case <-time.After(10 * time.Second):
			err = errors.New("torctl: tor did not stop in 10 s; killed")
		}
	}
	if t.cancel != nil {
		t.cancel()
	}
	return err
}

package capture

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Options configure Start.
type Options struct {
	// Interface to capture on. Default "lo".
	Interface string
	// Filter is a BPF expression, e.g. "tcp and net 127.0.0.0/8". Empty
	// captures everything.
	Filter string
	// Path of the pcap file to write. Required.
	Path string
	// Snaplen is how many bytes of each packet to keep. Default 128:
	// enough for the headers and the link handshake's clear bytes, which
	// is all Read needs.
	Snaplen int
	// Binary is the tcpdump to run. Default: "tcpdump" in PATH, then
	// /usr/sbin/tcpdump, /usr/bin/tcpdump.
	Binary string
}

// CapturerStats are tcpdump's final counts.
type CapturerStats struct {
	Captured int64 // packets written to the file
	Received int64 // packets that passed the filter
	Dropped  int64 // packets the kernel dropped: the capture misses traffic
}

// Capturer is a running tcpdump.
type Capturer struct {
	cmd    *exec.Cmd
	stderr *watchBuffer
	exited chan struct{} // closed when tcpdump has exited
	err    error         // its exit status, once exited is closed

	once  sync.Once
	stats CapturerStats
	serr  error
}

// How long Start waits for tcpdump to start listening, and Stop
// for it to exit.
const (
	startTimeout = 10 * time.Second
	stopTimeout  = 10 * time.Second
)

// Start runs tcpdump writing the traffic on o.Interface that
// matches o.Filter to o.Path, and returns once tcpdump is listening, so
// that traffic sent afterwards is captured. Stop ends it. Cancelling ctx
// stops tcpdump too (gracefully, as Stop does).
func Start(ctx context.Context, o Options) (*Capturer, error) {
	if o.Path == "" {
		return nil, errors.New("capture: capture needs an output path")
	}
	// An absolute path cannot be taken for an option ("-") or resolved
	// against another directory.
	path, err := filepath.Abs(o.Path)
	if err != nil {
		return nil, fmt.Errorf("capture: capture path: %w", err)
	}
	if strings.HasPrefix(strings.TrimSpace(o.Filter), "-") {
		return nil, fmt.Errorf("capture: capture filter %q starts with '-'", o.Filter)
	}
	if o.Interface == "" {
		o.Interface = "lo"
	}
	if o.Snaplen <= 0 {
		o.Snaplen = 128
	}
	bin, err := findTcpdump(o.Binary)
	if err != nil {
		return nil, err
	}
	// --immediate-mode: packets reach tcpdump (and, with -U, the file) as
	// they arrive, instead of when a ring buffer block fills or times out;
	// otherwise the last packets before Stop may never be written.
	args := []string{"-i", o.Interface, "-s", strconv.Itoa(o.Snaplen), "-U", "-n", "--immediate-mode", "-w", path}
	if os.Geteuid() == 0 {
		// tcpdump run as root drops to its own user (Debian: "tcpdump")
		// after opening the file; the file then belongs to that user and
		// its later rotations may not be writable. Stay root.
		args = append(args, "-Z", "root")
	}
	if f := strings.TrimSpace(o.Filter); f != "" {
		args = append(args, f)
	}
	c := &Capturer{stderr: newWatchBuffer("listening on"), exited: make(chan struct{})}
	// Not CommandContext: a cancelled ctx must stop tcpdump with SIGINT so
	// that it flushes, not kill it. The AfterFunc below does that.
	c.cmd = exec.Command(bin, args...)
	c.cmd.Stderr = c.stderr
	if err := c.cmd.Start(); err != nil {
		return nil, fmt.Errorf("capture: run %s: %w", bin, err)
	}
	go func() {
		c.err = c.cmd.Wait()
		close(c.exited)
	}()
	stop := context.AfterFunc(ctx, func() { c.cmd.Process.Signal(os.Interrupt) })
	go func() { <-c.exited; stop() }()

	timer := time.NewTimer(startTimeout)
	defer timer.Stop()
	select {
	case <-c.stderr.seen:
		return c, nil
	case <-c.exited:
		return nil, c.startError(path)
	case <-timer.C:
		c.kill()
		return nil, fmt.Errorf("capture: tcpdump did not start listening within %v: %s", startTimeout, c.stderr.text())
	case <-ctx.Done():
		c.kill()
		return nil, fmt.Errorf("capture: start capture: %w", ctx.Err())
	}
}

// findTcpdump resolves the binary to run.
func findTcpdump(bin string) (string, error) {
	if bin != "" {
		p, err := exec.LookPath(bin)
		if err != nil {
			return "", fmt.Errorf("%w: %w", ErrNoTcpdump, err)
		}
		return p, nil
	}
	if p, err := exec.LookPath("tcpdump"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/sbin/tcpdump", "/usr/bin/tcpdump"} {
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w: not in PATH, /usr/sbin or /usr/bin", ErrNoTcpdump)
}

// startError explains why tcpdump exited before listening.
func (c *Capturer) startError(path string) error {
	msg := strings.TrimSpace(c.stderr.text())
	switch {
	case strings.Contains(msg, "don't have permission"), strings.Contains(msg, "Operation not permitted"):
		return fmt.Errorf("%w (run as root, or setcap cap_net_raw,cap_net_admin=eip on tcpdump): %s", ErrPermission, msg)
	case strings.Contains(msg, path):
		return fmt.Errorf("capture: tcpdump cannot write %s: %s", path, msg)
	}
	return fmt.Errorf("capture: tcpdump exited (%v): %s", c.err, msg)
}

// kill ends a tcpdump that failed to start and waits for it.
func (c *Capturer) kill() {
	c.cmd.Process.Kill()
	<-c.exited
}

// Stop ends the capture: it interrupts tcpdump, which writes out what it
// holds, waits for it to exit and returns its counts. Calling it again
// returns the same result.
func (c *Capturer) Stop() (CapturerStats, error) {
	c.once.Do(func() {
		c.cmd.Process.Signal(os.Interrupt)
		timer := time.NewTimer(stopTimeout)
		defer timer.Stop()
		select {
		case <-c.exited:
		case <-timer.C:
			c.kill()
			c.serr = fmt.Errorf("capture: tcpdump did not exit within %v of an interrupt; killed it", stopTimeout)
			return
		}
		text := c.stderr.text()
		c.stats = CapturerStats{
			Captured: count(text, "captured"),
			Received: count(text, "received by filter"),
			Dropped:  count(text, "dropped by kernel"),
		}
		// tcpdump exits 0 on SIGINT; anything else is a failure worth
		// reporting (a full disk, say).
		if c.err != nil {
			c.serr = fmt.Errorf("capture: tcpdump: %w: %s", c.err, strings.TrimSpace(text))
		}
	})
	return c.stats, c.serr
}

var countRE = regexp.MustCompile(`(?m)^(\d+) packets? (captured|received by filter|dropped by kernel)`)

// count finds "N packets <what>" in tcpdump's final report.
func count(text, what string) int64 {
	for _, m := range countRE.FindAllStringSubmatch(text, -1) {
		if m[2] == what {
			n, _ := strconv.ParseInt(m[1], 10, 64)
			return n
		}
	}
	return 0
}

// watchBuffer collects tcpdump's stderr (bounded) and signals when a
// marker appears in it.
type watchBuffer struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	marker string
	seen   chan struct{}
	closed bool
}

// maxStderr bounds the stderr kept: tcpdump's messages are a few lines.
const maxStderr = 64 << 10

func newWatchBuffer(marker string) *watchBuffer {
	return &watchBuffer{marker: marker, seen: make(chan struct{})}
}

func (w *watchBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if room := maxStderr - w.buf.Len(); room > 0 {
		w.buf.Write(p[:min(len(p), room)])
	}
	if !w.closed && bytes.Contains(w.buf.Bytes(), []byte(w.marker)) {
		w.closed = true
		close(w.seen)
	}
	return len(p), nil
}

func (w *watchBuffer) text() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

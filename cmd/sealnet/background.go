package main

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sealnet/sealnet/internal/atomicfile"
	"github.com/sealnet/sealnet/sender"
)

// The background daemon (docs/client.md §1.1). `sealnet send` hands its
// message to the daemon that holds the state directory, starting one if
// none runs, so that the network sees the user's constant stream and
// cover traffic whether or not the user writes, not a client that comes
// online to send. A daemon started that way:
//
//   - is `sealnet daemon --background`, in a session of its own (no
//     terminal; it outlives the command that started it), with the same
//     state directory and Tor flags;
//   - gets the passphrase through an inherited pipe (--passphrase-fd 3),
//     never on its command line or in its environment (SEALNET_PASSPHRASE
//     is removed from the environment it inherits);
//   - writes DIR/daemon.log (0600): start, stop, warnings, and one line
//     per event naming only the message ID, with no times, addresses or
//     text (the history, encrypted, has those);
//   - writes DIR/daemon.pid (0600) once it holds the state lock, and
//     removes it when it stops; `sealnet daemon --stop` sends it SIGTERM,
//     on which it stops cleanly.
const (
	daemonLogName = "daemon.log"
	daemonPidName = "daemon.pid"
	// daemonStartWait bounds how long `send` waits for a daemon it
	// started to hold the state directory (Argon2id, then the lock), on
	// top of tor's bootstrap when it starts tor.
	daemonStartWait = 30 * time.Second
	// daemonStopWait bounds how long `daemon --stop` waits for it to go.
	daemonStopWait = 30 * time.Second
	// passphraseFD is the descriptor the passphrase comes through.
	passphraseFD = 3
)

// startDaemon starts a background daemon for dir with the extra flags and
// waits (up to wait) until it holds the directory. It returns its pid.
// The passphrase goes through a pipe the child inherits.
func startDaemon(dir string, pass []byte, extra []string, wait time.Duration) (int, error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, fmt.Errorf("finding the sealnet binary to start a daemon: %w", err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return 0, err
	}
	logPath := filepath.Join(abs, daemonLogName)
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return 0, err
	}
	defer logf.Close()
	if err := logf.Chmod(0o600); err != nil {
		return 0, err
	}
	r, w, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	args := append([]string{"daemon", "--background", "--dir", abs, "--passphrase-fd", strconv.Itoa(passphraseFD)}, extra...)
	cmd := exec.Command(exe, args...)
	cmd.Stdout, cmd.Stderr = logf, logf // stdin: /dev/null
	cmd.ExtraFiles = []*os.File{r}      // fd 3
	cmd.Env = envWithout(os.Environ(), "SEALNET_PASSPHRASE")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	r.Close()
	if err != nil {
		w.Close()
		return 0, fmt.Errorf("starting a daemon: %w", err)
	}
	_, werr := w.Write(pass)
	w.Close()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }() // reaps it if it fails; the command exits soon after
	if werr != nil {
		cmd.Process.Kill()
		return 0, fmt.Errorf("handing the passphrase to the daemon: %w", werr)
	}
	pid := cmd.Process.Pid
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-exited:
			return 0, fmt.Errorf("the daemon stopped at once (%v); its log, %s:\n%s", err, logPath, logTail(logPath, 10))
		case <-deadline.C:
			return pid, fmt.Errorf("the daemon (pid %d) has not taken the state directory after %v; see %s", pid, wait, logPath)
		case <-tick.C:
			if running, _ := runningDaemon(abs); running == pid {
				return pid, nil
			}
		}
	}
}

// runningDaemon returns the pid of the daemon that holds dir, if one does
// (0 if none), read from DIR/daemon.pid; held says whether anyone holds
// the directory's lock at all.
func runningDaemon(dir string) (pid int, held bool) {
	if !sender.InUse(dir) {
		return 0, false
	}
	b, err := os.ReadFile(filepath.Join(dir, daemonPidName))
	if err != nil {
		return 0, true
	}
	pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, true
	}
	return pid, true
}

// writePidFile records this process as dir's daemon; the returned func
// removes the file if it still names this process.
func writePidFile(dir string) (func(), error) {
	path := filepath.Join(dir, daemonPidName)
	me := strconv.Itoa(os.Getpid())
	if err := atomicfile.Write(path, []byte(me+"\n")); err != nil {
		return nil, err
	}
	return func() {
		if b, err := os.ReadFile(path); err == nil && strings.TrimSpace(string(b)) == me {
			os.Remove(path)
		}
	}, nil
}

// stopDaemon sends SIGTERM to dir's daemon and waits until it has let go
// of the directory.
func stopDaemon(dir string, stdout io.Writer) error {
	pid, held := runningDaemon(dir)
	switch {
	case !held:
		fmt.Fprintf(stdout, "No daemon runs for %s.\n", dir)
		return nil
	case pid == 0:
		return fmt.Errorf("a process holds %s but wrote no %s; stop it yourself", dir, daemonPidName)
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		return fmt.Errorf("stopping the daemon (pid %d): %w", pid, err)
	}
	for deadline := time.Now().Add(daemonStopWait); sender.InUse(dir); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			return fmt.Errorf("the daemon (pid %d) still holds %s after %v", pid, dir, daemonStopWait)
		}
	}
	fmt.Fprintf(stdout, "Stopped the daemon (pid %d).\n", pid)
	return nil
}

// readPassphraseFD reads the passphrase from an inherited descriptor (to
// its end) and closes it.
func readPassphraseFD(fd int) ([]byte, error) {
	f := os.NewFile(uintptr(fd), "passphrase")
	if f == nil {
		return nil, fmt.Errorf("--passphrase-fd %d: no such descriptor", fd)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 4096))
	if err != nil {
		return nil, fmt.Errorf("reading the passphrase from descriptor %d: %w", fd, err)
	}
	if len(b) == 0 {
		return nil, fmt.Errorf("descriptor %d gave no passphrase", fd)
	}
	return b, nil
}

func envWithout(env []string, name string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, name+"=") {
			out = append(out, kv)
		}
	}
	return out
}

// logTail is the last n lines of a log, for an error.
func logTail(path string, n int) string {
	b, _ := os.ReadFile(path)
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "  " + string(bytes.Join(lines, []byte("\n  ")))
}

// backgroundLogger logs to w without times: the log of a background
// daemon is a file in the state directory, which should not say when the
// user was active.
func backgroundLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l, ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
		if len(groups) == 0 && a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}})), nil
}

// printRedacted prints an event for a background daemon's log: its kind
// and message ID only, or for a warning that names no contact and no
// message (the loop alarm, a restored state) its text, which holds
// neither.
func printRedacted(w io.Writer, e sender.Event) {
	switch e.Kind {
	case sender.EventReceived:
		fmt.Fprintln(w, "received a message (sealnet history shows it)")
	case sender.EventDelivered:
		fmt.Fprintf(w, "delivered: message %s\n", e.ID)
	case sender.EventFailed:
		fmt.Fprintf(w, "NOT delivered: message %s (sealnet history says why)\n", e.ID)
	case sender.EventWarning:
		switch {
		case e.ID != "":
			fmt.Fprintf(w, "held: message %s (sealnet history and sealnet contacts say why)\n", e.ID)
		case e.To != "":
			fmt.Fprintln(w, "warning about a contact (sealnet contacts says why)")
		default:
			fmt.Fprintf(w, "warning: %s\n", e.Text)
		}
	case sender.EventNotice:
		if e.To == "" && e.ID == "" {
			fmt.Fprintf(w, "notice: %s\n", e.Text)
		}
	}
}

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/sealnet/sealnet/internal/daemon"
	"github.com/sealnet/sealnet/internal/testbed/testnet"
	"github.com/sealnet/sealnet/sender"
)

// clientFlags are the flags every user command shares.
type clientFlags struct {
	fs       *flag.FlagSet
	dir      *string
	passFile *string
	passFD   *int
	json     *bool
	level    *string
	stdin    io.Reader
	tor      *torFlags // nil: the command has no Tor flags
	cleanup  []func()
}

// withTor adds the Tor flags (docs/tor.md) to the command.
func (f *clientFlags) withTor() *clientFlags {
	f.tor = addTorFlags(f)
	return f
}

// close undoes what open set up (a tor it started).
func (f *clientFlags) close() {
	for _, c := range f.cleanup {
		c()
	}
	f.cleanup = nil
}

// options returns the client options: the logger, and the Tor dialers if
// Tor is on.
func (f *clientFlags) options(ctx context.Context, log *slog.Logger, stderr io.Writer) (sender.Options, error) {
	o := sender.Options{Logger: log}
	if f.tor == nil {
		return o, nil
	}
	if err := f.tor.load(*f.dir); err != nil {
		return o, err
	}
	closeTor, err := f.tor.open(ctx, *f.dir, &o, log, stderr)
	if err != nil {
		return o, err
	}
	f.cleanup = append(f.cleanup, closeTor)
	return o, nil
}

func newClientFlags(name, synopsis string, stderr io.Writer) *clientFlags {
	fs := newFlagSet(name, synopsis, stderr)
	def := os.Getenv("SEALNET_HOME")
	if def == "" {
		if h, err := os.UserHomeDir(); err == nil {
			def = filepath.Join(h, ".sealnet")
		}
	}
	return &clientFlags{
		fs:       fs,
		dir:      fs.String("dir", def, "state directory (default $SEALNET_HOME, else ~/.sealnet)"),
		passFile: fs.String("passphrase-file", "", "read the passphrase from this file (else $SEALNET_PASSPHRASE, else a terminal prompt)"),
		passFD:   fs.Int("passphrase-fd", -1, "read the passphrase from this inherited file descriptor, to its end (how 'send' hands it to a daemon it starts)"),
		json:     fs.Bool("json", false, "print JSON (one object per line) for scripts"),
		level:    fs.String("log-level", "warn", "log level on stderr: debug, info, warn, error"),
		stdin:    os.Stdin,
	}
}

// passphrase comes from --passphrase-fd, --passphrase-file,
// $SEALNET_PASSPHRASE, or the terminal (asked twice when confirm is set).
func (f *clientFlags) passphrase(stderr io.Writer, confirm bool) ([]byte, error) {
	if *f.passFD >= 0 {
		return readPassphraseFD(*f.passFD)
	}
	if *f.passFile != "" {
		b, err := os.ReadFile(*f.passFile)
		if err != nil {
			return nil, fmt.Errorf("reading the passphrase file: %w", err)
		}
		return bytes.TrimRight(b, "\r\n"), nil
	}
	if p := os.Getenv("SEALNET_PASSPHRASE"); p != "" {
		return []byte(p), nil
	}
	fd := int(os.Stdin.Fd())
	if !term.IsTerminal(fd) {
		return nil, errors.New("no passphrase: set SEALNET_PASSPHRASE, pass --passphrase-file, or run in a terminal")
	}
	fmt.Fprint(stderr, "Passphrase: ")
	p, err := term.ReadPassword(fd)
	fmt.Fprintln(stderr)
	if err != nil {
		return nil, err
	}
	if confirm {
		fmt.Fprint(stderr, "Again: ")
		q, err := term.ReadPassword(fd)
		fmt.Fprintln(stderr)
		if err != nil {
			return nil, err
		}
		if !bytes.Equal(p, q) {
			return nil, errors.New("the passphrases differ; try again")
		}
	}
	if len(p) < 8 {
		return nil, errors.New("choose a passphrase of at least 8 characters")
	}
	return p, nil
}

// open unlocks the state directory.
func (f *clientFlags) open(stderr io.Writer) (*sender.Client, *slog.Logger, error) {
	log, err := daemon.Logger(stderr, *f.level)
	if err != nil {
		return nil, nil, err
	}
	pass, err := f.passphrase(stderr, false)
	if err != nil {
		return nil, nil, err
	}
	defer clear(pass)
	o, err := f.options(context.Background(), log, stderr)
	if err != nil {
		return nil, nil, err
	}
	c, err := sender.Open(*f.dir, pass, o)
	return c, log, err
}

func (f *clientFlags) print(w io.Writer, v any, human string, args ...any) {
	if *f.json {
		b, _ := json.Marshal(v)
		fmt.Fprintf(w, "%s\n", b)
		return
	}
	fmt.Fprintf(w, human, args...)
}

func runInit(args []string, stdout, stderr io.Writer) error {
	f := newClientFlags("init", "init --address NAME@PROVIDER (--testnet DIR | --authority URL=KEY... [--threshold N]) [flags]", stderr)
	addr := f.fs.String("address", "", "your address, name@provider-domain")
	tn := f.fs.String("testnet", "", "take the directory authorities from a testnet folder (sealnet testnet up --dir)")
	var auths authList
	f.fs.Var(&auths, "authority", "a directory authority as URL=HEX-ED25519-KEY (repeat for each)")
	threshold := f.fs.Int("threshold", 0, "authority signatures a document needs (default: a majority)")
	epoch := f.fs.Duration("epoch", 20*time.Minute, "the network's epoch length (only used until the first document arrives)")
	if err := parseFlags(f.fs, args, stdout); err != nil {
		return err
	}
	if *addr == "" {
		fmt.Fprintln(stderr, "sealnet init: --address is required")
		f.fs.Usage()
		return errUsage
	}
	o := sender.InitOptions{Address: *addr, Authorities: auths, Threshold: *threshold, EpochPeriod: *epoch}
	if *tn != "" {
		nw, err := testnet.Open(*tn)
		if err != nil {
			return fmt.Errorf("reading the testnet in %s: %w", *tn, err)
		}
		for _, a := range nw.Authorities {
			o.Authorities = append(o.Authorities, sender.AuthorityState{URL: a.URL, Key: a.Key})
		}
		o.Threshold, o.EpochPeriod = nw.Spec.Threshold, nw.Spec.EpochPeriod
	}
	if len(o.Authorities) == 0 {
		return errors.New("give the network's directory authorities: --testnet DIR, or --authority URL=KEY for each")
	}
	if o.Threshold == 0 {
		o.Threshold = len(o.Authorities)/2 + 1
	}
	pass, err := f.passphrase(stderr, true)
	if err != nil {
		return err
	}
	defer clear(pass)
	if err := sender.Init(*f.dir, pass, o); err != nil {
		return err
	}
	c, err := sender.Open(*f.dir, pass, sender.Options{})
	if err != nil {
		return err
	}
	defer c.Close()
	f.print(stdout, map[string]string{"address": c.Address(), "dir": *f.dir, "fingerprint": c.Fingerprint()},
		"Created %s in %s.\nYour fingerprint (compare it with your contacts out of band):\n  %s\nNext: sealnet register --dir %s\n",
		c.Address(), *f.dir, c.Fingerprint(), *f.dir)
	return nil
}

// authList collects --authority URL=KEY flags.
type authList []sender.AuthorityState

func (a *authList) String() string { return fmt.Sprint(len(*a)) }
func (a *authList) Set(s string) error {
	u, k, ok := strings.Cut(s, "=")
	if !ok || u == "" || len(k) != 64 {
		return errors.New("want URL=KEY with a 64-hex-digit Ed25519 key")
	}
	*a = append(*a, sender.AuthorityState{URL: u, Key: k})
	return nil
}

func runRegister(args []string, stdout, stderr io.Writer) error {
	f := newClientFlags("register", "register [flags]", stderr).withTor()
	defer f.close()
	timeout := f.fs.Duration("timeout", time.Minute, "give up after this long")
	if err := parseFlags(f.fs, args, stdout); err != nil {
		return err
	}
	c, _, err := f.open(stderr)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	if err := c.Register(ctx); err != nil {
		return fmt.Errorf("%w\n(is the network up? the provider for %s must be in the directory)", err, c.Address())
	}
	f.print(stdout, map[string]string{"address": c.Address(), "status": "registered"},
		"Registered %s with its provider; prekeys uploaded.\n", c.Address())
	return nil
}

// oneshotWarning is what `send --oneshot` says before it sends.
const oneshotWarning = "WARNING: --oneshot runs the client only while this message goes out. Anyone watching the network " +
	"sees you come online now, as you write, and go away once it is acknowledged, and can link you to %s within a few " +
	"messages. Without --oneshot a background daemon sends it among its constant cover traffic."

func runSend(args []string, stdout, stderr io.Writer) error {
	f := newClientFlags("send", "send --to NAME@PROVIDER [TEXT... | --file FILE | < stdin] [--route mix|onion] [--tor start|attach] [--wait D | --oneshot] [flags]", stderr).withTor()
	defer f.close()
	f.fs.Usage = sendUsage(f)
	to := f.fs.String("to", "", "recipient address")
	route := f.fs.String("route", "", "mix: through the mix network (default); onion: over Tor straight to the recipient's provider's onion service (needs --tor)")
	file := f.fs.String("file", "", "send this file's contents")
	wait := f.fs.Duration("wait", 0, "after handing the message to the daemon, wait up to this long for its outcome (0: return at once)")
	oneshot := f.fs.Bool("oneshot", false, "run the client only until this message is acknowledged, then exit, as before: "+
		"REVEALS to an observer of the network that you come online when you write, and links you to your recipient within a few messages")
	timeout := f.fs.Duration("timeout", 10*time.Minute, "--oneshot: stop waiting for the outcome after this long (the message stays queued)")
	if err := parseFlagsArgs(f.fs, args, stdout); err != nil {
		return err
	}
	if *to == "" {
		fmt.Fprintln(stderr, "sealnet send: --to is required")
		f.fs.Usage()
		return errUsage
	}
	var body []byte
	var err error
	switch {
	case f.fs.NArg() > 0 && *file != "":
		return errors.New("give the text or --file, not both")
	case f.fs.NArg() > 0:
		body = []byte(strings.Join(f.fs.Args(), " "))
	case *file != "":
		body, err = os.ReadFile(*file)
	default:
		body, err = io.ReadAll(io.LimitReader(bufio.NewReader(f.stdin), sender.MaxMessage+1))
	}
	if err != nil {
		return err
	}
	if len(body) == 0 {
		return errors.New("empty message: give the text, --file, or pipe it in")
	}
	ctx, stop := daemon.SignalContext(context.Background())
	defer stop()

	log, err := daemon.Logger(stderr, *f.level)
	if err != nil {
		return err
	}
	pass, err := f.passphrase(stderr, false)
	if err != nil {
		return err
	}
	defer clear(pass)
	if err := f.tor.load(*f.dir); err != nil {
		return err
	}
	pid, running := runningDaemon(*f.dir)
	for deadline := time.Now().Add(5 * time.Second); running && pid == 0 && time.Now().Before(deadline); {
		// Another command holds the directory for a moment, or a daemon
		// is starting and has not written its pid yet.
		time.Sleep(100 * time.Millisecond)
		pid, running = runningDaemon(*f.dir)
	}
	// The one route check: without a daemon this process sends (oneshot)
	// or starts the daemon with its own Tor settings, so the onion route
	// needs Tor here.
	rt, err := f.tor.cfg.SendRoute(sender.Route(*route), running)
	if errors.Is(err, sender.ErrUnknownRoute) {
		return fmt.Errorf("--route %q: want mix or onion", *route)
	} else if err != nil {
		return err // ErrNoTor: its text says which flag to give
	}
	if *oneshot && !running {
		return f.sendOneshot(ctx, stdout, stderr, log, pass, *to, body, rt, *timeout)
	}
	// Hand the message to the daemon that holds the directory, starting
	// one if none does. The spool checks the passphrase.
	id, err := sender.Spool(*f.dir, pass, *to, body, rt)
	if err != nil {
		return err
	}
	started := false
	if !running {
		startWait := daemonStartWait + f.tor.cfg.Tor.StartWait()
		fmt.Fprintln(stderr, "Starting a background daemon for this identity...")
		if pid, err = startDaemon(*f.dir, pass, f.daemonFlags(), startWait); err != nil && pid == 0 {
			return fmt.Errorf("%w\nThe message is queued in %s; it goes out when a daemon runs: sealnet daemon --dir %s",
				err, filepath.Join(*f.dir, "spool"), *f.dir)
		} else if err != nil {
			fmt.Fprintf(stderr, "%v\n", err)
		}
		started = true
	}
	logPath := filepath.Join(*f.dir, daemonLogName)
	if *f.json {
		b, _ := json.Marshal(map[string]any{"id": id, "to": *to, "status": "queued", "daemon_pid": pid, "daemon_started": started, "daemon_log": logPath})
		fmt.Fprintf(stdout, "%s\n", b)
	} else {
		how := "is running"
		if started {
			how = fmt.Sprintf("started now, in the background; it keeps running (stop it with `sealnet daemon --stop --dir %s`)", *f.dir)
		}
		if pid == 0 {
			how = "(another sealnet process holds the directory) picks it up when it runs"
		}
		fmt.Fprintf(stdout, "Queued message %s to %s. The daemon (pid %d) %s.\n"+
			"It sends the message among its cover traffic; `sealnet history` shows \"delivered\" once %s's provider acknowledges it (its log: %s).\n",
			id, *to, pid, how, *to, logPath)
	}
	if *oneshot {
		fmt.Fprintln(stderr, "A daemon runs for this identity: --oneshot is not needed, it sends the message with cover traffic; waiting for the outcome.")
		if *wait == 0 {
			*wait = *timeout
		}
	}
	if *wait <= 0 {
		return nil
	}
	wctx, cancel := context.WithTimeout(ctx, *wait)
	defer cancel()
	m, err := sender.WaitOutcome(wctx, *f.dir, pass, id)
	if err != nil {
		return fmt.Errorf("no outcome yet (%w); the daemon keeps trying: sealnet history shows it", err)
	}
	return f.outcome(stdout, id, *to, m.Status, m.Warning)
}

// daemonFlags are the flags of this command that a daemon it starts
// needs: its log level and Tor's.
func (f *clientFlags) daemonFlags() []string {
	out := []string{"--log-level", *f.level}
	if t := f.tor; t != nil {
		for _, fl := range []struct {
			name string
			v    *string
		}{{"tor", t.mode}, {"tor-socks", t.socks}, {"tor-control", t.control}, {"tor-torrc", t.torrc}, {"tor-binary", t.binary}} {
			if *fl.v != "" {
				out = append(out, "--"+fl.name, *fl.v)
			}
		}
		if *t.bootstrap != 0 {
			out = append(out, "--tor-bootstrap-timeout", t.bootstrap.String())
		}
	}
	return out
}

// sendOneshot is `send --oneshot`: this process runs the client's stream
// until the message is acknowledged or given up, then exits.
func (f *clientFlags) sendOneshot(ctx context.Context, stdout, stderr io.Writer, log *slog.Logger, pass []byte, to string, body []byte, route sender.Route, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	o, err := f.options(ctx, log, stderr)
	if err != nil {
		return fmt.Errorf("%w\nNothing was sent or queued.", err)
	}
	c, err := sender.Open(*f.dir, pass, o)
	if err != nil {
		return err
	}
	defer c.Close()
	fmt.Fprintf(stderr, oneshotWarning+"\n", to)
	id, err := c.Queue(to, body, route)
	if err != nil {
		return err
	}
	var kind sender.EventKind
	var detail string
	evs := c.Events()
	done := func() bool {
		for {
			select {
			case e := <-evs:
				if e.ID == id && (e.Kind == sender.EventDelivered || e.Kind == sender.EventFailed || e.Kind == sender.EventWarning) {
					kind, detail = e.Kind, e.Text
					return true
				}
				printEvent(f, stdout, e)
			default:
				return false
			}
		}
	}
	how := "through the mix network"
	if route == sender.RouteOnion {
		how = "over Tor to the provider's onion service"
	}
	fmt.Fprintf(stderr, "Sending to %s %s (message %s)...\n", to, how, id)
	if err := c.Run(ctx, done); err != nil && kind == 0 {
		return fmt.Errorf("stopped before the outcome (%w); the message stays queued: run `sealnet daemon` or send again later", err)
	}
	status := map[sender.EventKind]sender.Status{sender.EventDelivered: sender.StatusDelivered, sender.EventFailed: sender.StatusFailed, sender.EventWarning: sender.StatusBlocked}[kind]
	return f.outcome(stdout, id, to, status, detail)
}

func (f *clientFlags) outcome(stdout io.Writer, id, to string, status sender.Status, detail string) error {
	f.print(stdout, map[string]string{"id": id, "to": to, "status": status.String(), "detail": detail}, "%s", "")
	if !*f.json {
		switch status {
		case sender.StatusDelivered:
			fmt.Fprintf(stdout, "Delivered to %s (acknowledged by %s's provider).\n", to, to)
		case sender.StatusBlocked:
			fmt.Fprintf(stdout, "NOT sent to %s: %s\n", to, detail)
		default:
			fmt.Fprintf(stdout, "NOT delivered to %s: %s\n", to, detail)
		}
	}
	if status != sender.StatusDelivered {
		return errors.New("message not delivered")
	}
	return nil
}

func printMessage(f *clientFlags, w io.Writer, m *sender.Message) {
	if *f.json {
		b, _ := json.Marshal(map[string]any{"kind": "received", "message": m})
		fmt.Fprintf(w, "%s\n", b)
		return
	}
	who := "verified sender"
	if !m.Verified {
		who = "SENDER NOT VERIFIED"
	}
	fmt.Fprintf(w, "From: %s (%s, fingerprint %s)\nSent: %s\n", m.From, who, m.Fingerprint, m.Sent.Format(time.RFC3339))
	if m.Warning != "" {
		fmt.Fprintf(w, "WARNING: %s\n", m.Warning)
	}
	fmt.Fprintf(w, "\n%s\n\n", m.Body)
}

func printEvent(f *clientFlags, w io.Writer, e sender.Event) {
	switch e.Kind {
	case sender.EventReceived:
		printMessage(f, w, e.Message)
	case sender.EventDelivered, sender.EventFailed, sender.EventWarning, sender.EventNotice:
		if *f.json {
			b, _ := json.Marshal(map[string]string{"kind": e.Kind.String(), "id": e.ID, "to": e.To, "detail": e.Text})
			fmt.Fprintf(w, "%s\n", b)
			return
		}
		switch e.Kind {
		case sender.EventDelivered:
			fmt.Fprintf(w, "Delivered: message %s to %s.\n", e.ID, e.To)
		case sender.EventFailed:
			fmt.Fprintf(w, "NOT delivered: message %s to %s: %s\n", e.ID, e.To, e.Text)
		case sender.EventNotice:
			fmt.Fprintf(w, "Notice: %s\n", e.Text)
		default:
			fmt.Fprintf(w, "WARNING: %s\n", e.Text)
		}
	}
}

func runFetch(args []string, stdout, stderr io.Writer) error {
	f := newClientFlags("fetch", "fetch [--wait 10s] [flags]", stderr).withTor()
	defer f.close()
	wait := f.fs.Duration("wait", 0, "wait this long for mail if there is none")
	if err := parseFlags(f.fs, args, stdout); err != nil {
		return err
	}
	c, _, err := f.open(stderr)
	if errors.Is(err, sender.ErrLocked) {
		return errors.New("a `sealnet daemon` runs for this identity and fetches for it: read its output, or `sealnet history`")
	}
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, stop := daemon.SignalContext(context.Background())
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *wait+time.Minute)
	defer cancel()
	msgs, err := c.Fetch(ctx, *wait)
	for _, m := range msgs {
		printMessage(f, stdout, m)
	}
	for drained := false; !drained; {
		select {
		case e := <-c.Events():
			if e.Kind != sender.EventReceived {
				printEvent(f, stdout, e)
			}
		default:
			drained = true
		}
	}
	if err != nil {
		return err
	}
	if len(msgs) == 0 && !*f.json {
		fmt.Fprintln(stdout, "No new messages.")
	}
	return nil
}

func runHistory(args []string, stdout, stderr io.Writer) error {
	f := newClientFlags("history", "history [flags]", stderr)
	if err := parseFlags(f.fs, args, stdout); err != nil {
		return err
	}
	pass, err := f.passphrase(stderr, false)
	if err != nil {
		return err
	}
	defer clear(pass)
	hist, err := sender.ReadHistory(*f.dir, pass)
	if err != nil {
		return err
	}
	spooled, err := sender.Spooled(*f.dir, pass)
	if err != nil {
		return err
	}
	for _, m := range append(hist, spooled...) {
		if *f.json {
			b, _ := json.Marshal(historyJSON{m, m.Status.String()})
			fmt.Fprintf(stdout, "%s\n", b)
			continue
		}
		if m.Outgoing {
			// The outcome: queued, sending, delivered, not delivered (and
			// why), blocked, or still in the spool.
			fmt.Fprintf(stdout, "To: %s [%s]\nSent: %s\n", m.To, m.Status, m.Sent.Format(time.RFC3339))
			if m.Warning != "" {
				fmt.Fprintf(stdout, "Why: %s\n", m.Warning)
			}
			fmt.Fprintf(stdout, "\n%s\n\n", m.Body)
			continue
		}
		printMessage(f, stdout, m)
	}
	return nil
}

// historyJSON is a history entry as `history --json` prints it: the
// message, with its status as the text the user reads ("delivered"),
// not the code the history saves.
type historyJSON struct {
	*sender.Message
	Status string `json:"status,omitempty"`
}

func runContacts(args []string, stdout, stderr io.Writer) error {
	f := newClientFlags("contacts", "contacts [trust NAME@PROVIDER] [flags]", stderr)
	if err := parseFlagsArgs(f.fs, args, stdout); err != nil {
		return err
	}
	rest := f.fs.Args()
	if len(rest) > 0 && (rest[0] != "trust" || len(rest) != 2) {
		f.fs.Usage()
		return errUsage
	}
	c, _, err := f.open(stderr)
	if err != nil {
		return err
	}
	defer c.Close()
	if len(rest) == 2 {
		if err := c.Trust(rest[1]); err != nil {
			return err
		}
		f.print(stdout, map[string]string{"trusted": rest[1]}, "Trusted the new identity key of %s; messages to it go out again.\n", rest[1])
		return nil
	}
	if !*f.json {
		fmt.Fprintf(stdout, "You: %s\n  %s\n\n", c.Address(), c.Fingerprint())
	}
	for _, ct := range c.Contacts() {
		if *f.json {
			b, _ := json.Marshal(map[string]any{"address": ct.Address, "fingerprint": ct.Fingerprint(), "first_seen": ct.FirstSeen,
				"changed": ct.Changed(), "new_fingerprint": map[bool]string{true: ct.PendingFingerprint()}[ct.Changed()]})
			fmt.Fprintf(stdout, "%s\n", b)
			continue
		}
		fmt.Fprintf(stdout, "%s (first seen %s)\n  %s\n", ct.Address, ct.FirstSeen.Format("2006-01-02"), ct.Fingerprint())
		if ct.Changed() {
			fmt.Fprintf(stdout, "  CHANGED to %s\n  compare it with %s, then: sealnet contacts trust %s\n", ct.PendingFingerprint(), ct.Address, ct.Address)
		}
	}
	return nil
}

func runClientDaemon(args []string, stdout, stderr io.Writer) error {
	f := newClientFlags("daemon", "daemon [--detach | --stop] [flags]", stderr).withTor()
	defer f.close()
	detach := f.fs.Bool("detach", false, "start the daemon in the background, as 'send' does when none runs, and return (log: DIR/daemon.log)")
	background := f.fs.Bool("background", false, "run as the background daemon that --detach and 'send' start: events without addresses or text (for a log file), no terminal")
	stopIt := f.fs.Bool("stop", false, "stop the daemon that runs for this identity (SIGTERM) and wait until it has")
	if err := parseFlags(f.fs, args, stdout); err != nil {
		return err
	}
	if *stopIt {
		return stopDaemon(*f.dir, stdout)
	}
	if *detach {
		if pid, held := runningDaemon(*f.dir); held {
			return fmt.Errorf("a daemon (pid %d) already runs for %s", pid, *f.dir)
		}
		pass, err := f.passphrase(stderr, false)
		if err != nil {
			return err
		}
		defer clear(pass)
		if err := f.tor.load(*f.dir); err != nil {
			return err
		}
		if _, err := sender.ReadHistory(*f.dir, pass); err != nil { // checks the passphrase
			return err
		}
		wait := daemonStartWait + f.tor.cfg.Tor.StartWait()
		pid, err := startDaemon(*f.dir, pass, f.daemonFlags(), wait)
		if err != nil {
			return err
		}
		f.print(stdout, map[string]any{"daemon_pid": pid, "daemon_log": filepath.Join(*f.dir, daemonLogName)},
			"Started the daemon (pid %d) in the background; its log: %s. Stop it with: sealnet daemon --stop --dir %s\n",
			pid, filepath.Join(*f.dir, daemonLogName), *f.dir)
		return nil
	}
	if *background {
		log, err := backgroundLogger(stderr, *f.level)
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "sealnet daemon (pid %d) starting\n", os.Getpid())
		defer fmt.Fprintf(stderr, "sealnet daemon (pid %d) stopped\n", os.Getpid())
		return f.runDaemon(stderr, log, true, func(e sender.Event) { printRedacted(stdout, e) })
	}
	log, err := daemon.Logger(stderr, *f.level)
	if err != nil {
		return err
	}
	return f.runDaemon(stderr, log, false, func(e sender.Event) { printEvent(f, stdout, e) })
}

// runDaemon runs the client until SIGINT or SIGTERM, printing its events
// with show, with DIR/daemon.pid naming this process while it holds the
// directory. redact leaves the address out of what it prints itself.
func (f *clientFlags) runDaemon(stderr io.Writer, log *slog.Logger, redact bool, show func(sender.Event)) error {
	ctx, stop := daemon.SignalContext(context.Background())
	defer stop()
	pass, err := f.passphrase(stderr, false)
	if err != nil {
		return err
	}
	defer clear(pass)
	o, err := f.options(ctx, log, stderr)
	if err != nil {
		return err
	}
	c, err := sender.Open(*f.dir, pass, o)
	if err != nil {
		return err
	}
	defer c.Close()
	unpid, err := writePidFile(*f.dir)
	if err != nil {
		return err
	}
	defer unpid()
	if redact {
		fmt.Fprintf(stderr, "sealnet daemon (pid %d): sending and fetching with cover traffic.\n", os.Getpid())
	} else {
		fmt.Fprintf(stderr, "sealnet daemon for %s (pid %d): sending and fetching with cover traffic; stop with Ctrl-C or sealnet daemon --stop.\n", c.Address(), os.Getpid())
	}
	evs := c.Events()
	done := func() bool {
		for {
			select {
			case e := <-evs:
				show(e)
			default:
				return false
			}
		}
	}
	if err := c.Run(ctx, done); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	done()
	return nil
}

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
	"github.com/sealnet/sealnet/internal/testnet"
	"github.com/sealnet/sealnet/sender"
)

// clientFlags are the flags every user command shares.
type clientFlags struct {
	fs       *flag.FlagSet
	dir      *string
	passFile *string
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
		json:     fs.Bool("json", false, "print JSON (one object per line) for scripts"),
		level:    fs.String("log-level", "warn", "log level on stderr: debug, info, warn, error"),
		stdin:    os.Stdin,
	}
}

// passphrase comes from $SEALNET_PASSPHRASE, --passphrase-file, or the
// terminal (asked twice when confirm is set).
func (f *clientFlags) passphrase(stderr io.Writer, confirm bool) ([]byte, error) {
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
	if err := parseFlags(f.fs, args); err != nil {
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
	if err := parseFlags(f.fs, args); err != nil {
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

func runSend(args []string, stdout, stderr io.Writer) error {
	f := newClientFlags("send", "send --to NAME@PROVIDER [TEXT... | --file FILE | < stdin] [--route mix|onion] [--tor start|attach] [flags]", stderr).withTor()
	defer f.close()
	f.fs.Usage = sendUsage(f)
	to := f.fs.String("to", "", "recipient address")
	route := f.fs.String("route", "", "mix: through the mix network (default); onion: over Tor straight to the recipient's provider's onion service (needs --tor)")
	file := f.fs.String("file", "", "send this file's contents")
	timeout := f.fs.Duration("timeout", 10*time.Minute, "stop waiting for the outcome after this long (the message stays queued)")
	if err := f.fs.Parse(args); err != nil {
		return errUsage
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
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()

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
	if *route == "" {
		*route = f.tor.cfg.Route
	}
	if *route == "" {
		*route = sender.RouteMix
	}
	if *route != sender.RouteMix && *route != sender.RouteOnion {
		return fmt.Errorf("--route %q: want mix or onion", *route)
	}
	if sender.InUse(*f.dir) {
		// A daemon runs for this identity: hand it the message; it
		// delivers by its own transport.
		id, err := sender.SpoolRoute(*f.dir, pass, *to, body, *route)
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "Handed to the running daemon (message %s); waiting for the outcome.\n", id)
		m, err := sender.WaitOutcome(ctx, *f.dir, pass, id)
		if err != nil {
			return fmt.Errorf("no outcome yet (%w); the daemon keeps trying", err)
		}
		return f.outcome(stdout, id, *to, m.Status, m.Warning)
	}
	if *route == sender.RouteOnion && f.tor.cfg.Tor.Mode == "" {
		return sender.ErrNoTor
	}
	o, err := f.options(ctx, log, stderr)
	if err != nil {
		return fmt.Errorf("%w\nNothing was sent or queued.", err)
	}
	c, err := sender.Open(*f.dir, pass, o)
	if err != nil {
		return err
	}
	defer c.Close()
	id, err := c.QueueRoute(*to, body, *route)
	if err != nil {
		return err
	}
	var kind, detail string
	evs := c.Events()
	done := func() bool {
		for {
			select {
			case e := <-evs:
				if e.ID == id && (e.Kind == "delivered" || e.Kind == "failed" || e.Kind == "warning") {
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
	if *route == sender.RouteOnion {
		how = "over Tor to the provider's onion service"
	}
	fmt.Fprintf(stderr, "Sending to %s %s (message %s)...\n", *to, how, id)
	if err := c.Run(ctx, done); err != nil && kind == "" {
		return fmt.Errorf("stopped before the outcome (%w); the message stays queued: run `sealnet daemon` or send again later", err)
	}
	status := map[string]string{"delivered": sender.StatusDelivered, "failed": sender.StatusFailed, "warning": sender.StatusBlocked}[kind]
	return f.outcome(stdout, id, *to, status, detail)
}

func (f *clientFlags) outcome(stdout io.Writer, id, to, status, detail string) error {
	f.print(stdout, map[string]string{"id": id, "to": to, "status": status, "detail": detail}, "%s", "")
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
	case "received":
		printMessage(f, w, e.Message)
	case "delivered", "failed", "warning", "notice":
		if *f.json {
			b, _ := json.Marshal(map[string]string{"kind": e.Kind, "id": e.ID, "to": e.To, "detail": e.Text})
			fmt.Fprintf(w, "%s\n", b)
			return
		}
		switch e.Kind {
		case "delivered":
			fmt.Fprintf(w, "Delivered: message %s to %s.\n", e.ID, e.To)
		case "failed":
			fmt.Fprintf(w, "NOT delivered: message %s to %s: %s\n", e.ID, e.To, e.Text)
		case "notice":
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
	if err := parseFlags(f.fs, args); err != nil {
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
			if e.Kind != "received" {
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
	if err := parseFlags(f.fs, args); err != nil {
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
	for _, m := range hist {
		if *f.json {
			b, _ := json.Marshal(m)
			fmt.Fprintf(stdout, "%s\n", b)
			continue
		}
		if m.Outgoing {
			fmt.Fprintf(stdout, "To: %s [%s]\nSent: %s\n\n%s\n\n", m.To, m.Status, m.Sent.Format(time.RFC3339), m.Body)
			continue
		}
		printMessage(f, stdout, m)
	}
	return nil
}

func runContacts(args []string, stdout, stderr io.Writer) error {
	f := newClientFlags("contacts", "contacts [trust NAME@PROVIDER] [flags]", stderr)
	if err := f.fs.Parse(args); err != nil {
		return errUsage
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
	f := newClientFlags("daemon", "daemon [flags]", stderr).withTor()
	defer f.close()
	if err := parseFlags(f.fs, args); err != nil {
		return err
	}
	c, _, err := f.open(stderr)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, stop := daemon.SignalContext(context.Background())
	defer stop()
	fmt.Fprintf(stderr, "sealnet daemon for %s: sending and fetching with cover traffic; stop with Ctrl-C.\n", c.Address())
	evs := c.Events()
	done := func() bool {
		for {
			select {
			case e := <-evs:
				printEvent(f, stdout, e)
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

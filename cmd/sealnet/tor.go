package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/sealnet/sealnet/internal/config"
	"github.com/sealnet/sealnet/internal/torctl"
	"github.com/sealnet/sealnet/sender"
)

// torFlags are the Tor flags of the user commands, laid over the user's
// DIR/config.toml (sender.Config, docs/tor.md).
type torFlags struct {
	mode, socks, control, torrc, binary *string
	bootstrap                           *time.Duration
	cfg                                 sender.Config
	loaded                              bool
}

func addTorFlags(f *clientFlags) *torFlags {
	t := &torFlags{
		mode:    f.fs.String("tor", "", "use Tor: off, start (run tor from the system binary) or attach (a running tor); default from DIR/config.toml, else off"),
		socks:   f.fs.String("tor-socks", "", "attach: the tor's SOCKS address (default: from its control port, else 127.0.0.1:9050)"),
		control: f.fs.String("tor-control", "", "attach: the tor's control port address"),
		torrc:   f.fs.String("tor-torrc", "", "start: an extra torrc file (e.g. a private test network's options)"),
		binary:  f.fs.String("tor-binary", "", "start: the tor binary (default: tor on $PATH, /usr/sbin/tor)"),
	}
	t.bootstrap = f.fs.Duration("tor-bootstrap-timeout", 0, "start: how long tor may take to bootstrap (0: 3m)")
	return t
}

// load reads DIR/config.toml (if any) and applies the flags over it, once.
func (t *torFlags) load(dir string) error {
	if t.loaded {
		return nil
	}
	cfg, err := sender.LoadConfig(filepath.Join(dir, sender.ConfigName))
	if err != nil {
		return err
	}
	c := &cfg.Tor
	if *t.mode != "" {
		if c.Mode, err = sender.ParseTorMode(*t.mode); err != nil {
			return fmt.Errorf("--tor %w", err)
		}
	}
	for _, o := range []struct{ flag, field *string }{
		{t.socks, &c.Socks}, {t.control, &c.Control}, {t.torrc, &c.Torrc}, {t.binary, &c.Binary},
	} {
		if *o.flag != "" {
			*o.field = *o.flag
		}
	}
	if *t.bootstrap != 0 {
		c.Bootstrap = config.Duration(*t.bootstrap)
	}
	t.cfg, t.loaded = cfg, true
	return nil
}

// open starts or attaches to tor as configured and fills o's dialers
// (sender.TorConfig.Dialers decides which go through it). It returns a
// closer (a no-op when Tor is off).
func (t *torFlags) open(ctx context.Context, dir string, o *sender.Options, log *slog.Logger, stderr io.Writer) (func(), error) {
	c := t.cfg.Tor
	if !c.On() {
		return func() {}, nil
	}
	if c.Mode == sender.TorStart {
		fmt.Fprintln(stderr, "Starting tor (its log: "+filepath.Join(dir, "tor", "notice.log")+")...")
	}
	tc := torctl.Config{Mode: string(c.Mode), Binary: c.Binary, DataDir: filepath.Join(dir, "tor"), Torrc: c.Torrc,
		Socks: c.Socks, Control: c.Control, Bootstrap: c.Bootstrap.D()}
	tr, err := torctl.Open(ctx, tc, log)
	if err != nil {
		if errors.Is(err, torctl.ErrNoTor) {
			return nil, fmt.Errorf("%w\n(or run without --tor)", err)
		}
		return nil, err
	}
	if tr.Bootstrapped > 0 {
		fmt.Fprintf(stderr, "tor bootstrapped in %v.\n", tr.Bootstrapped.Round(100_000_000))
	}
	c.Dialers(o, tr.Dial)
	return func() { tr.Close() }, nil
}

// sendUsage adds to send's usage what each route and Tor setting
// protects against (docs/tor.md has the whole story).
func sendUsage(f *clientFlags) func() {
	def := f.fs.Usage
	return func() {
		def()
		fmt.Fprint(f.fs.Output(), `
Routes and what they protect against (docs/tor.md):
  --route mix          (default) Through the mix network: every packet the same
                       size, delayed and reordered at each hop, hidden among cover
                       traffic, acknowledged through a SURB. Protects against a
                       global observer of the network and against corrupt relays
                       and providers; nobody learns who writes to whom or when.
  --route onion        Over Tor, straight to the recipient's provider's onion
                       service (Pond's design), one fresh circuit per connection,
                       constant-size request and answer. The provider never learns
                       your address and the envelope hides who you are; but there
                       is no mixing or cover: an adversary who watches both your
                       link and the provider's can match them by timing. Faster.
  --tor start|attach   Every connection of this command goes through Tor: to the
                       entry mix (it does not learn your IP address), to your own
                       provider (its onion service if it has one) and to the
                       directory. Combine with either route.
  DIR/config.toml      sets the defaults: route = "onion", [tor] mode = "attach",
                       socks = "127.0.0.1:9050", control = "127.0.0.1:9051",
                       entry/provider/directory = true|false.
`)
	}
}

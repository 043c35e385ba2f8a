package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/sealnet/sealnet/internal/config"
	"github.com/sealnet/sealnet/internal/torctl"
	"github.com/sealnet/sealnet/sender"
)

// clientConfig is the optional, unencrypted DIR/config.toml of a user's
// state directory: how the client's connections leave the machine. It
// holds no keys. Flags override it.
type clientConfig struct {
	// Route is how `send` delivers by default: "mix" or "onion".
	Route sender.Route    `toml:"route"`
	Tor   clientTorConfig `toml:"tor"`
}

type clientTorConfig struct {
	// Mode: "off" (default), "start" (run tor from the system binary,
	// data in DIR/tor) or "attach" (use a running tor).
	Mode    string `toml:"mode"`
	Binary  string `toml:"binary"`
	Torrc   string `toml:"torrc"`
	Socks   string `toml:"socks"`
	Control string `toml:"control"`
	// Entry, Provider, Directory: which connections go through Tor when
	// it is on. Each defaults to true.
	Entry     *bool `toml:"entry"`
	Provider  *bool `toml:"provider"`
	Directory *bool `toml:"directory"`
	// Bootstrap bounds tor's start (start mode). Default 3m.
	Bootstrap config.Duration `toml:"bootstrap_timeout"`
}

const clientConfigName = "config.toml"

// torFlags are the Tor flags of the user commands.
type torFlags struct {
	mode, socks, control, torrc, binary *string
	bootstrap                           *time.Duration
	cfg                                 clientConfig
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

// load reads DIR/config.toml (if any) and applies the flags over it.
func (t *torFlags) load(dir string) error {
	path := filepath.Join(dir, clientConfigName)
	if _, err := os.Stat(path); err == nil {
		if err := config.Load(path, &t.cfg); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
	}
	c := &t.cfg.Tor
	for _, o := range []struct{ flag, field *string }{
		{t.mode, &c.Mode}, {t.socks, &c.Socks}, {t.control, &c.Control}, {t.torrc, &c.Torrc}, {t.binary, &c.Binary},
	} {
		if *o.flag != "" {
			*o.field = *o.flag
		}
	}
	if *t.bootstrap != 0 {
		c.Bootstrap = config.Duration(*t.bootstrap)
	}
	switch c.Mode {
	case "", "off":
		c.Mode = ""
	case torctl.ModeStart, torctl.ModeAttach:
	default:
		return fmt.Errorf("--tor %q: want off, start or attach", c.Mode)
	}
	switch t.cfg.Route {
	case "", sender.RouteMix, sender.RouteOnion:
	default:
		return fmt.Errorf("route %q in %s: want mix or onion", t.cfg.Route, path)
	}
	return nil
}

func orTrue(b *bool) bool { return b == nil || *b }

// open starts or attaches to tor as configured and fills o's dialers.
// It returns a closer (a no-op when Tor is off).
func (t *torFlags) open(ctx context.Context, dir string, o *sender.Options, log *slog.Logger, stderr io.Writer) (func(), error) {
	c := t.cfg.Tor
	if c.Mode == "" {
		return func() {}, nil
	}
	if c.Mode == torctl.ModeStart {
		fmt.Fprintln(stderr, "Starting tor (its log: "+filepath.Join(dir, "tor", "notice.log")+")...")
	}
	tc := torctl.Config{Mode: c.Mode, Binary: c.Binary, DataDir: filepath.Join(dir, "tor"), Torrc: c.Torrc,
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
	o.OnionDial = tr.Dial
	if orTrue(c.Entry) {
		o.Dial = tr.Dial
	}
	if orTrue(c.Provider) {
		o.ProviderDial, o.ProviderOnion = tr.Dial, true
	} else if o.Dial != nil {
		o.ProviderDial = directDial
	}
	if orTrue(c.Directory) {
		o.DirectoryDial = tr.Dial
	} else if o.Dial != nil {
		o.DirectoryDial = directDial
	}
	return func() { tr.Close() }, nil
}

// directDial is a plain connection, for what the config keeps off Tor.
func directDial(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
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

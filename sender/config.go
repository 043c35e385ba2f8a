package sender

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"time"

	"github.com/sealnet/sealnet/internal/config"
)

// ConfigName is the name of the user's configuration file in a state
// directory: DIR/config.toml.
const ConfigName = "config.toml"

// Config is the optional, unencrypted DIR/config.toml of a user's state
// directory (docs/tor.md §2): how the client's connections leave the
// machine, and the default route of `send`. It holds no keys and no
// addresses of contacts. Command-line flags override it.
//
// LoadConfig fills the defaults, so a Config it returns is complete: a
// missing key is its default, never a zero that means something else.
type Config struct {
	// Route is how `send` delivers when no --route is given. Default
	// RouteMix.
	Route Route `toml:"route"`
	// Tor says whether and how the client uses Tor.
	Tor TorConfig `toml:"tor"`
}

// TorConfig is the [tor] table of Config.
type TorConfig struct {
	// Mode is TorOff (the default), TorStart or TorAttach.
	Mode TorMode `toml:"mode"`
	// Binary is tor's path (start). Default: tor on $PATH, /usr/sbin/tor.
	Binary string `toml:"binary"`
	// Torrc is an extra torrc file (start), e.g. a private test
	// network's options.
	Torrc string `toml:"torrc"`
	// Socks is the SOCKS address of a running tor (attach). Default:
	// asked from its control port, else 127.0.0.1:9050.
	Socks string `toml:"socks"`
	// Control is the control port of a running tor (attach); optional
	// for a client.
	Control string `toml:"control"`
	// Entry, Provider and Directory say which connections go through Tor
	// when it is on: to entry mixes, to the user's own provider (its
	// onion service if it publishes one), to the directory authorities.
	// Each defaults to true; one set to false is a direct connection.
	Entry     bool `toml:"entry"`
	Provider  bool `toml:"provider"`
	Directory bool `toml:"directory"`
	// Bootstrap bounds tor's start (start mode). Default 3m.
	Bootstrap config.Duration `toml:"bootstrap_timeout"`
}

// TorMode says whether the client uses Tor, and which tor.
type TorMode string

// The modes of TorConfig.Mode, as written in the file and in --tor. The
// text of TorStart and TorAttach is that of torctl.ModeStart and
// torctl.ModeAttach.
const (
	// TorOff: no Tor; every connection is direct, and the onion route is
	// unavailable.
	TorOff TorMode = "off"
	// TorStart: run tor from the system binary, with its data in DIR/tor,
	// for as long as the command runs.
	TorStart TorMode = "start"
	// TorAttach: use a tor the user already runs (system tor, Tor
	// Browser).
	TorAttach TorMode = "attach"
)

// ErrUnknownRoute: a route that is neither RouteMix nor RouteOnion.
var ErrUnknownRoute = errors.New("sender: unknown route")

// DefaultBootstrap is how long tor may take to start when the
// configuration does not say (the public network can be slow on a first
// start).
const DefaultBootstrap = 3 * time.Minute

// ParseTorMode reads a mode as the file and --tor write it; "" is
// TorOff.
func ParseTorMode(s string) (TorMode, error) {
	switch m := TorMode(s); m {
	case "", TorOff:
		return TorOff, nil
	case TorStart, TorAttach:
		return m, nil
	}
	return "", fmt.Errorf("%q: want off, start or attach", s)
}

// On reports whether the client uses Tor.
func (c TorConfig) On() bool { return c.Mode == TorStart || c.Mode == TorAttach }

// StartWait is how much longer than usual a command that starts tor
// should wait for it: at least DefaultBootstrap in start mode, 0
// otherwise.
func (c TorConfig) StartWait() time.Duration {
	if c.Mode != TorStart {
		return 0
	}
	return max(c.Bootstrap.D(), DefaultBootstrap)
}

// DefaultConfig is the configuration of a state directory without a
// config.toml: the mix route, no Tor (and every connection over Tor once
// it is turned on).
func DefaultConfig() Config {
	return Config{
		Route: RouteMix,
		Tor: TorConfig{Mode: TorOff, Entry: true, Provider: true, Directory: true,
			Bootstrap: config.Duration(DefaultBootstrap)},
	}
}

// LoadConfig reads the configuration file at path (normally
// DIR/ConfigName). A file that does not exist is DefaultConfig; keys it
// leaves out keep their defaults. An unknown key (wrapping
// config.ErrUnknownKey), a value of the wrong type, or a value out of
// range is an error that names the file and the key.
func LoadConfig(path string) (Config, error) {
	c := DefaultConfig()
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return c, nil
	}
	// Decoding over the defaults leaves the keys the file omits as they
	// are: how a missing "entry" stays true while "entry = false" is off.
	if err := config.Load(path, &c); err != nil {
		return Config{}, err
	}
	if err := c.validate(); err != nil {
		return Config{}, fmt.Errorf("configuration %s: %w", path, err)
	}
	return c, nil
}

// validate checks the values a TOML type cannot, naming the key, and
// normalizes the mode.
func (c *Config) validate() error {
	switch c.Route {
	case RouteMix, RouteOnion:
	case "":
		c.Route = RouteMix
	default:
		return fmt.Errorf("route = %q: want %q or %q", c.Route, RouteMix, RouteOnion)
	}
	m, err := ParseTorMode(string(c.Tor.Mode))
	if err != nil {
		return fmt.Errorf("tor.mode = %w", err)
	}
	c.Tor.Mode = m
	if c.Tor.Bootstrap.D() < 0 {
		return fmt.Errorf("tor.bootstrap_timeout = %q: want a positive duration", c.Tor.Bootstrap.D())
	}
	if c.Tor.Bootstrap == 0 {
		c.Tor.Bootstrap = config.Duration(DefaultBootstrap)
	}
	return nil
}

// SendRoute is the route a message takes when the user asks for asked
// ("" when they do not say): asked, else c.Route. It is the one place
// the onion route is checked against Tor: a message this process sends
// itself (byDaemon false) with RouteOnion needs Tor on, else ErrNoTor,
// before anything is queued. A message handed to a running daemon
// (byDaemon true) is not refused here: the daemon's own Tor settings
// decide, and a refusal is written to the history. An unknown asked
// route wraps ErrUnknownRoute.
func (c Config) SendRoute(asked Route, byDaemon bool) (Route, error) {
	r := asked
	if r == "" {
		r = c.Route
	}
	if r == "" {
		r = RouteMix
	}
	if r != RouteMix && r != RouteOnion {
		return "", fmt.Errorf("%w %q: want %q or %q", ErrUnknownRoute, r, RouteMix, RouteOnion)
	}
	if r == RouteOnion && !byDaemon && !c.Tor.On() {
		return "", ErrNoTor
	}
	return r, nil
}

// Dialers sets o's dialers for a client that reaches Tor through tor
// (a SOCKS dialer that isolates each connection), as c says: onion
// services always through tor; entry mixes, the user's own provider
// (at its onion address, Options.ProviderOnion) and the directory
// authorities through tor unless c keeps them off it, and then over a
// direct connection rather than through o.Dial. With Tor off it changes
// nothing.
func (c TorConfig) Dialers(o *Options, tor func(ctx context.Context, network, addr string) (net.Conn, error)) {
	if !c.On() {
		return
	}
	o.OnionDial = tor
	if c.Entry {
		o.Dial = tor
	}
	if c.Provider {
		o.ProviderDial, o.ProviderOnion = tor, true
	} else if o.Dial != nil {
		o.ProviderDial = directDial
	}
	if c.Directory {
		o.DirectoryDial = tor
	} else if o.Dial != nil {
		o.DirectoryDial = directDial
	}
}

// directDial is a plain connection, for what the configuration keeps off
// Tor when Options.Dial goes through it.
func directDial(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

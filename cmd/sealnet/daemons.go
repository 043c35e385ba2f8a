package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"

	"github.com/sealnet/sealnet/internal/daemon"
	"github.com/sealnet/sealnet/mailbox"
	"github.com/sealnet/sealnet/mixnet/directory/authority"
	"github.com/sealnet/sealnet/relay"
)

// runDaemon is what every daemon subcommand does: read --config, load and
// validate it, set up logging, run until SIGINT or SIGTERM. load returns
// the configured log level and a function that builds and runs the daemon.
func runDaemon(name, doc string, args []string, stdout, stderr io.Writer,
	load func(path string) (level string, run func(context.Context, *slog.Logger) error, err error)) error {
	fs := newFlagSet(name, name+" --config "+name+".toml", stderr)
	path := fs.String("config", "", "configuration file (TOML; see "+doc+")")
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	if *path == "" {
		fmt.Fprintf(stderr, "sealnet %s: --config is required\n", name)
		fs.Usage()
		return errUsage
	}
	level, run, err := load(*path)
	if err != nil {
		return err
	}
	log, err := daemon.Logger(stderr, level)
	if err != nil {
		return err
	}
	ctx, stop := daemon.SignalContext(context.Background())
	defer stop()
	if err := run(ctx, log); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

func runRelay(args []string, stdout, stderr io.Writer) error {
	return runDaemon("relay", "docs/relay.md", args, stdout, stderr, func(path string) (string, func(context.Context, *slog.Logger) error, error) {
		cfg, err := relay.LoadConfig(path)
		if err != nil {
			return "", nil, err
		}
		return cfg.LogLevel, func(ctx context.Context, log *slog.Logger) error {
			n, err := relay.New(*cfg, relay.Options{Logger: log})
			if err != nil {
				return err
			}
			return n.Run(ctx)
		}, nil
	})
}

func runMailbox(args []string, stdout, stderr io.Writer) error {
	return runDaemon("mailbox", "docs/mailbox.md", args, stdout, stderr, func(path string) (string, func(context.Context, *slog.Logger) error, error) {
		cfg, err := mailbox.LoadConfig(path)
		if err != nil {
			return "", nil, err
		}
		return cfg.LogLevel, func(ctx context.Context, log *slog.Logger) error {
			p, err := mailbox.NewProvider(*cfg, mailbox.Options{Logger: log})
			if err != nil {
				return err
			}
			return p.Run(ctx)
		}, nil
	})
}

func runDirauth(args []string, stdout, stderr io.Writer) error {
	return runDaemon("dirauth", "docs/directory.md", args, stdout, stderr, func(path string) (string, func(context.Context, *slog.Logger) error, error) {
		cfg, err := authority.LoadConfig(path)
		if err != nil {
			return "", nil, err
		}
		return cfg.LogLevel, func(ctx context.Context, log *slog.Logger) error {
			s, err := authority.New(*cfg, authority.Options{Logger: log})
			if err != nil {
				return err
			}
			ln, err := net.Listen("tcp", cfg.Listen)
			if err != nil {
				return fmt.Errorf("listen: %w", err)
			}
			return s.Run(ctx, ln)
		}, nil
	})
}

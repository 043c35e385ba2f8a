package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/sealnet/sealnet/internal/daemon"
	"github.com/sealnet/sealnet/internal/dirauth"
	"github.com/sealnet/sealnet/mailbox"
	"github.com/sealnet/sealnet/relay"
)

func runMailbox(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("mailbox", "mailbox --config mailbox.toml", stderr)
	path := fs.String("config", "", "configuration file (TOML; see docs/mailbox.md)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *path == "" {
		fmt.Fprintln(stderr, "sealnet mailbox: --config is required")
		fs.Usage()
		return errUsage
	}
	cfg, err := mailbox.LoadConfig(*path)
	if err != nil {
		return err
	}
	log, err := daemon.Logger(stderr, cfg.LogLevel)
	if err != nil {
		return err
	}
	p, err := mailbox.NewProvider(*cfg, mailbox.Options{Logger: log})
	if err != nil {
		return err
	}
	ctx, stop := daemon.SignalContext(context.Background())
	defer stop()
	if err := p.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

func runRelay(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("relay", "relay --config relay.toml", stderr)
	path := fs.String("config", "", "configuration file (TOML; see docs/relay.md)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *path == "" {
		fmt.Fprintln(stderr, "sealnet relay: --config is required")
		fs.Usage()
		return errUsage
	}
	cfg, err := relay.LoadConfig(*path)
	if err != nil {
		return err
	}
	log, err := daemon.Logger(stderr, cfg.LogLevel)
	if err != nil {
		return err
	}
	n, err := relay.New(*cfg, relay.Options{Logger: log})
	if err != nil {
		return err
	}
	ctx, stop := daemon.SignalContext(context.Background())
	defer stop()
	if err := n.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

func runDirauth(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("dirauth", "dirauth --config dirauth.toml", stderr)
	path := fs.String("config", "", "configuration file (TOML; see docs/directory.md)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *path == "" {
		fmt.Fprintln(stderr, "sealnet dirauth: --config is required")
		fs.Usage()
		return errUsage
	}
	cfg, err := dirauth.LoadConfig(*path)
	if err != nil {
		return err
	}
	log, err := daemon.Logger(stderr, cfg.LogLevel)
	if err != nil {
		return err
	}
	s, err := dirauth.New(*cfg, dirauth.Options{Logger: log})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	ctx, stop := daemon.SignalContext(context.Background())
	defer stop()
	if err := s.Run(ctx, ln); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

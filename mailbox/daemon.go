package mailbox

import (
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/sealnet/sealnet/internal/clock"
	"github.com/sealnet/sealnet/mailbox/store"
	"github.com/sealnet/sealnet/mailbox/store/badger"
	"github.com/sealnet/sealnet/mixnet"
	"github.com/sealnet/sealnet/mixnet/link"
	"github.com/sealnet/sealnet/relay"
)

// Options are the parts of a provider that tests replace.
type Options struct {
	Logger *slog.Logger
	// Relay lets tests wrap the relay's options (listener, dialer).
	Relay func(*relay.Options)
	// Clock is the provider's time: its relay's, its service's and its
	// store's; nil is clock.System().
	Clock clock.Clock
}

// Provider is a running provider: a relay in the provider role whose final
// hop hands packets to the mailbox service, which also serves direct links.
type Provider struct {
	Node    *relay.Node
	Service *Service
	Store   store.Store
}

// NewProvider opens the store and prepares the relay and the service. It
// is the one place the store's implementation is chosen: Badger, in the
// data directory's mailbox/ folder.
func NewProvider(cfg Config, opts Options) (*Provider, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	secret, err := loadSecret(filepath.Join(cfg.DataDir, "keys", "mailbox-secret.key"))
	if err != nil {
		return nil, err
	}
	st, err := badger.Open(filepath.Join(cfg.DataDir, "mailbox"), badger.Config{
		Limits: cfg.Mailbox.Limits(), Logger: log.With("node", cfg.Name), Clock: opts.Clock,
	})
	if err != nil {
		return nil, err
	}
	// The relay takes the service's entry points when it is made, and the
	// service needs the relay's geometry, keys, send and metrics: the
	// relay gets them through ref, which is set before either runs.
	ref := &serviceRef{}
	var node *relay.Node
	ro := relay.Options{Logger: log, Deliverer: ref, ClientLinks: ref.handleLink, Clock: opts.Clock}
	if opts.Relay != nil {
		opts.Relay(&ro)
	}
	node, err = relay.New(cfg.Config, ro)
	if err != nil {
		st.Close()
		return nil, err
	}
	svc := NewService(cfg.Mailbox, ServiceOptions{
		Domain: cfg.Domain, Store: st, Secret: secret, Logger: log.With("node", cfg.Name),
		Geometry: node.Geometry(), Identity: node.Identity(), LinkDH: node.LinkDH,
		Send: node.Send, Registry: node.Metrics(), Clock: opts.Clock,
		// The network's published hold, for the epoch in force.
		ReplyHold: func() time.Duration { return node.Params().ProviderHold },
	})
	ref.svc = svc
	return &Provider{Node: node, Service: svc, Store: st}, nil
}

// Run runs the provider until ctx is done, then stops the relay (no new
// packets or links), the service's workers, and the store, in that order.
func (p *Provider) Run(ctx context.Context) error {
	svcCtx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { p.Service.Run(svcCtx) })
	err := p.Node.Run(ctx)
	cancel()
	wg.Wait()
	if cerr := p.Store.Close(); cerr != nil {
		err = errors.Join(err, cerr)
	}
	return err
}

// loadSecret returns the 32-byte secret in path, creating it (0600).
func loadSecret(path string) ([32]byte, error) {
	var s [32]byte
	b, err := os.ReadFile(path)
	if err == nil && len(b) == 32 {
		copy(s[:], b)
		return s, nil
	}
	if err == nil {
		return s, errors.New("mailbox: " + path + " is not a 32-byte secret")
	}
	if !errors.Is(err, os.ErrNotExist) {
		return s, err
	}
	if _, err := rand.Read(s[:]); err != nil {
		return s, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return s, err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, s[:], 0o600); err != nil {
		return s, err
	}
	return s, os.Rename(tmp, path)
}

// serviceRef hands the relay the service's entry points before the
// service exists (NewProvider).
type serviceRef struct{ svc *Service }

func (r *serviceRef) Deliver(res *mixnet.Result) error { return r.svc.Deliver(res) }

func (r *serviceRef) handleLink(ctx context.Context, c *link.Conn) { r.svc.HandleLink(ctx, c) }

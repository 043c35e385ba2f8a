// Package client is how nodes and clients talk to the directory
// authorities: publishing descriptors, and fetching, verifying and caching
// the signed network document of each epoch.
//
// A document is accepted only with signatures from at least Threshold of
// the configured authority keys (directory.Verify). Good documents are
// cached on disk, so that a node or client that restarts while the
// authorities are unreachable keeps working on the last good document.
package client

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/sealnet/sealnet/mixnet/directory"
)

// Authority is one directory authority a client trusts.
type Authority struct {
	URL string            // base URL, e.g. http://127.0.0.1:7000
	Key ed25519.PublicKey // its document signing key
}

// Config configures a Client.
type Config struct {
	Authorities []Authority
	// Threshold is k: the signatures a document needs.
	Threshold int
	// CacheDir, if set, keeps verified documents across restarts.
	CacheDir string
	// Timeout bounds each request. Default 10 s.
	Timeout time.Duration
	Logger  *slog.Logger
	// Dial opens the TCP connections to authorities (Tor's SOCKS dialer
	// for a client on Tor); nil is a plain net.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// ErrNotYet: no authority has a document for that epoch yet.
var ErrNotYet = errors.New("directory client: no document for that epoch yet")

// maxResponse bounds anything read from an authority.
const maxResponse = 8 << 20

// Client publishes descriptors and fetches documents. It is safe for
// concurrent use.
type Client struct {
	cfg  Config
	keys []ed25519.PublicKey
	http *http.Client
	log  *slog.Logger

	mu   sync.Mutex
	docs map[uint64]*directory.SignedDocument
}

// New returns a client, loading any cached documents that still verify.
func New(cfg Config) (*Client, error) {
	if len(cfg.Authorities) == 0 {
		return nil, errors.New("directory client: no directory authorities configured")
	}
	if cfg.Threshold < 1 || cfg.Threshold > len(cfg.Authorities) {
		return nil, fmt.Errorf("directory client: threshold %d with %d authorities", cfg.Threshold, len(cfg.Authorities))
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	hc := &http.Client{Timeout: cfg.Timeout}
	if cfg.Dial != nil {
		// No proxy from the environment: the dialer is the route.
		hc.Transport = &http.Transport{DialContext: cfg.Dial, ForceAttemptHTTP2: false, MaxIdleConns: 4, IdleConnTimeout: 30 * time.Second}
	}
	c := &Client{cfg: cfg, http: hc, log: log, docs: make(map[uint64]*directory.SignedDocument)}
	for _, a := range cfg.Authorities {
		if len(a.Key) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("directory client: authority %s has a malformed key", a.URL)
		}
		c.keys = append(c.keys, a.Key)
	}
	if cfg.CacheDir != "" {
		if err := c.loadCache(); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func (c *Client) cachePath(epoch uint64) string {
	return filepath.Join(c.cfg.CacheDir, "document-"+strconv.FormatUint(epoch, 10)+".bin")
}

func (c *Client) loadCache() error {
	if err := os.MkdirAll(c.cfg.CacheDir, 0o700); err != nil {
		return fmt.Errorf("directory client: cache: %w", err)
	}
	entries, err := os.ReadDir(c.cfg.CacheDir)
	if err != nil {
		return fmt.Errorf("directory client: cache: %w", err)
	}
	for _, e := range entries {
		path := filepath.Join(c.cfg.CacheDir, e.Name())
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		sd, err := directory.Verify(b, c.keys, c.cfg.Threshold)
		if err != nil {
			c.log.Warn("directory: ignoring cached document that no longer verifies", "file", path, "err", err)
			continue
		}
		c.docs[sd.Doc.Epoch] = sd
	}
	return nil
}

// Document returns the verified document for epoch, if held.
func (c *Client) Document(epoch uint64) (*directory.SignedDocument, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	d, ok := c.docs[epoch]
	return d, ok
}

// Latest returns the newest verified document held, or nil.
func (c *Client) Latest() *directory.SignedDocument {
	c.mu.Lock()
	defer c.mu.Unlock()
	var best *directory.SignedDocument
	for e, d := range c.docs {
		if best == nil || e > best.Doc.Epoch {
			best = d
		}
	}
	return best
}

// Forget drops documents older than epoch from memory and the cache.
func (c *Client) Forget(before uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for e := range c.docs {
		if e < before {
			delete(c.docs, e)
			if c.cfg.CacheDir != "" {
				os.Remove(c.cachePath(e))
			}
		}
	}
}

// Accept verifies a signed document obtained elsewhere and keeps it.
func (c *Client) Accept(b []byte) (*directory.SignedDocument, error) {
	sd, err := directory.Verify(b, c.keys, c.cfg.Threshold)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.docs[sd.Doc.Epoch] = sd
	c.mu.Unlock()
	if c.cfg.CacheDir != "" {
		if err := os.WriteFile(c.cachePath(sd.Doc.Epoch), b, 0o600); err != nil {
			c.log.Warn("directory: cannot cache document", "err", err)
		}
	}
	return sd, nil
}

// Fetch returns the verified document for epoch, asking the authorities
// in random order until one serves a document that verifies.
func (c *Client) Fetch(ctx context.Context, epoch uint64) (*directory.SignedDocument, error) {
	if d, ok := c.Document(epoch); ok {
		return d, nil
	}
	order := rand.Perm(len(c.cfg.Authorities))
	var errs []error
	notYet := 0
	for _, i := range order {
		a := c.cfg.Authorities[i]
		b, status, err := c.get(ctx, a.URL+"/v1/document/"+strconv.FormatUint(epoch, 10))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", a.URL, err))
			continue
		}
		if status == http.StatusNotFound {
			notYet++
			continue
		}
		if status != http.StatusOK {
			errs = append(errs, fmt.Errorf("%s: HTTP %d", a.URL, status))
			continue
		}
		sd, err := c.Accept(b)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", a.URL, err))
			continue
		}
		if sd.Doc.Epoch != epoch {
			errs = append(errs, fmt.Errorf("%s: served epoch %d for %d", a.URL, sd.Doc.Epoch, epoch))
			continue
		}
		return sd, nil
	}
	if notYet > 0 && len(errs) == 0 {
		return nil, ErrNotYet
	}
	return nil, fmt.Errorf("directory client: no verifiable document for epoch %d: %w", epoch, errors.Join(errs...))
}

func (c *Client) get(ctx context.Context, url string) ([]byte, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, 0, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	if err != nil {
		return nil, 0, err
	}
	if len(b) > maxResponse {
		return nil, 0, fmt.Errorf("response larger than %d bytes", maxResponse)
	}
	return b, resp.StatusCode, nil
}

// Publish sends a signed descriptor to every authority. It returns the
// authorities that accepted it and an error joining the refusals; it is up
// to the caller to retry the others.
func (c *Client) Publish(ctx context.Context, signed []byte, skip map[string]bool) (accepted []string, err error) {
	var errs []error
	for _, a := range c.cfg.Authorities {
		if skip[a.URL] {
			continue
		}
		req, rerr := http.NewRequestWithContext(ctx, http.MethodPost, a.URL+"/v1/descriptor", bytes.NewReader(signed))
		if rerr != nil {
			errs = append(errs, rerr)
			continue
		}
		req.Header.Set("Content-Type", "application/octet-stream")
		resp, rerr := c.http.Do(req)
		if rerr != nil {
			errs = append(errs, fmt.Errorf("%s: %w", a.URL, rerr))
			continue
		}
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			errs = append(errs, fmt.Errorf("%s: HTTP %d: %s", a.URL, resp.StatusCode, bytes.TrimSpace(msg)))
			continue
		}
		accepted = append(accepted, a.URL)
	}
	return accepted, errors.Join(errs...)
}

// Close releases idle connections to the authorities.
func (c *Client) Close() { c.http.CloseIdleConnections() }

// Epochs returns the epochs of the documents held, ascending.
func (c *Client) Epochs() []uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]uint64, 0, len(c.docs))
	for e := range c.docs {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

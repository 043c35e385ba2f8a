package proto

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/flynn/noise"

	"github.com/sealnet/sealnet/mixnet"
	"github.com/sealnet/sealnet/mixnet/link"
	"github.com/sealnet/sealnet/sender/seal"
)

// Client speaks the provider protocol on one direct link. A client link
// (Noise_NK) is anonymous and can deliver and fetch bundles; a user link
// (Noise_IK with the user's identity key) is the mailbox owner's. Calls are
// serialized; every call has a deadline.
type Client struct {
	c       *link.Conn
	geo     mixnet.Geometry
	timeout time.Duration
	mu      sync.Mutex
}

// ErrStatus is wrapped by errors that carry a status other than OK.
var ErrStatus = errors.New("mailbox: request refused")

// StatusError is a refusal by the provider.
type StatusError struct{ Status *Status }

func (e *StatusError) Error() string {
	if e.Status.Detail != "" {
		return fmt.Sprintf("provider: %v: %s", e.Status.Code, e.Status.Detail)
	}
	return fmt.Sprintf("provider: %v", e.Status.Code)
}

func (e *StatusError) Unwrap() error { return ErrStatus }

// DialOptions configure a direct link.
type DialOptions struct {
	// Identity, for a user link: the user's X25519 identity key pair.
	// Empty for an anonymous client link.
	Identity noise.DHKey
	// Dial opens the TCP connection (Tor's SOCKS dialer, later); nil is a
	// plain net.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Timeout bounds each call; default 30 s (long polls add their wait).
	Timeout time.Duration
}

// Dial opens a direct link to the provider at addr whose link key is
// providerKey.
func Dial(ctx context.Context, g mixnet.Geometry, addr string, providerKey [32]byte, o DialOptions) (*Client, error) {
	dial := o.Dial
	if dial == nil {
		var d net.Dialer
		dial = d.DialContext
	}
	nc, err := dial(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("mailbox: connect to provider: %w", err)
	}
	kind := link.KindClient
	cfg := link.Config{Geometry: g}
	if o.Identity.Public != nil {
		kind = link.KindUser
		cfg.Static = o.Identity
	}
	c, err := link.Client(ctx, nc, cfg, kind, providerKey)
	if err != nil {
		return nil, err
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	return &Client{c: c, geo: g, timeout: o.Timeout}, nil
}

// Close closes the link.
func (c *Client) Close() error { return c.c.Close() }

// call sends a request and reads the reply within the deadline.
func (c *Client) call(ctx context.Context, req Message, extra time.Duration) (Message, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, c.timeout+extra)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { c.c.Close() })
	defer stop()
	if err := WriteMessage(c.c, c.geo, req); err != nil {
		return nil, fmt.Errorf("mailbox: send request: %w", err)
	}
	m, err := ReadMessage(c.c)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("mailbox: no reply in time: %w", ctx.Err())
		}
		return nil, fmt.Errorf("mailbox: read reply: %w", err)
	}
	return m, nil
}

// status runs a request whose reply is a Status, turning refusals into
// errors (*StatusError wrapping ErrStatus).
func (c *Client) status(ctx context.Context, req Message, ok ...StatusCode) (*Status, error) {
	m, err := c.call(ctx, req, 0)
	if err != nil {
		return nil, err
	}
	st, isStatus := m.(*Status)
	if !isStatus {
		return nil, fmt.Errorf("%w: unexpected reply %T", ErrMalformed, m)
	}
	for _, code := range append(ok, StatusOK) {
		if st.Code == code {
			return st, nil
		}
	}
	return st, &StatusError{st}
}

// Deliver delivers a sealed envelope directly. The result is StatusOK or
// StatusDuplicate (stored), or StatusAccepted (no valid token: taken, not
// confirmed).
func (c *Client) Deliver(ctx context.Context, mb MailboxID, id [16]byte, token [32]byte, data []byte) (StatusCode, error) {
	st, err := c.status(ctx, &DeliverRequest{Mailbox: mb, EnvelopeID: id, Token: token, Data: data}, StatusDuplicate, StatusAccepted)
	if err != nil {
		return 0, err
	}
	return st.Code, nil
}

// Bundle fetches and verifies a user's prekey bundle.
func (c *Client) Bundle(ctx context.Context, mb MailboxID) (*seal.PrekeyBundle, error) {
	m, err := c.call(ctx, &BundleRequest{Mailbox: mb}, 0)
	if err != nil {
		return nil, err
	}
	switch r := m.(type) {
	case *BundleResponse:
		b, err := seal.ParseBundle(r.Bundle)
		if err != nil {
			return nil, err
		}
		return b, b.Verify()
	case *Status:
		return nil, &StatusError{r}
	}
	return nil, fmt.Errorf("%w: unexpected reply %T", ErrMalformed, m)
}

// Register registers address on a user link, proving the Ed25519 identity
// key by signature (the link proves the X25519 one).
func (c *Client) Register(ctx context.Context, address string, x25519 [32]byte, ed ed25519.PrivateKey, tokenHash [32]byte, allowUnsolicited bool) error {
	r := &RegisterRequest{Address: address, TokenHash: tokenHash, AllowUnsolicited: allowUnsolicited}
	copy(r.IdentityEd25519[:], ed.Public().(ed25519.PublicKey))
	copy(r.Signature[:], ed25519.Sign(ed, RegistrationMessage(address, x25519, r.IdentityEd25519)))
	_, err := c.status(ctx, r)
	return err
}

// Certificate asks for a fresh sender certificate.
func (c *Client) Certificate(ctx context.Context) ([]byte, error) {
	m, err := c.call(ctx, &CertificateRequest{}, 0)
	if err != nil {
		return nil, err
	}
	switch r := m.(type) {
	case *CertificateResponse:
		return r.Certificate, nil
	case *Status:
		return nil, &StatusError{r}
	}
	return nil, fmt.Errorf("%w: unexpected reply %T", ErrMalformed, m)
}

// Upload uploads prekeys.
func (c *Client) Upload(ctx context.Context, up PrekeyUpload) error {
	_, err := c.status(ctx, &UploadRequest{Upload: up})
	return err
}

// Fetch returns the next page of the mailbox, waiting up to wait for mail.
func (c *Client) Fetch(ctx context.Context, wait time.Duration) (*Page, error) {
	return c.page(ctx, &FetchRequest{Wait: wait}, wait)
}

// page runs a request whose answer is a page, allowing extra time for it.
func (c *Client) page(ctx context.Context, req Message, extra time.Duration) (*Page, error) {
	m, err := c.call(ctx, req, extra)
	if err != nil {
		return nil, err
	}
	switch r := m.(type) {
	case *Page:
		return r, nil
	case *Status:
		return nil, &StatusError{r}
	}
	return nil, fmt.Errorf("%w: unexpected reply %T", ErrMalformed, m)
}

// Pull acknowledges every envelope up to and including through (0: none)
// and returns the next page: one step of the constant-rate fetch.
func (c *Client) Pull(ctx context.Context, through uint64) (*Page, error) {
	return c.page(ctx, &PullRequest{Through: through}, PullAnswerDelay)
}

// Ack acknowledges every envelope up to and including through.
func (c *Client) Ack(ctx context.Context, through uint64) error {
	_, err := c.status(ctx, &AckRequest{Through: through})
	return err
}

// SetToken changes the delivery token hash and the unsolicited policy.
func (c *Client) SetToken(ctx context.Context, tokenHash [32]byte, allowUnsolicited bool) error {
	_, err := c.status(ctx, &SetTokenRequest{TokenHash: tokenHash, AllowUnsolicited: allowUnsolicited})
	return err
}

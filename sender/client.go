package sender

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/ed25519"
	crand "crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flynn/noise"

	"github.com/sealnet/sealnet/internal/clock"
	"github.com/sealnet/sealnet/internal/loopwatch"
	"github.com/sealnet/sealnet/mailbox/proto"
	"github.com/sealnet/sealnet/mixnet"
	"github.com/sealnet/sealnet/mixnet/directory"
	"github.com/sealnet/sealnet/mixnet/directory/client"
	"github.com/sealnet/sealnet/sender/seal"
)

// Options are the parts of a client that tests and embedders replace.
type Options struct {
	Logger *slog.Logger
	// Dial opens TCP connections to entry mixes, and to the user's own
	// provider and the directory authorities unless ProviderDial or
	// DirectoryDial is set; nil is a plain net.Dialer. A Tor SOCKS dialer
	// here keeps the client's address from the entry mix (docs/tor.md).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// ProviderDial opens connections to the user's own provider
	// (register, fetch); nil is Dial.
	ProviderDial func(ctx context.Context, network, addr string) (net.Conn, error)
	// DirectoryDial opens connections to directory authorities; nil is
	// Dial.
	DirectoryDial func(ctx context.Context, network, addr string) (net.Conn, error)
	// OnionDial reaches Tor onion services (a Tor SOCKS dialer). With it,
	// messages queued with RouteOnion go straight to the recipient's
	// provider's onion service, and the user's own provider is reached at
	// its onion address when it publishes one and ProviderOnion is set. nil:
	// no onion services.
	OnionDial func(ctx context.Context, network, addr string) (net.Conn, error)
	// ProviderOnion: reach the user's own provider at its onion address
	// (through OnionDial) when it publishes one.
	ProviderOnion bool
	// Filter, if set, sees every packet before it leaves, with its kind
	// ("real" for a message fragment, "bundle", "drop", "loop"); returning
	// false drops it. Tests simulate loss and tampering with it.
	Filter func(kind string, pkt []byte) bool
	// Params, if set, changes the network's parameters as this client
	// uses them (tests and measurement control runs only: a client that
	// differs from the network stands out).
	Params func(*directory.Parameters)
	// Clock is the client's time (epochs, retries, expiry, the send and
	// fetch schedules, loop round trips); nil is clock.System().
	Clock clock.Clock
	// MessageTTL, if set, replaces MessageTTL: how long a message is
	// tried before it is reported expired (tests).
	MessageTTL time.Duration
}

// Client is one user's client: identity, contacts, sessions, outbox.
// Its methods are safe for concurrent use.
type Client struct {
	v     *vault
	opts  Options
	log   *slog.Logger
	clock clock.Clock

	mu   sync.Mutex
	st   *State
	id   *seal.Identity
	reas *seal.Reassembler

	geo   mixnet.Geometry
	dir   *client.Client
	rngMu sync.Mutex
	rng   *rand.Rand
	links *entryLinks
	loops map[[16]byte]time.Time // envelope IDs of loop cover in flight
	// loopKeys are the SURB keys of loop cover packets (memory only).
	loopKeys map[string]*SURBKeys
	// watch notices cover that does not come back, or comes back late
	// (the loop alarm, internal/loopwatch); lastCheck is its last Check.
	watch     atomic.Pointer[loopwatch.Watcher] // set once the client is up (checkLoops), with the network's timeout
	lastCheck time.Time
	started   time.Time   // Run's start, for the loop alarm's warm-up
	pulled    atomic.Bool // a fetch has brought a page: replies can come back
	// lastFetchFail throttles directory fetches after a failure.
	lastFetchFail time.Time
	events        chan Event
	wake          chan struct{} // something was queued

	// Under mu: IDs of messages shown (from the history), so each is shown
	// once; Fetch's collector; counters for Stats.
	seen                        map[string]bool
	collect                     func(*Message)
	replies, loopsBack, refused int
	// Under mu: the key that makes this user's SURB IDs (issue 16), and
	// the provider link key and mailbox it was derived for.
	replyKey     proto.ReplyKey
	replyKeyLink [32]byte
	replyKeyMB   proto.MailboxID
}

// now is the client's clock's time.
func (c *Client) now() time.Time { return c.clock.Now() }

// Stats are counters since Open.
type Stats struct {
	Replies   int // SURB replies opened (acknowledgements, bundles, loops)
	LoopsBack int // loop cover packets and their replies that came back
	Refused   int // received messages refused (certificate, sender, keys)
}

// Stats returns the counters.
func (c *Client) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Stats{Replies: c.replies, LoopsBack: c.loopsBack, Refused: c.refused}
}

// Event is something the user should hear about.
type Event struct {
	Kind    EventKind
	Message *Message
	ID      string // outgoing message ID (hex)
	To      string
	Text    string
}

// Message is a received message, as shown and kept in the history.
type Message struct {
	ID       string    `json:"id"`
	From     string    `json:"from"`
	To       string    `json:"to"`
	Sent     time.Time `json:"sent"`
	Received time.Time `json:"received"`
	Body     string    `json:"body"`
	// Verified: the sender certificate checked out and the sender's
	// identity key is the one pinned for this address.
	Verified    bool   `json:"verified"`
	Fingerprint string `json:"fingerprint"`
	Warning     string `json:"warning,omitempty"`
	Outgoing    bool   `json:"outgoing,omitempty"`
	Status      Status `json:"status,omitempty"` // outgoing messages only
}

// InitOptions describe a new identity.
type InitOptions struct {
	Address     string
	Authorities []AuthorityState
	Threshold   int
	EpochPeriod time.Duration // the network's; default 20m
	Settings    *Settings     // nil: DefaultSettings
	KDF         *KDFParams
}

// Init creates a new identity in dir, protected by pass.
func Init(dir string, pass []byte, o InitOptions) error {
	addr := strings.ToLower(o.Address)
	if name, domain, ok := strings.Cut(addr, "@"); !ok || name == "" || domain == "" {
		return fmt.Errorf("sender: %q is not an address of the form name@provider-domain", o.Address)
	}
	if len(o.Authorities) == 0 || o.Threshold < 1 || o.Threshold > len(o.Authorities) {
		return errors.New("sender: give the directory authorities (or --testnet) and a threshold")
	}
	for _, a := range o.Authorities {
		if k, err := hex.DecodeString(a.Key); err != nil || len(k) != ed25519.PublicKeySize {
			return fmt.Errorf("sender: authority %s: the key must be 64 hex digits (an Ed25519 public key)", a.URL)
		}
	}
	kdf := DefaultKDF
	if o.KDF != nil {
		kdf = *o.KDF
	}
	v, err := createVault(dir, pass, kdf)
	if err != nil {
		return err
	}
	defer v.close()
	id, err := seal.GenerateIdentity(crand.Reader)
	if err != nil {
		return err
	}
	idb, err := id.MarshalBinary()
	if err != nil {
		return err
	}
	st := &State{Version: stateVersion, Address: addr, Identity: idb, Authorities: o.Authorities, Threshold: o.Threshold,
		EpochPeriod: o.EpochPeriod, Settings: DefaultSettings()}
	if st.EpochPeriod <= 0 {
		st.EpochPeriod = 20 * time.Minute
	}
	if o.Settings != nil {
		st.Settings = *o.Settings
	}
	st.Token = make([]byte, 32)
	crand.Read(st.Token)
	st.Prekeys.NextID = 1
	st.Generation = 1
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return v.save(b, st.Generation)
}

// Open unlocks the identity in dir.
func Open(dir string, pass []byte, o Options) (*Client, error) {
	v, raw, err := openVault(dir, pass)
	if err != nil {
		return nil, err
	}
	st := &State{}
	if err := json.Unmarshal(raw, st); err != nil {
		v.close()
		return nil, fmt.Errorf("sender: state does not decode: %w", err)
	}
	clear(raw)
	id, err := seal.UnmarshalIdentity(st.Identity)
	if err != nil {
		v.close()
		return nil, err
	}
	st.init()
	var auths []client.Authority
	for _, a := range st.Authorities {
		k, err := hex.DecodeString(a.Key)
		if err != nil {
			v.close()
			return nil, fmt.Errorf("sender: authority key %q: %w", a.Key, err)
		}
		auths = append(auths, client.Authority{URL: a.URL, Key: k})
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ddial := o.DirectoryDial
	if ddial == nil {
		ddial = o.Dial
	}
	dc, err := client.New(client.Config{Authorities: auths, Threshold: st.Threshold, CacheDir: filepath.Join(dir, "directory"), Logger: log, Dial: ddial})
	if err != nil {
		v.close()
		return nil, err
	}
	var seed [32]byte
	crand.Read(seed[:])
	c := &Client{
		v: v, opts: o, log: log, clock: clock.Or(o.Clock), st: st, id: id,
		reas: seal.NewReassembler(), geo: mixnet.DefaultGeometry(), dir: dc,
		rng: rand.New(rand.NewChaCha8(seed)), loops: make(map[[16]byte]time.Time), loopKeys: make(map[string]*SURBKeys),
		events: make(chan Event, 256), wake: make(chan struct{}, 1),
	}
	c.links = newEntryLinks(c)
	c.seen = map[string]bool{}
	hist, err := historyOf(v)
	if err != nil {
		log.Warn("reading the history", "err", err)
	}
	for _, m := range hist {
		if !m.Outgoing {
			c.seen[m.ID] = true
		}
	}
	if err := c.checkRestored(); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// stateVersion 2 added Settings.FetchInterval (constant-rate fetching);
// 3 saves message statuses as codes (Status), where older states hold
// their display text (read by Status.UnmarshalJSON).
const stateVersion = 3

func (st *State) init() {
	if st.Version < 2 {
		// A state from before constant-rate fetching: it fetches like
		// every other client now, and its retired loop stream is off.
		st.Settings.FetchInterval = DefaultSettings().FetchInterval
		st.Settings.LoopRate = 0
	}
	if st.Version < stateVersion {
		// Its statuses, in text, were read as codes on decoding; it is
		// saved with codes.
		st.Version = stateVersion
	}
	if st.Sessions == nil {
		st.Sessions = map[string][]byte{}
	}
	if st.Current == nil {
		st.Current = map[string]string{}
	}
	if st.Retired == nil {
		st.Retired = map[string]bool{}
	}
	if st.Contacts == nil {
		st.Contacts = map[string]*Contact{}
	}
	if st.SURBs == nil {
		st.SURBs = map[string]*SURBKeys{}
	}
	if st.Prekeys.OneTime == nil {
		st.Prekeys.OneTime = map[uint32][]byte{}
	}
	if st.Prekeys.PQ == nil {
		st.Prekeys.PQ = map[uint32][]byte{}
	}
}

// Close saves nothing more, closes links and releases the state.
func (c *Client) Close() error {
	c.links.closeAll()
	c.dir.Close()
	c.v.close()
	return nil
}

// Address returns the user's address.
func (c *Client) Address() string { return c.st.Address }

// Fingerprint returns the user's identity fingerprint.
func (c *Client) Fingerprint() string { return c.id.Public().Fingerprint() }

// Events delivers what happens (received, delivered, failed, warnings).
func (c *Client) Events() <-chan Event { return c.events }

func (c *Client) emit(e Event) {
	select {
	case c.events <- e:
	default:
		c.log.Warn("event dropped: nobody is reading events")
	}
}

// saveLocked writes the state, as its next generation; the caller holds
// mu.
func (c *Client) saveLocked() error {
	c.st.Generation++
	b, err := json.Marshal(c.st)
	if err != nil {
		return err
	}
	err = c.v.save(b, c.st.Generation)
	clear(b)
	return err
}

// domainOf returns the provider domain of an address.
func domainOf(addr string) string {
	_, d, _ := strings.Cut(addr, "@")
	return d
}

// document returns the newest verified document and the epoch whose keys
// to use now, fetching from the authorities if the current one is
// missing.
func (c *Client) document(ctx context.Context) (*directory.Document, uint64, error) {
	if l := c.dir.Latest(); l != nil {
		period := l.Doc.Period
		e := directory.EpochAt(c.now(), period)
		if l.Doc.Geometry.Hash() != c.geo.Hash() {
			return nil, 0, errors.New("sender: the network uses another packet geometry than this client")
		}
		if sd, ok := c.dir.Document(e); ok {
			return sd.Doc, e, nil
		}
		if sd, err := c.fetchDocument(ctx, e); err == nil {
			return sd.Doc, e, nil
		}
		if sd, ok := c.dir.Document(e - 1); ok {
			return sd.Doc, e, nil // the previous document carries e's keys as next
		}
	}
	// No document yet: the epoch length comes from the state (set at init).
	e := directory.EpochAt(c.now(), c.st.EpochPeriod)
	if sd, err := c.fetchDocument(ctx, e); err == nil {
		return sd.Doc, e, nil
	}
	return nil, 0, errors.New("sender: no network document yet (are the directory authorities reachable?)")
}

// fetchDocument asks the authorities for epoch e's document, at most once
// every ten seconds after a failure and never for longer than ten seconds,
// so that the send loop keeps its pace while they are unreachable.
func (c *Client) fetchDocument(ctx context.Context, e uint64) (*directory.SignedDocument, error) {
	c.mu.Lock()
	recent := c.now().Sub(c.lastFetchFail) < 10*time.Second
	c.mu.Unlock()
	if recent {
		return nil, errors.New("sender: directory authorities unreachable")
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	sd, err := c.dir.Fetch(ctx, e)
	if err != nil {
		c.mu.Lock()
		c.lastFetchFail = c.now()
		c.mu.Unlock()
	}
	return sd, err
}

// provider returns the descriptor of an address's provider.
func (c *Client) provider(doc *directory.Document, addr string) (*directory.Descriptor, error) {
	d, ok := doc.Provider(domainOf(addr))
	if !ok {
		return nil, fmt.Errorf("sender: no provider for %q in the network directory", domainOf(addr))
	}
	return d, nil
}

// dialOwner opens a user link to the user's own provider.
func (c *Client) dialOwner(ctx context.Context) (*proto.Client, error) {
	doc, _, err := c.document(ctx)
	if err != nil {
		return nil, err
	}
	p, err := c.provider(doc, c.st.Address)
	if err != nil {
		return nil, err
	}
	priv := c.id.X25519.Bytes()
	key := noise.DHKey{Private: priv, Public: c.id.X25519.PublicKey().Bytes()}
	addr, dial := c.providerRoute(p)
	return proto.Dial(ctx, c.geo, addr, p.LinkKey, proto.DialOptions{Identity: key, Dial: dial})
}

// providerRoute says how to reach the user's own provider: its onion
// service if it has one and the client reaches onion services, else its
// address through ProviderDial (or Dial).
func (c *Client) providerRoute(p *directory.Descriptor) (string, func(context.Context, string, string) (net.Conn, error)) {
	if p.Onion != "" && c.opts.OnionDial != nil && c.opts.ProviderOnion {
		return p.Onion, c.opts.OnionDial
	}
	if c.opts.ProviderDial != nil {
		return p.Address, c.opts.ProviderDial
	}
	return p.Address, c.opts.Dial
}

// Register creates the account at the user's provider, gets a sender
// certificate and uploads prekeys.
func (c *Client) Register(ctx context.Context) error {
	mc, err := c.dialOwner(ctx)
	if err != nil {
		return err
	}
	defer mc.Close()
	c.mu.Lock()
	defer c.mu.Unlock()
	tokenHash := sha256.Sum256(c.st.Token)
	pub := c.id.Public()
	if err := mc.Register(ctx, c.st.Address, pub.X25519, c.id.Ed25519, tokenHash, true); err != nil {
		return fmt.Errorf("register %s: %w", c.st.Address, err)
	}
	c.st.Registered = true
	if err := c.renewCertificateLocked(ctx, mc); err != nil {
		return err
	}
	if err := c.replenishLocked(ctx, mc, true); err != nil {
		return err
	}
	return c.saveLocked()
}

func (c *Client) renewCertificateLocked(ctx context.Context, mc *proto.Client) error {
	cert, err := mc.Certificate(ctx)
	if err != nil {
		return fmt.Errorf("sender certificate: %w", err)
	}
	parsed, err := seal.ParseCertificate(cert)
	if err != nil {
		return err
	}
	c.st.Certificate, c.st.CertExpires, c.st.CertIssued = cert, parsed.Expires, c.now()
	return nil
}

// replenishLocked uploads prekeys: a new signed prekey and last-resort
// key when missing or when rotate is true (the previous ones are kept for
// messages in flight), and one-time prekeys up to the configured counts.
func (c *Client) replenishLocked(ctx context.Context, mc *proto.Client, rotate bool) error {
	p := &c.st.Prekeys
	var up proto.PrekeyUpload
	nextID := func() uint32 { id := p.NextID; p.NextID++; return id }
	if rotate || p.Signed == nil {
		k, err := ecdh.X25519().GenerateKey(crand.Reader)
		if err != nil {
			return err
		}
		id := nextID()
		sp := seal.NewSignedPrekey(c.id.Ed25519, id, k.PublicKey())
		up.Signed = &proto.Prekey{ID: id, Data: sp.Marshal()}
		p.OldSigned, p.Signed = p.Signed, &PrivatePrekey{ID: id, Key: k.Bytes()}
		p.SignedRotated = c.now()
	}
	if rotate || p.LastResort == nil {
		seed := make([]byte, 64)
		crand.Read(seed)
		dk, err := mlkemFromSeed(seed)
		if err != nil {
			return err
		}
		id := nextID()
		pk := seal.NewPQPrekey(c.id.Ed25519, id, seal.PQLastResort, dk.EncapsulationKey())
		up.LastResort = &proto.Prekey{ID: id, Data: pk.Marshal()}
		p.OldLastResort, p.LastResort = p.LastResort, &PrivatePrekey{ID: id, Key: seed}
	}
	// p.OneTime and p.PQ already hold the keys this upload adds.
	for len(p.OneTime) < c.st.Settings.OneTimePrekeys && len(up.OneTime) < 100 {
		k, err := ecdh.X25519().GenerateKey(crand.Reader)
		if err != nil {
			return err
		}
		id := nextID()
		ot := seal.OneTimePrekey{ID: id}
		copy(ot.Public[:], k.PublicKey().Bytes())
		up.OneTime = append(up.OneTime, proto.Prekey{ID: id, Data: ot.Marshal()})
		p.OneTime[id] = k.Bytes()
	}
	for len(p.PQ) < c.st.Settings.PQPrekeys && len(up.PQOneTime) < 20 {
		seed := make([]byte, 64)
		crand.Read(seed)
		dk, err := mlkemFromSeed(seed)
		if err != nil {
			return err
		}
		id := nextID()
		pk := seal.NewPQPrekey(c.id.Ed25519, id, seal.PQOneTime, dk.EncapsulationKey())
		up.PQOneTime = append(up.PQOneTime, proto.Prekey{ID: id, Data: pk.Marshal()})
		p.PQ[id] = seed
	}
	if up.Signed == nil && up.LastResort == nil && len(up.OneTime) == 0 && len(up.PQOneTime) == 0 {
		return nil
	}
	// Save the private halves before the provider can hand out the public
	// ones: a crash in between must not leave prekeys we cannot open.
	if err := c.saveLocked(); err != nil {
		return err
	}
	if err := mc.Upload(ctx, up); err != nil {
		return fmt.Errorf("upload prekeys: %w", err)
	}
	return nil
}

// Route is the way a message takes (docs/tor.md). The zero Route is
// the default, RouteMix.
type Route string

// Routes a message can take.
const (
	// RouteMix: through the mix network, with mixing delays, cover
	// traffic and SURB acknowledgements. The default.
	RouteMix Route = "mix"
	// RouteOnion: over Tor straight to the recipient's provider's onion
	// service (Pond's design): one fresh circuit per connection, a
	// constant-size request and answer, acknowledged on the connection.
	// Needs Options.OnionDial and a recipient provider with an onion
	// service.
	RouteOnion Route = "onion"
)

// Queue adds a message for to, by route ("" or RouteMix: the mix
// network), to the outbox and returns its ID. It is sent by Run (or the
// daemon).
func (c *Client) Queue(to string, body []byte, route Route) (string, error) {
	id := make([]byte, 16)
	crand.Read(id)
	return c.queue(id, to, body, route)
}

func (c *Client) queue(id []byte, to string, body []byte, route Route) (string, error) {
	switch route {
	case "", RouteMix:
		route = ""
	case RouteOnion:
		if c.opts.OnionDial == nil {
			return "", ErrNoTor
		}
	default:
		return "", fmt.Errorf("%w %q: want %q or %q", ErrUnknownRoute, route, RouteMix, RouteOnion)
	}
	to = strings.ToLower(to)
	if _, d, ok := strings.Cut(to, "@"); !ok || d == "" {
		return "", fmt.Errorf("sender: %q is not an address (name@provider-domain)", to)
	}
	if len(body) > MaxMessage {
		return "", fmt.Errorf("sender: message of %d bytes; at most %d", len(body), MaxMessage)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.st.Registered {
		return "", errors.New("sender: not registered yet; run `sealnet register`")
	}
	if ct := c.st.Contacts[to]; ct != nil && ct.Changed() {
		return "", fmt.Errorf("%w: %s", ErrIdentityChanged, warnChanged(to))
	}
	for _, o := range c.st.Outbox {
		if bytes.Equal(o.ID, id) {
			return o.idHex(), nil // spooled twice
		}
	}
	if c.outboxFullLocked(len(body)) {
		return "", ErrOutboxFull
	}
	o := &Outgoing{ID: id, To: to, Body: body, Created: c.now(), Status: StatusBundle, Route: route}
	c.st.Outbox = append(c.st.Outbox, o)
	if err := c.appendHistoryLocked(&Message{ID: o.idHex(), From: c.st.Address, To: to, Sent: o.Created, Body: string(body), Outgoing: true, Status: StatusQueued}); err != nil {
		return "", err
	}
	if _, ok := c.sendableLocked(to); ok {
		if err := c.sealLocked(o, nil); err != nil {
			return "", err
		}
	}
	if err := c.saveLocked(); err != nil {
		return "", err
	}
	select {
	case c.wake <- struct{}{}:
	default:
	}
	return o.idHex(), nil
}

// MaxMessage bounds one message's body.
const MaxMessage = 64 << 10

// ErrNoTor: the onion route was asked for without a way to reach onion
// services.
var ErrNoTor = errors.New("sender: the onion route needs Tor: give --tor start (run tor from the system binary) or --tor attach (use a running tor)")

// ErrIdentityChanged: a contact's identity key is not the pinned one.
var ErrIdentityChanged = errors.New("identity key changed")

func warnChanged(addr string) string {
	return fmt.Sprintf("the identity key of %s has changed since you first talked. This can mean a new device, or someone intercepting. "+
		"Compare fingerprints with %s by another channel (`sealnet contacts`), then run `sealnet contacts trust %s`.", addr, addr, addr)
}

// Contacts returns the contacts, sorted by address.
func (c *Client) Contacts() []Contact {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Contact, 0, len(c.st.Contacts))
	for _, ct := range c.st.Contacts {
		out = append(out, *ct)
	}
	slices.SortFunc(out, func(a, b Contact) int { return strings.Compare(a.Address, b.Address) })
	return out
}

// Trust accepts a contact's new identity key.
func (c *Client) Trust(addr string) error {
	addr = strings.ToLower(addr)
	c.mu.Lock()
	defer c.mu.Unlock()
	ct := c.st.Contacts[addr]
	if ct == nil {
		return fmt.Errorf("sender: no contact %s", addr)
	}
	if !ct.Changed() {
		return fmt.Errorf("sender: the identity of %s has not changed; nothing to trust", addr)
	}
	ct.X25519, ct.Ed25519 = ct.PendingX25519, ct.PendingEd25519
	ct.PendingX25519, ct.PendingEd25519, ct.Token = nil, nil, nil
	// Sessions with the old identity are no longer used to send.
	delete(c.st.Current, addr)
	for _, o := range c.st.Outbox {
		if o.To == addr && o.Status == StatusBlocked {
			o.Status, o.Detail, o.Fragments, o.BundleAttempts, o.Reported = StatusBundle, "", nil, 0, false
		}
	}
	return c.saveLocked()
}

// Fingerprint of a contact's identity keys.
func contactFingerprint(x, ed []byte) string {
	var p seal.PublicIdentity
	copy(p.X25519[:], x)
	copy(p.Ed25519[:], ed)
	return p.Fingerprint()
}

// ContactFingerprint returns the fingerprint of a contact's pinned identity.
func (ct *Contact) Fingerprint() string { return contactFingerprint(ct.X25519, ct.Ed25519) }

// PendingFingerprint returns the fingerprint of a changed identity.
func (ct *Contact) PendingFingerprint() string {
	return contactFingerprint(ct.PendingX25519, ct.PendingEd25519)
}

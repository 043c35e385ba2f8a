// Package authority is the directory authority (`sealnet dirauth`): it
// collects the descriptors that allowlisted nodes publish, builds one
// network document per epoch, signs it, gathers the signatures of its peer
// authorities over the same bytes, and serves the result.
//
// Agreement without a voting protocol: every node publishes to every
// authority well before the epoch; each authority, at the same point of
// the schedule (Lead before the epoch starts), merges its peers'
// descriptors into its own set, picks deterministically between
// conflicting descriptors of one node, and builds the canonical document.
// Authorities that saw the same descriptors produce identical bytes, so
// their signatures combine; if they diverge, the document lacks the
// threshold of signatures and clients keep their last good document. The
// authority says so in its log.
//
// Time: the injected clock (Options.Clock, an internal/clock.Clock) is the
// authority's only source of time for what it decides: the epoch, when a
// document is due, the bootstrap wait, the pace of signature collection,
// and the schedule's polling. Real time only bounds network operations.
//
// Storage: every descriptor accepted and every document built is written
// with internal/atomicfile (fsync of the file and its folder); a
// descriptor is acknowledged only once it is on disk. A stored file that
// does not hold what its name says is refused at start and built again.
package authority

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sealnet/sealnet/internal/atomicfile"
	"github.com/sealnet/sealnet/internal/clock"
	"github.com/sealnet/sealnet/internal/keystore"
	"github.com/sealnet/sealnet/mixnet"
	"github.com/sealnet/sealnet/mixnet/directory"
)

// Options are the parts of an authority that tests replace.
type Options struct {
	Logger *slog.Logger
	// Clock is the time every decision is taken by (see the package
	// documentation); nil is clock.System().
	Clock clock.Clock
	// ReadTimeout bounds how long a client may take to send one request,
	// headers and body; 0 is 10 s. Headers alone get at most 5 s.
	ReadTimeout time.Duration
}

// ErrStorage marks a failure to write the authority's state to its data
// directory: the descriptor was not accepted (the node sends it again).
var ErrStorage = errors.New("dirauth: cannot store to the data directory")

// Server is a running authority.
type Server struct {
	cfg     Config
	geo     mixnet.Geometry
	params  directory.Parameters // published in every document built
	priv    ed25519.PrivateKey
	log     *slog.Logger
	clock   clock.Clock
	allowed map[mixnet.NodeID]Node
	peers   []peer
	client  *http.Client
	started time.Time
	readTO  time.Duration

	mu     sync.Mutex
	descs  map[uint64]map[mixnet.NodeID][]byte // signed descriptors by epoch
	docs   map[uint64]*directory.SignedDocument
	warned map[string]bool
}

type peer struct {
	url string
	key ed25519.PublicKey
}

// New loads (or creates) the authority's identity key and its stored state.
func New(cfg Config, opts Options) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	priv, created, err := keystore.Identity(filepath.Join(cfg.DataDir, "keys"))
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:     cfg,
		geo:     mixnet.DefaultGeometry(),
		params:  cfg.Parameters.Parameters(),
		priv:    priv,
		log:     opts.Logger,
		clock:   clock.Or(opts.Clock),
		allowed: make(map[mixnet.NodeID]Node),
		client:  &http.Client{Timeout: 5 * time.Second},
		readTO:  opts.ReadTimeout,
		descs:   make(map[uint64]map[mixnet.NodeID][]byte),
		docs:    make(map[uint64]*directory.SignedDocument),
		warned:  make(map[string]bool),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.readTO <= 0 {
		s.readTO = 10 * time.Second
	}
	s.started = s.now()
	if created {
		s.log.Info("created authority identity key", "public_key", hex.EncodeToString(s.PublicKey()))
	}
	for _, n := range cfg.Nodes {
		k, _ := parseKey(n.IdentityKey)
		s.allowed[mixnet.NodeID(sha256.Sum256(k))] = n
	}
	for _, p := range cfg.Peers {
		k, _ := parseKey(p.Key)
		s.peers = append(s.peers, peer{url: strings.TrimRight(p.URL, "/"), key: k})
	}
	if err := s.load(); err != nil {
		return nil, err
	}
	return s, nil
}

// PublicKey returns the key documents are signed with.
func (s *Server) PublicKey() ed25519.PublicKey { return s.priv.Public().(ed25519.PublicKey) }

func (s *Server) period() time.Duration { return s.cfg.EpochPeriod.D() }

// now is the injected clock's time.
func (s *Server) now() time.Time { return s.clock.Now() }

func (s *Server) epoch() uint64 { return directory.EpochAt(s.now(), s.period()) }

func (s *Server) docPath(e uint64) string {
	return filepath.Join(s.cfg.DataDir, "documents", "epoch-"+strconv.FormatUint(e, 10)+".bin")
}

func (s *Server) descDir(e uint64) string {
	return filepath.Join(s.cfg.DataDir, "descriptors", "epoch-"+strconv.FormatUint(e, 10))
}

// load restores the descriptors and documents of the previous, current
// and next epochs. A stored file that does not hold what its name says
// (cut short or torn, edited, for another epoch or epoch length, a
// document without this authority's valid signature, a descriptor of
// another node than its name) is refused with a warning: it is neither
// served nor merged, and the schedule builds the document again. Files
// that cannot be read at all make New fail.
func (s *Server) load() error {
	e := s.epoch()
	for _, x := range []uint64{e - 1, e, e + 1} {
		sd, err := s.loadDocument(x)
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case errors.Is(err, errStored):
			s.log.Warn("refusing a stored document; it will be built again", "epoch", x, "file", s.docPath(x), "err", err)
		case err != nil:
			return err
		default:
			s.docs[x] = sd
		}
		entries, err := os.ReadDir(s.descDir(x))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		for _, ent := range entries {
			path := filepath.Join(s.descDir(x), ent.Name())
			if strings.HasPrefix(ent.Name(), ".tmp-") || strings.HasSuffix(ent.Name(), ".tmp") {
				// A temporary file left by a crash before its rename
				// (atomicfile's, or an older version's NAME.tmp).
				os.Remove(path)
				continue
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			d, err := s.check(b, x)
			if err == nil && ent.Name() != descFile(d.ID()) {
				err = fmt.Errorf("it holds the descriptor of %q", d.Name)
			}
			if err != nil {
				s.log.Warn("refusing a stored descriptor", "epoch", x, "file", path, "err", err)
				continue
			}
			s.putDescriptorLocked(x, d.ID(), b, false)
		}
	}
	return nil
}

// errStored marks a stored document that load refuses.
var errStored = errors.New("not a document this authority built for this epoch")

// loadDocument reads the stored document of epoch x; it must be for x and
// this epoch length and carry this authority's valid signature. Of the
// other signatures it keeps those of peers that verify.
func (s *Server) loadDocument(x uint64) (*directory.SignedDocument, error) {
	b, err := os.ReadFile(s.docPath(x))
	if err != nil {
		return nil, err
	}
	sd, err := directory.Verify(b, []ed25519.PublicKey{s.PublicKey()}, 1)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errStored, err)
	}
	if sd.Doc.Epoch != x || sd.Doc.Period != s.period() {
		return nil, fmt.Errorf("%w: it is for epoch %d of %v", errStored, sd.Doc.Epoch, sd.Doc.Period)
	}
	clean := &directory.SignedDocument{Raw: sd.Raw, Doc: sd.Doc}
	for _, sig := range sd.Signatures {
		if sig.Key.Equal(s.PublicKey()) || s.isPeer(sig.Key) {
			clean.AddSignature(sig) // an invalid one is dropped
		}
	}
	return clean, nil
}

func (s *Server) isPeer(k ed25519.PublicKey) bool {
	for _, p := range s.peers {
		if p.key.Equal(k) {
			return true
		}
	}
	return false
}

func descFile(id mixnet.NodeID) string { return hex.EncodeToString(id[:]) + ".bin" }

// check parses a signed descriptor and applies the allowlist.
func (s *Server) check(b []byte, wantEpoch uint64) (*directory.Descriptor, error) {
	d, err := directory.ParseDescriptor(b)
	if err != nil {
		return nil, err
	}
	n, ok := s.allowed[d.ID()]
	if !ok {
		return nil, fmt.Errorf("node %q is not in this authority's allowlist", d.Name)
	}
	if d.Name != n.Name || string(d.Role) != n.Role || d.Layer != n.Layer || d.Domain != n.Domain {
		return nil, fmt.Errorf("descriptor of %q does not match its allowlist entry (name %q, role %s, layer %d, domain %q)", d.Name, n.Name, n.Role, n.Layer, n.Domain)
	}
	if d.GeometryHash != s.geo.Hash() {
		return nil, fmt.Errorf("node %q uses another packet geometry (%v…), this network uses %v…", d.Name, d.GeometryHash.String()[:12], s.geo.Hash().String()[:12])
	}
	if wantEpoch != 0 && d.Epoch != wantEpoch {
		return nil, fmt.Errorf("descriptor is for epoch %d, not %d", d.Epoch, wantEpoch)
	}
	return d, nil
}

// putDescriptorLocked holds b, the signed descriptor of node id for
// epoch e, writing it to disk first if persist is set; s.mu is held (or
// the server is not running yet).
func (s *Server) putDescriptorLocked(e uint64, id mixnet.NodeID, b []byte, persist bool) error {
	if persist {
		if err := atomicfile.Write(filepath.Join(s.descDir(e), descFile(id)), b); err != nil {
			return fmt.Errorf("%w: descriptor: %w", ErrStorage, err)
		}
	}
	if s.descs[e] == nil {
		s.descs[e] = make(map[mixnet.NodeID][]byte)
	}
	s.descs[e][id] = b
	return nil
}

// Submit accepts a descriptor for the current or next epoch, once it is
// on disk (ErrStorage if it cannot be written).
func (s *Server) Submit(b []byte) error {
	d, err := s.check(b, 0)
	if err != nil {
		return err
	}
	e := s.epoch()
	if d.Epoch != e && d.Epoch != e+1 {
		return fmt.Errorf("descriptor is for epoch %d; this authority takes epochs %d and %d (check the node's clock)", d.Epoch, e, e+1)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if doc := s.docs[d.Epoch]; doc != nil {
		if old := s.descs[d.Epoch][d.ID()]; old != nil && bytes.Equal(old, b) {
			return nil
		}
		return fmt.Errorf("the document for epoch %d is already published; descriptor not accepted", d.Epoch)
	}
	return s.putDescriptorLocked(d.Epoch, d.ID(), b, true)
}

// Run serves the API on ln and runs the schedule until ctx is done.
func (s *Server) Run(parent context.Context, ln net.Listener) error {
	// The schedule stops with the HTTP server: an authority that serves
	// nothing must not go on building and signing documents.
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: min(5*time.Second, s.readTO),
		ReadTimeout:       s.readTO,
		WriteTimeout:      20 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    8 << 10,
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.schedule(ctx)
	}()
	stop := context.AfterFunc(ctx, func() {
		sctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	})
	defer stop()
	s.log.Info("directory authority listening", "addr", ln.Addr().String(), "epoch", s.epoch(), "period", s.period())
	p := s.params
	s.log.Info("network parameters published in every document", "mean_delay", p.MeanDelay, "max_delay", p.MaxDelay,
		"client_rate", p.ClientRate, "provider_hold", p.ProviderHold, "fetch_interval", p.FetchInterval,
		"ack_timeout", p.AckTimeout, "retry_jitter", p.RetryJitter, "max_attempts", p.MaxAttempts, "relay_loop_rate", p.RelayLoopRate)
	err := srv.Serve(ln)
	cancel()
	<-done
	s.client.CloseIdleConnections()
	if errors.Is(err, http.ErrServerClosed) {
		return parent.Err()
	}
	return fmt.Errorf("dirauth: http server: %w", err)
}

// schedulePace is how often, on the injected clock, the schedule looks
// at what is due.
const schedulePace = 250 * time.Millisecond

// schedule builds documents when due and collects peer signatures. Its
// timer only paces how often it looks at the clock; what it does is
// decided by s.now.
func (s *Server) schedule(ctx context.Context) {
	t := s.clock.NewTimer(schedulePace)
	defer t.Stop()
	lastCollect := time.Time{}
	for {
		s.tick(ctx, &lastCollect)
		select {
		case <-ctx.Done():
			return
		case <-t.C():
			t.Reset(schedulePace)
		}
	}
}

func (s *Server) tick(ctx context.Context, lastCollect *time.Time) {
	now := s.now()
	e := directory.EpochAt(now, s.period())
	for _, x := range []uint64{e, e + 1} {
		s.mu.Lock()
		have := s.docs[x] != nil
		s.mu.Unlock()
		if !have && s.due(x, e, now) {
			s.finalize(ctx, x)
		}
	}
	// Peers are asked at most once a second of the clock (again at once if
	// it went back).
	if since := now.Sub(*lastCollect); len(s.peers) > 0 && (since >= time.Second || since < 0) {
		*lastCollect = now
		for _, x := range []uint64{e, e + 1} {
			s.collect(ctx, x)
		}
	}
	s.prune(e)
}

// due reports whether the document for epoch x should be built now.
func (s *Server) due(x, current uint64, now time.Time) bool {
	if x > current {
		return !now.Before(directory.EpochStart(x, s.period()).Add(-s.cfg.Lead.D()))
	}
	// The current epoch has no document (first start, or all authorities
	// were down): build it as soon as every node has published, or after
	// the bootstrap wait.
	s.mu.Lock()
	all := len(s.descs[x]) >= len(s.allowed)
	s.mu.Unlock()
	return all || now.Sub(s.started) >= s.cfg.BootstrapWait.D()
}

func (s *Server) warnOnce(key, msg string, args ...any) { s.logOnce(slog.LevelWarn, key, msg, args...) }

// logOnce logs msg the first time it is called with key.
func (s *Server) logOnce(level slog.Level, key, msg string, args ...any) {
	s.mu.Lock()
	seen := s.warned[key]
	s.warned[key] = true
	s.mu.Unlock()
	if !seen {
		s.log.Log(context.Background(), level, msg, args...)
	}
}

// finalize merges peers' descriptors for epoch x, builds and signs the
// document.
func (s *Server) finalize(ctx context.Context, x uint64) {
	for _, p := range s.peers {
		for _, b := range s.fetchDescriptors(ctx, p, x) {
			d, err := s.check(b, x)
			if err != nil {
				continue
			}
			s.mu.Lock()
			id := d.ID()
			old := s.descs[x][id]
			// Conflicting descriptors of one node: keep the smaller bytes,
			// a rule every authority applies alike.
			if old == nil || bytes.Compare(b, old) < 0 {
				if err := s.putDescriptorLocked(x, id, b, true); err != nil {
					s.log.Error("cannot store a peer's descriptor; the document is built without it", "epoch", x, "err", err)
				}
			}
			s.mu.Unlock()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	doc := &directory.Document{Epoch: x, Period: s.period(), Geometry: s.geo, Parameters: s.params, Layers: make([][]*directory.Descriptor, s.cfg.Layers)}
	for _, b := range s.descs[x] {
		d, err := directory.ParseDescriptor(b)
		if err != nil {
			continue
		}
		if d.Role == directory.RoleProvider {
			doc.Providers = append(doc.Providers, d)
		} else {
			doc.Layers[d.Layer-1] = append(doc.Layers[d.Layer-1], d)
		}
	}
	for i, l := range doc.Layers {
		if len(l) == 0 {
			s.mu.Unlock()
			s.warnOnce(fmt.Sprintf("empty-%d-%d", x, i), "cannot build the document yet: a layer has no mix", "epoch", x, "layer", i+1)
			s.mu.Lock()
			return
		}
	}
	if len(doc.Providers) == 0 {
		s.mu.Unlock()
		s.warnOnce(fmt.Sprintf("noprov-%d", x), "cannot build the document yet: no provider has published", "epoch", x)
		s.mu.Lock()
		return
	}
	sd, err := directory.NewSignedDocument(doc)
	if err != nil {
		s.log.Error("cannot build the document", "epoch", x, "err", err)
		return
	}
	if err := sd.AddSignature(directory.SignDocument(sd.Raw, s.priv)); err != nil {
		s.log.Error("cannot sign the document", "epoch", x, "err", err)
		return
	}
	s.docs[x] = sd
	s.persistLocked(x)
	nodes := len(doc.Providers)
	for _, l := range doc.Layers {
		nodes += len(l)
	}
	s.log.Info("built the network document", "epoch", x, "nodes", nodes, "of", len(s.allowed))
}

func (s *Server) persistLocked(x uint64) {
	b, err := s.docs[x].Marshal()
	if err == nil {
		err = atomicfile.Write(s.docPath(x), b)
	}
	if err != nil {
		s.log.Error("cannot store the document; it is served, but a restart builds it again", "epoch", x, "err", err)
	}
}

func (s *Server) fetch(ctx context.Context, url string, max int) ([]byte, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, 0, err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, int64(max)+1))
	if err != nil {
		return nil, 0, err
	}
	if len(b) > max {
		return nil, 0, fmt.Errorf("response over %d bytes", max)
	}
	return b, resp.StatusCode, nil
}

func (s *Server) fetchDescriptors(ctx context.Context, p peer, x uint64) [][]byte {
	b, status, err := s.fetch(ctx, p.url+"/v1/descriptors/"+strconv.FormatUint(x, 10), directory.MaxNodes*(directory.MaxDescriptorSize+4))
	if err != nil || status != http.StatusOK {
		s.warnOnce("peer-desc-"+p.url+strconv.FormatUint(x, 10), "cannot fetch a peer's descriptors", "peer", p.url, "epoch", x, "status", status, "err", err)
		return nil
	}
	out, err := parseDescriptorList(b)
	if err != nil {
		s.warnOnce("peer-desc-"+p.url+strconv.FormatUint(x, 10), "a peer's descriptors do not decode; none of them is merged", "peer", p.url, "epoch", x, "err", err)
		return nil
	}
	return out
}

// errDescriptorList marks a body of GET /v1/descriptors that does not
// decode.
var errDescriptorList = errors.New("dirauth: malformed descriptor list")

// appendDescriptorList appends the body of GET /v1/descriptors: each
// signed descriptor preceded by its length (4 bytes, big endian).
func appendDescriptorList(out []byte, descs [][]byte) []byte {
	for _, b := range descs {
		out = binary.BigEndian.AppendUint32(out, uint32(len(b)))
		out = append(out, b...)
	}
	return out
}

// parseDescriptorList decodes what appendDescriptorList writes: at most
// directory.MaxNodes entries of 1 to directory.MaxDescriptorSize bytes
// each, nothing after the last. The entries alias b. It does not look
// inside the entries; the caller checks each as a descriptor.
func parseDescriptorList(b []byte) ([][]byte, error) {
	var out [][]byte
	for len(b) > 0 {
		if len(out) == directory.MaxNodes {
			return nil, fmt.Errorf("%w: more than %d entries", errDescriptorList, directory.MaxNodes)
		}
		if len(b) < 4 {
			return nil, fmt.Errorf("%w: %d bytes after entry %d, not a length", errDescriptorList, len(b), len(out))
		}
		n := binary.BigEndian.Uint32(b)
		if n == 0 || n > directory.MaxDescriptorSize {
			return nil, fmt.Errorf("%w: entry %d is %d bytes, want 1 to %d", errDescriptorList, len(out), n, directory.MaxDescriptorSize)
		}
		if int(n) > len(b)-4 {
			return nil, fmt.Errorf("%w: entry %d of %d bytes is cut short at %d", errDescriptorList, len(out), n, len(b)-4)
		}
		out = append(out, b[4:4+n:4+n])
		b = b[4+n:]
	}
	return out, nil
}

// collect asks each peer for its signature over the same document.
func (s *Server) collect(ctx context.Context, x uint64) {
	s.mu.Lock()
	sd := s.docs[x]
	s.mu.Unlock()
	if sd == nil {
		return
	}
	hash := sha256.Sum256(sd.Raw)
	for _, p := range s.peers {
		if hasKey(sd, p.key) {
			continue
		}
		b, status, err := s.fetch(ctx, p.url+"/v1/signature/"+strconv.FormatUint(x, 10), 32+ed25519.SignatureSize)
		if err != nil || status != http.StatusOK || len(b) != 32+ed25519.SignatureSize {
			continue // not built yet, or unreachable: try again later
		}
		if !bytes.Equal(b[:32], hash[:]) {
			s.diverged(ctx, p, x, sd.Doc)
			continue
		}
		s.mu.Lock()
		if err := sd.AddSignature(directory.Signature{Key: p.key, Sig: b[32:]}); err != nil {
			s.log.Warn("a peer's signature does not verify", "peer", p.url, "epoch", x)
		} else {
			s.persistLocked(x)
		}
		s.mu.Unlock()
	}
}

// diverged says, once per peer and epoch, that a peer signed another
// document for epoch x than ours. Authorities with different [parameters]
// diverge at every epoch whatever descriptors they hold, so the peer's
// document is fetched to tell that case apart and name the parameters
// that differ: a misconfiguration to fix, not a race to wait out.
func (s *Server) diverged(ctx context.Context, p peer, x uint64, ours *directory.Document) {
	key := "diverge-" + p.url + strconv.FormatUint(x, 10)
	s.mu.Lock()
	seen := s.warned[key]
	s.mu.Unlock()
	if seen {
		return
	}
	b, status, err := s.fetch(ctx, p.url+"/v1/document/"+strconv.FormatUint(x, 10), directory.MaxDocumentSize+64<<10)
	if err == nil && status == http.StatusOK {
		theirs, verr := directory.Verify(b, []ed25519.PublicKey{p.key}, 1)
		if verr == nil && theirs.Doc.Epoch == x {
			if diff := parametersDiff(ours.Params(), theirs.Doc.Params()); diff != "" {
				s.logOnce(slog.LevelError, key, "a peer authority publishes other network parameters: every authority of a network must have the same [parameters] section; until they do, documents lack signatures and clients keep their last good one",
					"peer", p.url, "epoch", x, "differences", diff)
				return
			}
		}
	}
	s.warnOnce(key, "a peer authority signed a different document; clients will see fewer signatures", "peer", p.url, "epoch", x)
}

// parametersDiff lists the parameters in which ours and theirs differ
// ("" if none), as "key: ours here, theirs there".
func parametersDiff(ours, theirs directory.Parameters) string {
	var diffs []string
	add := func(key string, a, b any) {
		if a != b {
			diffs = append(diffs, fmt.Sprintf("%s: %v here, %v there", key, a, b))
		}
	}
	add("mean_delay", ours.MeanDelay, theirs.MeanDelay)
	add("max_delay", ours.MaxDelay, theirs.MaxDelay)
	add("client_rate", ours.ClientRate, theirs.ClientRate)
	add("provider_hold", ours.ProviderHold, theirs.ProviderHold)
	add("fetch_interval", ours.FetchInterval, theirs.FetchInterval)
	add("ack_timeout", ours.AckTimeout, theirs.AckTimeout)
	add("retry_jitter", ours.RetryJitter, theirs.RetryJitter)
	add("max_attempts", ours.MaxAttempts, theirs.MaxAttempts)
	add("relay_loop_rate", ours.RelayLoopRate, theirs.RelayLoopRate)
	return strings.Join(diffs, "; ")
}

func hasKey(sd *directory.SignedDocument, k ed25519.PublicKey) bool {
	for _, sig := range sd.Signatures {
		if sig.Key.Equal(k) {
			return true
		}
	}
	return false
}

// prune forgets epochs before current-1.
func (s *Server) prune(current uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for e := range s.docs {
		if e+1 < current {
			delete(s.docs, e)
			os.Remove(s.docPath(e))
		}
	}
	for e := range s.descs {
		if e+1 < current {
			delete(s.descs, e)
			os.RemoveAll(s.descDir(e))
		}
	}
}

// Handler serves the authority API:
//
//	POST /v1/descriptor          a signed descriptor (204, or 400 with the reason)
//	GET  /v1/document/{epoch}    the signed document (404 until built)
//	GET  /v1/signature/{epoch}   SHA-256 of the document || this authority's signature
//	GET  /v1/descriptors/{epoch} the descriptors held, each prefixed by a 4-byte length
//	GET  /v1/status              JSON for operators
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/descriptor", func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, directory.MaxDescriptorSize))
		var tooLarge *http.MaxBytesError
		switch {
		case errors.As(err, &tooLarge):
			http.Error(w, fmt.Sprintf("a signed descriptor is at most %d bytes", directory.MaxDescriptorSize), http.StatusRequestEntityTooLarge)
			return
		case err != nil:
			http.Error(w, "cannot read the descriptor", http.StatusBadRequest)
			return
		}
		err = s.Submit(b)
		switch {
		case errors.Is(err, ErrStorage):
			s.log.Error("cannot store a descriptor; the node will send it again", "err", err)
			http.Error(w, "the authority cannot store the descriptor now; send it again later", http.StatusInternalServerError)
			return
		case err != nil:
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	epochOf := func(w http.ResponseWriter, r *http.Request) (uint64, bool) {
		e, err := strconv.ParseUint(r.PathValue("epoch"), 10, 64)
		if err != nil {
			http.Error(w, "bad epoch", http.StatusBadRequest)
			return 0, false
		}
		return e, true
	}
	mux.HandleFunc("GET /v1/document/{epoch}", func(w http.ResponseWriter, r *http.Request) {
		e, ok := epochOf(w, r)
		if !ok {
			return
		}
		s.mu.Lock()
		sd := s.docs[e]
		var b []byte
		var err error
		if sd != nil {
			b, err = sd.Marshal()
		}
		s.mu.Unlock()
		if sd == nil || err != nil {
			http.Error(w, "no document for this epoch yet", http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(b)
	})
	mux.HandleFunc("GET /v1/signature/{epoch}", func(w http.ResponseWriter, r *http.Request) {
		e, ok := epochOf(w, r)
		if !ok {
			return
		}
		s.mu.Lock()
		sd := s.docs[e]
		var out []byte
		if sd != nil {
			h := sha256.Sum256(sd.Raw)
			for _, sig := range sd.Signatures {
				if sig.Key.Equal(s.PublicKey()) {
					out = append(h[:], sig.Sig...)
				}
			}
		}
		s.mu.Unlock()
		if out == nil {
			http.Error(w, "no document for this epoch yet", http.StatusNotFound)
			return
		}
		w.Write(out)
	})
	mux.HandleFunc("GET /v1/descriptors/{epoch}", func(w http.ResponseWriter, r *http.Request) {
		e, ok := epochOf(w, r)
		if !ok {
			return
		}
		s.mu.Lock()
		ids := make([]string, 0, len(s.descs[e]))
		byID := make(map[string][]byte)
		for id, b := range s.descs[e] {
			k := string(id[:])
			ids = append(ids, k)
			byID[k] = b
		}
		s.mu.Unlock()
		sort.Strings(ids)
		list := make([][]byte, len(ids))
		for i, k := range ids {
			list[i] = byID[k]
		}
		w.Write(appendDescriptorList(nil, list))
	})
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		e := s.epoch()
		type docStatus struct {
			Epoch      uint64 `json:"epoch"`
			Signatures int    `json:"signatures"`
		}
		st := struct {
			Name        string         `json:"name"`
			Epoch       uint64         `json:"epoch"`
			Period      string         `json:"period"`
			Descriptors map[string]int `json:"descriptors"`
			Documents   []docStatus    `json:"documents"`
			PublicKey   string         `json:"public_key"`
			// Parameters: what this authority publishes, in its
			// configuration's terms, to compare with its peers'.
			Parameters ParametersConfig `json:"parameters"`
		}{Name: s.cfg.Name, Epoch: e, Period: s.period().String(), Descriptors: map[string]int{}, PublicKey: hex.EncodeToString(s.PublicKey()),
			Parameters: ParametersConfigOf(s.params)}
		s.mu.Lock()
		for x, m := range s.descs {
			st.Descriptors[strconv.FormatUint(x, 10)] = len(m)
		}
		for x, d := range s.docs {
			st.Documents = append(st.Documents, docStatus{x, len(d.Signatures)})
		}
		s.mu.Unlock()
		sort.Slice(st.Documents, func(i, j int) bool { return st.Documents[i].Epoch < st.Documents[j].Epoch })
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(st)
	})
	return mux
}

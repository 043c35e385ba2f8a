package authority

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sealnet/sealnet/internal/clock"
	"github.com/sealnet/sealnet/mixnet/directory"
)

// newManualClock returns an injected clock that moves only when the test
// moves it, far from the wall clock.
func newManualClock() *clock.Manual {
	// Mid-epoch, long ago: no real-time epoch is anywhere near it.
	return clock.NewManual(directory.EpochStart(200_000, testPeriod).Add(testPeriod / 3))
}

// makeNode returns an allowlisted node with a key derived from its name.
func makeNode(n Node) testNode {
	priv := ed25519.NewKeyFromSeed(derived("identity " + n.Name))
	n.IdentityKey = hex.EncodeToString(priv.Public().(ed25519.PublicKey))
	return testNode{entry: n, priv: priv}
}

// descriptorAt signs n's descriptor for epoch e with another address.
func (n testNode) descriptorAt(t *testing.T, e uint64, address string) []byte {
	t.Helper()
	d, err := directory.ParseDescriptor(n.descriptor(t, e))
	if err != nil {
		t.Fatal(err)
	}
	d.Address = address
	b, err := directory.SignDescriptor(d, n.priv)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// startNet starts one authority per entry of cfgs (each the others'
// peer, plus extra peers), serving on loopback, all on clock. Nothing is
// submitted.
func startNet(t *testing.T, clk clock.Clock, cfgs []Config, extra ...Peer) []*authority {
	t.Helper()
	auths := make([]*authority, len(cfgs))
	handlers := make([]http.Handler, len(cfgs))
	var mu sync.Mutex
	for i := range auths {
		ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			h := handlers[i]
			mu.Unlock()
			if h == nil {
				http.Error(w, "not yet", http.StatusServiceUnavailable)
				return
			}
			h.ServeHTTP(w, r)
		}))
		t.Cleanup(ts.Close)
		auths[i] = &authority{url: ts.URL, log: &records{}}
	}
	keys := make([]string, len(cfgs))
	for i, cfg := range cfgs {
		s, err := New(cfg, Options{Clock: clk}) // creates the identity key
		if err != nil {
			t.Fatal(err)
		}
		keys[i] = hex.EncodeToString(s.PublicKey())
	}
	for i, cfg := range cfgs {
		for j, other := range auths {
			if j != i {
				cfg.Peers = append(cfg.Peers, Peer{URL: other.url, Key: keys[j]})
			}
		}
		cfg.Peers = append(cfg.Peers, extra...)
		s, err := New(cfg, Options{Logger: slog.New(auths[i].log), Clock: clk})
		if err != nil {
			t.Fatal(err)
		}
		auths[i].s = s
		mu.Lock()
		handlers[i] = s.Handler()
		mu.Unlock()
		t.Cleanup(s.client.CloseIdleConnections)
	}
	return auths
}

func submit(t *testing.T, a *authority, descs ...[]byte) {
	t.Helper()
	for _, b := range descs {
		if err := a.s.Submit(b); err != nil {
			t.Fatal(err)
		}
	}
}

// served fetches an authority's document for e as a client does, without
// checking it.
func served(t *testing.T, a *authority, e uint64) []byte {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("%s/v1/document/%d", a.url, e))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET document %d: %d %v", e, resp.StatusCode, err)
	}
	return b
}

// all returns every record at level as "message attrs".
func (r *records) all(level slog.Level) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, rec := range r.recs {
		if rec.Level != level {
			continue
		}
		var b strings.Builder
		b.WriteString(rec.Message)
		rec.Attrs(func(a slog.Attr) bool {
			fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
			return true
		})
		out = append(out, b.String())
	}
	return out
}

func namesOf(d *directory.Document) map[string]string {
	out := map[string]string{}
	for _, l := range d.Layers {
		for _, n := range l {
			out[n.Name] = n.Address
		}
	}
	for _, n := range d.Providers {
		out[n.Name] = n.Address
	}
	return out
}

// TestMergeRule: authorities that hold different descriptors (each node
// published to some of them, one node two versions) build byte-identical
// documents holding every node, with the lexicographically smaller of
// the two conflicting descriptors (docs/directory.md §10), whichever
// authority builds first; their signatures combine.
func TestMergeRule(t *testing.T) {
	mixA := makeNode(Node{Name: "mix-1a", Role: "mix", Layer: 1})
	mixB := makeNode(Node{Name: "mix-1b", Role: "mix", Layer: 1})
	prov := makeNode(Node{Name: "provider-a", Role: "provider", Domain: "a"})
	nodes := []testNode{mixA, mixB, prov}
	for _, firstA := range []bool{true, false} {
		clock := newManualClock()
		auths := startNet(t, clock, []Config{baseConfig(t, nodes), baseConfig(t, nodes)})
		a, b := auths[0], auths[1]
		e := a.s.epoch()
		v1, v2 := mixA.descriptorAt(t, e, "mix-1a.example:4433"), mixA.descriptorAt(t, e, "mix-1a-moved.example:4433")
		small, large := v1, v2
		if bytes.Compare(small, large) > 0 {
			small, large = large, small
		}
		// A holds the larger version, B the smaller: keeping one's own, or
		// always the peer's, gives two documents.
		submit(t, a, large, prov.descriptor(t, e))
		submit(t, b, small, mixB.descriptor(t, e), prov.descriptor(t, e))
		ctx := context.Background()
		if firstA {
			a.s.finalize(ctx, e)
			b.s.finalize(ctx, e)
		} else {
			b.s.finalize(ctx, e)
			a.s.finalize(ctx, e)
		}
		da, db := a.s.docs[e], b.s.docs[e]
		if da == nil || db == nil {
			t.Fatalf("first A %v: a document is missing", firstA)
		}
		if !bytes.Equal(da.Raw, db.Raw) {
			t.Fatalf("first A %v: the authorities built different documents:\n%s\n%s", firstA, da.Raw, db.Raw)
		}
		want, _ := directory.ParseDescriptor(small)
		got := namesOf(da.Doc)
		if len(got) != 3 || got["mix-1a"] != want.Address || got["mix-1b"] == "" || got["provider-a"] == "" {
			t.Fatalf("first A %v: document holds %v; want every node and mix-1a at %s", firstA, got, want.Address)
		}
		a.s.collect(ctx, e)
		b.s.collect(ctx, e)
		keys := []ed25519.PublicKey{a.s.PublicKey(), b.s.PublicKey()}
		for _, x := range auths {
			if _, err := directory.Verify(served(t, x, e), keys, 2); err != nil {
				t.Fatalf("first A %v: a client refuses the merged document: %v", firstA, err)
			}
		}
	}
}

// TestMergeRefusesPeerInput: what a peer serves is merged only if it
// passes this authority's own checks (allowlist, epoch, signature), and a
// list that does not decode is not merged at all, not even its valid
// first entries.
func TestMergeRefusesPeerInput(t *testing.T) {
	mixA := makeNode(Node{Name: "mix-1a", Role: "mix", Layer: 1})
	mixB := makeNode(Node{Name: "mix-1b", Role: "mix", Layer: 1})
	prov := makeNode(Node{Name: "provider-a", Role: "provider", Domain: "a"})
	stranger := makeNode(Node{Name: "mix-1x", Role: "mix", Layer: 1})
	clock := newManualClock()
	e := directory.EpochAt(clock.Now(), testPeriod)

	forged := mixB.descriptor(t, e)
	forged = append([]byte(nil), forged...)
	forged[len(forged)-1] ^= 1 // the signature
	var mu sync.Mutex
	var body []byte
	peer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/v1/descriptors/") {
			http.NotFound(w, r)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		w.Write(body)
	}))
	defer peer.Close()
	peerKey := hex.EncodeToString(ed25519.NewKeyFromSeed(derived("peer")).Public().(ed25519.PublicKey))

	for _, c := range []struct {
		name  string
		list  []byte
		wantB bool
	}{
		{"checked entries", appendDescriptorList(nil, [][]byte{
			stranger.descriptor(t, e), // not allowlisted
			mixB.descriptor(t, e+5),   // another epoch
			forged,                    // signature does not verify
			[]byte("not a descriptor"),
		}), false},
		{"valid entry", appendDescriptorList(nil, [][]byte{mixB.descriptor(t, e)}), true},
		{"valid entry, then a trailing byte", append(appendDescriptorList(nil, [][]byte{mixB.descriptor(t, e)}), 0), false},
		{"valid entry, then a cut one", appendDescriptorList(nil, [][]byte{mixB.descriptor(t, e), prov.descriptor(t, e)})[:len(mixB.descriptor(t, e))+4+10], false},
	} {
		mu.Lock()
		body = c.list
		mu.Unlock()
		cfg := baseConfig(t, []testNode{mixA, mixB, prov})
		cfg.Peers = []Peer{{URL: peer.URL, Key: peerKey}}
		log := &records{}
		s, err := New(cfg, Options{Logger: slog.New(log), Clock: clock})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Submit(mixA.descriptor(t, e)); err != nil {
			t.Fatal(err)
		}
		if err := s.Submit(prov.descriptor(t, e)); err != nil {
			t.Fatal(err)
		}
		s.finalize(context.Background(), e)
		s.client.CloseIdleConnections()
		got := namesOf(s.docs[e].Doc)
		if _, hasB := got["mix-1b"]; hasB != c.wantB || len(got) != 2+map[bool]int{true: 1}[c.wantB] {
			t.Errorf("%s: the document holds %v; want mix-1b: %v", c.name, got, c.wantB)
		}
		if strings.Contains(c.name, "then") {
			if _, ok := log.find(slog.LevelWarn, "do not decode"); !ok {
				t.Errorf("%s: no warning that the peer's list does not decode", c.name)
			}
		}
	}
}

// TestThresholdWithDivergentPeer: of three authorities one publishes
// other parameters. The two honest ones still sign each other's
// document, and a client requiring 2 of the 3 accepts it from either;
// the divergent one's document carries its own signature only, and the
// client refuses it. Each honest authority names the divergent one, and
// only it, at error level. Peers that answer a signature request with
// the right hash but a signature that is not theirs (a replay of this
// authority's own, or garbage) add nothing.
func TestThresholdWithDivergentPeer(t *testing.T) {
	nodes := testNodes()
	clock := newManualClock()
	e := directory.EpochAt(clock.Now(), testPeriod)

	// Forging peers: each answers every signature request with the hash
	// of the honest document and a signature that is not its own.
	var mu sync.Mutex
	var honestRaw []byte
	var honestSig []byte
	forger := func(sig func() []byte) *httptest.Server {
		return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			defer mu.Unlock()
			if !strings.HasPrefix(r.URL.Path, "/v1/signature/") || honestRaw == nil {
				http.NotFound(w, r)
				return
			}
			h := sha256.Sum256(honestRaw)
			w.Write(append(h[:], sig()...))
		}))
	}
	replay := forger(func() []byte { return honestSig })
	defer replay.Close()
	garbage := forger(func() []byte { return bytes.Repeat([]byte{7}, ed25519.SignatureSize) })
	defer garbage.Close()
	forgerKey := func(what string) string {
		return hex.EncodeToString(ed25519.NewKeyFromSeed(derived(what)).Public().(ed25519.PublicKey))
	}

	honest := directory.DefaultParameters()
	other := honest
	other.MeanDelay = 500 * time.Millisecond
	cfgs := []Config{baseConfig(t, nodes), baseConfig(t, nodes), baseConfig(t, nodes)}
	cfgs[2].Parameters = ParametersConfigOf(other)
	auths := startNet(t, clock, cfgs,
		Peer{URL: replay.URL, Key: forgerKey("replaying peer")}, Peer{URL: garbage.URL, Key: forgerKey("garbage peer")})
	for _, a := range auths {
		submit(t, a, nodes[0].descriptor(t, e), nodes[1].descriptor(t, e))
	}
	ctx := context.Background()
	for _, a := range auths {
		a.s.finalize(ctx, e)
	}
	a, b, c := auths[0], auths[1], auths[2]
	mu.Lock()
	honestRaw = a.s.docs[e].Raw
	honestSig = a.s.docs[e].Signatures[0].Sig
	mu.Unlock()
	for range 2 {
		for _, x := range auths {
			x.s.collect(ctx, e)
		}
	}

	keys := []ed25519.PublicKey{a.s.PublicKey(), b.s.PublicKey(), c.s.PublicKey()}
	for _, x := range []*authority{a, b} {
		sd, err := directory.Verify(served(t, x, e), keys, 2)
		if err != nil {
			t.Fatalf("a client refuses the honest document: %v", err)
		}
		if len(sd.Signatures) != 2 || !bytes.Equal(sd.Raw, honestRaw) || sd.Doc.Params() != honest {
			t.Fatalf("honest document: %d signatures, want 2 (and the honest parameters)", len(sd.Signatures))
		}
	}
	if _, err := directory.Verify(served(t, c, e), keys, 2); !errors.Is(err, directory.ErrThreshold) {
		t.Fatalf("a client accepts the divergent document with 1 of 3 signatures: %v", err)
	}
	if _, err := directory.Verify(served(t, c, e), keys, 1); err != nil {
		t.Fatalf("the divergent document does not even carry its own signature: %v", err)
	}

	for _, x := range []*authority{a, b} {
		var named []string
		for _, rec := range x.log.all(slog.LevelError) {
			if strings.Contains(rec, "peer="+c.url+" ") && strings.Contains(rec, "mean_delay: 400ms here, 500ms there") {
				named = append(named, rec)
			}
			for _, ok := range []*authority{a, b} {
				if strings.Contains(rec, "peer="+ok.url+" ") {
					t.Errorf("an honest peer is named at error level: %s", rec)
				}
			}
		}
		if len(named) != 1 {
			t.Errorf("the divergent peer is named %d times at error level, want once: %v", len(named), x.log.all(slog.LevelError))
		}
		warned := 0
		for _, rec := range x.log.all(slog.LevelWarn) {
			if strings.Contains(rec, "does not verify") && (strings.Contains(rec, replay.URL) || strings.Contains(rec, garbage.URL)) {
				warned++
			}
		}
		if warned == 0 {
			t.Errorf("no warning that a peer's signature does not verify")
		}
	}
	for _, rec := range c.log.all(slog.LevelError) {
		if !strings.Contains(rec, "other network parameters") {
			t.Errorf("the divergent authority logs an unexpected error: %s", rec)
		}
	}
	if n := len(c.log.all(slog.LevelError)); n != 2 {
		t.Errorf("the divergent authority names %d peers at error level, want its 2 honest peers", n)
	}
}

// TestScheduleFollowsInjectedClock: with an injected clock far from the
// wall clock, everything the schedule decides follows it and nothing
// else: the bootstrap wait, the pace of signature collection, the build
// of the next epoch's document at its lead time, and pruning. The ticks
// run back to back, in much less than a second of real time.
func TestScheduleFollowsInjectedClock(t *testing.T) {
	mix := makeNode(Node{Name: "mix-1a", Role: "mix", Layer: 1})
	late := makeNode(Node{Name: "mix-1b", Role: "mix", Layer: 1}) // never publishes
	prov := makeNode(Node{Name: "provider-a", Role: "provider", Domain: "a"})
	nodes := []testNode{mix, late, prov}
	clock := newManualClock()
	auths := startNet(t, clock, []Config{baseConfig(t, nodes), baseConfig(t, nodes)})
	a, b := auths[0], auths[1]
	e := a.s.epoch()
	if real := directory.EpochAt(time.Now(), testPeriod); real == e || real == e+1 {
		t.Fatal("the injected clock is too close to the wall clock to tell them apart")
	}
	for _, x := range auths {
		submit(t, x, mix.descriptor(t, e), prov.descriptor(t, e), mix.descriptor(t, e+1), prov.descriptor(t, e+1))
	}
	ctx := context.Background()
	var lastA, lastB time.Time
	sigs := func(x *authority, e uint64) int {
		x.s.mu.Lock()
		defer x.s.mu.Unlock()
		if x.s.docs[e] == nil {
			return 0
		}
		return len(x.s.docs[e].Signatures)
	}

	// Not every node has published: the current epoch's document waits for
	// the bootstrap wait (30 s) of the clock.
	a.s.tick(ctx, &lastA)
	if sigs(a, e) != 0 {
		t.Fatal("built before the bootstrap wait passed")
	}
	clock.Advance(30 * time.Second)
	a.s.tick(ctx, &lastA) // builds; B has no document yet to sign
	b.s.tick(ctx, &lastB) // builds; collects A's signature
	if sigs(a, e) != 1 || sigs(b, e) != 2 {
		t.Fatalf("after the bootstrap wait: %d and %d signatures, want 1 and 2", sigs(a, e), sigs(b, e))
	}
	a.s.tick(ctx, &lastA)
	if sigs(a, e) != 1 {
		t.Fatal("peers asked again within one second of the clock")
	}
	clock.Advance(time.Second)
	a.s.tick(ctx, &lastA)
	if sigs(a, e) != 2 {
		t.Fatal("one second of the clock later, the peer's signature was not collected")
	}

	// The next epoch's document is built at its lead time, not before.
	lead := a.s.cfg.Lead.D()
	clock.Set(directory.EpochStart(e+1, testPeriod).Add(-lead - time.Second))
	a.s.tick(ctx, &lastA)
	if sigs(a, e+1) != 0 {
		t.Fatal("the next document was built before its lead time")
	}
	clock.Advance(time.Second)
	a.s.tick(ctx, &lastA)
	if sigs(a, e+1) != 1 {
		t.Fatal("the next document was not built at its lead time")
	}

	// Two epochs on, both are pruned, from memory and disk.
	clock.Set(directory.EpochStart(e+3, testPeriod))
	a.s.tick(ctx, &lastA)
	if sigs(a, e) != 0 || sigs(a, e+1) != 0 {
		t.Fatal("old documents were not pruned")
	}
	if _, err := os.Stat(a.s.docPath(e)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the pruned document's file remains: %v", err)
	}
}

// TestStateSurvivesRestart: what an authority accepted and built is on
// disk; a new authority on the same data directory serves the same
// descriptors and the same document, signatures included, byte for byte.
func TestStateSurvivesRestart(t *testing.T) {
	nodes := testNodes()
	clock := newManualClock()
	auths := startNet(t, clock, []Config{baseConfig(t, nodes), baseConfig(t, nodes)})
	a := auths[0]
	e := a.s.epoch()
	for _, x := range auths {
		submit(t, x, nodes[0].descriptor(t, e), nodes[1].descriptor(t, e), nodes[0].descriptor(t, e+1))
	}
	ctx := context.Background()
	for _, x := range auths {
		x.s.finalize(ctx, e)
	}
	a.s.collect(ctx, e)
	before, err := a.s.docs[e].Marshal()
	if err != nil || len(a.s.docs[e].Signatures) != 2 {
		t.Fatalf("%v, %d signatures", err, len(a.s.docs[e].Signatures))
	}

	again, err := New(a.s.cfg, Options{Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	after, err := again.docs[e].Marshal()
	if err != nil || !bytes.Equal(before, after) {
		t.Fatalf("the document read back differs (%v)", err)
	}
	for _, x := range []uint64{e, e + 1} {
		if len(again.descs[x]) != len(a.s.descs[x]) {
			t.Fatalf("epoch %d: %d descriptors read back, %d held", x, len(again.descs[x]), len(a.s.descs[x]))
		}
		for id, b := range a.s.descs[x] {
			if !bytes.Equal(again.descs[x][id], b) {
				t.Fatalf("epoch %d: a descriptor read back differs", x)
			}
		}
	}
}

// TestStoredFilesRefused: a stored file that does not hold what its name
// says (a document cut short by a crash or a torn write, one for another
// epoch, one whose signature is stripped or not this authority's, a
// descriptor file of another node, garbage) is refused at start with a
// warning, never served; the good files beside it are used, and the
// schedule builds the document again, the same bytes.
func TestStoredFilesRefused(t *testing.T) {
	nodes := testNodes()
	clock := newManualClock()
	cfg := baseConfig(t, nodes)
	s, err := New(cfg, Options{Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	e := s.epoch()
	for _, n := range nodes {
		if err := s.Submit(n.descriptor(t, e)); err != nil {
			t.Fatal(err)
		}
	}
	s.finalize(context.Background(), e)
	good, err := os.ReadFile(s.docPath(e))
	if err != nil {
		t.Fatal(err)
	}
	stripped := &directory.SignedDocument{Raw: s.docs[e].Raw, Doc: s.docs[e].Doc}
	other := stripped
	otherSig := directory.SignDocument(stripped.Raw, ed25519.NewKeyFromSeed(derived("another authority")))
	mixFile := filepath.Join(s.descDir(e), descFile(mustParse(t, nodes[0].descriptor(t, e)).ID()))
	provFile := filepath.Join(s.descDir(e), descFile(mustParse(t, nodes[1].descriptor(t, e)).ID()))

	marshal := func(sd *directory.SignedDocument, sigs ...directory.Signature) []byte {
		c := *sd
		c.Signatures = sigs
		b, err := c.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, c := range []struct {
		name  string
		write func()
		// wantDoc: the stored document is used; wantDescs: descriptors read.
		wantDoc   bool
		wantDescs int
	}{
		{"intact", func() {}, true, 2},
		{"document cut short", func() { os.WriteFile(s.docPath(e), good[:len(good)/2], 0o600) }, false, 2},
		{"document of zeros (torn write)", func() { os.WriteFile(s.docPath(e), make([]byte, len(good)), 0o600) }, false, 2},
		{"document for another epoch", func() {
			os.Remove(s.docPath(e))
			os.WriteFile(s.docPath(e+1), good, 0o600)
		}, false, 2},
		{"document without a signature", func() { os.WriteFile(s.docPath(e), marshal(stripped), 0o600) }, false, 2},
		{"document signed by another key", func() { os.WriteFile(s.docPath(e), marshal(other, otherSig), 0o600) }, false, 2},
		{"document with a flipped signature bit", func() {
			sig := s.docs[e].Signatures[0]
			sig.Sig = append([]byte(nil), sig.Sig...)
			sig.Sig[0] ^= 1
			os.WriteFile(s.docPath(e), marshal(stripped, sig), 0o600)
		}, false, 2},
		{"descriptor cut short", func() {
			b, _ := os.ReadFile(mixFile)
			os.WriteFile(mixFile, b[:len(b)-1], 0o600)
		}, true, 1},
		{"descriptor under another node's name", func() {
			b, _ := os.ReadFile(mixFile)
			os.WriteFile(provFile, b, 0o600)
		}, true, 1},
		{"a crash's temporary file", func() { os.WriteFile(filepath.Join(s.descDir(e), ".tmp-x.bin-1"), []byte("half"), 0o600) }, true, 2},
		{"an older version's temporary file", func() {
			b, _ := os.ReadFile(mixFile)
			os.WriteFile(mixFile+".tmp", b[:10], 0o600)
		}, true, 2},
	} {
		// Restore the good state, then damage it.
		os.Remove(s.docPath(e + 1))
		if err := os.WriteFile(s.docPath(e), good, 0o600); err != nil {
			t.Fatal(err)
		}
		for _, n := range nodes {
			b := n.descriptor(t, e)
			os.WriteFile(filepath.Join(s.descDir(e), descFile(mustParse(t, b).ID())), b, 0o600)
		}
		c.write()
		log := &records{}
		r, err := New(cfg, Options{Logger: slog.New(log), Clock: clock})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		_, refusedDoc := log.find(slog.LevelWarn, "refusing a stored document")
		_, refusedDesc := log.find(slog.LevelWarn, "refusing a stored descriptor")
		if (r.docs[e] != nil) != c.wantDoc || r.docs[e+1] != nil || refusedDoc == c.wantDoc {
			t.Errorf("%s: document used %v (next epoch's %v), refusal logged %v; want used %v", c.name, r.docs[e] != nil, r.docs[e+1] != nil, refusedDoc, c.wantDoc)
		}
		if len(r.descs[e]) != c.wantDescs || refusedDesc != (c.wantDescs < 2) {
			t.Errorf("%s: %d descriptors read, refusal logged %v; want %d", c.name, len(r.descs[e]), refusedDesc, c.wantDescs)
		}
		left, _ := filepath.Glob(filepath.Join(s.descDir(e), ".tmp-*"))
		older, _ := filepath.Glob(filepath.Join(s.descDir(e), "*.tmp"))
		if left = append(left, older...); len(left) != 0 {
			t.Errorf("%s: temporary files remain: %v", c.name, left)
		}
		if !c.wantDoc && c.wantDescs == 2 {
			var last time.Time
			r.tick(context.Background(), &last)
			if r.docs[e] == nil || !bytes.Equal(r.docs[e].Raw, s.docs[e].Raw) {
				t.Errorf("%s: the document was not built again the same", c.name)
			}
			if b, err := os.ReadFile(r.docPath(e)); err != nil || !bytes.Equal(b, good) {
				t.Errorf("%s: the document built again was not stored (%v)", c.name, err)
			}
		}
	}
}

func mustParse(t *testing.T, b []byte) *directory.Descriptor {
	t.Helper()
	d, err := directory.ParseDescriptor(b)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestSubmitNotAcknowledgedUnlessStored: a descriptor that cannot be
// written to disk is not accepted (ErrStorage; 500 over HTTP, so the node
// sends it again) and not held, so a crash cannot lose a descriptor the
// node was told is in.
func TestSubmitNotAcknowledgedUnlessStored(t *testing.T) {
	nodes := testNodes()
	clock := newManualClock()
	auths := startNet(t, clock, []Config{baseConfig(t, nodes)})
	a := auths[0]
	e := a.s.epoch()
	// A file where the epoch's folder should be: no write can succeed,
	// even as root.
	if err := os.MkdirAll(filepath.Dir(a.s.descDir(e)), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(a.s.descDir(e), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	b := nodes[0].descriptor(t, e)
	if err := a.s.Submit(b); !errors.Is(err, ErrStorage) {
		t.Fatalf("Submit with a broken data directory: %v, want ErrStorage", err)
	}
	resp, err := http.Post(a.url+"/v1/descriptor", "application/octet-stream", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError {
		t.Fatalf("POST with a broken data directory: %d, want 500", resp.StatusCode)
	}
	if len(a.s.descs[e]) != 0 {
		t.Fatal("a descriptor that is not on disk is held")
	}
	if _, ok := a.log.find(slog.LevelError, "cannot store a descriptor"); !ok {
		t.Fatal("the failure is not logged at error level")
	}
	// Repaired, the same descriptor goes in.
	os.Remove(a.s.descDir(e))
	if err := a.s.Submit(b); err != nil {
		t.Fatal(err)
	}
}

// runOnLoopback runs s on a real listener on 127.0.0.1 until the test
// ends, and returns its address and Run's outcome.
func runOnLoopback(t *testing.T, s *Server) (string, <-chan error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("Run did not return after its context ended")
		}
	})
	return ln.Addr().String(), done
}

// exchange writes req on a new connection, then the body from a
// goroutine (errors ignored: the server may close early), and reads the
// response; a connection the server closes without one is status 0, a
// connection that cannot be made -1.
func exchange(t *testing.T, addr, req string, body func(net.Conn)) (status int, text string, took time.Duration) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return -1, err.Error(), 0 // not t.Fatal: some callers are goroutines
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	if _, err := io.WriteString(c, req); err != nil {
		return -1, err.Error(), 0
	}
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		if body != nil {
			body(c)
		}
	}()
	defer func() { c.Close(); <-wrote }()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, err.Error(), time.Since(start)
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	return resp.StatusCode, string(b), time.Since(start)
}

// TestHTTPMalformedInput: a real listener on loopback, sent what a broken
// or hostile client sends, answers each with a clean 4xx, holds at most
// about one descriptor's worth of any request body, drops a client that
// trickles its request, and keeps serving: a valid descriptor goes in
// afterwards and Run is still running.
func TestHTTPMalformedInput(t *testing.T) {
	nodes := testNodes()
	stranger := makeNode(Node{Name: "mix-1x", Role: "mix", Layer: 1})
	clock := newManualClock()
	const readTimeout = 500 * time.Millisecond
	s, err := New(baseConfig(t, nodes), Options{Clock: clock, ReadTimeout: readTimeout})
	if err != nil {
		t.Fatal(err)
	}
	addr, done := runOnLoopback(t, s)
	e := s.epoch()
	valid := nodes[0].descriptor(t, e)
	badSig := append([]byte(nil), valid...)
	badSig[len(badSig)-1] ^= 1
	post := func(body []byte) string {
		return fmt.Sprintf("POST /v1/descriptor HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	}
	garbage := bytes.Repeat([]byte{0xa5}, directory.MaxDescriptorSize)

	for _, c := range []struct {
		name, req string
		status    int
		want      string
	}{
		{"GET of the POST endpoint", "GET /v1/descriptor HTTP/1.1\r\nHost: a\r\n\r\n", 405, ""},
		{"PUT of a document", "PUT /v1/document/1 HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", 405, ""},
		{"DELETE of a document", "DELETE /v1/document/1 HTTP/1.1\r\nHost: a\r\n\r\n", 405, ""},
		{"POST of the status", "POST /v1/status HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", 405, ""},
		{"unknown path", "GET /v1/nothing HTTP/1.1\r\nHost: a\r\n\r\n", 404, ""},
		{"request line of garbage", "\x16\x03\x01\x00 hello\r\n\r\n", 400, ""},
		{"epoch not a number", "GET /v1/document/abc HTTP/1.1\r\nHost: a\r\n\r\n", 400, "bad epoch"},
		{"epoch negative", "GET /v1/signature/-1 HTTP/1.1\r\nHost: a\r\n\r\n", 400, "bad epoch"},
		{"epoch past 2^64", "GET /v1/descriptors/18446744073709551616 HTTP/1.1\r\nHost: a\r\n\r\n", 400, "bad epoch"},
		{"headers over 8 KiB", "GET /v1/status HTTP/1.1\r\nHost: a\r\nX: " + strings.Repeat("x", 16<<10) + "\r\n\r\n", 431, ""},
		{"empty descriptor", post(nil), 400, ""},
		{"garbage descriptor", post(garbage), 400, ""},
		{"descriptor with a bad signature", post(badSig), 400, "signature"},
		{"descriptor of a node not listed", post(stranger.descriptor(t, e)), 400, "allowlist"},
		{"descriptor for a far epoch", post(nodes[0].descriptor(t, e+7)), 400, "epoch"},
		{"descriptor one byte over the limit", post(append(garbage, 0)), 413, "at most 8192 bytes"},
	} {
		status, text, _ := exchange(t, addr, c.req, nil)
		if status != c.status || !strings.Contains(text, c.want) {
			t.Errorf("%s: %d %q, want %d with %q", c.name, status, text, c.status, c.want)
		}
	}

	// A body of 1 GiB announced, 8 MiB sent, and the same unannounced
	// (chunked): refused after the limit, without holding the body.
	chunk := bytes.Repeat([]byte{'x'}, 64<<10)
	const sent = 8 << 20
	frame := append(append(fmt.Appendf(nil, "%x\r\n", len(chunk)), chunk...), "\r\n"...)
	stream := func(chunked bool) func(net.Conn) {
		return func(c net.Conn) {
			b := chunk
			if chunked {
				b = frame
			}
			for n := 0; n < sent; n += len(chunk) {
				if _, err := c.Write(b); err != nil { // allocates nothing
					return
				}
			}
		}
	}
	for _, c := range []struct{ name, req string }{
		{"announced", "POST /v1/descriptor HTTP/1.1\r\nHost: a\r\nContent-Length: 1073741824\r\n\r\n"},
		{"chunked", "POST /v1/descriptor HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"},
	} {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		status, text, _ := exchange(t, addr, c.req, stream(c.name == "chunked"))
		runtime.ReadMemStats(&after)
		if status != http.StatusRequestEntityTooLarge {
			t.Errorf("oversized body, %s: %d %q, want 413", c.name, status, text)
		}
		grew := after.TotalAlloc - before.TotalAlloc
		t.Logf("oversized body, %s: %d bytes sent, %d allocated in the process meanwhile", c.name, sent, grew)
		if grew > 1<<20 {
			t.Errorf("oversized body, %s: %d bytes allocated while %d were sent; the body is being held", c.name, grew, sent)
		}
	}

	// A client trickling its body, and one trickling its headers, are cut
	// off at the read timeout, while others are served.
	trickle := func(c net.Conn) {
		for range 200 {
			if _, err := c.Write([]byte{'x'}); err != nil {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	type result struct {
		status int
		took   time.Duration
	}
	slow := make(chan result, 2)
	go func() {
		st, _, took := exchange(t, addr, "POST /v1/descriptor HTTP/1.1\r\nHost: a\r\nContent-Length: 200\r\n\r\n", trickle)
		slow <- result{st, took}
	}()
	go func() {
		st, _, took := exchange(t, addr, "GET /v1/status HTTP/1.1\r\n", trickle)
		slow <- result{st, took}
	}()
	start := time.Now()
	if st, text, _ := exchange(t, addr, "GET /v1/status HTTP/1.1\r\nHost: a\r\n\r\n", nil); st != 200 {
		t.Errorf("status while slow clients hang on: %d %q", st, text)
	}
	if took := time.Since(start); took > readTimeout {
		t.Errorf("status took %v while slow clients hang on", took)
	}
	for range 2 {
		r := <-slow
		if r.status != 0 && (r.status < 400 || r.status > 499) {
			t.Errorf("slow client: status %d, want a 4xx or a closed connection", r.status)
		}
		if r.took > 3*readTimeout {
			t.Errorf("slow client held on for %v; the read timeout is %v", r.took, readTimeout)
		}
	}

	// Still up, and still taking descriptors.
	if st, text, _ := exchange(t, addr, post(valid), nil); st != http.StatusNoContent {
		t.Fatalf("valid descriptor after the abuse: %d %q", st, text)
	}
	select {
	case err := <-done:
		t.Fatalf("Run returned: %v", err)
	default:
	}
}

// TestScheduleLoopUsesInjectedClock: the running schedule (in a synctest
// bubble, so no real time passes) builds each document when the injected
// clock, not the bubble's, reaches its time, and stops when its context
// ends. Its pacing timer is the injected clock's too: moving that clock
// is what makes it look again.
func TestScheduleLoopUsesInjectedClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nodes := testNodes()
		clock := newManualClock()
		s, err := New(baseConfig(t, nodes), Options{Clock: clock})
		if err != nil {
			t.Fatal(err)
		}
		e := s.epoch()
		for _, n := range nodes {
			submit(t, &authority{s: s}, n.descriptor(t, e), n.descriptor(t, e+1))
		}
		have := func(x uint64) bool {
			s.mu.Lock()
			defer s.mu.Unlock()
			return s.docs[x] != nil
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			s.schedule(ctx)
		}()
		synctest.Wait()
		if !have(e) || have(e+1) {
			t.Fatalf("at start: documents %v %v, want the current one only", have(e), have(e+1))
		}
		// An hour of the bubble's time: the injected clock has not moved.
		time.Sleep(time.Hour)
		synctest.Wait()
		if have(e + 1) {
			t.Fatal("the next document was built by the bubble's time")
		}
		clock.Set(directory.EpochStart(e+1, testPeriod).Add(-s.cfg.Lead.D()))
		synctest.Wait()
		if !have(e + 1) {
			t.Fatal("the next document was not built when the injected clock reached its lead time")
		}
		cancel()
		<-done
	})
}

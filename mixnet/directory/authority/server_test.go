package authority

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sealnet/sealnet/internal/clock"
	"github.com/sealnet/sealnet/internal/config"
	"github.com/sealnet/sealnet/mixnet"
	"github.com/sealnet/sealnet/mixnet/directory"
)

const testPeriod = time.Hour

// testNode is an allowlisted node whose descriptors a test signs.
type testNode struct {
	entry Node
	priv  ed25519.PrivateKey
}

func derived(what string) []byte {
	s := sha256.Sum256([]byte("dirauth test " + what))
	return s[:]
}

// testNodes are one mix (layer 1) and one provider.
func testNodes() []testNode {
	var out []testNode
	for _, n := range []Node{{Name: "mix-1a", Role: "mix", Layer: 1}, {Name: "provider-a", Role: "provider", Domain: "a"}} {
		priv := ed25519.NewKeyFromSeed(derived("identity " + n.Name))
		n.IdentityKey = hex.EncodeToString(priv.Public().(ed25519.PublicKey))
		out = append(out, testNode{entry: n, priv: priv})
	}
	return out
}

// descriptor signs n's descriptor for epoch e.
func (n testNode) descriptor(t *testing.T, e uint64) []byte {
	t.Helper()
	b, err := n.signedDescriptor(e)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// signedDescriptor is descriptor without a test, for the seed generator.
func (n testNode) signedDescriptor(e uint64) ([]byte, error) {
	x := func(what string) ([32]byte, error) {
		k, err := ecdh.X25519().NewPrivateKey(derived(what))
		if err != nil {
			return [32]byte{}, err
		}
		return [32]byte(k.PublicKey().Bytes()), nil
	}
	link, err1 := x("link " + n.entry.Name)
	mix0, err2 := x(fmt.Sprint("mix ", n.entry.Name, e))
	mix1, err3 := x(fmt.Sprint("mix ", n.entry.Name, e+1))
	if err := errors.Join(err1, err2, err3); err != nil {
		return nil, err
	}
	d := &directory.Descriptor{
		Name: n.entry.Name, Role: directory.Role(n.entry.Role), Layer: n.entry.Layer, Domain: n.entry.Domain,
		Address:      n.entry.Name + ".example:4433",
		IdentityKey:  n.priv.Public().(ed25519.PublicKey),
		LinkKey:      link,
		Epoch:        e,
		MixKeys:      map[uint64][32]byte{e: mix0, e + 1: mix1},
		GeometryHash: mixnet.DefaultGeometry().Hash(),
	}
	return directory.SignDescriptor(d, n.priv)
}

func baseConfig(t *testing.T, nodes []testNode) Config {
	t.Helper()
	c := Config{Listen: "127.0.0.1:0", DataDir: t.TempDir(), EpochPeriod: config.Duration(testPeriod), Layers: 1}
	for _, n := range nodes {
		c.Nodes = append(c.Nodes, n.entry)
	}
	return c
}

// records is a slog handler that keeps what is logged.
type records struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (r *records) Enabled(context.Context, slog.Level) bool { return true }
func (r *records) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	r.recs = append(r.recs, rec.Clone())
	r.mu.Unlock()
	return nil
}
func (r *records) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *records) WithGroup(string) slog.Handler      { return r }

// find returns the first record at level whose message contains msg, with
// its attributes as text.
func (r *records) find(level slog.Level, msg string) (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rec := range r.recs {
		if rec.Level == level && strings.Contains(rec.Message, msg) {
			var b strings.Builder
			rec.Attrs(func(a slog.Attr) bool {
				fmt.Fprintf(&b, "%s=%v ", a.Key, a.Value)
				return true
			})
			return b.String(), true
		}
	}
	return "", false
}

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "dirauth.toml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func configText(t *testing.T, parameters string) string {
	t.Helper()
	n := testNodes()
	return fmt.Sprintf(`listen = "127.0.0.1:7000"
data_dir = %q
epoch_period = "1h"
layers = 3
%s
[[nodes]]
name = "mix-1a"
identity_key = %q
role = "mix"
layer = 1
`, filepath.ToSlash(t.TempDir()), parameters, n[0].entry.IdentityKey)
}

// TestConfigParameters: [parameters] defaults to DefaultParameters, keys
// left out take their defaults, an explicit 0 stays 0, and what Validate
// fills in is written out and read back the same.
func TestConfigParameters(t *testing.T) {
	c, err := LoadConfig(writeConfig(t, configText(t, "")))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Parameters.Parameters(); got != directory.DefaultParameters() {
		t.Fatalf("no [parameters]: %+v, want the defaults", got)
	}

	c, err = LoadConfig(writeConfig(t, configText(t, "[parameters]\nmean_delay = \"50ms\"\nclient_rate = 0.0\nrelay_loop_rate = 0.0\n")))
	if err != nil {
		t.Fatal(err)
	}
	want := directory.DefaultParameters()
	want.MeanDelay, want.ClientRate, want.RelayLoopRate = 50*time.Millisecond, 0, 0
	if got := c.Parameters.Parameters(); got != want {
		t.Fatalf("partial [parameters]: %+v, want %+v", got, want)
	}

	// Written after Validate, every value is explicit and reads back.
	var buf bytes.Buffer
	if err := config.Encode(&buf, c); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"mean_delay = \"50ms\"", "client_rate = 0.0", "max_attempts = 5", "ack_timeout = \"30s\""} {
		if !strings.Contains(buf.String(), key) {
			t.Errorf("written configuration lacks %s:\n%s", key, buf.String())
		}
	}
	back, err := LoadConfig(writeConfig(t, buf.String()))
	if err != nil {
		t.Fatal(err)
	}
	if back.Parameters.Parameters() != want {
		t.Fatalf("read back %+v, want %+v", back.Parameters.Parameters(), want)
	}
}

// TestConfigParametersRejects: invalid parameters are refused at load,
// naming the key.
func TestConfigParametersRejects(t *testing.T) {
	for _, c := range []struct{ section, key string }{
		{"client_rate = -1.0", "client_rate"},
		{"client_rate = 5000.0", "client_rate"},
		{"relay_loop_rate = -0.5", "relay_loop_rate"},
		{"max_delay = \"2h\"", "max_delay"},
		{"mean_delay = \"40s\"", "mean_delay"},
		{"fetch_interval = \"500us\"", "fetch_interval"},
		{"ack_timeout = \"10s\"", "ack_timeout"}, // 2s + 5·1s + 6·4·200ms = 11.8s needed with 3 layers
		{"max_attempts = 0", "max_attempts"},
		{"provider_hold = \"-1s\"", "provider_hold"},
	} {
		_, err := LoadConfig(writeConfig(t, configText(t, "[parameters]\n"+c.section+"\n")))
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), c.key) {
			t.Errorf("%s: got %v, want ErrConfig naming %s", c.section, err, c.key)
		}
	}
	_, err := LoadConfig(writeConfig(t, configText(t, "[parameters]\nmu = \"50ms\"\n")))
	if !errors.Is(err, config.ErrUnknownKey) || !strings.Contains(err.Error(), "parameters.mu") {
		t.Errorf("unknown key: got %v, want ErrUnknownKey naming parameters.mu", err)
	}
}

// authority is a Server serving its API on loopback.
type authority struct {
	s   *Server
	url string
	log *records
}

// startAuthorities starts one authority per parameter set, each the
// others' peer, all with the same allowlist, and gives each every node's
// descriptor for the current epoch.
func startAuthorities(t *testing.T, params ...directory.Parameters) ([]*authority, uint64) {
	t.Helper()
	nodes := testNodes()
	cfgs := make([]Config, len(params))
	for i, p := range params {
		cfgs[i] = baseConfig(t, nodes)
		cfgs[i].Parameters = ParametersConfigOf(p)
	}
	now := time.Now()
	auths := startNet(t, clock.NewManual(now), cfgs) // one epoch for all, whatever the wall clock does
	e := auths[0].s.epoch()
	for _, a := range auths {
		for _, n := range nodes {
			if err := a.s.Submit(n.descriptor(t, e)); err != nil {
				t.Fatal(err)
			}
		}
	}
	return auths, e
}

func fetchDocument(t *testing.T, a *authority, e uint64) *directory.SignedDocument {
	t.Helper()
	sd, err := directory.Verify(served(t, a, e), []ed25519.PublicKey{a.s.PublicKey()}, 1)
	if err != nil {
		t.Fatal(err)
	}
	return sd
}

// TestDocumentPublishesParameters: the document an authority builds and
// serves carries its configured parameters, under its signature.
func TestDocumentPublishesParameters(t *testing.T) {
	p := directory.DefaultParameters()
	p.MeanDelay, p.ClientRate, p.RelayLoopRate = 50*time.Millisecond, 0, 0
	auths, e := startAuthorities(t, p)
	auths[0].s.finalize(context.Background(), e)
	sd := fetchDocument(t, auths[0], e)
	if sd.Doc.Parameters != p || sd.Doc.Params() != p {
		t.Fatalf("the document publishes %+v, want %+v", sd.Doc.Parameters, p)
	}
}

// TestPeerParametersMismatchLogged: two authorities configured with other
// parameters build different bytes from the same descriptors; neither
// adds the other's signature, and each says, at error level, which
// parameters differ. The control, two authorities with the same
// parameters, combine their signatures and log no such error.
func TestPeerParametersMismatchLogged(t *testing.T) {
	const msg = "other network parameters"
	ctx := context.Background()

	same := directory.DefaultParameters()
	auths, e := startAuthorities(t, same, same)
	for _, a := range auths {
		a.s.finalize(ctx, e)
	}
	auths[0].s.collect(ctx, e)
	if sigs := len(auths[0].s.docs[e].Signatures); sigs != 2 {
		t.Fatalf("control: %d signatures, want 2", sigs)
	}
	if _, ok := auths[0].log.find(slog.LevelError, msg); ok {
		t.Fatal("control: a mismatch was logged")
	}

	other := same
	other.MeanDelay, other.AckTimeout = 500*time.Millisecond, time.Minute
	auths, e = startAuthorities(t, same, other)
	for _, a := range auths {
		a.s.finalize(ctx, e)
	}
	for _, a := range auths {
		a.s.collect(ctx, e)
		if sigs := len(a.s.docs[e].Signatures); sigs != 1 {
			t.Fatalf("%d signatures over documents with different parameters", sigs)
		}
	}
	attrs, ok := auths[0].log.find(slog.LevelError, msg)
	if !ok {
		t.Fatal("no error names the parameter mismatch")
	}
	for _, want := range []string{"mean_delay: 400ms here, 500ms there", "ack_timeout: 30s here, 1m0s there", "epoch=" + fmt.Sprint(e)} {
		if !strings.Contains(attrs, want) {
			t.Errorf("the error says %q, not %q", attrs, want)
		}
	}
	if strings.Contains(attrs, "client_rate") {
		t.Errorf("the error names a parameter that does not differ: %q", attrs)
	}
	if _, ok := auths[1].log.find(slog.LevelError, msg); !ok {
		t.Error("the other authority did not log the mismatch")
	}
}

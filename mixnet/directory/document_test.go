package directory

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sealnet/sealnet/mixnet"
)

func TestDocumentRoundTrip(t *testing.T) {
	net := newTestNet(t, 3, 4, 2)
	s, b := signedBy(t, net.doc, 0, 1)
	got, err := ParseSignedDocument(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Doc, net.doc) {
		t.Fatal("document changed in a round trip")
	}
	if !bytes.Equal(got.Raw, s.Raw) || !reflect.DeepEqual(got.Signatures, s.Signatures) {
		t.Fatal("raw bytes or signatures changed in a round trip")
	}
	again, err := got.Marshal()
	if err != nil || !bytes.Equal(again, b) {
		t.Fatalf("re-marshal differs (%v)", err)
	}
	raw, err := got.Doc.Marshal()
	if err != nil || !bytes.Equal(raw, got.Raw) {
		t.Fatalf("document re-marshal differs (%v)", err)
	}
	if len(b) != documentHeaderSize+len(s.Raw)+1+2*signatureEntrySize {
		t.Fatalf("envelope is %d bytes", len(b))
	}
}

// TestMarshalDeterministic: the same document built in another order (of
// nodes within layers and providers, and of map insertion) encodes to the
// same bytes, and Marshal leaves the caller's slices alone.
func TestMarshalDeterministic(t *testing.T) {
	net := newTestNet(t, 3, 6, 4)
	want, err := net.doc.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 20 {
		d := cloneDocument(net.doc)
		for _, l := range d.Layers {
			rng.Shuffle(len(l), func(i, j int) { l[i], l[j] = l[j], l[i] })
		}
		rng.Shuffle(len(d.Providers), func(i, j int) { d.Providers[i], d.Providers[j] = d.Providers[j], d.Providers[i] })
		for _, n := range append(slices.Concat(d.Layers...), d.Providers...) {
			// Rebuild the map in the other insertion order.
			keys := slices.Sorted(maps.Keys(n.MixKeys))
			m := map[uint64][32]byte{}
			for i := len(keys) - 1; i >= 0; i-- {
				m[keys[i]] = n.MixKeys[keys[i]]
			}
			n.MixKeys = m
		}
		before := slices.Clone(d.Providers)
		got, err := d.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("trial %d: another order gives other bytes", trial)
		}
		if !slices.Equal(before, d.Providers) {
			t.Fatal("Marshal reordered the caller's slice")
		}
	}
}

// TestDocumentEncodingFixed pins the encoding: the first bytes of a known
// document and the digest of the whole. A change here is a format change
// and needs a new version.
func TestDocumentEncodingFixed(t *testing.T) {
	net := newTestNet(t, 1, 1, 1)
	raw, err := net.doc.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	const prefix = `{"epoch":1000,"period_seconds":1200,"geometry":{"version":1,"max_hops":5,"routing_info_size":96,"payload_size":2048},"layers":[[{"name":"mix-1-0","role":"mix","layer":1,"domain":"","address":"mix-1-0.nodes.example:4433","identity_key":"`
	if !strings.HasPrefix(string(raw), prefix) {
		t.Fatalf("encoding changed:\n%s", raw)
	}
	if !json.Valid(raw) || bytes.ContainsAny(raw, " \n\t") {
		t.Fatalf("not compact JSON:\n%s", raw)
	}
}

func TestDocumentValidate(t *testing.T) {
	net := newTestNet(t, 3, 3, 3)
	if err := net.doc.Validate(); err != nil {
		t.Fatal(err)
	}
	g := mixnet.DefaultGeometry()
	extraMix := func(name string, layer int) *Descriptor {
		return newTestNode(t, g, name, RoleMix, layer, testEpoch).desc
	}
	cases := []struct {
		name string
		edit func(d *Document)
	}{
		{"descriptor for another epoch", func(d *Document) {
			d.Layers[0][0] = newTestNode(t, g, "mix-late", RoleMix, 1, testEpoch+1).desc
		}},
		{"mix keys for wrong epochs", func(d *Document) {
			n := d.Layers[1][0]
			n.MixKeys = map[uint64][32]byte{testEpoch - 1: n.MixKeys[testEpoch], testEpoch: n.MixKeys[testEpoch+1]}
		}},
		{"duplicate ID across layers", func(d *Document) {
			c := cloneDescriptor(d.Layers[0][0])
			c.Layer, c.Name, c.Address = 2, "copy", "copy.example:1"
			c.LinkKey, c.MixKeys = [32]byte{9}, map[uint64][32]byte{testEpoch: {7}, testEpoch + 1: {8}}
			d.Layers[1] = append(d.Layers[1], c)
		}},
		{"same node twice in a layer", func(d *Document) { d.Layers[0] = append(d.Layers[0], d.Layers[0][0]) }},
		{"duplicate name", func(d *Document) { d.Layers[2][0].Name = d.Providers[0].Name }},
		{"duplicate address", func(d *Document) { d.Providers[1].Address = d.Layers[0][1].Address }},
		{"duplicate link key", func(d *Document) { d.Layers[1][1].LinkKey = d.Layers[0][1].LinkKey }},
		{"duplicate mix key", func(d *Document) {
			n, o := d.Layers[1][1], d.Layers[2][2]
			n.MixKeys[testEpoch+1] = o.MixKeys[testEpoch]
		}},
		{"link key is another's mix key", func(d *Document) { d.Providers[0].LinkKey = d.Layers[0][0].MixKeys[testEpoch] }},
		{"duplicate domain", func(d *Document) { d.Providers[2].Domain = d.Providers[0].Domain }},
		{"empty layer", func(d *Document) { d.Layers[1] = nil }},
		{"no layers", func(d *Document) { d.Layers = nil }},
		{"no providers", func(d *Document) { d.Providers = nil }},
		{"nil descriptor", func(d *Document) { d.Layers[0][1] = nil }},
		{"nil provider", func(d *Document) { d.Providers[0] = nil }},
		{"invalid descriptor", func(d *Document) { d.Layers[0][0].Address = "nowhere" }},
		{"geometry hash mismatch", func(d *Document) { d.Layers[2][1].GeometryHash[0] ^= 1 }},
		{"document geometry differs from nodes'", func(d *Document) { d.Geometry.PayloadSize = 4096 }},
		{"invalid geometry", func(d *Document) { d.Geometry.Version = 2 }},
		{"too many layers for the geometry", func(d *Document) { d.Geometry.MaxHops = 3 }},
		{"mix in the wrong layer", func(d *Document) { d.Layers[0] = append(d.Layers[0], extraMix("stray", 2)) }},
		{"provider in a layer", func(d *Document) { d.Layers[0] = append(d.Layers[0], d.Providers[0]); d.Providers = d.Providers[1:] }},
		{"mix among providers", func(d *Document) { d.Providers = append(d.Providers, extraMix("stray", 1)) }},
		{"zero period", func(d *Document) { d.Period = 0 }},
		{"negative period", func(d *Document) { d.Period = -time.Second }},
		{"sub-second period", func(d *Document) { d.Period = 1500 * time.Millisecond }},
		{"period too long", func(d *Document) { d.Period = MaxPeriod + time.Second }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := cloneDocument(net.doc)
			c.edit(d)
			err := d.Validate()
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("got %v, want ErrInvalid", err)
			}
			if _, err := d.Marshal(); !errors.Is(err, ErrInvalid) {
				t.Fatalf("Marshal: got %v, want ErrInvalid", err)
			}
		})
	}
	var nilDoc *Document
	if err := nilDoc.Validate(); !errors.Is(err, ErrInvalid) {
		t.Fatalf("nil document: %v", err)
	}
}

// TestDocumentLimits: the layer and node limits hold at the limit and
// fail one past it.
func TestDocumentLimits(t *testing.T) {
	g := mixnet.DefaultGeometry()
	g.MaxHops = 16
	gh := g.Hash()
	// Cheap nodes: Validate does not check signatures, so keys need only be
	// distinct.
	var i int
	node := func(role Role, layer int) *Descriptor {
		i++
		d := &Descriptor{
			Name: fmt.Sprintf("n%d", i), Role: role, Layer: layer,
			Address:      fmt.Sprintf("n%d.example:1", i),
			IdentityKey:  ed25519.PublicKey(seed("id %d", i)),
			LinkKey:      [32]byte(seed("link %d", i)),
			Epoch:        1,
			MixKeys:      map[uint64][32]byte{1: [32]byte(seed("m1 %d", i)), 2: [32]byte(seed("m2 %d", i))},
			GeometryHash: gh,
		}
		if role == RoleProvider {
			d.Domain = d.Name + ".example"
		}
		return d
	}
	build := func(layers, perLayer, providers int) *Document {
		d := &Document{Epoch: 1, Period: time.Hour, Geometry: g}
		for l := 1; l <= layers; l++ {
			var layer []*Descriptor
			for range perLayer {
				layer = append(layer, node(RoleMix, l))
			}
			d.Layers = append(d.Layers, layer)
		}
		for range providers {
			d.Providers = append(d.Providers, node(RoleProvider, 0))
		}
		return d
	}
	// 15 layers + provider = 16 hops, the most a geometry allows.
	if err := build(15, 1, 1).Validate(); err != nil {
		t.Fatalf("15 layers: %v", err)
	}
	if err := build(16, 1, 1).Validate(); !errors.Is(err, ErrInvalid) {
		t.Fatalf("16 layers with 16-hop geometry: %v", err)
	}
	full := build(3, 300, MaxNodes-900)
	raw, err := full.Marshal()
	if err != nil {
		t.Fatalf("%d nodes: %v", MaxNodes, err)
	}
	t.Logf("a document of %d nodes is %d bytes (limit %d)", MaxNodes, len(raw), MaxDocumentSize)
	if _, err := ParseSignedDocument(envelope(raw)); err != nil {
		t.Fatalf("%d nodes do not parse: %v", MaxNodes, err)
	}
	full.Providers = append(full.Providers, node(RoleProvider, 0))
	if err := full.Validate(); !errors.Is(err, ErrInvalid) {
		t.Fatalf("%d nodes: %v", MaxNodes+1, err)
	}
	// The decoder refuses too many nodes or layers before converting them.
	over, err := full.encode()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseSignedDocument(envelope(over)); !errors.Is(err, ErrInvalid) {
		t.Fatalf("decoding %d nodes: %v", MaxNodes+1, err)
	}
}

func TestNodeAndProvider(t *testing.T) {
	net := newTestNet(t, 2, 3, 2)
	for id, n := range net.nodes {
		got, ok := net.doc.Node(id)
		if !ok || got != n.desc {
			t.Fatalf("Node(%v) = %v, %v", id, got, ok)
		}
	}
	if _, ok := net.doc.Node(mixnet.NodeID{1}); ok {
		t.Fatal("found an unknown node")
	}
	for _, p := range net.doc.Providers {
		got, ok := net.doc.Provider(p.Domain)
		if !ok || got != p {
			t.Fatalf("Provider(%q) = %v, %v", p.Domain, got, ok)
		}
	}
	for _, dom := range []string{"", "nowhere.example", strings.ToUpper(net.doc.Providers[0].Domain)} {
		if _, ok := net.doc.Provider(dom); ok {
			t.Fatalf("found provider for %q", dom)
		}
	}
}

func TestParseSignedDocumentRejects(t *testing.T) {
	net := newTestNet(t, 2, 2, 1)
	s, good := signedBy(t, net.doc, 0, 1)
	raw := s.Raw
	rawEnd := documentHeaderSize + len(raw)
	withLen := func(size uint32) []byte {
		c := bytes.Clone(good)
		binary.BigEndian.PutUint32(c[7:], size)
		return c
	}
	withCount := func(n byte) []byte {
		c := bytes.Clone(good)
		c[rawEnd] = n
		return c
	}
	rawReplaced := func(old, new string) []byte {
		if !strings.Contains(string(raw), old) {
			t.Fatalf("raw has no %q", old)
		}
		return envelope([]byte(strings.Replace(string(raw), old, new, 1)))
	}
	// Layer 1 with its two mixes in the wrong order.
	unsorted := func() []byte {
		d := cloneDocument(net.doc)
		w := wireOfDocument(d, [][]*Descriptor{{d.Layers[0][1], d.Layers[0][0]}, d.Layers[1]}, d.Providers)
		b, err := json.Marshal(w)
		if err != nil {
			t.Fatal(err)
		}
		return envelope(b)
	}()
	invalid := func() []byte {
		d := cloneDocument(net.doc)
		d.Layers[0][0].GeometryHash = mixnet.GeometryHash{}
		b, err := d.encode()
		if err != nil {
			t.Fatal(err)
		}
		return envelope(b)
	}()
	cases := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ErrMalformed},
		{"bad magic", append([]byte("SNDOX"), good[5:]...), ErrMalformed},
		{"descriptor magic", append([]byte("SNDESC1\n"), good[7:]...), ErrMalformed},
		{"version 2", append([]byte("SNDOC2\n"), good[7:]...), ErrMalformed},
		{"version 0", append([]byte("SNDOC0\n"), good[7:]...), ErrMalformed},
		{"header truncated", good[:9], ErrMalformed},
		{"zero length", withLen(0), ErrMalformed},
		{"length over maximum", withLen(MaxDocumentSize + 1), ErrMalformed},
		{"length past the end", withLen(uint32(len(good))), ErrMalformed},
		{"raw truncated", good[:rawEnd-1], ErrMalformed},
		{"count missing", good[:rawEnd], ErrMalformed},
		{"33 signatures", withCount(MaxSignatures + 1), ErrMalformed},
		{"count too high", withCount(3), ErrMalformed},
		{"count too low", withCount(1), ErrMalformed},
		{"signature truncated", good[:len(good)-1], ErrMalformed},
		{"trailing byte", append(bytes.Clone(good), 0), ErrMalformed},
		{"oversized input", make([]byte, maxSignedDocumentSize+1), ErrMalformed},
		{"raw not JSON", envelope([]byte("[")), ErrMalformed},
		{"raw is a descriptor", envelope(mustEncodeDescriptor(t, net.doc.Providers[0])), ErrMalformed},
		{"raw with whitespace", rawReplaced(`"epoch":1000,`, `"epoch": 1000,`), ErrMalformed},
		{"raw with unknown field", rawReplaced(`{"epoch"`, `{"note":"x","epoch"`), ErrMalformed},
		{"raw with trailing newline", envelope(append(bytes.Clone(raw), '\n')), ErrMalformed},
		{"raw with leading zero", rawReplaced(`"epoch":1000,`, `"epoch":01000,`), ErrMalformed},
		{"raw with negative zero period", rawReplaced(`"period_seconds":1200`, `"period_seconds":-0`), ErrMalformed},
		{"raw with null providers", envelope([]byte(string(raw[:bytes.Index(raw, []byte(`"providers":`))]) + `"providers":null}`)), ErrInvalid},
		{"unsorted layer", unsorted, ErrMalformed},
		{"zero period", rawReplaced(`"period_seconds":1200`, `"period_seconds":0`), ErrInvalid},
		{"period of a year", rawReplaced(`"period_seconds":1200`, `"period_seconds":31536000`), ErrInvalid},
		{"geometry mismatch", invalid, ErrInvalid},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := ParseSignedDocument(c.in)
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v (%v), want %v", err, s, c.want)
			}
		})
	}
}

func mustEncodeDescriptor(t *testing.T, d *Descriptor) []byte {
	b, err := encodeDescriptor(d)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSignedDocumentTamper flips bytes of a signed document: in the
// envelope, every byte; in Raw, a sample. Verify must refuse each.
func TestSignedDocumentTamper(t *testing.T) {
	net := newTestNet(t, 2, 2, 1)
	auths := authorityKeys(3)
	s, b := signedBy(t, net.doc, 0, 1)
	if _, err := Verify(b, auths, 2); err != nil {
		t.Fatal(err)
	}
	rawStart, rawEnd := documentHeaderSize, documentHeaderSize+len(s.Raw)
	var positions []int
	for i := range b {
		// Every header and signature byte, every 7th byte of Raw and its
		// first and last 16.
		if i < rawStart+16 || i >= rawEnd-16 || i%7 == 0 {
			positions = append(positions, i)
		}
	}
	for _, i := range positions {
		for _, mask := range []byte{0x01, 0x80, 0xff} {
			c := bytes.Clone(b)
			c[i] ^= mask
			_, err := Verify(c, auths, 2)
			if err == nil {
				t.Fatalf("byte %d ^ %#x: accepted", i, mask)
			}
			requireSentinel(t, err)
			if i >= rawStart && i < rawEnd && !errors.Is(err, ErrThreshold) {
				t.Fatalf("Raw byte %d ^ %#x: got %v, want ErrThreshold", i, mask, err)
			}
		}
	}
	t.Logf("%d of %d bytes flipped", len(positions), len(b))
}

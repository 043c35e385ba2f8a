package directory

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/sealnet/sealnet/mixnet"
)

func TestDescriptorRoundTrip(t *testing.T) {
	g := mixnet.DefaultGeometry()
	mix := newTestNode(t, g, "mix-a", RoleMix, 3, 7)
	prov := newTestNode(t, g, "prov-b", RoleProvider, 0, 7)
	prov.desc.Address = "[2001:db8::1]:443"
	for _, n := range []*testNode{mix, prov} {
		b, err := SignDescriptor(n.desc, n.priv)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > MaxDescriptorSize {
			t.Fatalf("%s: %d bytes", n.desc.Name, len(b))
		}
		got, err := ParseDescriptor(b)
		if err != nil {
			t.Fatalf("%s: %v", n.desc.Name, err)
		}
		if !reflect.DeepEqual(got, n.desc) {
			t.Fatalf("%s: round trip changed the descriptor:\n got %+v\nwant %+v", n.desc.Name, got, n.desc)
		}
		if got.ID() != n.desc.ID() {
			t.Fatal("ID changed")
		}
		// Ed25519 is deterministic and the encoding canonical: signing the
		// parsed descriptor again gives the same bytes.
		again, err := SignDescriptor(got, n.priv)
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("%s: re-signing gives other bytes (%v)", n.desc.Name, err)
		}
	}
}

// TestDescriptorID: the ID is SHA-256 of the identity key, as mixnet
// routing commands name nodes.
func TestDescriptorID(t *testing.T) {
	n := newTestNode(t, mixnet.DefaultGeometry(), "mix-a", RoleMix, 1, 1)
	want := mixnet.NodeID{0}
	if n.desc.ID() == want {
		t.Fatal("zero ID")
	}
	other := newTestNode(t, mixnet.DefaultGeometry(), "mix-b", RoleMix, 1, 1)
	if n.desc.ID() == other.desc.ID() {
		t.Fatal("two identity keys, one ID")
	}
}

// TestDescriptorTamperEveryBit flips every bit of a signed descriptor in
// turn; each change must be refused with a sentinel error.
func TestDescriptorTamperEveryBit(t *testing.T) {
	n := newTestNode(t, mixnet.DefaultGeometry(), "m", RoleMix, 1, 1)
	b, err := SignDescriptor(n.desc, n.priv)
	if err != nil {
		t.Fatal(err)
	}
	for i := range b {
		for bit := range 8 {
			c := bytes.Clone(b)
			c[i] ^= 1 << bit
			d, err := ParseDescriptor(c)
			if err == nil {
				t.Fatalf("byte %d bit %d flipped: accepted %+v", i, bit, d)
			}
			requireSentinel(t, err)
		}
		c := bytes.Clone(b)
		c[i] ^= 0xff
		if _, err := ParseDescriptor(c); err == nil {
			t.Fatalf("byte %d inverted: accepted", i)
		}
	}
}

func TestParseDescriptorRejects(t *testing.T) {
	n := newTestNode(t, mixnet.DefaultGeometry(), "mix-a", RoleMix, 1, 5)
	good, err := SignDescriptor(n.desc, n.priv)
	if err != nil {
		t.Fatal(err)
	}
	body, err := encodeDescriptor(n.desc)
	if err != nil {
		t.Fatal(err)
	}
	sb := string(body)
	withLen := func(size uint32) []byte {
		c := bytes.Clone(good)
		binary.BigEndian.PutUint32(c[8:], size)
		return c
	}
	replaced := func(old, new string) []byte {
		if !strings.Contains(sb, old) {
			t.Fatalf("body has no %q", old)
		}
		return signBody([]byte(strings.Replace(sb, old, new, 1)), n.priv)
	}
	invalid := cloneDescriptor(n.desc)
	invalid.Layer = 0
	invalidBody, _ := encodeDescriptor(invalid)
	other := newTestNode(t, mixnet.DefaultGeometry(), "mix-b", RoleMix, 1, 5)

	cases := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ErrMalformed},
		{"magic only", []byte("SNDESC"), ErrMalformed},
		{"bad magic", append([]byte("SNDESX"), good[6:]...), ErrMalformed},
		{"document magic", append([]byte("SNDOC1\n"), good[7:]...), ErrMalformed},
		{"version 2", append([]byte("SNDESC2\n"), good[8:]...), ErrMalformed},
		{"version without newline", append([]byte("SNDESC1 "), good[8:]...), ErrMalformed},
		{"header truncated", good[:10], ErrMalformed},
		{"zero length", withLen(0), ErrMalformed},
		{"length over maximum", withLen(MaxDescriptorSize), ErrMalformed},
		{"length 4 GiB", withLen(math.MaxUint32), ErrMalformed},
		{"length past the end", withLen(uint32(len(body) + 65)), ErrMalformed},
		{"length one short", withLen(uint32(len(body) - 1)), ErrMalformed},
		{"body truncated", good[:20], ErrMalformed},
		{"signature missing", good[:len(good)-64], ErrMalformed},
		{"signature truncated", good[:len(good)-1], ErrMalformed},
		{"trailing byte", append(bytes.Clone(good), 0), ErrMalformed},
		{"oversized input", append(bytes.Clone(good), make([]byte, MaxDescriptorSize)...), ErrMalformed},
		{"body not JSON", signBody([]byte("not json"), n.priv), ErrMalformed},
		{"body is null", signBody([]byte("null"), n.priv), ErrMalformed},
		{"leading space", signBody(append([]byte(" "), body...), n.priv), ErrMalformed},
		{"trailing newline", signBody(append(bytes.Clone(body), '\n'), n.priv), ErrMalformed},
		{"trailing value", signBody(append(bytes.Clone(body), "{}"...), n.priv), ErrMalformed},
		{"space after colon", replaced(`"name":`, `"name": `), ErrMalformed},
		{"field name case", replaced(`"name":`, `"Name":`), ErrMalformed},
		{"unknown field", replaced(`{"name"`, `{"x":1,"name"`), ErrMalformed},
		{"duplicate field", replaced(`{"name":"mix-a"`, `{"name":"mix-b","name":"mix-a"`), ErrMalformed},
		{"escaped character", replaced(`"mix-a"`, `"mix\u002da"`), ErrMalformed},
		{"uppercase hex", replaced(`"identity_key":"`+hexOf(n.desc.IdentityKey[:8]), `"identity_key":"`+strings.ToUpper(hexOf(n.desc.IdentityKey[:8]))), ErrMalformed},
		{"short hex", replaced(`"link_key":"`+hexOf(n.desc.LinkKey[:1]), `"link_key":"`), ErrMalformed},
		{"layer as float", replaced(`"layer":1`, `"layer":1.0`), ErrMalformed},
		{"layer with exponent", replaced(`"layer":1`, `"layer":1e0`), ErrMalformed},
		{"layer as string", replaced(`"layer":1`, `"layer":"1"`), ErrMalformed},
		{"mix keys reordered", signBody(swapMixKeys(t, sb), n.priv), ErrMalformed},
		{"field missing", replaced(`"domain":"",`, ``), ErrMalformed},
		{"signed by another key", appendDescriptorEnvelope(body, ed25519.Sign(other.priv, withContext(descriptorContext, body))), ErrSignature},
		{"signed without context", appendDescriptorEnvelope(body, ed25519.Sign(n.priv, body)), ErrSignature},
		{"signed as a document", appendDescriptorEnvelope(body, ed25519.Sign(n.priv, withContext(documentContext, body))), ErrSignature},
		{"signed but invalid", signBody(invalidBody, n.priv), ErrInvalid},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d, err := ParseDescriptor(c.in)
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v (%+v), want %v", err, d, c.want)
			}
		})
	}
}

func hexOf(b []byte) string { return hex.EncodeToString(b) }

// swapMixKeys returns body with its two mix key entries swapped.
func swapMixKeys(t *testing.T, body string) []byte {
	t.Helper()
	start := strings.Index(body, `"mix_keys":[`) + len(`"mix_keys":[`)
	end := strings.Index(body[start:], "]") + start
	a, b, ok := strings.Cut(body[start:end], "},{")
	if !ok {
		t.Fatal("mix keys not found")
	}
	return []byte(body[:start] + b[:len(b)-1] + "},{" + a[1:] + "}" + body[end:])
}

func TestSignDescriptorRejects(t *testing.T) {
	g := mixnet.DefaultGeometry()
	n := newTestNode(t, g, "mix-a", RoleMix, 1, 5)
	other := newTestNode(t, g, "mix-b", RoleMix, 1, 5)
	if _, err := SignDescriptor(n.desc, other.priv); !errors.Is(err, ErrSignature) {
		t.Fatalf("another node's key: got %v, want ErrSignature", err)
	}
	if _, err := SignDescriptor(n.desc, n.priv[:32]); !errors.Is(err, ErrSignature) {
		t.Fatalf("short key: got %v, want ErrSignature", err)
	}
	// A key whose public half was overwritten with ours: the seed decides.
	forged := append(bytes.Clone(other.priv[:32]), n.desc.IdentityKey...)
	if _, err := SignDescriptor(n.desc, forged); !errors.Is(err, ErrSignature) {
		t.Fatalf("inconsistent key: got %v, want ErrSignature", err)
	}
	// Our seed with a wrong public half: the seed decides, and the
	// signature is the one the intact key makes.
	corrupt := append(bytes.Clone(n.priv[:32]), other.desc.IdentityKey...)
	want, err := SignDescriptor(n.desc, n.priv)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := SignDescriptor(n.desc, corrupt); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("key with a corrupt public half: %v", err)
	}
	bad := cloneDescriptor(n.desc)
	bad.Name = ""
	if _, err := SignDescriptor(bad, n.priv); !errors.Is(err, ErrInvalid) {
		t.Fatalf("invalid descriptor: got %v, want ErrInvalid", err)
	}
	if _, err := SignDescriptor(nil, n.priv); !errors.Is(err, ErrInvalid) {
		t.Fatalf("nil descriptor: got %v, want ErrInvalid", err)
	}
}

func TestDescriptorValidate(t *testing.T) {
	g := mixnet.DefaultGeometry()
	mix := newTestNode(t, g, "mix-a", RoleMix, 2, 10).desc
	prov := newTestNode(t, g, "prov-a", RoleProvider, 0, 10).desc
	if err := mix.Validate(); err != nil {
		t.Fatalf("base mix: %v", err)
	}
	if err := prov.Validate(); err != nil {
		t.Fatalf("base provider: %v", err)
	}
	type edit func(d *Descriptor)
	setAddr := func(a string) edit { return func(d *Descriptor) { d.Address = a } }
	setName := func(s string) edit { return func(d *Descriptor) { d.Name = s } }
	setDomain := func(s string) edit { return func(d *Descriptor) { d.Domain = s } }
	key := func(b byte) [32]byte { return [32]byte{b, 1, 2, 3} }
	setKeys := func(m map[uint64][32]byte) edit { return func(d *Descriptor) { d.MixKeys = m } }

	valid := []struct {
		name string
		base *Descriptor
		edit edit
	}{
		{"ipv4", mix, setAddr("192.0.2.1:1")},
		{"ipv6", mix, setAddr("[2001:db8::1]:65535")},
		{"loopback", mix, setAddr("127.0.0.1:4433")},
		{"hostname", mix, setAddr("relay-1.example.org:443")},
		{"single-label host", mix, setAddr("localhost:9000")},
		{"name of 64", mix, setName(strings.Repeat("a", 64))},
		{"name with digits and hyphens", mix, setName("-0-9-z-")},
		{"layer 16", mix, func(d *Descriptor) { d.Layer = MaxLayers }},
		{"single-label domain", prov, setDomain("example")},
		{"domain of 253", prov, setDomain(strings.Repeat(strings.Repeat("a", 62)+".", 4) + "a")},
		{"epoch 0", mix, func(d *Descriptor) { d.Epoch = 0; d.MixKeys = map[uint64][32]byte{0: key(1), 1: key(2)} }},
	}
	for _, c := range valid {
		t.Run("valid/"+c.name, func(t *testing.T) {
			d := cloneDescriptor(c.base)
			c.edit(d)
			if err := d.Validate(); err != nil {
				t.Fatal(err)
			}
		})
	}

	invalid := []struct {
		name string
		base *Descriptor
		edit edit
	}{
		{"empty name", mix, setName("")},
		{"name of 65", mix, setName(strings.Repeat("a", 65))},
		{"uppercase name", mix, setName("Mix")},
		{"underscore in name", mix, setName("mix_a")},
		{"dot in name", mix, setName("mix.a")},
		{"non-ASCII name", mix, setName("mïx")},
		{"no role", mix, func(d *Descriptor) { d.Role = "" }},
		{"unknown role", mix, func(d *Descriptor) { d.Role = "Mix" }},
		{"mix in layer 0", mix, func(d *Descriptor) { d.Layer = 0 }},
		{"mix in layer 17", mix, func(d *Descriptor) { d.Layer = MaxLayers + 1 }},
		{"mix in negative layer", mix, func(d *Descriptor) { d.Layer = -1 }},
		{"mix with a domain", mix, setDomain("example.org")},
		{"provider with a layer", prov, func(d *Descriptor) { d.Layer = 1 }},
		{"provider without domain", prov, setDomain("")},
		{"uppercase domain", prov, setDomain("Example.org")},
		{"domain trailing dot", prov, setDomain("example.org.")},
		{"domain leading dot", prov, setDomain(".example.org")},
		{"domain empty label", prov, setDomain("example..org")},
		{"domain label leading hyphen", prov, setDomain("-example.org")},
		{"domain label trailing hyphen", prov, setDomain("example-.org")},
		{"domain label of 64", prov, setDomain(strings.Repeat("a", 64) + ".org")},
		{"domain of 254", prov, setDomain(strings.Repeat(strings.Repeat("a", 62)+".", 4) + "ab")},
		{"domain numeric tld", prov, setDomain("192.0.2.1")},
		{"domain with @", prov, setDomain("user@example.org")},
		{"empty address", mix, setAddr("")},
		{"no port", mix, setAddr("192.0.2.1")},
		{"empty port", mix, setAddr("192.0.2.1:")},
		{"port 0", mix, setAddr("192.0.2.1:0")},
		{"port 65536", mix, setAddr("192.0.2.1:65536")},
		{"port with leading zero", mix, setAddr("192.0.2.1:0443")},
		{"port with sign", mix, setAddr("192.0.2.1:+443")},
		{"named port", mix, setAddr("192.0.2.1:https")},
		{"empty host", mix, setAddr(":443")},
		{"unbracketed ipv6", mix, setAddr("2001:db8::1:443")},
		{"bracketed ipv4", mix, setAddr("[192.0.2.1]:443")},
		{"non-canonical ipv6", mix, setAddr("[2001:0db8::1]:443")},
		{"uppercase ipv6", mix, setAddr("[2001:DB8::1]:443")},
		{"ipv6 zone", mix, setAddr("[fe80::1%eth0]:443")},
		{"ipv4 leading zero", mix, setAddr("192.0.2.01:443")},
		{"unspecified ipv4", mix, setAddr("0.0.0.0:443")},
		{"unspecified ipv6", mix, setAddr("[::]:443")},
		{"multicast", mix, setAddr("224.0.0.1:443")},
		{"uppercase host", mix, setAddr("Relay.example.org:443")},
		{"host with space", mix, setAddr("relay example:443")},
		{"host with underscore", mix, setAddr("relay_1.example:443")},
		{"url", mix, setAddr("tcp://relay.example:443")},
		{"two colons", mix, setAddr("relay.example:443:1")},
		{"very long address", mix, setAddr(strings.Repeat("a", 300) + ":1")},
		{"no identity key", mix, func(d *Descriptor) { d.IdentityKey = nil }},
		{"short identity key", mix, func(d *Descriptor) { d.IdentityKey = d.IdentityKey[:31] }},
		{"zero link key", mix, func(d *Descriptor) { d.LinkKey = [32]byte{} }},
		{"no mix keys", mix, setKeys(nil)},
		{"only the current mix key", mix, setKeys(map[uint64][32]byte{10: key(1)})},
		{"only the next mix key", mix, setKeys(map[uint64][32]byte{11: key(1)})},
		{"previous and current mix keys", mix, setKeys(map[uint64][32]byte{9: key(1), 10: key(2)})},
		{"next two mix keys", mix, setKeys(map[uint64][32]byte{11: key(1), 12: key(2)})},
		{"three mix keys", mix, setKeys(map[uint64][32]byte{10: key(1), 11: key(2), 12: key(3)})},
		{"same mix key twice", mix, setKeys(map[uint64][32]byte{10: key(1), 11: key(1)})},
		{"zero mix key", mix, setKeys(map[uint64][32]byte{10: key(1), 11: {}})},
		{"mix key is link key", mix, func(d *Descriptor) { d.MixKeys = map[uint64][32]byte{10: d.LinkKey, 11: key(1)} }},
		{"last epoch", mix, func(d *Descriptor) {
			d.Epoch = math.MaxUint64
			d.MixKeys = map[uint64][32]byte{math.MaxUint64: key(1), 0: key(2)}
		}},
	}
	for _, c := range invalid {
		t.Run("invalid/"+c.name, func(t *testing.T) {
			d := cloneDescriptor(c.base)
			c.edit(d)
			if err := d.Validate(); !errors.Is(err, ErrInvalid) {
				t.Fatalf("got %v, want ErrInvalid", err)
			}
		})
	}
	var nilDesc *Descriptor
	if err := nilDesc.Validate(); !errors.Is(err, ErrInvalid) {
		t.Fatalf("nil descriptor: %v", err)
	}
}

// TestValidateErrorsDoNotEchoBadFields: a rejected field's content is not
// copied into the error message (it may be long or hostile).
func TestValidateErrorsDoNotEchoBadFields(t *testing.T) {
	d := cloneDescriptor(newTestNode(t, mixnet.DefaultGeometry(), "mix-a", RoleMix, 1, 1).desc)
	d.Name = "EVIL\x1b[31m" + strings.Repeat("x", 100)
	err := d.Validate()
	if err == nil || strings.Contains(err.Error(), "EVIL") {
		t.Fatalf("got %v", err)
	}
	d.Name = "ok"
	d.Address = "EVIL\n:443"
	if err := d.Validate(); err == nil || strings.Contains(err.Error(), "EVIL") {
		t.Fatalf("got %v", err)
	}
}

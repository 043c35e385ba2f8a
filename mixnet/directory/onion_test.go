package directory

import (
	"bytes"
	"crypto/ed25519"
	"strings"
	"testing"

	"github.com/cretz/bine/torutil"
	bined25519 "github.com/cretz/bine/torutil/ed25519"

	"github.com/sealnet/sealnet/mixnet"
)

// TestOnionHostMatchesBine checks the v3 encoding against bine's
// independent implementation (torutil), for many keys.
func TestOnionHostMatchesBine(t *testing.T) {
	for i := range 200 {
		pub := ed25519.NewKeyFromSeed(seed("onion %d", i)).Public().(ed25519.PublicKey)
		got := OnionHost(pub)
		want := torutil.OnionServiceIDFromV3PublicKey(bined25519.PublicKey(pub)) + ".onion"
		if got != want {
			t.Fatalf("key %d: OnionHost = %s, bine says %s", i, got, want)
		}
		if err := CheckOnionHost(got); err != nil {
			t.Fatalf("key %d: CheckOnionHost(%s): %v", i, got, err)
		}
	}
}

func TestCheckOnionAddressRefuses(t *testing.T) {
	pub := ed25519.NewKeyFromSeed(seed("onion")).Public().(ed25519.PublicKey)
	host := OnionHost(pub)
	if err := CheckOnionAddress(host + ":443"); err != nil {
		t.Fatalf("valid address refused: %v", err)
	}
	id := strings.TrimSuffix(host, ".onion")
	flip := func(i int) string {
		b := []byte(id)
		if b[i] == 'a' {
			b[i] = 'b'
		} else {
			b[i] = 'a'
		}
		return string(b) + ".onion:443"
	}
	bad := map[string]string{
		"no port":           host,
		"port 0":            host + ":0",
		"leading zero":      host + ":0443",
		"port too big":      host + ":65536",
		"uppercase":         strings.ToUpper(id) + ".onion:443",
		"v2 length":         "expyuzz4wqqyqhjn.onion:80",
		"not onion":         "example.com:443",
		"checksum typo":     flip(40),
		"key typo":          flip(3),
		"version":           flip(55),
		"trailing dot":      host + ".:443",
		"not base32":        strings.Repeat("1", 56) + ".onion:443",
		"ip address":        "127.0.0.1:443",
		"empty":             "",
		"onion with spaces": " " + host + ":443",
	}
	for name, a := range bad {
		if err := CheckOnionAddress(a); err == nil {
			t.Errorf("%s: %q accepted", name, a)
		}
	}
}

// TestDescriptorOnion: a provider's onion address survives signing and
// parsing; a descriptor without one keeps its old encoding (no field); a
// mix or a bad address is refused.
func TestDescriptorOnion(t *testing.T) {
	g := mixnet.DefaultGeometry()
	p := newTestNode(t, g, "prov", RoleProvider, 0, 7)
	plain, err := SignDescriptor(p.desc, p.priv)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(plain, []byte(`"onion"`)) {
		t.Fatalf("a descriptor without an onion address has the field: %s", plain)
	}
	onion := OnionHost(ed25519.NewKeyFromSeed(seed("svc")).Public().(ed25519.PublicKey)) + ":4433"
	p.desc.Onion = onion
	signed, err := SignDescriptor(p.desc, p.priv)
	if err != nil {
		t.Fatal(err)
	}
	d, err := ParseDescriptor(signed)
	if err != nil {
		t.Fatal(err)
	}
	if d.Onion != onion {
		t.Fatalf("onion = %q after a round trip, want %q", d.Onion, onion)
	}

	m := newTestNode(t, g, "mix", RoleMix, 1, 7)
	m.desc.Onion = onion
	if _, err := SignDescriptor(m.desc, m.priv); err == nil {
		t.Fatal("a mix with an onion address was accepted")
	}
	p.desc.Onion = onion[:10] + "x" + onion[11:]
	if _, err := SignDescriptor(p.desc, p.priv); err == nil {
		t.Fatal("a provider with a mistyped onion address was accepted")
	}
}

// FuzzCheckOnionAddress: whatever is accepted is exactly the encoding of
// the key it carries, with a valid port.
func FuzzCheckOnionAddress(f *testing.F) {
	pub := ed25519.NewKeyFromSeed(seed("fuzz onion")).Public().(ed25519.PublicKey)
	f.Add(OnionHost(pub) + ":443")
	f.Add(OnionHost(pub) + ":0443")
	f.Add("expyuzz4wqqyqhjn.onion:80")
	f.Add("127.0.0.1:80")
	f.Fuzz(func(t *testing.T, a string) {
		if CheckOnionAddress(a) != nil {
			return
		}
		host := a[:strings.LastIndexByte(a, ':')]
		raw, err := onionEncoding.DecodeString(strings.ToUpper(strings.TrimSuffix(host, ".onion")))
		if err != nil || len(raw) != 35 {
			t.Fatalf("accepted %q, which does not decode", a)
		}
		if OnionHost(ed25519.PublicKey(raw[:32])) != host {
			t.Fatalf("accepted %q, which is not the canonical encoding of its key", a)
		}
	})
}

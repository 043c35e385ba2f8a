package directory

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sealnet/sealnet/internal/testkit/fuzzcheck"
	"github.com/sealnet/sealnet/mixnet"
)

// testParameters differ from the defaults in every field, and hold the
// zeros a measurement network uses (no client stream, no provider hold),
// which must not read as "not published".
func testParameters() Parameters {
	return Parameters{
		MeanDelay:     50 * time.Millisecond,
		MaxDelay:      10 * time.Second,
		ClientRate:    0,
		ProviderHold:  0,
		FetchInterval: 1500 * time.Millisecond,
		AckTimeout:    20 * time.Second,
		RetryJitter:   2 * time.Second,
		MaxAttempts:   3,
		RelayLoopRate: 0.125,
	}
}

// TestParametersRoundTrip: published parameters come back exactly through
// Marshal, the signed envelope and Verify, and the bytes re-encode the
// same.
func TestParametersRoundTrip(t *testing.T) {
	for name, p := range map[string]Parameters{
		"defaults":    DefaultParameters(),
		"measurement": testParameters(),
		"odd rates":   {MeanDelay: time.Microsecond, MaxDelay: mixnet.MaxDelay, ClientRate: 999.999999, FetchInterval: time.Millisecond, AckTimeout: time.Minute, MaxAttempts: 100, RelayLoopRate: 0.000001},
	} {
		t.Run(name, func(t *testing.T) {
			net := newTestNet(t, 3, 2, 1)
			net.doc.Parameters = p
			_, b := signedBy(t, net.doc, 0, 1)
			got, err := Verify(b, authorityKeys(3), 2)
			if err != nil {
				t.Fatal(err)
			}
			if got.Doc.Parameters != p || got.Doc.Params() != p {
				t.Fatalf("parameters changed in a round trip:\n got %+v\nwant %+v", got.Doc.Parameters, p)
			}
			if !reflect.DeepEqual(got.Doc, net.doc) {
				t.Fatal("document changed in a round trip")
			}
			raw, err := got.Doc.Marshal()
			if err != nil || !bytes.Equal(raw, got.Raw) {
				t.Fatalf("re-marshal differs (%v)", err)
			}
		})
	}
}

// TestParametersEncodingFixed pins where the parameters go and how they
// are written: after the geometry, durations in µs, rates in µHz.
func TestParametersEncodingFixed(t *testing.T) {
	net := newTestNet(t, 1, 1, 1)
	net.doc.Parameters = DefaultParameters()
	raw, err := net.doc.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	const want = `"payload_size":2048},"parameters":{"mean_delay_us":400000,"max_delay_us":30000000,"client_rate_uhz":2000000,"provider_hold_us":1000000,"fetch_interval_us":1000000,"ack_timeout_us":30000000,"retry_jitter_us":5000000,"max_attempts":5,"relay_loop_rate_uhz":200000},"layers":[[`
	if !strings.Contains(string(raw), want) {
		t.Fatalf("encoding changed:\n%s", raw)
	}
}

// TestDocumentWithoutParameters: a document that publishes none encodes
// without the field, with the bytes documents had before parameters
// existed, and reads as the defaults. The committed fuzz seed
// signed-2-of-3 was written before then and still verifies.
func TestDocumentWithoutParameters(t *testing.T) {
	net := newTestNet(t, 2, 2, 1)
	raw, err := net.doc.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte("parameters")) {
		t.Fatalf("a document without parameters writes them:\n%s", raw)
	}
	s, err := ParseSignedDocument(envelope(raw))
	if err != nil {
		t.Fatal(err)
	}
	if s.Doc.Parameters != (Parameters{}) || s.Doc.Params() != DefaultParameters() {
		t.Fatalf("no parameters read as %+v, Params %+v", s.Doc.Parameters, s.Doc.Params())
	}

	old, err := fuzzcheck.ReadBytesSeed("FuzzParseSignedDocument", "signed-2-of-3")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(old, []byte("parameters")) {
		t.Fatal("the old seed carries parameters")
	}
	sd, err := Verify(old, authorityKeys(3), 2)
	if err != nil {
		t.Fatalf("an old document no longer verifies: %v", err)
	}
	if sd.Doc.Params() != DefaultParameters() {
		t.Fatalf("an old document reads as %+v", sd.Doc.Params())
	}
}

// TestParametersSigned: the authorities' signature covers the parameters.
// Changing any one byte of the parameters object of a signed document
// makes Verify refuse it, even where the result is a valid document with
// other parameters (which ParseSignedDocument, not checking signatures,
// accepts); the untampered control verifies.
func TestParametersSigned(t *testing.T) {
	net := newTestNet(t, 2, 2, 1)
	net.doc.Parameters = DefaultParameters()
	auths := authorityKeys(3)
	s, b := signedBy(t, net.doc, 0, 1)
	if _, err := Verify(b, auths, 2); err != nil {
		t.Fatalf("control: %v", err)
	}
	start := bytes.Index(s.Raw, []byte(`"parameters":{`))
	end := start + bytes.IndexByte(s.Raw[start:], '}') + 1
	if start < 0 || end <= start {
		t.Fatal("no parameters in Raw")
	}
	for i := documentHeaderSize + start; i < documentHeaderSize+end; i++ {
		c := bytes.Clone(b)
		c[i] ^= 0x01
		if _, err := Verify(c, auths, 2); !errors.Is(err, ErrThreshold) {
			t.Fatalf("Raw byte %d (%q) flipped: got %v, want ErrThreshold", i-documentHeaderSize, b[i], err)
		}
	}

	// The same change by value: a valid document with another client
	// rate, carrying the original signatures.
	forged := bytes.Replace(b, []byte(`"client_rate_uhz":2000000`), []byte(`"client_rate_uhz":1000000`), 1)
	if bytes.Equal(forged, b) {
		t.Fatal("nothing replaced")
	}
	p, err := ParseSignedDocument(forged)
	if err != nil {
		t.Fatalf("the forged document should be well-formed: %v", err)
	}
	if p.Doc.Params().ClientRate != 1 {
		t.Fatalf("forged client rate reads %v", p.Doc.Params().ClientRate)
	}
	if _, err := Verify(forged, auths, 1); !errors.Is(err, ErrThreshold) {
		t.Fatalf("Verify accepted other parameters under the original signatures: %v", err)
	}
}

// TestParametersValidate: every rule of Parameters.Validate, each with an
// error naming the parameter, and the edges that must pass.
func TestParametersValidate(t *testing.T) {
	with := func(f func(*Parameters)) Parameters {
		p := DefaultParameters()
		f(&p)
		return p
	}
	ok := []struct {
		name string
		p    Parameters
	}{
		{"defaults", DefaultParameters()},
		{"measurement", testParameters()},
		{"no client stream", with(func(p *Parameters) { p.ClientRate = 0 })},
		{"no relay loops", with(func(p *Parameters) { p.RelayLoopRate = 0 })},
		{"no delays", with(func(p *Parameters) { p.MeanDelay = 0 })},
		{"no hold, no jitter", with(func(p *Parameters) { p.ProviderHold, p.RetryJitter = 0, 0 })},
		{"mean equal to max", with(func(p *Parameters) { p.MeanDelay, p.MaxDelay, p.AckTimeout = time.Second, time.Second, time.Minute })},
		{"longest encodable max delay", with(func(p *Parameters) { p.MaxDelay = mixnet.MaxDelay })},
		{"top rates", with(func(p *Parameters) { p.ClientRate, p.RelayLoopRate, p.FetchInterval = 1000, 1000, time.Millisecond })},
		{"long polls", with(func(p *Parameters) { p.FetchInterval = 0 })},
		{"a page half full", with(func(p *Parameters) { p.FetchInterval = PageRecords / 2 * time.Second / 2 })},
		{"one attempt", with(func(p *Parameters) { p.MaxAttempts = 1 })},
		{"100 attempts", with(func(p *Parameters) { p.MaxAttempts = 100 })},
		{"ack timeout just above the bound", with(func(p *Parameters) { p.AckTimeout = p.MinAckTimeout(3) + time.Microsecond })},
	}
	for _, c := range ok {
		if err := c.p.Validate(3); err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
	}
	bad := []struct {
		name string
		p    Parameters
		want string
	}{
		{"zero value", Parameters{}, "max_delay"},
		{"negative mean delay", with(func(p *Parameters) { p.MeanDelay = -time.Millisecond }), "mean_delay"},
		{"mean delay above max delay", with(func(p *Parameters) { p.MeanDelay = 31 * time.Second; p.AckTimeout = time.Hour }), "mean_delay"},
		{"mean delay not whole µs", with(func(p *Parameters) { p.MeanDelay += time.Nanosecond }), "mean_delay"},
		{"zero max delay", with(func(p *Parameters) { p.MaxDelay, p.MeanDelay = 0, 0 }), "max_delay"},
		{"max delay beyond the encoding", with(func(p *Parameters) { p.MaxDelay = mixnet.MaxDelay + time.Microsecond }), "max_delay"},
		{"negative client rate", with(func(p *Parameters) { p.ClientRate = -1 }), "client_rate"},
		{"client rate above 1000/s", with(func(p *Parameters) { p.ClientRate = 1000.000001 }), "client_rate"},
		{"client rate NaN", with(func(p *Parameters) { p.ClientRate = math.NaN() }), "client_rate"},
		{"client rate infinite", with(func(p *Parameters) { p.ClientRate = math.Inf(1) }), "client_rate"},
		{"client rate finer than µHz", with(func(p *Parameters) { p.ClientRate = 1.0 / 3 }), "client_rate"},
		{"client rate a rounding error off", with(func(p *Parameters) { p.ClientRate = math.Nextafter(0.3, 1) }), "client_rate"},
		{"negative relay loop rate", with(func(p *Parameters) { p.RelayLoopRate = -0.2 }), "relay_loop_rate"},
		{"relay loop rate above 1000/s", with(func(p *Parameters) { p.RelayLoopRate = 2000 }), "relay_loop_rate"},
		{"negative provider hold", with(func(p *Parameters) { p.ProviderHold = -time.Second }), "provider_hold"},
		{"fetches too rare for the replies", with(func(p *Parameters) { p.FetchInterval = PageRecords/2*time.Second/2 + time.Microsecond }), "fetch_interval"},
		{"fetch interval under 1ms", with(func(p *Parameters) { p.FetchInterval = 999 * time.Microsecond }), "fetch_interval"},
		{"fetch interval over a day", with(func(p *Parameters) { p.FetchInterval = 25 * time.Hour }), "fetch_interval"},
		{"zero ack timeout", with(func(p *Parameters) { p.AckTimeout = 0 }), "ack_timeout"},
		{"ack timeout at the bound", with(func(p *Parameters) { p.AckTimeout = p.MinAckTimeout(3) }), "ack_timeout"},
		{"ack timeout under the fetch interval", with(func(p *Parameters) { p.AckTimeout = time.Second }), "ack_timeout"},
		{"negative retry jitter", with(func(p *Parameters) { p.RetryJitter = -time.Second }), "retry_jitter"},
		{"zero attempts", with(func(p *Parameters) { p.MaxAttempts = 0 }), "max_attempts"},
		{"101 attempts", with(func(p *Parameters) { p.MaxAttempts = 101 }), "max_attempts"},
	}
	for _, c := range bad {
		err := c.p.Validate(3)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want ErrInvalid naming %s", c.name, err, c.want)
		}
	}
	for _, layers := range []int{0, MaxLayers + 1} {
		if err := DefaultParameters().Validate(layers); !errors.Is(err, ErrInvalid) {
			t.Errorf("%d layers: got %v, want ErrInvalid", layers, err)
		}
	}
}

// TestDefaultParametersValidForEveryLayerCount: the defaults suit every
// depth up to MaxDefaultLayers and no deeper (a document that publishes no
// parameters is not checked against them), and the acknowledgement bound
// grows with the layers.
func TestDefaultParametersValidForEveryLayerCount(t *testing.T) {
	p := DefaultParameters()
	for layers := 1; layers <= MaxDefaultLayers; layers++ {
		if err := p.Validate(layers); err != nil {
			t.Errorf("%d layers: %v", layers, err)
		}
	}
	if err := p.Validate(MaxDefaultLayers + 1); err == nil {
		t.Errorf("the defaults pass for %d layers: MaxDefaultLayers is out of date", MaxDefaultLayers+1)
	}
	if got, want := p.MinAckTimeout(3), time.Second+5*time.Second+24*400*time.Millisecond; got != want {
		t.Errorf("MinAckTimeout(3) = %v, want %v", got, want)
	}
	if p.MinAckTimeout(4) <= p.MinAckTimeout(3) {
		t.Error("the bound does not grow with the layers")
	}
}

// TestDocumentValidateParameters: Document.Validate applies the
// parameters' rules, with the document's number of layers.
func TestDocumentValidateParameters(t *testing.T) {
	net := newTestNet(t, 3, 1, 1)
	p := DefaultParameters()
	p.MeanDelay, p.AckTimeout = time.Second, 30*time.Second // 2 + 5 + 6·4·1 = 31 s needed with 3 layers
	net.doc.Parameters = p
	err := net.doc.Validate()
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "ack_timeout") {
		t.Fatalf("got %v, want ErrInvalid naming ack_timeout", err)
	}
	if _, err := net.doc.Marshal(); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Marshal: got %v, want ErrInvalid", err)
	}
	one := newTestNet(t, 1, 1, 1) // 2 + 5 + 6·2·1 = 19 s: fine with one layer
	one.doc.Parameters = p
	if err := one.doc.Validate(); err != nil {
		t.Fatal(err)
	}
}

// TestParseParametersRejects: parameters that are not canonical, or not
// valid, are refused however they are signed.
func TestParseParametersRejects(t *testing.T) {
	net := newTestNet(t, 2, 1, 1)
	net.doc.Parameters = DefaultParameters()
	s, _ := signedBy(t, net.doc)
	raw := string(s.Raw)
	obj := raw[strings.Index(raw, `"parameters":`):strings.Index(raw, `,"layers":`)]
	replaced := func(old, new string) []byte {
		if !strings.Contains(raw, old) {
			t.Fatalf("raw has no %q", old)
		}
		return envelope([]byte(strings.Replace(raw, old, new, 1)))
	}
	cases := []struct {
		name string
		in   []byte
		want error
	}{
		{"null", replaced(obj, `"parameters":null`), ErrMalformed},
		{"empty object", replaced(obj, `"parameters":{}`), ErrMalformed},
		{"all zero", replaced(obj, `"parameters":{"mean_delay_us":0,"max_delay_us":0,"client_rate_uhz":0,"provider_hold_us":0,"fetch_interval_us":0,"ack_timeout_us":0,"retry_jitter_us":0,"max_attempts":0,"relay_loop_rate_uhz":0}`), ErrMalformed},
		{"missing field", replaced(`,"retry_jitter_us":5000000`, ``), ErrMalformed},
		{"missing field whose zero is invalid", replaced(`,"max_attempts":5`, ``), ErrInvalid},
		{"unknown field", replaced(`"max_attempts":5,`, `"max_attempts":5,"mu":1,`), ErrMalformed},
		{"reordered", replaced(`"mean_delay_us":400000,"max_delay_us":30000000`, `"max_delay_us":30000000,"mean_delay_us":400000`), ErrMalformed},
		{"after the layers", envelope([]byte(strings.Replace(strings.Replace(raw, obj+",", "", 1), `]]`, `]],`+obj, 1))), ErrMalformed},
		{"fraction", replaced(`"client_rate_uhz":2000000`, `"client_rate_uhz":2000000.5`), ErrMalformed},
		{"exponent", replaced(`"client_rate_uhz":2000000`, `"client_rate_uhz":2e6`), ErrMalformed},
		{"negative", replaced(`"max_attempts":5`, `"max_attempts":-5`), ErrMalformed},
		{"beyond 64 bits", replaced(`"mean_delay_us":400000`, `"mean_delay_us":18446744073709551616`), ErrMalformed},
		{"64-bit duration", replaced(`"mean_delay_us":400000`, `"mean_delay_us":18446744073709551615`), ErrInvalid},
		{"rate above 1000/s", replaced(`"client_rate_uhz":2000000`, `"client_rate_uhz":1000000001`), ErrInvalid},
		{"mean above max", replaced(`"mean_delay_us":400000`, `"mean_delay_us":30000001`), ErrInvalid},
		{"no attempts", replaced(`"max_attempts":5`, `"max_attempts":0`), ErrInvalid},
		{"ack timeout too short", replaced(`"ack_timeout_us":30000000`, `"ack_timeout_us":3000000`), ErrInvalid},
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

// TestSelectPathClipsAtMaxDelay: paths never ask a hop for more than the
// document's MaxDelay, which relays refuse.
func TestSelectPathClipsAtMaxDelay(t *testing.T) {
	net := newTestNet(t, 2, 1, 1)
	doc := net.doc
	p := DefaultParameters()
	p.MaxDelay, p.MeanDelay = 300*time.Millisecond, 200*time.Millisecond
	doc.Parameters = p
	if err := doc.Validate(); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	clipped := 0
	for range 200 {
		path, err := doc.SelectPath(rng, doc.Providers[0], doc.Epoch, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range path {
			if h.Delay > p.MaxDelay {
				t.Fatalf("delay %v above the document's max delay %v", h.Delay, p.MaxDelay)
			}
			if h.Delay == p.MaxDelay {
				clipped++
			}
		}
	}
	// P(Exp(1s) > 300ms) = e^-0.3 ≈ 0.74 of 600 hops.
	if clipped < 350 || clipped > 530 {
		t.Fatalf("%d of 600 delays clipped, want about 444", clipped)
	}
}

// TestFuzzSeedsWithParameters: the document corpus holds documents that
// publish parameters, so the fuzzer starts from the parameters' decoder.
func TestFuzzSeedsWithParameters(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzParseSignedDocument")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, e := range entries {
		b, err := fuzzcheck.ReadBytesSeed("FuzzParseSignedDocument", e.Name())
		if err != nil {
			t.Fatal(err)
		}
		if s, err := Verify(b, authorityKeys(3), 1); err == nil && s.Doc.Parameters != (Parameters{}) {
			found++
		}
	}
	if found == 0 {
		t.Fatal("no seed is a verified document with parameters")
	}
}

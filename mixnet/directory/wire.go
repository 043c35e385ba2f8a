package directory

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/sealnet/sealnet/mixnet"
)

// The bodies of descriptors and documents are JSON in one canonical form:
// the output of encoding/json for the structs below (fields in declaration
// order, every field present, no whitespace), where every string is hex or
// a restricted ASCII alphabet that needs no escaping, every number is a
// decimal integer, and lists have a defined order. Two fields are optional
// (omitted when empty, so objects made before they existed keep their
// bytes): a provider's onion address, and a document's parameters. There
// are no JSON objects with free keys (maps), whose key order would be a
// choice.
//
// Decoding is strict (unknown fields are errors) and then the decoded value
// is encoded again: the input is accepted only if it equals that encoding
// byte for byte. This rejects, without enumerating them, whitespace, other
// key order or case, duplicate keys, escapes, uppercase hex, exponents,
// leading zeros and trailing data.

type wireMixKey struct {
	Epoch uint64 `json:"epoch"`
	Key   string `json:"key"`
}

type wireDescriptor struct {
	Name         string       `json:"name"`
	Role         string       `json:"role"`
	Layer        int          `json:"layer"`
	Domain       string       `json:"domain"`
	Address      string       `json:"address"`
	Onion        string       `json:"onion,omitempty"`
	IdentityKey  string       `json:"identity_key"`
	LinkKey      string       `json:"link_key"`
	Epoch        uint64       `json:"epoch"`
	MixKeys      []wireMixKey `json:"mix_keys"`
	GeometryHash string       `json:"geometry_hash"`
}

type wireGeometry struct {
	Version         uint8 `json:"version"`
	MaxHops         int   `json:"max_hops"`
	RoutingInfoSize int   `json:"routing_info_size"`
	PayloadSize     int   `json:"payload_size"`
}

// wireParameters are a document's Parameters: durations in microseconds,
// rates in millionths of a packet per second (µHz).
type wireParameters struct {
	MeanDelay     uint64 `json:"mean_delay_us"`
	MaxDelay      uint64 `json:"max_delay_us"`
	ClientRate    uint64 `json:"client_rate_uhz"`
	ProviderHold  uint64 `json:"provider_hold_us"`
	FetchInterval uint64 `json:"fetch_interval_us"`
	AckTimeout    uint64 `json:"ack_timeout_us"`
	RetryJitter   uint64 `json:"retry_jitter_us"`
	MaxAttempts   uint64 `json:"max_attempts"`
	RelayLoopRate uint64 `json:"relay_loop_rate_uhz"`
}

type wireDocument struct {
	Epoch         uint64       `json:"epoch"`
	PeriodSeconds uint64       `json:"period_seconds"`
	Geometry      wireGeometry `json:"geometry"`
	// Parameters is omitted when the document publishes none (the
	// defaults), so documents made before it existed keep their bytes.
	Parameters *wireParameters    `json:"parameters,omitempty"`
	Layers     [][]wireDescriptor `json:"layers"`
	Providers  []wireDescriptor   `json:"providers"`
}

// decodeStrict decodes one JSON value from body into v, refusing unknown
// fields. Whatever follows the value is left for the canonical check.
func decodeStrict(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// checkCanonical requires body to equal the encoding of the value decoded
// from it.
func checkCanonical(body []byte, encode func() ([]byte, error), what string) error {
	again, err := encode()
	if err != nil {
		return fmt.Errorf("%w: %s body does not re-encode: %v", ErrMalformed, what, err)
	}
	if !bytes.Equal(again, body) {
		return fmt.Errorf("%w: %s body is not in canonical form", ErrMalformed, what)
	}
	return nil
}

func wireOf(d *Descriptor) wireDescriptor {
	w := wireDescriptor{
		Name:         d.Name,
		Role:         string(d.Role),
		Layer:        d.Layer,
		Domain:       d.Domain,
		Address:      d.Address,
		Onion:        d.Onion,
		IdentityKey:  hex.EncodeToString(d.IdentityKey),
		LinkKey:      hex.EncodeToString(d.LinkKey[:]),
		Epoch:        d.Epoch,
		MixKeys:      make([]wireMixKey, 0, len(d.MixKeys)),
		GeometryHash: hex.EncodeToString(d.GeometryHash[:]),
	}
	for _, e := range slices.Sorted(maps.Keys(d.MixKeys)) {
		k := d.MixKeys[e]
		w.MixKeys = append(w.MixKeys, wireMixKey{Epoch: e, Key: hex.EncodeToString(k[:])})
	}
	return w
}

// encodeDescriptor returns the canonical body of d. It does not validate d.
func encodeDescriptor(d *Descriptor) ([]byte, error) {
	return json.Marshal(wireOf(d))
}

// descriptor converts a decoded body into a Descriptor. Errors are
// ErrMalformed: they are about the encoding of keys, not their meaning.
func (w *wireDescriptor) descriptor() (*Descriptor, error) {
	d := &Descriptor{
		Name:    w.Name,
		Role:    Role(w.Role),
		Layer:   w.Layer,
		Domain:  w.Domain,
		Address: w.Address,
		Onion:   w.Onion,
		Epoch:   w.Epoch,
	}
	id, err := decodeHex(w.IdentityKey, ed25519.PublicKeySize, "identity_key")
	if err != nil {
		return nil, err
	}
	d.IdentityKey = ed25519.PublicKey(id)
	if err := decodeHexInto(d.LinkKey[:], w.LinkKey, "link_key"); err != nil {
		return nil, err
	}
	if err := decodeHexInto(d.GeometryHash[:], w.GeometryHash, "geometry_hash"); err != nil {
		return nil, err
	}
	if len(w.MixKeys) > 2 {
		// Validate wants exactly two; refuse more before building a map.
		return nil, fmt.Errorf("%w: %d mix keys, want 2", ErrMalformed, len(w.MixKeys))
	}
	d.MixKeys = make(map[uint64][32]byte, len(w.MixKeys))
	for _, mk := range w.MixKeys {
		var k [32]byte
		if err := decodeHexInto(k[:], mk.Key, "mix key"); err != nil {
			return nil, err
		}
		if _, dup := d.MixKeys[mk.Epoch]; dup {
			return nil, fmt.Errorf("%w: two mix keys for epoch %d", ErrMalformed, mk.Epoch)
		}
		d.MixKeys[mk.Epoch] = k
	}
	return d, nil
}

func decodeHex(s string, size int, field string) ([]byte, error) {
	b := make([]byte, size)
	if err := decodeHexInto(b, s, field); err != nil {
		return nil, err
	}
	return b, nil
}

// decodeHexInto decodes exactly len(dst) bytes of lowercase hex (uppercase
// is caught by the canonical check).
func decodeHexInto(dst []byte, s, field string) error {
	if len(s) != 2*len(dst) {
		return fmt.Errorf("%w: %s is %d hex digits, want %d", ErrMalformed, field, len(s), 2*len(dst))
	}
	if _, err := hex.Decode(dst, []byte(s)); err != nil {
		return fmt.Errorf("%w: %s is not hex", ErrMalformed, field)
	}
	return nil
}

func wireOfDocument(d *Document, layers [][]*Descriptor, providers []*Descriptor) wireDocument {
	w := wireDocument{
		Epoch:         d.Epoch,
		PeriodSeconds: uint64(d.Period / time.Second),
		Geometry: wireGeometry{
			Version:         d.Geometry.Version,
			MaxHops:         d.Geometry.MaxHops,
			RoutingInfoSize: d.Geometry.RoutingInfoSize,
			PayloadSize:     d.Geometry.PayloadSize,
		},
		Parameters: wireOfParameters(d.Parameters),
		Layers:     make([][]wireDescriptor, len(layers)),
		Providers:  make([]wireDescriptor, len(providers)),
	}
	for i, layer := range layers {
		w.Layers[i] = make([]wireDescriptor, len(layer))
		for j, n := range layer {
			w.Layers[i][j] = wireOf(n)
		}
	}
	for i, p := range providers {
		w.Providers[i] = wireOf(p)
	}
	return w
}

func (w *wireDocument) document() (*Document, error) {
	if w.PeriodSeconds == 0 || w.PeriodSeconds > uint64(MaxPeriod/time.Second) {
		return nil, fmt.Errorf("%w: period of %d seconds is outside [1, %d]", ErrInvalid, w.PeriodSeconds, uint64(MaxPeriod/time.Second))
	}
	if len(w.Layers) > MaxLayers {
		return nil, fmt.Errorf("%w: %d layers, at most %d allowed", ErrInvalid, len(w.Layers), MaxLayers)
	}
	d := &Document{
		Epoch:  w.Epoch,
		Period: time.Duration(w.PeriodSeconds) * time.Second,
		Geometry: mixnet.Geometry{
			Version:         w.Geometry.Version,
			MaxHops:         w.Geometry.MaxHops,
			RoutingInfoSize: w.Geometry.RoutingInfoSize,
			PayloadSize:     w.Geometry.PayloadSize,
		},
		Layers: make([][]*Descriptor, len(w.Layers)),
	}
	if w.Parameters != nil {
		p, err := w.Parameters.parameters()
		if err != nil {
			return nil, err
		}
		d.Parameters = p
	}
	nodes := len(w.Providers)
	for _, l := range w.Layers {
		nodes += len(l)
	}
	if nodes > MaxNodes {
		return nil, fmt.Errorf("%w: %d nodes, at most %d allowed", ErrInvalid, nodes, MaxNodes)
	}
	for i, l := range w.Layers {
		d.Layers[i] = make([]*Descriptor, len(l))
		for j := range l {
			n, err := l[j].descriptor()
			if err != nil {
				return nil, fmt.Errorf("layer %d node %d: %w", i+1, j, err)
			}
			d.Layers[i][j] = n
		}
	}
	d.Providers = make([]*Descriptor, len(w.Providers))
	for i := range w.Providers {
		n, err := w.Providers[i].descriptor()
		if err != nil {
			return nil, fmt.Errorf("provider %d: %w", i, err)
		}
		d.Providers[i] = n
	}
	return d, nil
}

// wireOfParameters encodes p, or nothing for the zero value (no
// parameters published). Durations are truncated to microseconds and
// rates rounded to millionths; Validate requires them to be exact, so a
// valid document loses nothing.
func wireOfParameters(p Parameters) *wireParameters {
	if p == (Parameters{}) {
		return nil
	}
	us := func(d time.Duration) uint64 { return uint64(max(d, 0) / time.Microsecond) }
	uhz := func(r float64) uint64 {
		u, _ := rateMicros(r)
		return u
	}
	return &wireParameters{
		MeanDelay:     us(p.MeanDelay),
		MaxDelay:      us(p.MaxDelay),
		ClientRate:    uhz(p.ClientRate),
		ProviderHold:  us(p.ProviderHold),
		FetchInterval: us(p.FetchInterval),
		AckTimeout:    us(p.AckTimeout),
		RetryJitter:   us(p.RetryJitter),
		MaxAttempts:   uint64(max(p.MaxAttempts, 0)),
		RelayLoopRate: uhz(p.RelayLoopRate),
	}
}

// parameters converts decoded parameters, refusing (ErrInvalid) values so
// large that they could not be converted exactly; Validate checks the
// rest.
func (w *wireParameters) parameters() (Parameters, error) {
	const maxUs = uint64(maxParamDuration / time.Microsecond) // above mixnet.MaxDelay too
	for _, f := range []struct {
		name string
		v    uint64
		max  uint64
	}{
		{"mean_delay_us", w.MeanDelay, maxUs},
		{"max_delay_us", w.MaxDelay, maxUs},
		{"client_rate_uhz", w.ClientRate, maxRate * microsPerUnit},
		{"provider_hold_us", w.ProviderHold, maxUs},
		{"fetch_interval_us", w.FetchInterval, maxUs},
		{"ack_timeout_us", w.AckTimeout, maxUs},
		{"retry_jitter_us", w.RetryJitter, maxUs},
		{"max_attempts", w.MaxAttempts, maxAttempts},
		{"relay_loop_rate_uhz", w.RelayLoopRate, maxRate * microsPerUnit},
	} {
		if f.v > f.max {
			return Parameters{}, fmt.Errorf("%w: parameter %s is %d, at most %d allowed", ErrInvalid, f.name, f.v, f.max)
		}
	}
	d := func(us uint64) time.Duration { return time.Duration(us) * time.Microsecond }
	return Parameters{
		MeanDelay:     d(w.MeanDelay),
		MaxDelay:      d(w.MaxDelay),
		ClientRate:    float64(w.ClientRate) / microsPerUnit,
		ProviderHold:  d(w.ProviderHold),
		FetchInterval: d(w.FetchInterval),
		AckTimeout:    d(w.AckTimeout),
		RetryJitter:   d(w.RetryJitter),
		MaxAttempts:   int(w.MaxAttempts),
		RelayLoopRate: float64(w.RelayLoopRate) / microsPerUnit,
	}, nil
}

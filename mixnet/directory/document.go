package directory

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/sealnet/sealnet/mixnet"
)

// Document is the network for one epoch, as the authorities publish it.
type Document struct {
	// Epoch is the epoch the document is for.
	Epoch uint64
	// Period is the length of an epoch: whole seconds, 1s to MaxPeriod.
	Period time.Duration
	// Geometry is the packet geometry every node uses. Every node's
	// GeometryHash must equal Geometry.Hash(), and it must allow paths of
	// len(Layers)+1 hops.
	Geometry mixnet.Geometry
	// Parameters are the network's traffic parameters, which every
	// client and relay must use. The zero value publishes none: it is
	// encoded as no field at all (the bytes of documents made before
	// parameters existed) and read by Params as DefaultParameters().
	// Authorities always publish them, so that the values in force do
	// not depend on the defaults of the software reading the document.
	Parameters Parameters
	// Layers[i] holds the mixes of layer i+1; no layer is empty. Marshal
	// writes each layer sorted by ID, so decoded documents are sorted.
	Layers [][]*Descriptor
	// Providers are the edge nodes, at least one; written sorted by ID.
	Providers []*Descriptor
}

// Validate reports whether d is a document clients can use. Errors wrap
// ErrInvalid. It checks:
//   - Period is whole seconds in [1s, MaxPeriod]; Geometry is valid and
//     allows len(Layers)+1 hops;
//   - 1 to MaxLayers layers, none empty; at least one provider; at most
//     MaxNodes nodes in all;
//   - every descriptor is valid on its own, is for d.Epoch, has the role
//     and layer of its place in d, and speaks d.Geometry;
//   - no two nodes share an ID, name, address, link key or mix key, and no
//     two providers a domain;
//   - the parameters, if any are published, pass Parameters.Validate for
//     len(Layers) layers (the defaults do for every number of layers).
//
// The order of nodes within a layer is not checked: it is a property of
// the encoding, which Marshal fixes.
func (d *Document) Validate() error {
	if d == nil {
		return fmt.Errorf("%w: nil document", ErrInvalid)
	}
	if err := d.validate(); err != nil {
		return fmt.Errorf("%w: document for epoch %d: %s", ErrInvalid, d.Epoch, err)
	}
	return nil
}

func (d *Document) validate() error {
	if d.Period < time.Second || d.Period > MaxPeriod || d.Period%time.Second != 0 {
		return fmt.Errorf("period %v is not whole seconds in [1s, %v]", d.Period, MaxPeriod)
	}
	if err := d.Geometry.Validate(); err != nil {
		return err
	}
	switch {
	case len(d.Layers) < 1 || len(d.Layers) > MaxLayers:
		return fmt.Errorf("%d layers, want 1 to %d", len(d.Layers), MaxLayers)
	case len(d.Layers)+1 > d.Geometry.MaxHops:
		return fmt.Errorf("%d layers need %d-hop paths; the geometry allows %d", len(d.Layers), len(d.Layers)+1, d.Geometry.MaxHops)
	case len(d.Providers) < 1:
		return fmt.Errorf("no providers")
	}
	total := len(d.Providers)
	for i, layer := range d.Layers {
		if len(layer) == 0 {
			return fmt.Errorf("layer %d is empty", i+1)
		}
		total += len(layer)
	}
	if total > MaxNodes {
		return fmt.Errorf("%d nodes, at most %d allowed", total, MaxNodes)
	}
	if d.Parameters != (Parameters{}) {
		if err := d.Parameters.validate(len(d.Layers)); err != nil {
			return err
		}
	}

	gh := d.Geometry.Hash()
	ids := make(map[mixnet.NodeID]bool, total)
	names := make(map[string]bool, total)
	addrs := make(map[string]bool, total)
	keys := make(map[[32]byte]bool, 3*total) // link and mix keys
	domains := make(map[string]bool, len(d.Providers))
	check := func(n *Descriptor, role Role, layer int, where string) error {
		if n == nil {
			return fmt.Errorf("%s: nil descriptor", where)
		}
		if err := n.validate(); err != nil {
			return fmt.Errorf("%s: %s", where, err)
		}
		switch {
		case n.Role != role || n.Layer != layer:
			return fmt.Errorf("%s: node %q is a %s in layer %d, want a %s in layer %d", where, n.Name, n.Role, n.Layer, role, layer)
		case n.Epoch != d.Epoch:
			return fmt.Errorf("%s: node %q is for epoch %d", where, n.Name, n.Epoch)
		case n.GeometryHash != gh:
			return fmt.Errorf("%s: node %q speaks geometry %v, the document %v", where, n.Name, n.GeometryHash, gh)
		}
		id := n.ID()
		if ids[id] {
			return fmt.Errorf("%s: duplicate node ID %v", where, id)
		}
		ids[id] = true
		if names[n.Name] {
			return fmt.Errorf("%s: duplicate name %q", where, n.Name)
		}
		names[n.Name] = true
		if addrs[n.Address] {
			return fmt.Errorf("%s: node %q: duplicate address %q", where, n.Name, n.Address)
		}
		addrs[n.Address] = true
		for _, k := range [...][32]byte{n.LinkKey, n.MixKeys[n.Epoch], n.MixKeys[n.Epoch+1]} {
			if keys[k] {
				return fmt.Errorf("%s: node %q: a link or mix key is also another node's", where, n.Name)
			}
			keys[k] = true
		}
		if role == RoleProvider {
			if domains[n.Domain] {
				return fmt.Errorf("%s: node %q: duplicate domain %q", where, n.Name, n.Domain)
			}
			domains[n.Domain] = true
		}
		return nil
	}
	for i, layer := range d.Layers {
		for j, n := range layer {
			if err := check(n, RoleMix, i+1, fmt.Sprintf("layer %d node %d", i+1, j)); err != nil {
				return err
			}
		}
	}
	for j, n := range d.Providers {
		if err := check(n, RoleProvider, 0, fmt.Sprintf("provider %d", j)); err != nil {
			return err
		}
	}
	return nil
}

// Marshal validates d and returns its canonical encoding: the same
// document gives the same bytes whatever the order of its layers' and
// providers' slices. This is the Raw that authorities sign.
func (d *Document) Marshal() ([]byte, error) {
	if err := d.Validate(); err != nil {
		return nil, err
	}
	b, err := d.encode()
	if err != nil {
		return nil, err
	}
	if len(b) > MaxDocumentSize {
		return nil, fmt.Errorf("%w: document is %d bytes, at most %d allowed", ErrInvalid, len(b), MaxDocumentSize)
	}
	return b, nil
}

// encode writes d canonically without validating it; d must hold no nil
// descriptors.
func (d *Document) encode() ([]byte, error) {
	layers := make([][]*Descriptor, len(d.Layers))
	for i, l := range d.Layers {
		layers[i] = sortedByID(l)
	}
	return json.Marshal(wireOfDocument(d, layers, sortedByID(d.Providers)))
}

// sortedByID returns a copy of nodes sorted by ID.
func sortedByID(nodes []*Descriptor) []*Descriptor {
	type keyed struct {
		id mixnet.NodeID
		n  *Descriptor
	}
	ks := make([]keyed, len(nodes))
	for i, n := range nodes {
		ks[i] = keyed{n.ID(), n}
	}
	slices.SortStableFunc(ks, func(a, b keyed) int { return bytes.Compare(a.id[:], b.id[:]) })
	out := make([]*Descriptor, len(nodes))
	for i := range ks {
		out[i] = ks[i].n
	}
	return out
}

// decodeDocument decodes and validates a document body, accepting only
// its canonical encoding.
func decodeDocument(raw []byte) (*Document, error) {
	if len(raw) > MaxDocumentSize {
		return nil, fmt.Errorf("%w: document is %d bytes, at most %d allowed", ErrMalformed, len(raw), MaxDocumentSize)
	}
	var w wireDocument
	if err := decodeStrict(raw, &w); err != nil {
		return nil, fmt.Errorf("%w: document body: %v", ErrMalformed, err)
	}
	d, err := w.document()
	if err != nil {
		return nil, err
	}
	if err := d.Validate(); err != nil {
		return nil, err
	}
	if err := checkCanonical(raw, d.encode, "document"); err != nil {
		return nil, err
	}
	return d, nil
}

// Params returns the parameters the network runs with: d.Parameters, or
// DefaultParameters() if d publishes none. For a document that passed
// Validate, as every document from Verify and ParseSignedDocument has,
// they are valid for its number of layers.
func (d *Document) Params() Parameters {
	if d.Parameters == (Parameters{}) {
		return DefaultParameters()
	}
	return d.Parameters
}

// Node returns the node with the given ID. It hashes every identity key
// it passes (up to MaxNodes); a relay looking up next hops per packet
// builds its own map from ID to descriptor once per document.
func (d *Document) Node(id mixnet.NodeID) (*Descriptor, bool) {
	for _, layer := range d.Layers {
		for _, n := range layer {
			if n != nil && n.ID() == id {
				return n, true
			}
		}
	}
	return d.provider(id)
}

func (d *Document) provider(id mixnet.NodeID) (*Descriptor, bool) {
	for _, n := range d.Providers {
		if n != nil && n.ID() == id {
			return n, true
		}
	}
	return nil, false
}

// Provider returns the provider for a domain (the part of a user's address
// after '@'). Domains are lowercase; the caller lowercases user input.
func (d *Document) Provider(domain string) (*Descriptor, bool) {
	for _, n := range d.Providers {
		if n != nil && n.Domain == domain {
			return n, true
		}
	}
	return nil, false
}

package directory

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/sealnet/sealnet/mixnet"
)

// Role is what a node does in the network.
type Role string

// Roles.
const (
	// RoleMix is a mix node in one layer of the stratified topology.
	RoleMix Role = "mix"
	// RoleProvider is an edge node: the final hop of every path, holding
	// the mailboxes of the users of its Domain.
	RoleProvider Role = "provider"
)

// Limits of the directory.
const (
	// MaxLayers is the most mix layers a document may have. A path has
	// one hop per layer plus the provider, so a document's geometry must
	// also allow len(Layers)+1 hops.
	MaxLayers = 16
	// MaxNodes is the most nodes (mixes and providers) a document may list.
	MaxNodes = 1000
	// MaxDescriptorSize is the largest signed descriptor, envelope
	// included.
	MaxDescriptorSize = 8 << 10
	// MaxDocumentSize is the largest document body (SignedDocument.Raw).
	MaxDocumentSize = 4 << 20
	// MaxSignatures is the most signatures a signed document may carry.
	MaxSignatures = 32
	// MaxPeriod is the longest epoch. Mix keys rotate every epoch, and a
	// mix key decrypts every packet sent to it until it is erased, so a
	// long epoch is a long window of exposure.
	MaxPeriod = 24 * time.Hour

	maxNameLen    = 64
	maxDomainLen  = 253
	maxAddressLen = maxDomainLen + len("[]:65535")
)

// Descriptor is what a node publishes about itself for an epoch, signed by
// its identity key.
type Descriptor struct {
	// Name is the operator's label for the node: 1 to 64 bytes of
	// [a-z0-9-], unique in a document.
	Name string
	// Role is RoleMix or RoleProvider.
	Role Role
	// Layer is a mix's layer, 1 to MaxLayers; 0 for a provider.
	Layer int
	// Domain is, for a provider, the domain of its users' addresses
	// (user@domain): 1 to 253 bytes of lowercase DNS labels. Empty for a
	// mix.
	Domain string
	// Address is host:port of the node's link listener. The host is an IP
	// address in its canonical form (IPv6 in brackets) or a lowercase DNS
	// name.
	Address string
	// Onion is, for a provider that publishes its link listener as a Tor
	// v3 onion service, "<56 base32 characters>.onion:port" (lowercase,
	// checksum and version checked as rend-spec-v3 §6 defines them).
	// Clients on Tor reach the provider there without leaving Tor. Empty
	// for none; mixes have none.
	Onion string
	// IdentityKey signs the descriptor; its SHA-256 is the node's ID.
	IdentityKey ed25519.PublicKey
	// LinkKey is the node's X25519 Noise static key for links.
	LinkKey [32]byte
	// Epoch is the epoch this descriptor is for.
	Epoch uint64
	// MixKeys are the node's X25519 mix keys by epoch: exactly Epoch and
	// Epoch+1, so that a client holding this epoch's document can still
	// build packets in the next one.
	MixKeys map[uint64][32]byte
	// GeometryHash is the hash of the packet geometry the node speaks.
	GeometryHash mixnet.GeometryHash
}

// ID returns the node's ID, SHA-256(IdentityKey).
func (d *Descriptor) ID() mixnet.NodeID {
	return mixnet.NodeID(sha256.Sum256(d.IdentityKey))
}

// Validate reports whether d obeys the rules for a descriptor on its own;
// Document.Validate adds the rules between descriptors. Errors wrap
// ErrInvalid.
func (d *Descriptor) Validate() error {
	if d == nil {
		return fmt.Errorf("%w: nil descriptor", ErrInvalid)
	}
	if err := d.validate(); err != nil {
		return fmt.Errorf("%w: descriptor: %s", ErrInvalid, err)
	}
	return nil
}

// validate returns a plain error describing the first broken rule. It
// never quotes a field that failed validation, which may be long or
// hostile; names that passed are safe to print.
func (d *Descriptor) validate() error {
	if err := checkName(d.Name); err != nil {
		return fmt.Errorf("name: %s", err)
	}
	switch d.Role {
	case RoleMix:
		if d.Layer < 1 || d.Layer > MaxLayers {
			return fmt.Errorf("mix %q: layer %d is outside [1, %d]", d.Name, d.Layer, MaxLayers)
		}
		if d.Domain != "" {
			return fmt.Errorf("mix %q has a domain; only providers have one", d.Name)
		}
	case RoleProvider:
		if d.Layer != 0 {
			return fmt.Errorf("provider %q has layer %d; providers have layer 0", d.Name, d.Layer)
		}
		if err := checkDNSName(d.Domain); err != nil {
			return fmt.Errorf("provider %q: domain: %s", d.Name, err)
		}
	default:
		return fmt.Errorf("node %q: unknown role (%d bytes); want %q or %q", d.Name, len(d.Role), RoleMix, RoleProvider)
	}
	if err := checkAddress(d.Address); err != nil {
		return fmt.Errorf("node %q: address: %s", d.Name, err)
	}
	if d.Onion != "" {
		if d.Role != RoleProvider {
			return fmt.Errorf("mix %q has an onion address; only providers publish one", d.Name)
		}
		if err := CheckOnionAddress(d.Onion); err != nil {
			return fmt.Errorf("provider %q: onion: %s", d.Name, err)
		}
	}
	if len(d.IdentityKey) != ed25519.PublicKeySize {
		return fmt.Errorf("node %q: identity key is %d bytes, want %d", d.Name, len(d.IdentityKey), ed25519.PublicKeySize)
	}
	if d.LinkKey == ([32]byte{}) {
		return fmt.Errorf("node %q: link key is all zeros", d.Name)
	}
	if d.Epoch == math.MaxUint64 {
		return fmt.Errorf("node %q: epoch %d has no next epoch", d.Name, d.Epoch)
	}
	cur, okCur := d.MixKeys[d.Epoch]
	next, okNext := d.MixKeys[d.Epoch+1]
	if len(d.MixKeys) != 2 || !okCur || !okNext {
		return fmt.Errorf("node %q: mix keys must be for exactly epochs %d and %d (have %d keys)", d.Name, d.Epoch, d.Epoch+1, len(d.MixKeys))
	}
	switch {
	case cur == ([32]byte{}) || next == ([32]byte{}):
		return fmt.Errorf("node %q: a mix key is all zeros", d.Name)
	case cur == next:
		// The replay cache is per key epoch: a key reused in the next
		// epoch would accept this epoch's packets again.
		return fmt.Errorf("node %q: the same mix key for epochs %d and %d", d.Name, d.Epoch, d.Epoch+1)
	case cur == d.LinkKey || next == d.LinkKey:
		return fmt.Errorf("node %q: a mix key equals the link key", d.Name)
	}
	return nil
}

func checkName(s string) error {
	if len(s) < 1 || len(s) > maxNameLen {
		return fmt.Errorf("%d bytes, want 1 to %d", len(s), maxNameLen)
	}
	for i := 0; i < len(s); i++ {
		if !isLDH(s[i]) {
			return fmt.Errorf("byte %d is not one of [a-z0-9-]", i)
		}
	}
	return nil
}

func isLDH(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-'
}

// checkDNSName accepts lowercase DNS names: dot-separated labels of 1 to
// 63 bytes of [a-z0-9-] that neither start nor end with '-', at most 253
// bytes in all, and a last label that is not all digits (so that it cannot
// be mistaken for an IPv4 address). No trailing dot.
func checkDNSName(s string) error {
	if len(s) < 1 || len(s) > maxDomainLen {
		return fmt.Errorf("%d bytes, want 1 to %d", len(s), maxDomainLen)
	}
	start := 0
	allDigits := true
	for i := 0; i <= len(s); i++ {
		if i < len(s) && s[i] != '.' {
			c := s[i]
			if !isLDH(c) {
				return fmt.Errorf("byte %d is not one of [a-z0-9.-]", i)
			}
			if c < '0' || c > '9' {
				allDigits = false
			}
			continue
		}
		label := s[start:i]
		switch {
		case len(label) == 0:
			return fmt.Errorf("empty label at byte %d", start)
		case len(label) > 63:
			return fmt.Errorf("label at byte %d is %d bytes, want at most 63", start, len(label))
		case label[0] == '-' || label[len(label)-1] == '-':
			return fmt.Errorf("label at byte %d starts or ends with '-'", start)
		}
		if i == len(s) && allDigits {
			return fmt.Errorf("last label is all digits")
		}
		start, allDigits = i+1, true
	}
	return nil
}

// checkAddress accepts host:port in exactly the form net.JoinHostPort
// writes, with port 1 to 65535 in decimal without leading zeros, and a host
// that is a canonical IP address (not unspecified or multicast, no zone) or
// a DNS name as checkDNSName accepts.
func checkAddress(a string) error {
	if len(a) > maxAddressLen {
		return fmt.Errorf("%d bytes, want at most %d", len(a), maxAddressLen)
	}
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return fmt.Errorf("not host:port")
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || p == 0 || strconv.FormatUint(p, 10) != port {
		return fmt.Errorf("port is not a number in [1, 65535] without leading zeros")
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		switch {
		case ip.Zone() != "":
			return fmt.Errorf("IPv6 zone not allowed")
		case ip.String() != host:
			return fmt.Errorf("IP address is not in canonical form")
		case ip.IsUnspecified() || ip.IsMulticast():
			return fmt.Errorf("IP address is unspecified or multicast")
		}
	} else if err := checkDNSName(host); err != nil {
		return fmt.Errorf("host is neither an IP address nor a DNS name: %s", err)
	}
	if net.JoinHostPort(host, port) != a {
		return fmt.Errorf("not in canonical host:port form")
	}
	return nil
}

// Descriptor envelope: magic || version || '\n' || body length (u32, big
// endian) || body || Ed25519 signature over descriptorContext || body.
const (
	descriptorMagic      = "SNDESC"
	descriptorVersion    = '1'
	descriptorContext    = "sealnet descriptor v1\x00"
	descriptorHeaderSize = len(descriptorMagic) + 2 + 4
	// maxDescriptorBody is the largest body that fits MaxDescriptorSize.
	maxDescriptorBody = MaxDescriptorSize - descriptorHeaderSize - ed25519.SignatureSize
)

// SignDescriptor validates d, checks that priv is the private key of
// d.IdentityKey, and returns the signed encoding of d.
func SignDescriptor(d *Descriptor, priv ed25519.PrivateKey) ([]byte, error) {
	if err := d.Validate(); err != nil {
		return nil, err
	}
	if len(priv) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("%w: private key is %d bytes, want %d", ErrSignature, len(priv), ed25519.PrivateKeySize)
	}
	// The seed is the key; priv[32:] is a cached copy of the public key,
	// which a corrupted key file could get wrong. Sign with the key derived
	// from the seed.
	priv = ed25519.NewKeyFromSeed(priv.Seed())
	if !d.IdentityKey.Equal(priv.Public()) {
		return nil, fmt.Errorf("%w: private key does not match the identity key of %q", ErrSignature, d.Name)
	}
	body, err := encodeDescriptor(d)
	if err != nil {
		return nil, err
	}
	if len(body) > maxDescriptorBody {
		return nil, fmt.Errorf("%w: descriptor body is %d bytes, at most %d fit", ErrInvalid, len(body), maxDescriptorBody)
	}
	sig := ed25519.Sign(priv, withContext(descriptorContext, body))
	return appendDescriptorEnvelope(body, sig), nil
}

func appendDescriptorEnvelope(body, sig []byte) []byte {
	out := make([]byte, 0, descriptorHeaderSize+len(body)+len(sig))
	out = append(out, descriptorMagic...)
	out = append(out, descriptorVersion, '\n')
	out = binary.BigEndian.AppendUint32(out, uint32(len(body)))
	out = append(out, body...)
	return append(out, sig...)
}

// withContext returns context || msg, the message a signature covers.
func withContext(context string, msg []byte) []byte {
	m := make([]byte, 0, len(context)+len(msg))
	return append(append(m, context...), msg...)
}

// ParseDescriptor decodes a signed descriptor, verifies its signature with
// the identity key it contains, and validates it. It accepts only the
// exact bytes SignDescriptor produces for the descriptor.
func ParseDescriptor(b []byte) (*Descriptor, error) {
	if len(b) > MaxDescriptorSize {
		return nil, fmt.Errorf("%w: descriptor is %d bytes, at most %d allowed", ErrMalformed, len(b), MaxDescriptorSize)
	}
	body, rest, err := parseHeader(b, descriptorMagic, descriptorVersion, "descriptor", maxDescriptorBody)
	if err != nil {
		return nil, err
	}
	if len(rest) != ed25519.SignatureSize {
		return nil, fmt.Errorf("%w: descriptor has %d bytes after its body, want a %d-byte signature", ErrMalformed, len(rest), ed25519.SignatureSize)
	}
	var w wireDescriptor
	if err := decodeStrict(body, &w); err != nil {
		return nil, fmt.Errorf("%w: descriptor body: %v", ErrMalformed, err)
	}
	d, err := w.descriptor()
	if err != nil {
		return nil, err
	}
	if err := checkCanonical(body, func() ([]byte, error) { return encodeDescriptor(d) }, "descriptor"); err != nil {
		return nil, err
	}
	// Verify before validating, so that content errors are reported only
	// for descriptors their node signed.
	if !ed25519.Verify(d.IdentityKey, withContext(descriptorContext, body), rest) {
		return nil, fmt.Errorf("%w: descriptor signature does not verify under its identity key", ErrSignature)
	}
	if err := d.Validate(); err != nil {
		return nil, err
	}
	return d, nil
}

// parseHeader checks magic, version and body length (against max, before
// anything depends on it) and splits b into body and what follows.
func parseHeader(b []byte, magic string, version byte, what string, max int) (body, rest []byte, err error) {
	n := len(magic) + 2
	if len(b) < len(magic) || string(b[:len(magic)]) != magic {
		return nil, nil, fmt.Errorf("%w: not a %s (bad magic)", ErrMalformed, what)
	}
	if len(b) < n+4 {
		return nil, nil, fmt.Errorf("%w: %s truncated in its header (%d bytes)", ErrMalformed, what, len(b))
	}
	if b[len(magic)] != version || b[len(magic)+1] != '\n' {
		return nil, nil, fmt.Errorf("%w: unsupported %s version %q (want %q)", ErrMalformed, what, b[len(magic):n], string([]byte{version, '\n'}))
	}
	size := binary.BigEndian.Uint32(b[n:])
	switch {
	case size == 0:
		return nil, nil, fmt.Errorf("%w: %s body is empty", ErrMalformed, what)
	case uint64(size) > uint64(max):
		return nil, nil, fmt.Errorf("%w: %s body of %d bytes exceeds the maximum of %d", ErrMalformed, what, size, max)
	case uint64(size) > uint64(len(b)-n-4):
		return nil, nil, fmt.Errorf("%w: %s truncated: body of %d bytes, %d present", ErrMalformed, what, size, len(b)-n-4)
	}
	return b[n+4 : n+4+int(size)], b[n+4+int(size):], nil
}

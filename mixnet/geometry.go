package mixnet

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"

	"github.com/sealnet/sealnet/internal/crypto/lioness"
)

// Packet format versions.
const (
	// VersionX25519 is the KEM form of Sphinx on X25519: each hop's header
	// layer is a Noise_N_25519_ChaChaPoly_SHA256 handshake message.
	VersionX25519 = 0x01
	// A hybrid post-quantum variant (X25519 with ML-KEM) will take a new
	// version byte; nodes refuse versions they do not speak.
)

// Fixed sizes of the header fields, in bytes.
const (
	versionSize   = 1
	ephemeralSize = 32 // X25519 public key
	headerTagSize = 16 // Poly1305 tag of the hop's routing information
	// PayloadTagSize is the all-zero prefix that the final hop checks after
	// removing the last LIONESS layer (κ in the Sphinx paper).
	PayloadTagSize = 16
)

// Bounds accepted by Geometry.Validate.
const (
	maxMaxHops         = 16
	maxRoutingInfoSize = 1024
	maxPayloadSize     = 64 << 10
	minPayloadSize     = PayloadTagSize + lioness.MinBlockSize
)

// MaxPacketSize is the largest packet a valid geometry may describe. A
// link frame (mixnet/link) is one type byte, the packet and a 16-byte
// Poly1305 tag, announced by a 2-byte length, so the frame of a larger
// packet would not fit its length prefix: 65,535 − 17 = 65,518 bytes. The
// link package checks this sum at compile time.
const MaxPacketSize = 1<<16 - 1 - 17

// Geometry fixes the sizes of every packet in a network. All nodes of one
// network must share it; its Hash goes into directory descriptors so that a
// node can refuse a peer with another geometry, and into every hop's key
// agreement, so that a packet built for another geometry fails to unwrap.
type Geometry struct {
	// Version is the packet format version (VersionX25519).
	Version uint8
	// MaxHops is the longest path a packet can take. Every header has room
	// for exactly MaxHops hops whatever the real path length, so a hop cannot
	// tell how many hops remain.
	MaxHops int
	// RoutingInfoSize is the size of one hop's slot of routing commands.
	RoutingInfoSize int
	// PayloadSize is the size of the LIONESS-encrypted payload block,
	// including the PayloadTagSize integrity prefix.
	PayloadSize int
}

// DefaultGeometry returns the geometry sealnet networks use: 5 hops,
// 96-byte routing slots and a 2,048-byte payload block, for a packet of
// 2,577 bytes that carries 2,032 bytes of message.
func DefaultGeometry() Geometry {
	return Geometry{
		Version:         VersionX25519,
		MaxHops:         5,
		RoutingInfoSize: 96,
		PayloadSize:     2048,
	}
}

// Validate reports whether g describes a packet this package can build and
// process, and that a link can carry: PacketSize is at most MaxPacketSize.
func (g Geometry) Validate() error {
	switch {
	case g.Version != VersionX25519:
		return fmt.Errorf("%w: version %d is not supported (want %d)", ErrInvalidGeometry, g.Version, VersionX25519)
	case g.MaxHops < 1 || g.MaxHops > maxMaxHops:
		return fmt.Errorf("%w: MaxHops %d is outside [1, %d]", ErrInvalidGeometry, g.MaxHops, maxMaxHops)
	case g.RoutingInfoSize < minRoutingInfoSize || g.RoutingInfoSize > maxRoutingInfoSize:
		return fmt.Errorf("%w: RoutingInfoSize %d is outside [%d, %d]", ErrInvalidGeometry, g.RoutingInfoSize, minRoutingInfoSize, maxRoutingInfoSize)
	case g.PayloadSize < minPayloadSize || g.PayloadSize > maxPayloadSize:
		return fmt.Errorf("%w: PayloadSize %d is outside [%d, %d]", ErrInvalidGeometry, g.PayloadSize, minPayloadSize, maxPayloadSize)
	case g.PacketSize() > MaxPacketSize:
		return fmt.Errorf("%w: packets of %d bytes exceed %d (a link frame must fit a 2-byte length); with a %d-byte header PayloadSize can be at most %d",
			ErrInvalidGeometry, g.PacketSize(), MaxPacketSize, g.HeaderSize(), MaxPacketSize-g.HeaderSize())
	}
	return nil
}

// routingInfoLen is the size of the encrypted routing information β.
func (g Geometry) routingInfoLen() int { return g.MaxHops * g.RoutingInfoSize }

// HeaderSize is the size of a packet header in bytes.
func (g Geometry) HeaderSize() int {
	return versionSize + ephemeralSize + g.routingInfoLen() + headerTagSize
}

// PacketSize is the size of every packet in bytes.
func (g Geometry) PacketSize() int { return g.HeaderSize() + g.PayloadSize }

// MessageSize is how many bytes of message one packet carries.
func (g Geometry) MessageSize() int { return g.PayloadSize - PayloadTagSize }

// geometryEncodedSize is the size of MarshalBinary's output.
const geometryEncodedSize = 8

// MarshalBinary encodes g canonically: version (1 byte), MaxHops (1),
// RoutingInfoSize (2, big endian), PayloadSize (4, big endian).
func (g Geometry) MarshalBinary() ([]byte, error) {
	if err := g.Validate(); err != nil {
		return nil, err
	}
	b := make([]byte, geometryEncodedSize)
	b[0] = g.Version
	b[1] = byte(g.MaxHops)
	binary.BigEndian.PutUint16(b[2:], uint16(g.RoutingInfoSize))
	binary.BigEndian.PutUint32(b[4:], uint32(g.PayloadSize))
	return b, nil
}

// UnmarshalBinary decodes and validates a geometry encoded by MarshalBinary.
func (g *Geometry) UnmarshalBinary(b []byte) error {
	if len(b) != geometryEncodedSize {
		return fmt.Errorf("%w: encoding is %d bytes, want %d", ErrInvalidGeometry, len(b), geometryEncodedSize)
	}
	v := Geometry{
		Version:         b[0],
		MaxHops:         int(b[1]),
		RoutingInfoSize: int(binary.BigEndian.Uint16(b[2:])),
		PayloadSize:     int(binary.BigEndian.Uint32(b[4:])),
	}
	if err := v.Validate(); err != nil {
		return err
	}
	*g = v
	return nil
}

// GeometryHash identifies a geometry.
type GeometryHash [32]byte

// String returns the hash in hex.
func (h GeometryHash) String() string { return hex.EncodeToString(h[:]) }

// Hash returns SHA-256("sealnet geometry" || MarshalBinary()). It is
// meaningful only for a valid geometry; an invalid one hashes its fields
// anyway so that the result never matches a valid geometry's.
func (g Geometry) Hash() GeometryHash {
	b := make([]byte, 0, 16+geometryEncodedSize)
	b = append(b, "sealnet geometry"...)
	b = append(b, g.Version, byte(g.MaxHops))
	b = binary.BigEndian.AppendUint16(b, uint16(g.RoutingInfoSize))
	b = binary.BigEndian.AppendUint32(b, uint32(g.PayloadSize))
	if g.Validate() != nil {
		b = append(b, "invalid"...)
	}
	return sha256.Sum256(b)
}

// String describes g for logs and error messages.
func (g Geometry) String() string {
	return fmt.Sprintf("sphinx v%d: %d hops, %d-byte routing slots, %d-byte payload, %d-byte packets",
		g.Version, g.MaxHops, g.RoutingInfoSize, g.PayloadSize, g.PacketSize())
}

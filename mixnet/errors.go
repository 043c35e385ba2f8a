package mixnet

import "errors"

// Sentinel errors. Callers branch on them with errors.Is; the errors
// returned may wrap them with detail.
var (
	// ErrPacketSize: the input is not exactly Geometry.PacketSize bytes.
	ErrPacketSize = errors.New("mixnet: packet has the wrong size")
	// ErrUnsupportedVersion: the packet's version byte is not one this
	// geometry speaks.
	ErrUnsupportedVersion = errors.New("mixnet: unsupported packet version")
	// ErrHeaderAuth: the header failed authentication at this hop: it was
	// modified, built for another key or geometry, or is garbage.
	ErrHeaderAuth = errors.New("mixnet: header authentication failed")
	// ErrReplay: this hop has already processed this packet under this key.
	ErrReplay = errors.New("mixnet: replayed packet")
	// ErrReplayCacheFull: the replay cache for this key epoch holds as many
	// tags as it may; the packet is refused rather than accepted unchecked.
	ErrReplayCacheFull = errors.New("mixnet: replay cache is full")
	// ErrRouting: the routing commands in an authentic header are malformed.
	// Only the packet's creator can cause this.
	ErrRouting = errors.New("mixnet: malformed routing commands")
	// ErrPayloadAuth: the payload's integrity check failed at the final hop
	// (or at a SURB's creator): it was modified in transit.
	ErrPayloadAuth = errors.New("mixnet: payload integrity check failed")
	// ErrSURBUsed: the reply keys of a SURB have already opened a reply.
	ErrSURBUsed = errors.New("mixnet: SURB keys already used")
	// ErrInvalidGeometry: a geometry value fails validation or decoding.
	ErrInvalidGeometry = errors.New("mixnet: invalid geometry")
	// ErrInvalidKey: a key has the wrong length or is a low-order point.
	ErrInvalidKey = errors.New("mixnet: invalid key")
	// ErrPath: a path is empty, longer than the geometry allows, or carries
	// a delay that cannot be encoded.
	ErrPath = errors.New("mixnet: invalid path")
	// ErrMessageSize: a message is larger than Geometry.MessageSize.
	ErrMessageSize = errors.New("mixnet: message too large for the packet")
	// ErrMalformed: a serialized SURB, SURB key set or replay journal does
	// not decode.
	ErrMalformed = errors.New("mixnet: malformed encoding")
)

// Package mixnet holds what every node and client of the network shares:
// the packet format, SURBs and the replay cache. Its subpackages are the
// rest of the floor: link (Noise links with fixed-size frames), mix
// (mixing strategies), directory (descriptors, signed documents, path
// selection; with the authority daemon and the document client below it).
//
// # Packets
//
// Packets are Sphinx packets (Danezis and Goldberg, 2009) in the KEM form:
// each hop's header layer is a Noise_N_25519_ChaChaPoly_SHA256 handshake
// message carrying its own ephemeral key, so a hop spends one X25519
// operation per packet. docs/packet.md specifies the format.
//
// The package owns these properties, each checked by a test:
//
//   - Every packet has the same size (Geometry.PacketSize) on every link,
//     whatever its path length, message length or position on the path.
//   - A hop removes exactly one layer and learns only the next hop and the
//     delay the sender chose for it, or, at the final hop, the recipient; it
//     cannot tell how many hops came before or remain after.
//   - A hop's output shares no bits with its input: without the hop's key
//     an observer cannot link them by content.
//   - A header modified anywhere is refused by the first hop that sees it
//     (ErrHeaderAuth). A modified payload is noticed only at the final hop
//     (ErrPayloadAuth): intermediate hops cannot be used as a tagging
//     oracle.
//   - A packet is processed at most once per hop and key epoch (ErrReplay),
//     across restarts when the ReplayCache is journaled.
//   - A SURB lets a recipient reply to a sender it cannot identify; only the
//     SURB's creator can read the reply, and the reply block works once.
//
// All randomness is read from an io.Reader the caller passes in, so that
// packets and test vectors are reproducible. Packets are never logged.
package mixnet

//go:generate go run ../internal/cmd/testdatagen -root ..

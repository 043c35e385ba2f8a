// Package directory is the data model of sealnet's network directory: the
// descriptors nodes publish about themselves, the per-epoch document the
// directory authorities sign (the nodes, and the traffic parameters every
// client and relay uses: Parameters), their canonical encodings, signature
// verification, epoch arithmetic and path selection. It does no networking.
// docs/directory.md specifies the formats.
//
// # What it guarantees
//
// A client or relay is configured with n authority keys and a threshold k.
// Verify accepts a document only if at least k distinct configured
// authorities signed exactly its bytes (Ed25519, domain-separated). So:
//
//   - Fewer than k compromised authorities cannot make anyone accept a
//     network view they forged: extra or missing nodes, substituted mix or
//     link keys, another geometry, other traffic parameters. With k > 1, one compromised authority
//     is not enough.
//   - An attacker who withholds or corrupts signatures can only make a
//     document fail to verify; clients then keep the last good one, which
//     carries every node's mix keys for its epoch and the next
//     (SelectPath accepts both).
//   - Every encoding is canonical: a decoder accepts exactly the bytes the
//     encoder produces for the decoded value, and nothing else. A signature
//     therefore covers one byte string with one meaning, and two parties
//     that agree on a document agree on its bytes.
//   - A descriptor is signed by the node's identity key, whose SHA-256 is
//     the node's ID, so an authority accepts keys for an ID only from the
//     holder of that identity key. Documents carry descriptor bodies without
//     those signatures; clients rely on the k authorities for this.
//   - Decoders never panic, check every length against a fixed maximum
//     before using it, and reject trailing bytes, truncation, unknown
//     versions and non-canonical input, each with an error wrapping one of
//     the sentinel errors (ErrMalformed, ErrInvalid, ErrSignature,
//     ErrThreshold).
//
// Verify does not check freshness: the caller compares Document.Epoch with
// EpochAt(now, Period) and refuses to go back to an older epoch than one it
// has accepted, or a replayed old document rolls it back.
//
// Everything in a directory is public; nothing here handles secret keys
// beyond the signing calls, and no error message contains key material
// other than public keys.
package directory

// Package seal turns a message from one sealnet identity to another into
// fixed-size fragments that the recipient's provider stores without
// learning anything, and back (docs/envelope.md specifies the formats).
//
// Three layers, from the inside out:
//
//   - A session message, end to end between two identities: the first
//     messages of a session carry a PQXDH key agreement (X25519 with the
//     recipient's identity, signed and one-time prekeys, plus ML-KEM-768
//     with a signed post-quantum prekey); every message is encrypted with
//     its own key, derived from a per-direction HMAC-SHA256 chain (Signal's
//     symmetric-key ratchet, without the Diffie-Hellman ratchet) and a
//     random salt of its own, so that a session state restored from a
//     backup, which repeats message numbers, still never repeats a key.
//   - The sealed inner message: the sender's certificate (signed by the
//     sender's provider) and the session message.
//   - Fragments: the inner message in chunks, each chunk encrypted on its
//     own to the recipient's X25519 identity key under a fresh ephemeral
//     key (Signal's sealed-sender outer layer) and padded to one size.
//
// # What it guarantees
//
//   - Confidentiality and integrity of the content between the two
//     identities, against anyone holding neither identity's keys nor the
//     recipient's prekeys; against a quantum adversary recording traffic
//     now as long as ML-KEM-768 holds (authentication still rests on
//     X25519, as in PQXDH).
//   - The recipient learns the sender only as the identity that holds the
//     X25519 key the session message is authenticated under, and Open
//     returns a plaintext only if the sender certificate (checked by the
//     caller's verify against the provider key from the directory) names
//     exactly that identity. There is no other way to decrypt a received
//     message, so the check cannot be forgotten.
//   - Forward secrecy per message: each message key is used once and
//     deleted; the chain key that replaces it cannot give it back. The
//     initial message is forward secret once the recipient deletes the
//     one-time prekeys Open reports as used (a bundle with only the signed
//     and last-resort prekeys gives it forward secrecy only once those are
//     replaced).
//   - Replayed, reordered and lost messages: each message number decrypts
//     at most once (ErrReplay); up to MaxSkipped keys of skipped messages
//     are held so that reordering within MaxGap works; the initiator
//     repeats the key agreement in every message until it hears back, so
//     a lost first message does not strand the session.
//   - The provider, and anyone on the network, sees only blobs of one
//     size, each under its own ephemeral key, with envelope IDs that
//     cannot be linked without the message ID: no sender, no session, no
//     way to tell which blobs form one message beyond their timing.
//   - Decoders are strict and bounded: they check every length against a
//     fixed maximum before using it, refuse trailing bytes and
//     non-canonical encodings, and never panic; every error wraps one of
//     the package's sentinel errors.
//
// # What it does not guarantee
//
//   - No post-compromise security: whoever copies a session's state reads
//     every later message of that session (and, from the held skipped
//     keys, those still missing) until the session is replaced.
//   - Someone who steals a recipient's identity X25519 key can open the
//     fragments of recorded envelopes, and so learn their senders'
//     certificates, as with Signal's sealed sender; the content stays
//     protected by the session keys.
//   - Message length leaks at the granularity of a fragment, to anyone who
//     can group fragments (by timing).
//   - X3DH's limits stay: a replayed initial message that used no one-time
//     prekey makes a second session if the first was deleted; someone
//     with the recipient's signed prekey can impersonate senders to it.
//   - A restored session state repeats message numbers; their keys are
//     gone at the receiver, which refuses those messages (ErrReplay). The
//     caller notices a restored state and starts new sessions.
//
// The package owns the formats it depends on: sender certificates
// (cert.go) and prekey bundles (bundle.go), which providers sign, store as
// blobs and hand out. It imports only cryptography (and internal/crypto/hmac256),
// nothing that stores, listens or dials.
//
// Randomness comes from the io.Reader the caller passes, except for the
// ML-KEM encapsulation, which crypto/mlkem draws from the system. Secrets
// this package holds in local variables are wiped when done; those inside
// crypto/ecdh and the AEAD objects cannot be.
package seal

// Package sender is one user's client, behind `sealnet init`, `register`,
// `send`, `fetch`, `contacts` and `daemon` (docs/client.md): the identity
// and local state encrypted under a passphrase, contacts pinned on first
// use, sessions and sealed envelopes (package sender/seal), Poisson sending
// with drop and loop cover, acknowledgements through SURBs with randomized
// retransmission, and fetching with verification and deduplication. It
// also holds the user's DIR/config.toml schema (Config) and the route
// choice: which connections go through Tor, and when the onion route is
// refused for want of it (Config.SendRoute, TorConfig.Dialers).
//
// The properties it owns: the sender's identity travels only inside
// encryption to the recipient, so the recipient's provider and the network
// never learn it; every packet a client emits, real or cover, looks the
// same on the wire and leaves on the same Poisson schedule; a message is
// either acknowledged by the recipient's provider or reported to the user
// as not delivered, and is shown to the recipient once; nothing is stored
// on disk unencrypted.
package sender

// Package sender is the client library behind `sealnet send` and `sealnet
// fetch`: identities, first contact from prekeys, sealed-sender envelopes,
// and Poisson sending with cover traffic.
//
// The property it owns: the sender's identity travels only inside
// encryption to the recipient, so the recipient's provider and the network
// never learn it; every packet a client emits, real or cover, looks the
// same on the wire and leaves on the same Poisson schedule.
//
// The client arrives with the client issue; today the package holds only
// this statement of its job.
package sender

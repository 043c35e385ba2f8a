// Package proto is a provider's wire protocol (docs/mailbox.md): the
// requests and replies on a direct link and through the mix network,
// pages and their records, prekey uploads, the SURB-ID layout that
// authenticates replies (replyid.go), and Client, which speaks it on a
// direct link.
//
// It is what a client and a provider share, and nothing more: the client
// (package sender) imports it and not the provider (package mailbox) or
// its storage. Messages are encoded with cryptobyte; every decoder is
// strict (no trailing bytes, no field over its maximum, zero padding) and
// has a fuzz target that asserts a round trip.
package proto

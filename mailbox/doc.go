// Package mailbox is a provider's mailbox (`sealnet mailbox`): it keeps
// sealed envelopes for its users in a store (mailbox/store; the Badger one,
// mailbox/store/badger, chosen by NewProvider) until they fetch them, hands out their prekeys, signs their sender certificates,
// and serves all of this over direct Noise links and through the mix
// network (docs/mailbox.md).
//
// The properties it owns:
//
//   - A provider learns that an envelope arrived for one of its users,
//     never who sent it: envelopes are sealed end to end and no request
//     carries a sender.
//   - An envelope the provider acknowledged survives a crash and is
//     delivered once: the acknowledgement follows the durable commit,
//     envelope IDs make delivery idempotent, and what was fetched is a
//     recorded position, never a delete (Badger can resurrect deleted
//     keys).
//   - Each one-time prekey is handed out at most once, under concurrency
//     and across crashes.
//   - Only a mailbox's owner reads it, and every answer to a fetch has
//     the same size.
//   - From outside, an address that does not exist answers like one that
//     does.
package mailbox

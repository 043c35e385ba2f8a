// Package mailbox is a provider's store (`sealnet mailbox`): it keeps
// sealed envelopes for its users in an embedded Badger database until they
// fetch them, and hands out their prekeys.
//
// The property it owns: a provider learns that a packet arrived for one of
// its users, never who sent it, and hands each one-time prekey out at most
// once. An envelope it acknowledged survives a crash and is delivered at
// most once.
//
// The store arrives with the mailbox issue; today the package holds only
// this statement of its job.
package mailbox

package seal

import "errors"

// Sentinel errors. Every error this package returns wraps exactly one of
// them (with errors.Is), plus, where it says so, the error of the layer
// below (a certificate check, a bundle signature).
var (
	// ErrMalformed: input that does not have the documented form (wrong
	// length, unknown version or type, non-canonical encoding, trailing
	// bytes). Nothing secret was used to decide it.
	ErrMalformed = errors.New("seal: malformed input")
	// ErrAuth: decryption or authentication failed (wrong key, changed
	// bytes, low-order public key, a message not belonging to its session).
	ErrAuth = errors.New("seal: authentication failed")
	// ErrReplay: the message number was already used in its session (its key
	// is gone), or it is too old for the skipped-key window.
	ErrReplay = errors.New("seal: message already received")
	// ErrGap: a message number more than MaxGap ahead of the next expected
	// one in its session.
	ErrGap = errors.New("seal: message number too far ahead")
	// ErrUnknownSession: a follow-up message for a session the caller does
	// not have (or one that belongs to another local identity).
	ErrUnknownSession = errors.New("seal: unknown session")
	// ErrUnknownPrekey: an initial message names a prekey the recipient
	// does not hold (already used and deleted, or never issued).
	ErrUnknownPrekey = errors.New("seal: unknown prekey")
	// ErrSenderMismatch: the sender certificate names identity keys other
	// than the ones the session message authenticates.
	ErrSenderMismatch = errors.New("seal: sender certificate does not match the session identity")
	// ErrCertificate: the caller's verify callback refused the sender
	// certificate (the callback's error is wrapped too).
	ErrCertificate = errors.New("seal: sender certificate refused")
	// ErrBundle: a prekey bundle that fails verification or carries a key
	// that cannot be used (ErrPrekey, if that is why, is wrapped too).
	ErrBundle = errors.New("seal: prekey bundle refused")
	// ErrTooLarge: a plaintext, certificate or message beyond the limits,
	// a message that needs more than MaxFragments fragments, or a session
	// that has used up its message numbers.
	ErrTooLarge = errors.New("seal: too large")
	// ErrDuplicate: a fragment the Reassembler already holds, or one of a
	// message it has recently completed (a retransmission).
	ErrDuplicate = errors.New("seal: duplicate fragment")
	// ErrKeyDropped: a message whose key a bound (count, age) dropped.
	ErrKeyDropped = errors.New("seal: message key dropped by a bound")
)

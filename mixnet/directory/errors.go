package directory

import "errors"

// Sentinel errors. Callers branch on them with errors.Is; the errors
// returned wrap them with detail.
var (
	// ErrMalformed: the input does not decode: wrong magic, unsupported
	// version, a length over its maximum, truncation, trailing bytes, or a
	// body that is not the canonical encoding of its content.
	ErrMalformed = errors.New("directory: malformed encoding")
	// ErrInvalid: the content decodes but breaks a rule of the directory
	// (bad name or address, wrong key epochs, duplicate nodes, geometry
	// mismatch, limits).
	ErrInvalid = errors.New("directory: invalid content")
	// ErrSignature: a signature does not verify, or a private key does not
	// match the public key it is meant to sign for.
	ErrSignature = errors.New("directory: bad signature")
	// ErrThreshold: a document lacks enough valid signatures by distinct
	// configured authorities, or the threshold configuration itself cannot
	// be met.
	ErrThreshold = errors.New("directory: signature threshold not met")
	// ErrPath: SelectPath cannot build a path: unknown destination, an
	// epoch the document has no keys for, or a bad argument.
	ErrPath = errors.New("directory: cannot select path")
)

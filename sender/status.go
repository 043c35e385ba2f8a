package sender

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// Status is where an outgoing message stands. The state (Outgoing) and
// the history (Message) save its code, a number; String gives the text
// shown to the user. States and histories written before the codes hold
// the text, which Status.UnmarshalJSON reads back to the same status.
//
// The codes are on disk: never renumber one, only add new ones at the
// end.
type Status uint8

// Message statuses. The zero Status is that of a received message, which
// has none.
const (
	StatusQueued    Status = 1 // in the history when queued
	StatusBundle    Status = 2 // waiting for the recipient's keys (a first contact)
	StatusSending   Status = 3 // sealed; fragments out, not all acknowledged
	StatusDelivered Status = 4 // acknowledged by the recipient's provider
	StatusFailed    Status = 5 // given up, or refused
	StatusBlocked   Status = 6 // the recipient's identity changed; held until trusted
	// StatusSpooled is the status Spooled gives a message still in the
	// spool: handed to a daemon that has not queued it yet. It is never
	// saved.
	StatusSpooled Status = 7
)

// statusText is the display text of each status, and what the state and
// history saved before the codes.
var statusText = [...]string{
	0:               "",
	StatusQueued:    "queued",
	StatusBundle:    "fetching keys",
	StatusSending:   "sending",
	StatusDelivered: "delivered",
	StatusFailed:    "not delivered",
	StatusBlocked:   "blocked: identity changed",
	StatusSpooled:   "handed to the daemon, not yet queued",
}

// String returns the text shown to the user ("" for a received message).
func (s Status) String() string {
	if int(s) < len(statusText) {
		return statusText[s]
	}
	return fmt.Sprintf("Status(%d)", uint8(s))
}

// Done reports whether the message's outcome is known: delivered, not
// delivered, or blocked.
func (s Status) Done() bool {
	return s == StatusDelivered || s == StatusFailed || s == StatusBlocked
}

// UnmarshalJSON reads a status code, or the display text that states and
// histories saved before the codes. An unknown code or text is an error:
// a state written by a newer client is refused rather than misread.
func (s *Status) UnmarshalJSON(b []byte) error {
	if bytes.Equal(b, []byte("null")) {
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var text string
		if err := json.Unmarshal(b, &text); err != nil {
			return err
		}
		for code, t := range statusText {
			if t == text {
				*s = Status(code)
				return nil
			}
		}
		return fmt.Errorf("sender: unknown message status %q", text)
	}
	var code uint64
	if err := json.Unmarshal(b, &code); err != nil {
		return fmt.Errorf("sender: message status %s is neither a status code nor a status text", b)
	}
	if code >= uint64(len(statusText)) {
		return fmt.Errorf("sender: unknown message status code %d (written by a newer sealnet?)", code)
	}
	*s = Status(code)
	return nil
}

package sender

import "fmt"

// EventKind says what an Event is about.
type EventKind uint8

// Event kinds. The zero EventKind is none of them.
const (
	// EventReceived: a message arrived (Event.Message).
	EventReceived EventKind = iota + 1
	// EventDelivered: an outgoing message (Event.ID) was acknowledged.
	EventDelivered
	// EventFailed: an outgoing message was not delivered (Event.Text says
	// why).
	EventFailed
	// EventWarning: a message held because its recipient's identity
	// changed (Event.ID), a contact's changed identity (Event.To), the
	// loop alarm or a restored state (neither set).
	EventWarning
	// EventNotice: the loop alarm cleared.
	EventNotice
)

var eventKindText = [...]string{
	EventReceived:  "received",
	EventDelivered: "delivered",
	EventFailed:    "failed",
	EventWarning:   "warning",
	EventNotice:    "notice",
}

// String returns the kind's name as the CLI prints it: "received",
// "delivered", "failed", "warning" or "notice".
func (k EventKind) String() string {
	if k != 0 && int(k) < len(eventKindText) {
		return eventKindText[k]
	}
	return fmt.Sprintf("EventKind(%d)", uint8(k))
}

package sender

import "testing"

// TestEventKindText: each kind prints as the word the CLI has always
// printed for it (in `--json` output and scripts that read it).
func TestEventKindText(t *testing.T) {
	for k, want := range map[EventKind]string{EventReceived: "received", EventDelivered: "delivered", EventFailed: "failed",
		EventWarning: "warning", EventNotice: "notice", 0: "EventKind(0)", 6: "EventKind(6)"} {
		if k.String() != want {
			t.Errorf("kind %d prints %q, want %q", uint8(k), k.String(), want)
		}
	}
}

package main

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/sealnet/sealnet/sender"
)

// TestHistoryJSON: `history --json` prints an outgoing message's status
// as its text, and a received message without one, as it did when the
// history saved the text (the history now saves a code).
func TestHistoryJSON(t *testing.T) {
	sent := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, c := range []struct {
		m    *sender.Message
		want string
	}{
		{&sender.Message{ID: "01", From: "alice@a", To: "bob@b", Sent: sent, Body: "hi", Outgoing: true, Status: sender.StatusFailed, Warning: "expired"},
			`{"id":"01","from":"alice@a","to":"bob@b","sent":"2026-01-02T03:04:05Z","received":"0001-01-01T00:00:00Z","body":"hi","verified":false,"fingerprint":"","warning":"expired","outgoing":true,"status":"not delivered"}`},
		{&sender.Message{ID: "02", From: "bob@b", To: "alice@a", Sent: sent, Received: sent, Body: "yo", Verified: true, Fingerprint: "ab"},
			`{"id":"02","from":"bob@b","to":"alice@a","sent":"2026-01-02T03:04:05Z","received":"2026-01-02T03:04:05Z","body":"yo","verified":true,"fingerprint":"ab"}`},
	} {
		b, err := json.Marshal(historyJSON{c.m, c.m.Status.String()})
		if err != nil || string(b) != c.want {
			t.Errorf("history --json prints\n%s (%v)\nwant\n%s", b, err, c.want)
		}
	}
}

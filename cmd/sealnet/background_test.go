package main

import (
	"strings"
	"testing"

	"github.com/sealnet/sealnet/sender"
)

// TestPrintRedacted: a background daemon's log names no contact and shows
// no message text, but says what a warning without either is about.
func TestPrintRedacted(t *testing.T) {
	const addr = "carol@example"
	events := []sender.Event{
		{Kind: sender.EventReceived, Message: &sender.Message{From: addr, Body: "secret words"}},
		{Kind: sender.EventDelivered, To: addr, ID: "m1"},
		{Kind: sender.EventFailed, To: addr, ID: "m2", Text: "secret words"},
		{Kind: sender.EventWarning, To: addr, ID: "m3", Text: "held for " + addr},
		{Kind: sender.EventWarning, To: addr, Text: "the key of " + addr + " changed"},
		{Kind: sender.EventWarning, Text: "cover packets do not come back"},
		{Kind: sender.EventNotice, Text: "cover packets come back normally again"},
	}
	var b strings.Builder
	for _, e := range events {
		printRedacted(&b, e)
	}
	out := b.String()
	for _, leak := range []string{addr, "secret"} {
		if strings.Contains(out, leak) {
			t.Errorf("the log shows %q:\n%s", leak, out)
		}
	}
	for _, want := range []string{"held: message m3", "warning about a contact", "warning: cover packets do not come back", "notice: cover packets come back"} {
		if !strings.Contains(out, want) {
			t.Errorf("the log lacks %q:\n%s", want, out)
		}
	}
}

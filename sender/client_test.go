package sender_test

import (
	"testing"
	"time"

	"github.com/sealnet/sealnet/internal/testbed/testnet"
	"github.com/sealnet/sealnet/sender"
)

func TestSendReceive(t *testing.T) {
	n := startNetwork(t, testnet.InProcessOptions{})
	alice := n.newUser(t, "alice@a", sender.Options{})
	bob := n.newUser(t, "bob@b", sender.Options{})

	id := alice.send("bob@b", "hello bob")
	if e := alice.waitOutcome(id, 60*time.Second); e.Kind != sender.EventDelivered {
		t.Fatalf("outcome %s: %s", e.Kind, e.Text)
	}
	m := bob.waitMessage("hello bob", 30*time.Second)
	if m.From != "alice@a" || !m.Verified || m.Fingerprint != alice.c.Fingerprint() {
		t.Fatalf("received %+v; want verified from alice@a with fingerprint %s", m, alice.c.Fingerprint())
	}
	// The reply goes with Alice's token, on the session Alice started.
	rid := bob.send("alice@a", "hello alice")
	if e := bob.waitOutcome(rid, 60*time.Second); e.Kind != sender.EventDelivered {
		t.Fatalf("reply outcome %s: %s", e.Kind, e.Text)
	}
	r := alice.waitMessage("hello alice", 30*time.Second)
	if r.From != "bob@b" || !r.Verified {
		t.Fatalf("reply %+v", r)
	}
}

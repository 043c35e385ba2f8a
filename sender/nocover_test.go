package sender_test

import (
	"sync"
	"testing"
	"time"

	"github.com/sealnet/sealnet/internal/testbed/testnet"
	"github.com/sealnet/sealnet/mixnet/directory"
	"github.com/sealnet/sealnet/sender"
)

// TestRateZeroSendsAtOnce: a client with Rate 0 (measurement control
// runs) sends a queued message at once and no drop cover at all, and the
// message is delivered as usual.
func TestRateZeroSendsAtOnce(t *testing.T) {
	n := startNetwork(t, testnet.InProcessOptions{})
	var mu sync.Mutex
	kinds := map[string]int{}
	var firstReal time.Time
	filter := func(kind string, _ []byte) bool {
		mu.Lock()
		defer mu.Unlock()
		kinds[kind]++
		if (kind == "real" || kind == "bundle") && firstReal.IsZero() {
			firstReal = time.Now()
		}
		return true
	}
	off := func(p *directory.Parameters) { p.ClientRate = 0 }
	alice := n.newUser(t, "alice@a", sender.Options{Filter: filter}, off)
	bob := n.newUser(t, "bob@b", sender.Options{}, off)
	time.Sleep(1500 * time.Millisecond) // a Poisson stream would have sent by now
	mu.Lock()
	idle := len(kinds)
	mu.Unlock()
	if idle != 0 {
		t.Fatalf("an idle client with Rate 0 sent %v", kinds)
	}
	queued := time.Now()
	id := alice.send("bob@b", "no cover")
	if e := alice.waitOutcome(id, 30*time.Second); e.Kind != sender.EventDelivered {
		t.Fatalf("outcome %+v", e)
	}
	bob.waitMessage("no cover", 30*time.Second)
	mu.Lock()
	defer mu.Unlock()
	if kinds["drop"] != 0 || kinds["loop"] != 0 {
		t.Errorf("cover sent with Rate 0: %v", kinds)
	}
	if d := firstReal.Sub(queued); d < 0 || d > 200*time.Millisecond {
		t.Errorf("the first packet left %v after queueing; want at once", d)
	}
}

package sender

import (
	"os/exec"
	"strings"
	"testing"
)

// TestClientSpeaksOnlyTheProtocol: the client reaches a provider through
// its wire protocol (mailbox/proto), never through the provider's code:
// the package sender depends on neither the service (mailbox), nor its
// storage (mailbox/store...), nor Badger. (Its tests may import mailbox to
// run a provider.)
func TestClientSpeaksOnlyTheProtocol(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	seen := false
	for _, p := range strings.Fields(string(out)) {
		switch {
		case p == "github.com/sealnet/sealnet/mailbox/proto":
			seen = true
		case p == "github.com/sealnet/sealnet/mailbox", strings.HasPrefix(p, "github.com/sealnet/sealnet/mailbox/"),
			strings.Contains(p, "badger"), p == "github.com/sealnet/sealnet/relay":
			t.Errorf("package sender depends on %s", p)
		}
	}
	if !seen {
		t.Error("package sender does not depend on mailbox/proto (has this test lost its subject?)")
	}
}

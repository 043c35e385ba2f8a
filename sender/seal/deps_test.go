package seal

import (
	"os/exec"
	"strings"
	"testing"
)

// TestEnvelopeIsALeaf: the envelope's cryptography depends on
// cryptography, not on anything that stores, listens or dials. Of this
// module it imports internal/crypto/hmac256 only; outside it, beside
// golang.org/x/crypto, only the Reed–Solomon code of the PQ ratchet's
// shards (with the CPU feature probe it uses).
func TestEnvelopeIsALeaf(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	allowed := map[string]bool{
		"github.com/sealnet/sealnet/sender/seal":             true,
		"github.com/sealnet/sealnet/internal/crypto/hmac256": true,
	}
	for _, p := range strings.Fields(string(out)) {
		first, _, _ := strings.Cut(p, "/")
		switch {
		case allowed[p]:
		case strings.HasPrefix(p, "github.com/sealnet/sealnet/"):
			t.Errorf("package seal depends on %s", p)
		case p == "github.com/klauspost/reedsolomon" || p == "github.com/klauspost/cpuid/v2":
		case strings.Contains(first, ".") && !strings.HasPrefix(p, "golang.org/x/crypto/") && !strings.HasPrefix(p, "golang.org/x/sys/"):
			t.Errorf("package seal depends on %s (only golang.org/x/crypto and the standard library are expected)", p)
		}
	}
}

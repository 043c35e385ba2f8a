package relay

import (
	"context"
	"errors"
	"net"
	"testing"
)

// TestOutboundAddress: links are dialed from outbound_address, so that a
// host with several addresses shows the one the node is known by; a value
// that is not an IP is a configuration error.
func TestOutboundAddress(t *testing.T) {
	c := Config{Name: "m", Role: "mix", Layer: 1, Listen: "127.0.0.12:0", DataDir: t.TempDir(), OutboundAddress: "127.0.0.12",
		Directory: DirectoryConfig{Authorities: []AuthorityConfig{{URL: "http://127.0.0.1:1", Key: "0000000000000000000000000000000000000000000000000000000000000000"}}}}
	n, err := New(c, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	conn, err := n.opts.Dial(context.Background(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if ip := conn.LocalAddr().(*net.TCPAddr).IP.String(); ip != "127.0.0.12" {
		t.Errorf("dialed from %s, want 127.0.0.12", ip)
	}
	for _, bad := range []string{"localhost", "127.0.0.12:80", "not an ip"} {
		c.OutboundAddress = bad
		if err := c.Validate(); !errors.Is(err, ErrConfig) {
			t.Errorf("outbound_address %q: Validate = %v, want ErrConfig", bad, err)
		}
	}
}

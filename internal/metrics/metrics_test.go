package metrics

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// sealnetLines keeps the lines of an exposition about sealnet_ families,
// leaving out the Go runtime and process collectors.
func sealnetLines(s string) string {
	var b strings.Builder
	for line := range strings.Lines(s) {
		if strings.HasPrefix(line, "sealnet_") || strings.HasPrefix(line, "# HELP sealnet_") || strings.HasPrefix(line, "# TYPE sealnet_") {
			b.WriteString(line)
		}
	}
	return b.String()
}

func TestExposition(t *testing.T) {
	r := NewRegistry()
	in := r.Counter("sealnet_packets_in_total", "Packets received.")
	drop := r.Counter("sealnet_packets_dropped_total", "Packets dropped.", "reason", "queue_full")
	r.Counter("sealnet_packets_dropped_total", "Packets dropped.", "reason", "replay").Add(3)
	q := r.Gauge("sealnet_queue_depth", "Queue depth.")
	h := r.Histogram("sealnet_unwrap_seconds", "Unwrap time.", []float64{0.001, 0.01})
	in.Add(5)
	drop.Inc()
	q.Set(7)
	h.Observe(0.0005)
	h.Observe(0.005)
	h.Observe(1)
	var b bytes.Buffer
	if _, err := r.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	want := `# HELP sealnet_packets_dropped_total Packets dropped.
# TYPE sealnet_packets_dropped_total counter
sealnet_packets_dropped_total{reason="queue_full"} 1
sealnet_packets_dropped_total{reason="replay"} 3
# HELP sealnet_packets_in_total Packets received.
# TYPE sealnet_packets_in_total counter
sealnet_packets_in_total 5
# HELP sealnet_queue_depth Queue depth.
# TYPE sealnet_queue_depth gauge
sealnet_queue_depth 7
# HELP sealnet_unwrap_seconds Unwrap time.
# TYPE sealnet_unwrap_seconds histogram
sealnet_unwrap_seconds_bucket{le="0.001"} 1
sealnet_unwrap_seconds_bucket{le="0.01"} 2
sealnet_unwrap_seconds_bucket{le="+Inf"} 3
sealnet_unwrap_seconds_sum 1.0055
sealnet_unwrap_seconds_count 3
`
	if got := sealnetLines(b.String()); got != want {
		t.Fatalf("exposition:\n%s\nwant:\n%s", got, want)
	}
	if in.Load() != 5 || drop.Load() != 1 {
		t.Fatalf("Load: %d, %d; want 5, 1", in.Load(), drop.Load())
	}
}

// TestLabelsAggregateOnly: a series may be labelled only by a fixed
// classification with a word for its value; a label that could name a
// peer, a user or a packet is refused at registration.
func TestLabelsAggregateOnly(t *testing.T) {
	r := NewRegistry()
	// Controls: the labels the daemons use are accepted.
	r.Counter("sealnet_a_total", "A.", "reason", "queue_full")
	r.Counter("sealnet_b_total", "B.", "outcome", "surb_reply")
	r.Gauge("sealnet_c", "C.", "kind", "loss")
	r.GaugeFunc("sealnet_d", "D.", func() float64 { return 0 }, "figure", "returned")
	for _, c := range []struct {
		what     string
		register func()
	}{
		{"a peer label", func() { r.Counter("sealnet_e_total", "E.", "peer", "mix") }},
		{"a user label", func() { r.Gauge("sealnet_f", "F.", "user", "bob") }},
		{"an address label", func() { r.GaugeFunc("sealnet_g", "G.", func() float64 { return 0 }, "address", "localhost") }},
		{"a node ID as a value", func() { r.Counter("sealnet_h_total", "H.", "reason", "9f86d081884c7d65") }},
		{"an address as a value", func() { r.CounterFunc("sealnet_i_total", "I.", func() uint64 { return 0 }, "kind", "127.0.0.1:9000") }},
		{"a mailbox as a value", func() { r.Counter("sealnet_j_total", "J.", "outcome", "bob@a") }},
		{"an upper-case value", func() { r.Counter("sealnet_k_total", "K.", "outcome", "Bob") }},
		{"an empty value", func() { r.Counter("sealnet_l_total", "L.", "outcome", "") }},
		{"a long value", func() { r.Counter("sealnet_m_total", "M.", "outcome", strings.Repeat("a", 33)) }},
		{"an odd list", func() { r.Counter("sealnet_n_total", "N.", "reason") }},
		{"a histogram with a peer label", func() { r.Histogram("sealnet_o_seconds", "O.", []float64{1}, "peer", "mix") }},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s was accepted", c.what)
				}
			}()
			c.register()
		}()
	}
	var b bytes.Buffer
	if _, err := r.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"sealnet_e_total", "sealnet_f", "sealnet_g", "sealnet_h_total", "sealnet_o_seconds", "bob"} {
		if strings.Contains(b.String(), s) {
			t.Errorf("a refused series shows up: %s", s)
		}
	}
}

// TestServe scrapes the HTTP endpoint: the registry's own series and the
// Go runtime and process collectors' are there.
func TestServe(t *testing.T) {
	r := NewRegistry()
	r.Counter("x_total", "X.").Add(2)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, r) }()
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + ln.Addr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Errorf("Content-Type %q", ct)
	}
	for _, want := range []string{"\nx_total 2\n", "\ngo_goroutines ", "\nprocess_resident_memory_bytes ", "\nprocess_open_fds "} {
		if !strings.Contains(string(body), want) {
			t.Errorf("body lacks %q:\n%s", want, body)
		}
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return")
	}
}

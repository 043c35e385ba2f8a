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
	if b.String() != want {
		t.Fatalf("exposition:\n%s\nwant:\n%s", b.String(), want)
	}
}

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
	if !strings.Contains(string(body), "x_total 2") {
		t.Fatalf("body: %s", body)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return")
	}
}

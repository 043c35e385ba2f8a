package relay_test

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sealnet/sealnet/internal/testbed/testnet"
	"github.com/sealnet/sealnet/mixnet"
	"github.com/sealnet/sealnet/mixnet/directory"
)

// sampleLabels matches the label set of one sample line.
var sampleLabels = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)\{(.*)\} `)

// labelPair matches one name="value" pair of a label set.
var labelPair = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"`)

// peerLeaks lists what in an exposition could tell peers or users apart:
// a sealnet_ series with a label other than an aggregate classification
// (or a histogram's le), a label value equal to one of ids, or one of ids
// anywhere in the text.
func peerLeaks(body string, ids []string) []string {
	aggregate := map[string]bool{"reason": true, "outcome": true, "kind": true, "figure": true, "le": true}
	var leaks []string
	for line := range strings.Lines(body) {
		m := sampleLabels.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		for _, p := range labelPair.FindAllStringSubmatch(m[2], -1) {
			if strings.HasPrefix(m[1], "sealnet_") && !aggregate[p[1]] {
				leaks = append(leaks, fmt.Sprintf("%s: label %s", m[1], p[1]))
			}
			for _, id := range ids {
				if p[2] == id {
					leaks = append(leaks, fmt.Sprintf("%s: %s=%q", m[1], p[1], p[2]))
				}
			}
		}
	}
	for _, id := range ids {
		if len(id) >= 5 && strings.Contains(body, id) {
			leaks = append(leaks, "the text names "+id)
		}
	}
	return leaks
}

// TestMetricsScrape scrapes the /metrics endpoint of every node of a
// running network after traffic. Each serves its own series beside the Go
// runtime's and the process's. No series names a peer or a user: every
// label of a sealnet_ series is an aggregate classification, and no node
// name, domain, address, ID or key, nor a recipient, appears.
func TestMetricsScrape(t *testing.T) {
	n := startNetwork(t, testnet.Spec{EpochPeriod: time.Hour, Metrics: true}, nil)
	inj := testnet.NewInjector(n.doc.Doc)
	defer inj.Close()
	const count = 20
	var ids []string
	for i := range uint32(count) {
		dest := n.provider(t, int(i))
		rcpt := mixnet.RecipientID{1, byte(i)}
		ids = append(ids, hex.EncodeToString(rcpt[:8]))
		entry, pkt, err := inj.Packet(dest, rcpt, message(i), 5*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		if err := inj.Send(context.Background(), entry, pkt); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "20 deliveries", 60*time.Second, func() bool { return n.del.count() >= count }, n.dump)
	var nodes []*directory.Descriptor
	for _, l := range n.doc.Doc.Layers {
		nodes = append(nodes, l...)
	}
	for _, d := range append(nodes, n.doc.Doc.Providers...) {
		id := d.ID()
		ids = append(ids, d.Name, d.Address, id.String(), hex.EncodeToString(d.IdentityKey[:8]), hex.EncodeToString(d.LinkKey[:8]))
		if d.Domain != "" {
			ids = append(ids, d.Domain)
		}
	}
	// Control: the check catches a series per peer, by label or by value.
	for _, leak := range []string{
		`sealnet_packets_in_total{peer="x"} 3`,
		`sealnet_packets_dropped_total{reason="` + n.doc.Doc.Providers[0].Name + `"} 1`,
		`sealnet_packets_dropped_total{reason="` + n.doc.Doc.Providers[0].Domain + `"} 1`,
		`sealnet_packets_dropped_total{reason="` + ids[0] + `"} 1`,
	} {
		if len(peerLeaks("# TYPE sealnet_packets_in_total counter\n"+leak+"\n", ids)) == 0 {
			t.Fatalf("control: %s goes unnoticed", leak)
		}
	}

	c := &http.Client{Timeout: 5 * time.Second}
	for _, node := range n.nw.Nodes {
		if node.Metrics == "" {
			t.Fatalf("%s has no metrics address", node.Name)
		}
		resp, err := c.Get("http://" + node.Metrics + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %s, %v", node.Name, resp.Status, err)
		}
		body := string(b)
		for _, series := range []string{
			"go_goroutines", "process_resident_memory_bytes", "process_open_fds",
			"sealnet_packets_in_total", "sealnet_packets_out_total", `sealnet_packets_dropped_total{reason="replay"}`,
			`sealnet_unwrap_seconds_bucket{le="+Inf"}`, "sealnet_epoch", "sealnet_mix_queue_depth",
			`sealnet_relay_loop_alarm{kind="loss"}`, `sealnet_relay_loop_window{figure="sent"}`, "sealnet_link_frames_in_total",
		} {
			if !strings.Contains(body, "\n"+series+" ") {
				t.Errorf("%s: no series %s", node.Name, series)
			}
		}
		if !strings.Contains(body, "# HELP sealnet_packets_in_total Packets received on links.\n# TYPE sealnet_packets_in_total counter\n") {
			t.Errorf("%s: sealnet_packets_in_total lost its help or type", node.Name)
		}
		if v := scraped(body, "sealnet_packets_in_total"); v == 0 {
			t.Errorf("%s counted no packets in", node.Name)
		}
		for _, leak := range peerLeaks(body, ids) {
			t.Errorf("%s: %s", node.Name, leak)
		}
	}
}

// scraped reads one sample of an exposition, 0 if absent.
func scraped(body, series string) float64 {
	for line := range strings.Lines(body) {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			var f float64
			fmt.Sscan(v, &f)
			return f
		}
	}
	return 0
}

package measure

import (
	"context"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/sealnet/sealnet/internal/testbed/capture"
	"github.com/sealnet/sealnet/internal/testbed/load"
	"github.com/sealnet/sealnet/internal/testbed/testnet"
	"github.com/sealnet/sealnet/mixnet/directory"
	"github.com/sealnet/sealnet/sim"
)

// TestBuildTrace feeds a hand-made capture of one message through a
// one-mix network: the records must become exactly the link events and
// mail events they stand for, the fetch that timed out and the answer to
// the page's acknowledgement must not count as mail, and the adversary
// must name the sender.
func TestBuildTrace(t *testing.T) {
	// The network the capture below stands for: no mixing delay, long
	// polls, replies at once.
	params := directory.DefaultParameters()
	params.MeanDelay, params.FetchInterval, params.ProviderHold = 0, 0, 0
	nw, err := testnet.Create(filepath.Join(t.TempDir(), "net"), testnet.Spec{Layers: 1, Width: 1, Providers: 1, HostPerNode: true, Parameters: params})
	if err != nil {
		t.Fatal(err)
	}
	var mixAddr, provAddr netip.AddrPort
	for _, n := range nw.Nodes {
		if n.Role == "mix" {
			mixAddr = netip.MustParseAddrPort(n.Address)
		} else {
			provAddr = netip.MustParseAddrPort(n.Address)
		}
	}
	mixHost := mixAddr.Addr() // node 0 of the manifest: the mix
	cfg, err := sim.ParseConfig(`
users = 3
duration = "20s"
warmup = "500ms"
[mixing]
mean_delay = "0s"
[client]
fetch = "longpoll" # the capture below is of long polls: responses early and late
[workload]
message_rate = 0.1
contacts = 1
[adversary]
top_k = [1]
`)
	if err != nil {
		t.Fatal(err)
	}
	if err := load.Shape(cfg, nw); err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return start.Add(time.Duration(s * 1e9)) }
	user := func(u int) netip.Addr { return netip.MustParseAddr(load.UserHost(u)) }
	truth := &load.Truth{Started: start, Ended: at(20), Warmup: 0.5, Duration: 20, Scenario: cfg,
		Users: []load.User{{Host: load.UserHost(0), Contacts: []int32{1}}, {Host: load.UserHost(1), Contacts: []int32{0}}, {Host: load.UserHost(2), Contacts: []int32{0}}},
		Messages: []load.Message{
			{From: 0, To: 1, Queued: at(0.9), Received: at(1.02)},
			{From: 2, To: 0, Queued: at(0.1), Received: at(0.2)}, // in the warm-up
			{From: 2, To: 0, Queued: at(5)},                      // never shown
		}}
	capt := &capture.Capture{
		Conns: []capture.Conn{
			{Dialer: netip.AddrPortFrom(user(0), 40000), Listener: mixAddr, Kind: kindClient},
			{Dialer: netip.AddrPortFrom(mixHost, 40001), Listener: provAddr, Kind: kindPeer},
			{Dialer: netip.AddrPortFrom(user(1), 40002), Listener: provAddr, Kind: kindUser},
			{Dialer: netip.AddrPortFrom(user(2), 40003), Listener: mixAddr, Kind: kindClient},
			{Dialer: netip.MustParseAddrPort("127.0.0.1:40004"), Listener: mixAddr, Kind: kindClient}, // not a user
		},
		Records: []capture.Record{
			{T: at(0.5), Conn: 2, Up: true},   // fetch
			{T: at(0.95), Conn: 3, Up: true},  // user 2's cover
			{T: at(0.96), Conn: 1, Up: true},  // ... through the mix
			{T: at(1.0), Conn: 0, Up: true},   // the message
			{T: at(1.001), Conn: 1, Up: true}, // ... to the provider
			{T: at(1.003), Conn: 4, Up: true}, // unattributed
			{T: at(1.010), Conn: 2},           // the page: mail
			{T: at(1.011), Conn: 2},           // its second record
			{T: at(1.015), Conn: 2, Up: true}, // acknowledge the page
			{T: at(1.016), Conn: 2},           // its answer: not mail
			{T: at(1.020), Conn: 2, Up: true}, // fetch again
			{T: at(11.02), Conn: 2},           // timed out: not mail
			{T: at(25), Conn: 0, Up: true},    // after the run
		},
	}
	if cfg, err = adversaryConfig(nw, truth); err != nil {
		t.Fatal(err)
	}
	a := &Analysis{Truth: truth, Config: cfg}
	tr, err := a.buildTrace(nw, capt, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	want := Accounting{Messages: 3, Scored: 1, Warmup: 0, Undelivered: 1, Unmatched: 1, Records: 13, LinkEvents: 4, MailEvents: 1,
		UserRecords: 7, Unattributed: 1, Outside: 1, Conns: 5, Events: 5}
	got := a.Acct
	got.MatchLagMax = 0
	if got != want {
		t.Errorf("accounting\n got %+v\nwant %+v", got, want)
	}
	if len(tr.Targets) != 1 || tr.Targets[0].Sender != 0 || tr.Targets[0].Recipient != 1 {
		t.Fatalf("targets %+v", tr.Targets)
	}
	if e := tr.Events[tr.Targets[0].Event]; e.To != -2 || e.From != 0 || e.T != int64(10*time.Millisecond)+int64(time.Second) {
		t.Errorf("target event %+v", e)
	}
	res, err := sim.AnalyzeTrace(context.Background(), cfg, tr)
	if err != nil {
		t.Fatal(err)
	}
	if res.Targets != 1 || res.TopK[0].Accuracy != 1 {
		t.Errorf("adversary: %d targets, top-1 %v; want the sender named", res.Targets, res.TopK)
	}
}

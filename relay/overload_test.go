package relay_test

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sealnet/sealnet/internal/testbed/testnet"
	"github.com/sealnet/sealnet/mixnet"
	"github.com/sealnet/sealnet/mixnet/link"
	"github.com/sealnet/sealnet/relay"
)

// TestOverloadBoundedMemory floods an entry relay (one worker) with far
// more packets than it can unwrap. Its memory stays bounded by its queues
// and the excess is dropped and counted, never queued without limit.
func TestOverloadBoundedMemory(t *testing.T) {
	n := startNetwork(t, testnet.Spec{EpochPeriod: time.Hour, Layers: 1, Width: 1, Providers: 1, NoCover: true}, func(name string, cfg *relay.Config) {
		if cfg.Role == "mix" {
			cfg.Limits.Workers = 1
			cfg.Limits.InputQueue = 1024
		}
	})
	entry := n.doc.Doc.Layers[0][0]
	node := n.p.Nodes[entry.Name]
	inj := testnet.NewInjector(n.doc.Doc)
	defer inj.Close()
	_, pkt, err := inj.Packet(n.provider(t, 0), mixnet.RecipientID{1}, message(1), 0)
	if err != nil {
		t.Fatal(err)
	}

	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	var peak atomic.Uint64
	stop := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Go(func() {
		var ms runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
		}
	})

	// Three client links send copies of one valid packet as fast as they
	// can: the first unwraps, the rest cost the relay a full header check
	// each and are refused as replays or dropped at the full queue.
	var offered atomic.Int64
	ctx := context.Background()
	deadline := time.Now().Add(3 * time.Second)
	var flood sync.WaitGroup
	for range 3 {
		flood.Go(func() {
			c := testnet.NewInjector(n.doc.Doc)
			defer c.Close()
			for time.Now().Before(deadline) {
				for range 256 {
					if err := c.Send(ctx, entry.ID(), pkt); err != nil {
						t.Error(err)
						return
					}
				}
				offered.Add(256)
			}
		})
	}
	flood.Wait()
	// Let the queue drain and the counters settle (slow under -race).
	waitFor(t, "the input queue to drain", 60*time.Second, func() bool {
		return metric(t, node, "sealnet_input_queue_depth") == 0
	})
	for prev := -1.0; ; {
		time.Sleep(100 * time.Millisecond)
		cur := metric(t, node, "sealnet_unwrap_seconds_count")
		if cur == prev {
			break
		}
		prev = cur
	}
	close(stop)
	sampler.Wait()

	unwrapped := metric(t, node, "sealnet_unwrap_seconds_count")
	dropped := metric(t, node, `sealnet_packets_dropped_total{reason="input_queue_full"}`)
	replays := metric(t, node, "sealnet_packets_replayed_total")
	grew := float64(peak.Load()) - float64(base.HeapInuse)
	t.Logf("offered %d, unwrapped %.0f (%.0f replays), dropped at the full queue %.0f; heap grew by %.1f MiB at peak",
		offered.Load(), unwrapped, replays, dropped, grew/(1<<20))
	if float64(offered.Load()) < 10*unwrapped {
		t.Fatalf("offered only %.1fx what the relay unwrapped; the test needs 10x", float64(offered.Load())/unwrapped)
	}
	if dropped == 0 || unwrapped+dropped < float64(offered.Load())*0.99 {
		t.Fatalf("packets unaccounted for: offered %d, unwrapped %.0f, dropped %.0f", offered.Load(), unwrapped, dropped)
	}
	if replays != unwrapped-1 {
		t.Fatalf("%.0f replays among %.0f unwraps of one packet", replays, unwrapped)
	}
	// The input queue holds 1,024 packets (2.6 MiB); with link buffers and
	// garbage not yet collected the heap must stay far below the flood's
	// volume.
	volume := float64(offered.Load()) * float64(link.FrameSize(geo))
	if grew > 96<<20 || grew > volume/4 {
		t.Fatalf("heap grew by %.1f MiB while %.0f MiB were offered", grew/(1<<20), volume/(1<<20))
	}
}

// TestShutdownLeavesNoGoroutine: a whole network stops cleanly, with links
// up and packets in flight, and leaves no goroutine behind.
func TestShutdownLeavesNoGoroutine(t *testing.T) {
	defer goleak.VerifyNone(t)
	nw, err := testnet.Create(t.TempDir(), testnet.Spec{EpochPeriod: time.Hour, Layers: 2, Width: 1, Providers: 1})
	if err != nil {
		t.Fatal(err)
	}
	p, err := testnet.StartInProcess(nw, testnet.InProcessOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	doc, err := nw.WaitDocument(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, node := range p.Nodes {
		for !node.Ready() {
			time.Sleep(20 * time.Millisecond)
		}
	}
	inj := testnet.NewInjector(doc.Doc)
	for i := range 50 {
		entry, pkt, err := inj.Packet(doc.Doc.Providers[0], mixnet.RecipientID{1, byte(i)}, nil, 200*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		if err := inj.Send(ctx, entry, pkt); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(100 * time.Millisecond) // packets are now held for mixing
	inj.Close()
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
}

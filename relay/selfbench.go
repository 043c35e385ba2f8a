package relay

import (
	"crypto/rand"
	"runtime"
	"time"

	"github.com/sealnet/sealnet/mixnet"
)

// selfBenchmark unwraps a few hundred packets under a throwaway key and
// logs the rate, so that an operator can size a node from its own log.
func (n *Node) selfBenchmark() {
	const count = 200
	k, err := mixnet.GenerateMixKey(rand.Reader, n.geo)
	if err != nil {
		return
	}
	path := []mixnet.Hop{{PublicKey: k.PublicKey()}, {PublicKey: k.PublicKey()}}
	pkts := make([][]byte, count)
	for i := range pkts {
		if pkts[i], err = mixnet.NewPacket(rand.Reader, n.geo, path, mixnet.RecipientID{}, nil); err != nil {
			return
		}
	}
	rc, err := mixnet.NewReplayCache(0, count)
	if err != nil {
		return
	}
	start := time.Now()
	for _, p := range pkts {
		if _, err := k.Unwrap(p, rc); err != nil {
			return
		}
	}
	per := time.Since(start) / count
	rate := float64(time.Second) / float64(per)
	n.log.Info("self-benchmark", "unwrap", per.Round(100*time.Nanosecond), "unwraps_per_second_per_core", int(rate),
		"workers", n.cfg.Limits.Workers, "cores", runtime.NumCPU(), "estimated_capacity_pps", int(rate*float64(min(n.cfg.Limits.Workers, runtime.NumCPU()))))
}

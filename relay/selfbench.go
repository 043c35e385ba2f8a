package relay

import (
	"crypto/rand"
	"fmt"
	"runtime"
	"time"

	"github.com/sealnet/sealnet/mixnet"
)

// selfBenchCount is the packets the self-benchmark unwraps.
const selfBenchCount = 200

// measureUnwrapRate unwraps count packets under a throwaway key on one
// goroutine and returns the unwraps per second: one core's rate.
func measureUnwrapRate(geo mixnet.Geometry, count int) (float64, error) {
	k, err := mixnet.GenerateMixKey(rand.Reader, geo)
	if err != nil {
		return 0, err
	}
	path := []mixnet.Hop{{PublicKey: k.PublicKey()}, {PublicKey: k.PublicKey()}}
	pkts := make([][]byte, count)
	for i := range pkts {
		if pkts[i], err = mixnet.NewPacket(rand.Reader, geo, path, mixnet.RecipientID{}, nil); err != nil {
			return 0, err
		}
	}
	rc, err := mixnet.NewReplayCache(0, count)
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	start := time.Now()
	for _, p := range pkts {
		if _, err := k.Unwrap(p, rc); err != nil {
			return 0, fmt.Errorf("relay: self-benchmark: %w", err)
		}
	}
	return float64(count) / time.Since(start).Seconds(), nil
}

// selfBenchmark unwraps a few hundred packets under a throwaway key and
// logs the rate, so that an operator can size a node from its own log,
// and warns if the replay capacity would fill before a key expires at
// that rate on every worker.
func (n *Node) selfBenchmark() {
	rate, err := measureUnwrapRate(n.geo, selfBenchCount)
	if err != nil {
		return
	}
	cores := unwrapCores(n.cfg.Limits.Workers)
	d := n.cfg.Directory
	life := keyLifetime(d.EpochPeriod.D(), d.EpochGrace.D())
	capacity := n.cfg.Limits.ReplayCapacity
	n.log.Info("self-benchmark", "unwrap", (time.Duration(float64(time.Second) / rate)).Round(100*time.Nanosecond),
		"unwraps_per_second_per_core", int(rate), "workers", n.cfg.Limits.Workers, "cores", runtime.NumCPU(),
		"estimated_capacity_pps", int(rate*float64(cores)),
		"replay_capacity", capacity, "replay_memory_full_mib", mixnet.ReplayCacheMemory(capacity)>>20)
	if need := ReplayCapacityFor(rate, cores, d.EpochPeriod.D(), d.EpochGrace.D()); need > capacity {
		fill := time.Duration(float64(capacity) / (rate * float64(cores)) * float64(time.Second))
		n.log.Warn("limits.replay_capacity is too small for this machine: a flood at its unwrap rate fills a key's replay cache before the key expires, and the relay then refuses packets until it does",
			"replay_capacity", capacity, "fills_in", fill.Round(time.Second), "key_lifetime", life, "replay_capacity_needed", need)
	}
}

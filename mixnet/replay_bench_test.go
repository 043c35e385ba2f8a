package mixnet

import (
	"encoding/binary"
	"runtime"
	"sync"
	"testing"
	"time"
)

// mapReplayCache is the replay cache as it was before issue 16: every tag
// in a map under one lock. It is the baseline of BenchmarkReplayCacheVsMap.
type mapReplayCache struct {
	mu       sync.Mutex
	capacity int
	seen     map[ReplayTag]struct{}
}

func (c *mapReplayCache) Add(tag ReplayTag) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.seen[tag]; ok {
		return ErrReplay
	}
	if len(c.seen) >= c.capacity {
		return ErrReplayCacheFull
	}
	c.seen[tag] = struct{}{}
	return nil
}

// randTag is the i-th of a stream of distinct pseudo-random tags (a
// bijective mix of the counter, as a real tag is pseudo-random).
func randTag(i uint64) ReplayTag {
	var t ReplayTag
	binary.LittleEndian.PutUint64(t[:8], mix64(i))
	binary.LittleEndian.PutUint64(t[8:], mix64(i^0x9e3779b97f4a7c15))
	return t
}

func mix64(x uint64) uint64 { // splitmix64's finaliser, a bijection
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// heapAfter returns the live heap after a full collection.
func heapAfter() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkReplayCacheVsMap fills a ReplayCache and the old map-based
// cache with the same 1 Mi tags, then adds new tags to each in
// alternating batches of 1,024, so that both figures come from the same
// run. It reports the time per Add of each, their ratio, and the heap per
// tag held of each.
func BenchmarkReplayCacheVsMap(b *testing.B) {
	const fill = 1 << 20
	capacity := fill + 1<<22
	base := heapAfter()
	rc, err := NewReplayCache(1, capacity)
	if err != nil {
		b.Fatal(err)
	}
	for i := range uint64(fill) {
		if err := rc.Add(randTag(i)); err != nil {
			b.Fatal(err)
		}
	}
	setHeap := heapAfter() - base
	base = heapAfter()
	old := &mapReplayCache{capacity: capacity, seen: make(map[ReplayTag]struct{})}
	for i := range uint64(fill) {
		if err := old.Add(randTag(i)); err != nil {
			b.Fatal(err)
		}
	}
	mapHeap := heapAfter() - base

	const batch = 1024
	var tags [batch]ReplayTag
	var tSet, tMap time.Duration
	next, n := uint64(fill), 0
	for b.Loop() {
		for j := range tags {
			tags[j] = randTag(next)
			next++
		}
		t0 := time.Now()
		for _, t := range tags {
			if err := rc.Add(t); err != nil {
				b.Fatal(err)
			}
		}
		t1 := time.Now()
		for _, t := range tags {
			if err := old.Add(t); err != nil {
				b.Fatal(err)
			}
		}
		t2 := time.Now()
		tSet += t1.Sub(t0)
		tMap += t2.Sub(t1)
		n += batch
		if next >= uint64(capacity)-batch {
			b.Fatal("benchmark ran past the caches' capacity; lower -benchtime")
		}
	}
	b.ReportMetric(float64(tSet.Nanoseconds())/float64(n), "cache-ns/add")
	b.ReportMetric(float64(tMap.Nanoseconds())/float64(n), "map-ns/add")
	b.ReportMetric(float64(tSet)/float64(tMap), "cache/map")
	b.ReportMetric(float64(setHeap)/fill, "cache-B/tag")
	b.ReportMetric(float64(mapHeap)/fill, "map-B/tag")
	runtime.KeepAlive(rc)
	runtime.KeepAlive(old)
}

package badger

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/sealnet/sealnet/mailbox/proto"
	"github.com/sealnet/sealnet/mailbox/store"
)

// Benchmarks of durable delivery, each with 2 KiB envelopes on real Badger
// on disk. The baselines open Badger with the store's own options
// (SyncWrites on), so the ratio shows what group commit buys and what the
// store's bookkeeping (index entry, queue state, duplicate check) costs
// against plain batched writes of the same data.

const (
	stBenchSize      = 2048
	stBenchMailboxes = 100
	stBenchWorkers   = 256 // the provider's delivery workers (mailbox.Settings.DeliveryWorkers)
	stBenchBatch     = 64
)

var stBenchData = func() []byte {
	b := make([]byte, stBenchSize)
	rand.Read(b)
	return b
}()

func stBenchStore(b *testing.B) (*DB, []proto.MailboxID) {
	b.Helper()
	s := stOpen(b, b.TempDir(), Config{Limits: store.Limits{MaxEnvelopes: 1 << 30, MaxBytes: 1 << 50}})
	var mbs []proto.MailboxID
	for i := range stBenchMailboxes {
		mbs = append(mbs, stRegister(b, s, fmt.Sprint("bench", i)))
	}
	return s, mbs
}

// stBenchDeliver makes n deliveries from stBenchWorkers goroutines over
// the mailboxes and returns how long they took.
func stBenchDeliver(b *testing.B, s *DB, mbs []proto.MailboxID, n int, idBase uint64) time.Duration {
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range stBenchWorkers {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				e := store.Envelope{Kind: proto.EnvelopeSealed, Data: stBenchData}
				binary.BigEndian.PutUint64(e.ID[:], idBase+uint64(i))
				if _, err := s.Deliver(context.Background(), mbs[i%int64(len(mbs))], e); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	return time.Since(start)
}

func stBenchBadger(b *testing.B) *badger.DB {
	b.Helper()
	db, err := badger.Open(badgerOptions(b.TempDir(), slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	return db
}

// stBenchWrites makes n writes of 2 KiB, perTxn per transaction, from one
// goroutine, and returns how long they took.
func stBenchWrites(b *testing.B, db *badger.DB, n, perTxn int, keyBase uint64) time.Duration {
	start := time.Now()
	for i := 0; i < n; i += perTxn {
		err := db.Update(func(txn *badger.Txn) error {
			for j := i; j < min(i+perTxn, n); j++ {
				key := binary.BigEndian.AppendUint64([]byte("bench"), keyBase+uint64(j))
				if err := txn.Set(key, stBenchData); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	return time.Since(start)
}

// stBenchLayoutWrites makes n deliveries' worth of the store's own Badger
// work, 64 per transaction, from one goroutine, without the store: per
// delivery a read of the envelope-ID index and of the mailbox state, an
// envelope record under its mailbox and sequence number, an index entry
// under a random envelope ID, and per mailbox and transaction a state
// write. It shows what the store's key layout costs in Badger by itself.
func stBenchLayoutWrites(b *testing.B, db *badger.DB, mbs []proto.MailboxID, n int, seqs map[proto.MailboxID]uint64) time.Duration {
	start := time.Now()
	state := make([]byte, stateSize)
	for i := 0; i < n; i += stBenchBatch {
		err := db.Update(func(txn *badger.Txn) error {
			touched := map[proto.MailboxID]bool{}
			for j := i; j < min(i+stBenchBatch, n); j++ {
				mb := mbs[j%len(mbs)]
				var id [16]byte
				rand.Read(id[:])
				seen := seenKey(&mb, &id)
				if _, err := txn.Get(seen); err == nil {
					return fmt.Errorf("random ID seen before")
				}
				if !touched[mb] {
					txn.Get(mailboxKey(tagState, &mb))
					touched[mb] = true
				}
				seqs[mb]++
				rec := envelopeRecord{kind: proto.EnvelopeSealed, id: id, data: stBenchData}
				if err := txn.Set(envelopeKey(&mb, seqs[mb]), rec.encode()); err != nil {
					return err
				}
				if err := txn.Set(seen, encodeSeen(1)); err != nil {
					return err
				}
			}
			for mb := range touched {
				if err := txn.Set(mailboxKey(tagState, &mb), state); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	return time.Since(start)
}

func stRate(n int, d time.Duration) float64 { return float64(n) / d.Seconds() }

// BenchmarkStoreDeliver: b.N deliveries from 64 goroutines over 100
// mailboxes.
func BenchmarkStoreDeliver(b *testing.B) {
	s, mbs := stBenchStore(b)
	before := s.commits.Load()
	b.ResetTimer()
	d := stBenchDeliver(b, s, mbs, b.N, 0)
	b.StopTimer()
	b.ReportMetric(stRate(b.N, d), "deliveries/s")
	b.ReportMetric(float64(b.N)/float64(max(1, s.commits.Load()-before)), "deliveries/commit")

}

// BenchmarkBadgerSyncedWrites: baseline, b.N transactions of one 2 KiB
// write each, synced, from one goroutine.
func BenchmarkBadgerSyncedWrites(b *testing.B) {
	db := stBenchBadger(b)
	b.ResetTimer()
	d := stBenchWrites(b, db, b.N, 1, 0)
	b.StopTimer()
	b.ReportMetric(stRate(b.N, d), "writes/s")
}

// BenchmarkBadgerBatchedWrites: baseline, b.N 2 KiB writes, 64 per synced
// transaction, from one goroutine.
func BenchmarkBadgerBatchedWrites(b *testing.B) {
	db := stBenchBadger(b)
	b.ResetTimer()
	d := stBenchWrites(b, db, b.N, stBenchBatch, 0)
	b.StopTimer()
	b.ReportMetric(stRate(b.N, d), "writes/s")
}

// BenchmarkStoreVsBadger measures the store and both baselines in the same
// run, with fixed counts (20,000 deliveries, 2,000 single synced writes,
// 20,000 batched writes), interleaved in five rounds so that all meet the
// same background work (flushes, compactions, garbage collection), and
// reports the store's rate as a ratio to the batched baseline (the goal is
// ≥ 0.6). It also measures, as a third reference, 20,000 deliveries' worth
// of the store's own Badger reads and writes without the store
// (stBenchLayoutWrites), and the store's ratio to that.
func BenchmarkStoreVsBadger(b *testing.B) {
	const (
		rounds     = 5
		deliveries = 20_000 / rounds
		synced     = 2_000 / rounds
		batched    = 20_000 / rounds
	)
	s, mbs := stBenchStore(b)
	db := stBenchBadger(b)
	layoutDB := stBenchBadger(b)
	seqs := map[proto.MailboxID]uint64{}
	var dStore, dSynced, dBatched, dLayout time.Duration
	var key uint64
	b.ResetTimer()
	for range b.N {
		for range rounds {
			dStore += stBenchDeliver(b, s, mbs, deliveries, key)
			dSynced += stBenchWrites(b, db, synced, 1, key)
			dBatched += stBenchWrites(b, db, batched, stBenchBatch, key+synced)
			dLayout += stBenchLayoutWrites(b, layoutDB, mbs, deliveries, seqs)
			key += synced + batched
		}
	}
	b.StopTimer()
	n := b.N * rounds
	store := stRate(n*deliveries, dStore)
	batch := stRate(n*batched, dBatched)
	layout := stRate(n*deliveries, dLayout)
	b.ReportMetric(store, "deliveries/s")
	b.ReportMetric(stRate(n*synced, dSynced), "synced-writes/s")
	b.ReportMetric(batch, "batched-writes/s")
	b.ReportMetric(store/batch, "ratio-to-batched")
	b.ReportMetric(layout, "layout-writes/s")
	b.ReportMetric(store/layout, "ratio-to-layout")
	b.ReportMetric(0, "ns/op")
}

package badger

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/sealnet/sealnet/internal/clock"
	"github.com/sealnet/sealnet/mailbox/proto"
	"github.com/sealnet/sealnet/mailbox/store"
	"go.uber.org/goleak"
)

// stClock is a settable clock for tests.
type stClock struct{ *clock.Manual }

func newStClock() *stClock {
	return &stClock{clock.NewManual(time.Date(2031, 3, 4, 5, 6, 7, 0, time.UTC))}
}

func (c *stClock) Add(d time.Duration) { c.Advance(d) }

// stOpen opens a store in dir (a new temporary directory if empty) and
// closes it when the test ends.
func stOpen(t testing.TB, dir string, cfg Config) *DB {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	s, err := Open(dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func stAccount(name string) store.Account {
	return store.Account{
		Address:         name + "@provider.example",
		IdentityX25519:  sha256.Sum256([]byte("x25519 " + name)),
		IdentityEd25519: sha256.Sum256([]byte("ed25519 " + name)),
	}
}

func stRegister(t testing.TB, s *DB, name string) proto.MailboxID {
	t.Helper()
	mb, err := s.Register(stAccount(name))
	if err != nil {
		t.Fatal(err)
	}
	return mb
}

func stEnvelope(i int, size int) store.Envelope {
	e := store.Envelope{Kind: proto.EnvelopeSealed, Data: bytes.Repeat([]byte{byte(i)}, size)}
	binary.BigEndian.PutUint64(e.ID[:], uint64(i))
	e.ID[15] = 0xee
	return e
}

func stDeliver(t testing.TB, s *DB, mb proto.MailboxID, e store.Envelope) store.DeliverResult {
	t.Helper()
	r, err := s.Deliver(context.Background(), mb, e)
	if err != nil {
		t.Fatalf("deliver: %v", err)
	}
	return r
}

// stDrain pages through everything mb holds, acknowledging as it goes
// if ack, and returns the records in order.
func stDrain(t testing.TB, s *DB, mb proto.MailboxID, ack bool) []proto.Record {
	t.Helper()
	var all []proto.Record
	var after uint64
	for range 10_000 {
		page, more, err := s.Page(mb, 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range page {
			if r.Seq > after {
				all = append(all, r)
				after = r.Seq
			}
		}
		if !more {
			return all
		}
		if !ack {
			t.Fatal("stDrain without ack cannot page beyond the first page")
		}
		if err := s.Ack(mb, page[len(page)-1].Seq); err != nil {
			t.Fatal(err)
		}
	}
	t.Fatal("stDrain: too many pages")
	return nil
}

func stIDs(recs []proto.Record) []uint64 {
	var ids []uint64
	for _, r := range recs {
		ids = append(ids, binary.BigEndian.Uint64(r.ID[:]))
	}
	return ids
}

func TestStoreFIFOPageAck(t *testing.T) {
	dir := t.TempDir()
	s := stOpen(t, dir, Config{})
	mb := stRegister(t, s, "alice")
	for i := 1; i <= 10; i++ {
		if r := stDeliver(t, s, mb, stEnvelope(i, 100+i)); r != store.Stored {
			t.Fatalf("envelope %d: %v", i, r)
		}
	}
	page, more, err := s.Page(mb, 4)
	if err != nil {
		t.Fatal(err)
	}
	if got := stIDs(page); fmt.Sprint(got) != "[1 2 3 4]" || !more {
		t.Fatalf("first page %v more=%v", got, more)
	}
	for i, r := range page {
		want := stEnvelope(i+1, 100+i+1)
		if r.Kind != want.Kind || !bytes.Equal(r.Data, want.Data) || r.Seq != uint64(i+1) {
			t.Fatalf("record %d: %+v", i, r)
		}
	}
	if err := s.Ack(mb, page[3].Seq); err != nil {
		t.Fatal(err)
	}
	if err := s.Ack(mb, 2); err != nil { // below the head: no-op
		t.Fatal(err)
	}
	if err := s.Ack(mb, 11); !errors.Is(err, store.ErrBadAck) {
		t.Fatalf("ack beyond the tail: %v", err)
	}
	page, more, _ = s.Page(mb, 4)
	if got := stIDs(page); fmt.Sprint(got) != "[5 6 7 8]" || !more {
		t.Fatalf("second page %v more=%v", got, more)
	}
	if n, b, _ := s.Usage(mb); n != 6 || b != 6*100+5+6+7+8+9+10 {
		t.Fatalf("usage %d %d", n, b)
	}

	// Acknowledged envelopes stay gone after a restart, unacknowledged
	// ones stay.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, _, err := s.Page(mb, 1); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("Page after Close: %v", err)
	}
	s = stOpen(t, dir, Config{})
	page, more, _ = s.Page(mb, 100)
	if got := stIDs(page); fmt.Sprint(got) != "[5 6 7 8 9 10]" || more {
		t.Fatalf("after reopen %v more=%v", got, more)
	}
	if err := s.Ack(mb, 10); err != nil {
		t.Fatal(err)
	}
	if page, more, _ := s.Page(mb, 100); len(page) != 0 || more {
		t.Fatalf("after acking everything: %v %v", stIDs(page), more)
	}
	// Sequence numbers continue after a restart.
	stDeliver(t, s, mb, stEnvelope(11, 10))
	s.Close()
	s = stOpen(t, dir, Config{})
	page, _, _ = s.Page(mb, 100)
	if len(page) != 1 || page[0].Seq != 11 || stIDs(page)[0] != 11 {
		t.Fatalf("after second reopen: %+v", page)
	}
	if n, b, _ := s.Usage(mb); n != 1 || b != 10 {
		t.Fatalf("usage %d %d", n, b)
	}
}

// TestStoreAckedNeverReturnedWhenRecordsReappear simulates the Badger bugs
// where deleted keys come back: the records an Ack deleted are written
// again, and still never returned.
func TestStoreAckedNeverReturnedWhenRecordsReappear(t *testing.T) {
	dir := t.TempDir()
	s := stOpen(t, dir, Config{})
	mb := stRegister(t, s, "alice")
	var raw [][2][]byte
	for i := 1; i <= 5; i++ {
		stDeliver(t, s, mb, stEnvelope(i, 50))
	}
	s.db.View(func(txn *badger.Txn) error {
		for seq := uint64(1); seq <= 5; seq++ {
			v, _, _ := get(txn, envelopeKey(&mb, seq))
			raw = append(raw, [2][]byte{envelopeKey(&mb, seq), v})
		}
		return nil
	})
	if err := s.Ack(mb, 3); err != nil {
		t.Fatal(err)
	}
	err := s.db.Update(func(txn *badger.Txn) error {
		for _, kv := range raw[:3] {
			if _, found, _ := get(txn, kv[0]); found {
				t.Error("Ack did not delete an acknowledged record")
			}
			txn.Set(kv[0], kv[1]) // the record comes back
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if page, _, _ := s.Page(mb, 10); fmt.Sprint(stIDs(page)) != "[4 5]" {
		t.Fatalf("resurrected records returned: %v", stIDs(page))
	}
	if n, _, _ := s.Usage(mb); n != 2 {
		t.Fatalf("usage %d", n)
	}
	// The sweeper deletes them again.
	if _, reclaimed, err := s.sweepAll(); err != nil || reclaimed != 3 {
		t.Fatalf("sweep reclaimed %d, %v", reclaimed, err)
	}
	s.Close()
	s = stOpen(t, dir, Config{})
	if page, _, _ := s.Page(mb, 10); fmt.Sprint(stIDs(page)) != "[4 5]" {
		t.Fatalf("after reopen: %v", stIDs(page))
	}
}

func TestStoreIdempotentSequential(t *testing.T) {
	s := stOpen(t, "", Config{})
	mb := stRegister(t, s, "alice")
	e := stEnvelope(7, 100)
	if r := stDeliver(t, s, mb, e); r != store.Stored {
		t.Fatalf("first: %v", r)
	}
	e2 := e
	e2.Data = []byte("other data, same ID")
	if r := stDeliver(t, s, mb, e2); r != store.Duplicate {
		t.Fatalf("second: %v", r)
	}
	// The same ID for another mailbox is another envelope.
	bob := stRegister(t, s, "bob")
	if r := stDeliver(t, s, bob, e); r != store.Stored {
		t.Fatalf("other mailbox: %v", r)
	}
	page, _, _ := s.Page(mb, 10)
	if len(page) != 1 || !bytes.Equal(page[0].Data, e.Data) {
		t.Fatalf("page %+v", page)
	}
	if n, b, _ := s.Usage(mb); n != 1 || b != 100 {
		t.Fatalf("usage %d %d", n, b)
	}
}

func TestStoreIdempotentInOneBatch(t *testing.T) {
	s := stOpen(t, "", Config{})
	mb := stRegister(t, s, "alice")
	// One batch, built by hand so that the copies are certainly in it.
	var batch []*deliverReq
	for i := range 5 {
		e := stEnvelope(1, 10)
		if i == 3 {
			e = stEnvelope(2, 10)
		}
		batch = append(batch, newDeliverReq(context.Background(), mb, e))
	}
	before := s.commits.Load()
	s.commitBatch(batch, make([]deliverReply, len(batch)))
	if c := s.commits.Load() - before; c != 1 {
		t.Fatalf("%d commits", c)
	}
	var got []store.DeliverResult
	for _, r := range batch {
		rep := <-r.reply
		if rep.err != nil {
			t.Fatal(rep.err)
		}
		got = append(got, rep.res)
	}
	if fmt.Sprint(got) != fmt.Sprint([]store.DeliverResult{store.Stored, store.Duplicate, store.Duplicate, store.Stored, store.Duplicate}) {
		t.Fatalf("results %v", got)
	}
	if page, _, _ := s.Page(mb, 10); fmt.Sprint(stIDs(page)) != "[1 2]" {
		t.Fatalf("page %v", stIDs(page))
	}

	// And through Deliver, concurrently.
	var wg sync.WaitGroup
	var stored, dup atomic.Int32
	for range 32 {
		wg.Go(func() {
			switch r := stDeliver(t, s, mb, stEnvelope(3, 10)); r {
			case store.Stored:
				stored.Add(1)
			case store.Duplicate:
				dup.Add(1)
			}
		})
	}
	wg.Wait()
	if stored.Load() != 1 || dup.Load() != 31 {
		t.Fatalf("concurrent: %d stored, %d duplicates", stored.Load(), dup.Load())
	}
	if page, _, _ := s.Page(mb, 10); fmt.Sprint(stIDs(page)) != "[1 2 3]" {
		t.Fatalf("page %v", stIDs(page))
	}
}

func TestStoreIdempotentAfterAck(t *testing.T) {
	clock := newStClock()
	dir := t.TempDir()
	s := stOpen(t, dir, Config{Limits: store.Limits{TTL: 48 * time.Hour}, Clock: clock})
	mb := stRegister(t, s, "alice")
	e := stEnvelope(9, 100)
	stDeliver(t, s, mb, e)
	page, _, _ := s.Page(mb, 10)
	if err := s.Ack(mb, page[0].Seq); err != nil {
		t.Fatal(err)
	}
	if r := stDeliver(t, s, mb, e); r != store.Duplicate {
		t.Fatalf("after ack: %v", r)
	}
	s.Close()
	s = stOpen(t, dir, Config{Limits: store.Limits{TTL: 48 * time.Hour}, Clock: clock})
	clock.Add(47 * time.Hour)
	if r := stDeliver(t, s, mb, e); r != store.Duplicate {
		t.Fatalf("after reopen: %v", r)
	}
	if page, _, _ := s.Page(mb, 10); len(page) != 0 {
		t.Fatalf("acknowledged envelope returned: %v", stIDs(page))
	}
	// Once the TTL has passed, the ID is forgotten (even though Badger,
	// on the real clock, still holds the index entry).
	clock.Add(2 * time.Hour)
	if r := stDeliver(t, s, mb, e); r != store.Stored {
		t.Fatalf("after the TTL: %v", r)
	}
}

func TestStoreQuotaCount(t *testing.T) {
	s := stOpen(t, "", Config{Limits: store.Limits{MaxEnvelopes: 3}})
	mb := stRegister(t, s, "alice")
	for i := 1; i <= 3; i++ {
		stDeliver(t, s, mb, stEnvelope(i, 10))
	}
	_, err := s.Deliver(context.Background(), mb, stEnvelope(4, 10))
	if !errors.Is(err, store.ErrQuota) || !errors.Is(err, errQuotaCount) {
		t.Fatalf("over count: %v", err)
	}
	// A rejected envelope was not marked seen.
	if err := s.Ack(mb, 1); err != nil {
		t.Fatal(err)
	}
	if r := stDeliver(t, s, mb, stEnvelope(4, 10)); r != store.Stored {
		t.Fatalf("after ack: %v", r)
	}
	if _, err := s.Deliver(context.Background(), mb, stEnvelope(5, 10)); !errors.Is(err, errQuotaCount) {
		t.Fatalf("full again: %v", err)
	}
	// Duplicates of held envelopes are still answered.
	if r := stDeliver(t, s, mb, stEnvelope(4, 10)); r != store.Duplicate {
		t.Fatalf("duplicate while full: %v", r)
	}
}

func TestStoreQuotaBytes(t *testing.T) {
	s := stOpen(t, "", Config{Limits: store.Limits{MaxBytes: 5000}})
	mb := stRegister(t, s, "alice")
	stDeliver(t, s, mb, stEnvelope(1, 2048))
	stDeliver(t, s, mb, stEnvelope(2, 2048))
	_, err := s.Deliver(context.Background(), mb, stEnvelope(3, 2048))
	if !errors.Is(err, store.ErrQuota) || !errors.Is(err, errQuotaBytes) {
		t.Fatalf("over bytes: %v", err)
	}
	if r := stDeliver(t, s, mb, stEnvelope(4, 904)); r != store.Stored { // exactly 5000
		t.Fatalf("up to the limit: %v", r)
	}
	if _, err := s.Deliver(context.Background(), mb, stEnvelope(5, 1)); !errors.Is(err, errQuotaBytes) {
		t.Fatalf("one byte over: %v", err)
	}
	if err := s.Ack(mb, 2); err != nil {
		t.Fatal(err)
	}
	if n, b, _ := s.Usage(mb); n != 1 || b != 904 {
		t.Fatalf("usage after ack: %d %d", n, b)
	}
	if r := stDeliver(t, s, mb, stEnvelope(3, 2048)); r != store.Stored {
		t.Fatalf("after ack: %v", r)
	}
}

func TestStoreExpiryFreesQuota(t *testing.T) {
	clock := newStClock()
	s := stOpen(t, "", Config{Limits: store.Limits{MaxEnvelopes: 2, TTL: time.Hour}, Clock: clock})
	mb := stRegister(t, s, "alice")
	stDeliver(t, s, mb, stEnvelope(1, 10))
	clock.Add(30 * time.Minute)
	stDeliver(t, s, mb, stEnvelope(2, 20))
	if _, err := s.Deliver(context.Background(), mb, stEnvelope(3, 30)); !errors.Is(err, errQuotaCount) {
		t.Fatalf("full: %v", err)
	}
	// Expiry is rounded up to the hour: envelope 1 (05:06 + 1h) expires at
	// 07:00, envelope 2 (05:36 + 1h) too.
	clock.Add(50 * time.Minute) // 06:26
	if _, err := s.Deliver(context.Background(), mb, stEnvelope(3, 30)); !errors.Is(err, errQuotaCount) {
		t.Fatalf("before the expiry hour: %v", err)
	}
	clock.Add(34 * time.Minute) // 07:00
	if r := stDeliver(t, s, mb, stEnvelope(3, 30)); r != store.Stored {
		t.Fatalf("after expiry: %v", r)
	}
	if n, b, _ := s.Usage(mb); n != 1 || b != 30 {
		t.Fatalf("usage %d %d", n, b)
	}
	if page, _, _ := s.Page(mb, 10); fmt.Sprint(stIDs(page)) != "[3]" {
		t.Fatalf("page %v", stIDs(page))
	}
}

func TestStoreTTL(t *testing.T) {
	clock := newStClock()
	dir := t.TempDir()
	s := stOpen(t, dir, Config{Limits: store.Limits{TTL: 2 * time.Hour}, Clock: clock})
	mb := stRegister(t, s, "alice")
	stDeliver(t, s, mb, stEnvelope(1, 10))
	stDeliver(t, s, mb, stEnvelope(2, 10))
	clock.Add(90 * time.Minute)
	stDeliver(t, s, mb, stEnvelope(3, 10))
	page, _, _ := s.Page(mb, 10)
	if fmt.Sprint(stIDs(page)) != "[1 2 3]" {
		t.Fatalf("page %v", stIDs(page))
	}
	if want := time.Date(2031, 3, 4, 8, 0, 0, 0, time.UTC); !page[0].Expires.Equal(want) {
		t.Fatalf("expires %v, want %v", page[0].Expires, want)
	}
	clock.Add(2 * time.Hour) // 08:36: 1 and 2 expired, 3 (expires 09:00) not
	page, more, _ := s.Page(mb, 10)
	if fmt.Sprint(stIDs(page)) != "[3]" || more {
		t.Fatalf("after expiry: %v", stIDs(page))
	}
	// Badger still holds them (its TTL runs on the real clock, and is
	// not trusted anyway).
	s.db.View(func(txn *badger.Txn) error {
		if _, found, _ := get(txn, envelopeKey(&mb, 1)); !found {
			t.Error("record 1 gone before the sweep")
		}
		return nil
	})
	if n, _, _ := s.Usage(mb); n != 3 {
		t.Fatalf("usage before the sweep: %d", n)
	}
	swept, _, err := s.sweepAll()
	if err != nil || swept != 2 {
		t.Fatalf("swept %d: %v", swept, err)
	}
	if n, b, _ := s.Usage(mb); n != 1 || b != 10 {
		t.Fatalf("usage after the sweep: %d %d", n, b)
	}
	s.db.View(func(txn *badger.Txn) error {
		if _, found, _ := get(txn, envelopeKey(&mb, 1)); found {
			t.Error("record 1 not deleted by the sweep")
		}
		return nil
	})
	// The expired envelope stays gone after a restart, even with the
	// clock turned back.
	s.Close()
	clock.Add(-3 * time.Hour)
	s = stOpen(t, dir, Config{Limits: store.Limits{TTL: 2 * time.Hour}, Clock: clock})
	if page, _, _ := s.Page(mb, 10); fmt.Sprint(stIDs(page)) != "[3]" {
		t.Fatalf("after restart: %v", stIDs(page))
	}
}

// TestStoreTTLGapsAndMiddle: an expired envelope behind a live one (the
// clock went back) is skipped by Page; records Badger reclaimed by TTL
// leave gaps the sweep passes over with the right byte count.
func TestStoreTTLGapsAndMiddle(t *testing.T) {
	clock := newStClock()
	s := stOpen(t, "", Config{Limits: store.Limits{TTL: time.Hour}, Clock: clock})
	mb := stRegister(t, s, "alice")
	stDeliver(t, s, mb, stEnvelope(1, 10))
	clock.Add(-5 * time.Hour)
	stDeliver(t, s, mb, stEnvelope(2, 20))
	clock.Add(5 * time.Hour)
	stDeliver(t, s, mb, stEnvelope(3, 30))
	stDeliver(t, s, mb, stEnvelope(4, 40))
	if page, _, _ := s.Page(mb, 10); fmt.Sprint(stIDs(page)) != "[1 3 4]" {
		t.Fatalf("page %v", stIDs(page))
	}
	// Badger dropped records 1 and 2 (as its TTL might): the sweep
	// treats them as expired.
	s.db.Update(func(txn *badger.Txn) error {
		txn.Delete(envelopeKey(&mb, 1))
		return txn.Delete(envelopeKey(&mb, 2))
	})
	if _, _, err := s.sweepAll(); err != nil {
		t.Fatal(err)
	}
	if n, b, _ := s.Usage(mb); n != 2 || b != 70 {
		t.Fatalf("usage %d %d", n, b)
	}
	// Acknowledging through a missing record counts it as gone.
	s.db.Update(func(txn *badger.Txn) error { return txn.Delete(envelopeKey(&mb, 3)) })
	if err := s.Ack(mb, 3); err != nil {
		t.Fatal(err)
	}
	if n, b, _ := s.Usage(mb); n != 1 || b != 40 {
		t.Fatalf("usage %d %d", n, b)
	}
	// Every record in the queue gone: the sweep empties it.
	s.db.Update(func(txn *badger.Txn) error { return txn.Delete(envelopeKey(&mb, 4)) })
	if _, _, err := s.sweepAll(); err != nil {
		t.Fatal(err)
	}
	if n, b, _ := s.Usage(mb); n != 0 || b != 0 {
		t.Fatalf("usage after the last record went: %d %d", n, b)
	}
	// The next envelope gets the next sequence number.
	stDeliver(t, s, mb, stEnvelope(5, 50))
	if page, _, _ := s.Page(mb, 10); len(page) != 1 || page[0].Seq != 5 {
		t.Fatalf("page %+v", page)
	}
}

func TestStoreSweeperRuns(t *testing.T) {
	clock := newStClock()
	s := stOpen(t, "", Config{Limits: store.Limits{TTL: time.Hour, GCInterval: 20 * time.Millisecond}, Clock: clock})
	mb := stRegister(t, s, "alice")
	for i := range 5 {
		stDeliver(t, s, mb, stEnvelope(i, 100))
	}
	clock.Add(3 * time.Hour)
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, _, err := s.Usage(mb)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the sweeper did not run: %d envelopes held", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestStoreUnknownMailbox(t *testing.T) {
	s := stOpen(t, "", Config{})
	stRegister(t, s, "alice")
	mb := proto.MailboxOf("nobody@provider.example")
	check := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s: %v, want store.ErrNotFound", what, err)
		}
	}
	_, err := s.Deliver(context.Background(), mb, stEnvelope(1, 1))
	check("Deliver", err)
	_, _, err = s.Page(mb, 1)
	check("Page", err)
	check("Ack", s.Ack(mb, 0))
	_, _, err = s.Usage(mb)
	check("Usage", err)
	_, _, err = s.Notify(mb)
	check("Notify", err)
	_, err = s.Account(mb)
	check("Account", err)
	_, _, err = s.AccountByKey([32]byte{1})
	check("AccountByKey", err)
	check("SetDeliveryToken", s.SetDeliveryToken(mb, [32]byte{1}, true))
	check("UploadPrekeys", s.UploadPrekeys(mb, proto.PrekeyUpload{Signed: &proto.Prekey{ID: 1, Data: []byte{1}}}))
	_, err = s.TakeBundle(mb, true)
	check("TakeBundle", err)
	_, err = s.TakeBundle(mb, false)
	check("TakeBundle(false)", err)
}

func TestStoreRejectsBadEnvelopes(t *testing.T) {
	s := stOpen(t, "", Config{})
	mb := stRegister(t, s, "alice")
	for _, e := range []store.Envelope{
		{Kind: proto.EnvelopeSealed, Data: make([]byte, proto.MaxEnvelopeData+1)},
		{Kind: 0},
		{Kind: 3, Data: []byte{1}},
	} {
		if _, err := s.Deliver(context.Background(), mb, e); !errors.Is(err, store.ErrTooLarge) {
			t.Errorf("kind %d, %d bytes: %v", e.Kind, len(e.Data), err)
		}
	}
	for _, e := range []store.Envelope{
		{Kind: proto.EnvelopeSURBReply, Data: make([]byte, proto.MaxEnvelopeData), ID: [16]byte{1}},
		{Kind: proto.EnvelopeSealed, ID: [16]byte{2}},
	} {
		if r := stDeliver(t, s, mb, e); r != store.Stored {
			t.Errorf("kind %d, %d bytes: %v", e.Kind, len(e.Data), r)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Deliver(ctx, mb, stEnvelope(5, 1)); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	page, _, _ := s.Page(mb, 10)
	if len(page) != 2 || page[0].Kind != proto.EnvelopeSURBReply || len(page[0].Data) != proto.MaxEnvelopeData || len(page[1].Data) != 0 {
		t.Fatalf("page %+v", page)
	}
}

func TestStoreRegister(t *testing.T) {
	dir := t.TempDir()
	s := stOpen(t, dir, Config{})
	a := stAccount("Alice")
	mb, err := s.Register(a)
	if err != nil {
		t.Fatal(err)
	}
	if mb != proto.MailboxOf("alice@provider.example") || mb != proto.MailboxOf("ALICE@Provider.Example") {
		t.Fatal("mailbox ID is not the lower-cased address hash")
	}
	want := sha256.Sum256([]byte("sealnet mailbox v1\x00alice@provider.example"))
	if mb != want {
		t.Fatal("MailboxOf differs from its definition")
	}
	a.AllowUnsolicited = true // idempotent: the stored account stays
	if mb2, err := s.Register(a); err != nil || mb2 != mb {
		t.Fatalf("second register: %v", err)
	}
	other := stAccount("mallory")
	other.Address = "alice@provider.example"
	if _, err := s.Register(other); !errors.Is(err, store.ErrExists) {
		t.Fatalf("taken address: %v", err)
	}
	sameKey := stAccount("Alice")
	sameKey.Address = "alice2@provider.example"
	if _, err := s.Register(sameKey); !errors.Is(err, store.ErrExists) {
		t.Fatalf("key of another account: %v", err)
	}
	for _, bad := range []struct {
		a   store.Account
		err error
	}{
		{store.Account{IdentityX25519: [32]byte{1}, IdentityEd25519: [32]byte{1}}, store.ErrInvalid},
		{store.Account{Address: string(bytes.Repeat([]byte{'a'}, 129)), IdentityX25519: [32]byte{1}, IdentityEd25519: [32]byte{1}}, store.ErrTooLarge},
		{store.Account{Address: "z@p", IdentityEd25519: [32]byte{1}}, store.ErrInvalid},
	} {
		if _, err := s.Register(bad.a); !errors.Is(err, bad.err) {
			t.Errorf("%q: %v, want %v", bad.a.Address, err, bad.err)
		}
	}
	got, err := s.Account(mb)
	if err != nil || got.Address != "alice@provider.example" || got.IdentityX25519 != a.IdentityX25519 || got.AllowUnsolicited {
		t.Fatalf("account %+v, %v", got, err)
	}
	token := sha256.Sum256([]byte("token"))
	if err := s.SetDeliveryToken(mb, token, true); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = stOpen(t, dir, Config{})
	mb2, got, err := s.AccountByKey(a.IdentityX25519)
	if err != nil || mb2 != mb || got.TokenHash != token || !got.AllowUnsolicited || got.IdentityEd25519 != a.IdentityEd25519 {
		t.Fatalf("by key: %+v, %v", got, err)
	}
}

func TestStoreNotify(t *testing.T) {
	s := stOpen(t, "", Config{})
	mb := stRegister(t, s, "alice")
	bob := stRegister(t, s, "bob")
	ch, stop, err := s.Notify(mb)
	if err != nil {
		t.Fatal(err)
	}
	stDeliver(t, s, bob, stEnvelope(1, 1))
	select {
	case <-ch:
		t.Fatal("notified of another mailbox's delivery")
	default:
	}
	stDeliver(t, s, mb, stEnvelope(1, 1))
	select {
	case <-ch:
	default:
		t.Fatal("no notification after a durable delivery")
	}
	stDeliver(t, s, mb, stEnvelope(1, 1)) // duplicate: nothing new
	select {
	case <-ch:
		t.Fatal("notified of a duplicate")
	default:
	}
	stop()
	stop()
	if _, ok := <-ch; ok {
		t.Fatal("channel open after stop")
	}

	// Bounds.
	var stops []func()
	for range store.MaxSubsPerMailbox {
		_, st, err := s.Notify(mb)
		if err != nil {
			t.Fatal(err)
		}
		stops = append(stops, st)
	}
	if _, _, err := s.Notify(mb); !errors.Is(err, store.ErrBusy) {
		t.Fatalf("65th subscription: %v", err)
	}
	stops[0]()
	_, st, err := s.Notify(mb)
	if err != nil {
		t.Fatalf("after a stop: %v", err)
	}
	stops[0] = st
	s.subsMu.Lock()
	s.nsubs = store.MaxSubs // the global bound, without 10,000 subscriptions
	s.subsMu.Unlock()
	if _, _, err := s.Notify(bob); !errors.Is(err, store.ErrBusy) {
		t.Fatalf("over the global bound: %v", err)
	}
	s.subsMu.Lock()
	s.nsubs = len(s.subs[mb])
	s.subsMu.Unlock()
	ch, _, err = s.Notify(bob)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, ok := <-ch; ok {
		t.Fatal("channel open after Close")
	}
	for _, st := range stops {
		st() // after Close: no panic
	}
}

func TestStoreGroupCommit(t *testing.T) {
	s := stOpen(t, "", Config{})
	var mbs []proto.MailboxID
	for i := range 8 {
		mbs = append(mbs, stRegister(t, s, fmt.Sprint("user", i)))
	}
	before := s.commits.Load()
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range 64 {
		wg.Go(func() {
			<-start
			if r := stDeliver(t, s, mbs[i%8], stEnvelope(i, 2048)); r != store.Stored {
				t.Errorf("delivery %d: %v", i, r)
			}
		})
	}
	close(start)
	wg.Wait()
	commits := s.commits.Load() - before
	t.Logf("64 concurrent deliveries in %d commits", commits)
	if commits > 16 {
		t.Fatalf("64 concurrent deliveries took %d commits; group commit is not batching", commits)
	}
	total := 0
	for _, mb := range mbs {
		total += len(stDrain(t, s, mb, true))
	}
	if total != 64 {
		t.Fatalf("%d envelopes stored", total)
	}
}

// TestStoreCloseDuringDeliveries: Close while deliveries run. Every call
// returns (Stored or ErrClosed, nothing else, no hang), and every Stored
// envelope is there after reopening.
func TestStoreCloseDuringDeliveries(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Config{})
	if err != nil {
		t.Fatal(err)
	}
	mb := stRegister(t, s, "alice")
	var mu sync.Mutex
	stored := map[uint64]bool{}
	var wg sync.WaitGroup
	var next atomic.Int64
	for range 32 {
		wg.Go(func() {
			for range 10_000 {
				i := int(next.Add(1))
				r, err := s.Deliver(context.Background(), mb, stEnvelope(i, 64))
				if errors.Is(err, store.ErrClosed) {
					return
				}
				if err != nil || r != store.Stored {
					t.Errorf("deliver: %v %v", r, err)
					return
				}
				mu.Lock()
				stored[uint64(i)] = true
				mu.Unlock()
			}
		})
	}
	time.Sleep(100 * time.Millisecond)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	s = stOpen(t, dir, Config{})
	got := map[uint64]bool{}
	for _, id := range stIDs(stDrain(t, s, mb, true)) {
		got[id] = true
	}
	for id := range stored {
		if !got[id] {
			t.Fatalf("envelope %d was Stored but is gone", id)
		}
	}
	t.Logf("%d stored before Close", len(stored))
}

func TestStoreCloseLeavesNoGoroutines(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	s, err := Open(t.TempDir(), Config{Limits: store.Limits{GCInterval: time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	mb, err := s.Register(stAccount("alice"))
	if err != nil {
		t.Fatal(err)
	}
	ch, _, err := s.Notify(mb)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Deliver(context.Background(), mb, stEnvelope(1, 10)); err != nil {
		t.Fatal(err)
	}
	<-ch
	time.Sleep(20 * time.Millisecond) // let the sweeper run
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Deliver(context.Background(), mb, stEnvelope(2, 10)); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("Deliver after Close: %v", err)
	}
}

// TestStoreCorruptRecords: bad data on disk is an error wrapping
// store.ErrCorrupt, never a panic.
func TestStoreCorruptRecords(t *testing.T) {
	s := stOpen(t, "", Config{})
	mb := stRegister(t, s, "alice")
	stDeliver(t, s, mb, stEnvelope(1, 10))
	if err := s.UploadPrekeys(mb, proto.PrekeyUpload{Signed: &proto.Prekey{ID: 1, Data: []byte{1}}, OneTime: []proto.Prekey{{ID: 1, Data: []byte{1}}}}); err != nil {
		t.Fatal(err)
	}
	set := func(key, val []byte) {
		if err := s.db.Update(func(txn *badger.Txn) error { return txn.Set(key, val) }); err != nil {
			t.Fatal(err)
		}
	}
	set(envelopeKey(&mb, 1), []byte{1, 2, 3})
	if _, _, err := s.Page(mb, 10); !errors.Is(err, store.ErrCorrupt) {
		t.Errorf("corrupt envelope: %v", err)
	}
	set(prekeyKey(tagPrekey, &mb, prekeySigned, 0), []byte{9})
	if _, err := s.TakeBundle(mb, true); !errors.Is(err, store.ErrCorrupt) {
		t.Errorf("corrupt prekey: %v", err)
	}
	set(mailboxKey(tagAccount, &mb), []byte{1, 0, 0})
	if _, err := s.Account(mb); !errors.Is(err, store.ErrCorrupt) {
		t.Errorf("corrupt account: %v", err)
	}
	set(mailboxKey(tagState, &mb), []byte{1})
	if _, err := s.Deliver(context.Background(), mb, stEnvelope(2, 10)); !errors.Is(err, store.ErrCorrupt) {
		t.Errorf("corrupt state: %v", err)
	}
	if _, _, err := s.Usage(mb); !errors.Is(err, store.ErrCorrupt) {
		t.Errorf("corrupt state: %v", err)
	}
	if _, _, err := s.sweepAll(); err != nil {
		t.Errorf("the sweep stops at a corrupt mailbox: %v", err)
	}
}

func TestStoreConfig(t *testing.T) {
	for _, c := range []struct {
		dir string
		cfg Config
	}{
		{"", Config{}},
		{t.TempDir(), Config{Limits: store.Limits{TTL: -1}}},
		{t.TempDir(), Config{Limits: store.Limits{BatchSize: store.MaxBatchSize + 1}}},
		{t.TempDir(), Config{Limits: store.Limits{MaxEnvelopes: -1}}},
	} {
		if s, err := Open(c.dir, c.cfg); err == nil {
			s.Close()
			t.Errorf("%q %+v accepted", c.dir, c.cfg)
		}
	}
	dir := t.TempDir()
	s := stOpen(t, dir, Config{})
	if s.lim.TTL != 30*24*time.Hour || s.lim.MaxEnvelopes != 10_000 || s.lim.MaxBytes != 64<<20 || s.lim.BatchSize != 256 || s.lim.GCInterval != 10*time.Minute {
		t.Fatalf("defaults %+v", s.lim)
	}
	// A store of another format is refused.
	s.db.Update(func(txn *badger.Txn) error { return txn.Set(metaKey(), []byte{2}) })
	s.Close()
	if s, err := Open(dir, Config{}); !errors.Is(err, store.ErrCorrupt) {
		if err == nil {
			s.Close()
		}
		t.Fatalf("format 2: %v", err)
	}
}

func TestStoreHourCeil(t *testing.T) {
	for _, c := range []struct {
		t    time.Time
		want uint32
	}{
		{time.Unix(0, 0), 0},
		{time.Unix(1, 0), 1},
		{time.Unix(3600, 0), 1},
		{time.Unix(3600, 1), 2},
		{time.Unix(3601, 0), 2},
		{time.Unix(-5, 0), 0},
		{time.Unix(1<<50, 0), 1<<32 - 1},
	} {
		if got := hourCeil(c.t); got != c.want {
			t.Errorf("%v: %d, want %d", c.t, got, c.want)
		}
	}
}

// TestStoreLogErrorHidesKeys: Badger wraps some errors with the key; the
// store's log lines keep only the cause.
func TestStoreLogErrorHidesKeys(t *testing.T) {
	mb := proto.MailboxOf("alice@provider.example")
	key := seenKey(&mb, &[16]byte{0xab, 0xcd})
	err := fmt.Errorf("DB::Get key: %q: %w", key, errors.New("input/output error"))
	if got := logError(fmt.Errorf("mailbox: %w", err)); got != "input/output error" {
		t.Errorf("logged %q", got)
	}
	corrupt := fmt.Errorf("%w: envelope record: truncated", store.ErrCorrupt)
	if got := logError(corrupt); got != corrupt.Error() {
		t.Errorf("logged %q", got)
	}
}

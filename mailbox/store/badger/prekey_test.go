package badger

import (
	"bytes"
	"encoding/binary"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/sealnet/sealnet/mailbox/proto"
	"github.com/sealnet/sealnet/mailbox/store"
)

func stPrekey(id uint32, size int) proto.Prekey {
	d := bytes.Repeat([]byte{byte(id)}, size)
	binary.BigEndian.PutUint32(d, id)
	return proto.Prekey{ID: id, Data: d}
}

func stPrekeys(from, n uint32) []proto.Prekey {
	var ps []proto.Prekey
	for id := from; id < from+n; id++ {
		ps = append(ps, stPrekey(id, 36))
	}
	return ps
}

// stTakeLog records the one-time prekeys handed out.
type stTakeLog struct {
	mu        sync.Mutex
	classical map[uint32]int
	pq        map[uint32]int
}

func newStTakeLog() *stTakeLog {
	return &stTakeLog{classical: map[uint32]int{}, pq: map[uint32]int{}}
}

func (l *stTakeLog) add(t *testing.T, b store.Bundle) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if b.Signed == nil || b.LastResort == nil {
		t.Error("bundle without signed or last-resort prekey")
	}
	if b.OneTime != nil {
		if !bytes.Equal(b.OneTime.Data, stPrekey(b.OneTime.ID, 36).Data) {
			t.Errorf("one-time prekey %d has wrong data", b.OneTime.ID)
		}
		l.classical[b.OneTime.ID]++
	}
	if b.PQOneTime != nil {
		l.pq[b.PQOneTime.ID]++
	}
}

func (l *stTakeLog) check(t *testing.T, want int) {
	t.Helper()
	for name, m := range map[string]map[uint32]int{"classical": l.classical, "post-quantum": l.pq} {
		for id, n := range m {
			if n != 1 {
				t.Errorf("%s one-time prekey %d handed out %d times", name, id, n)
			}
		}
		if len(m) != want {
			t.Errorf("%d %s one-time prekeys handed out, want %d", len(m), name, want)
		}
	}
}

func stUploadFull(t *testing.T, s *DB, mb proto.MailboxID, n uint32) {
	t.Helper()
	sp, lr := stPrekey(1, 100), stPrekey(2, 1600)
	err := s.UploadPrekeys(mb, proto.PrekeyUpload{Signed: &sp, LastResort: &lr, OneTime: stPrekeys(100, n), PQOneTime: stPrekeys(500, n)})
	if err != nil {
		t.Fatal(err)
	}
}

func TestStorePrekeyConcurrentTakes(t *testing.T) {
	s := stOpen(t, "", Config{})
	mb := stRegister(t, s, "alice")
	stUploadFull(t, s, mb, 50)
	log := newStTakeLog()
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range 100 {
		wg.Go(func() {
			<-start
			b, err := s.TakeBundle(mb, true)
			if err != nil {
				t.Error(err)
				return
			}
			log.add(t, b)
		})
	}
	close(start)
	wg.Wait()
	log.check(t, 50)
	b, err := s.TakeBundle(mb, true)
	if err != nil {
		t.Fatal(err)
	}
	if b.OneTime != nil || b.PQOneTime != nil || b.OneTimeLeft != 0 || b.PQOneTimeLeft != 0 {
		t.Fatalf("after the storm: %+v", b)
	}
	// When out, the bundle still carries the signed and last-resort keys.
	if b.Signed == nil || b.Signed.ID != 1 || b.LastResort == nil || b.LastResort.ID != 2 || len(b.LastResort.Data) != 1600 {
		t.Fatalf("bundle when out: %+v", b)
	}
}

// TestStorePrekeyTakesConflict runs takes on two stores' worth of
// transactions without the stripe lock, so that only Badger's conflict
// detection stands between two takes of one prekey.
func TestStorePrekeyTakesConflict(t *testing.T) {
	s := stOpen(t, "", Config{})
	mb := stRegister(t, s, "alice")
	stUploadFull(t, s, mb, 20)
	log := newStTakeLog()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 40 {
				var b store.Bundle
				err := s.update(func(txn *badger.Txn) error {
					b = store.Bundle{Signed: &proto.Prekey{}, LastResort: &proto.Prekey{}}
					ps, err := loadPrekeyState(txn, &mb)
					if err != nil {
						return err
					}
					if b.OneTime, err = s.takeOne(txn, &mb, prekeyOneTime, &ps.oneTime); err != nil {
						return err
					}
					if b.PQOneTime, err = s.takeOne(txn, &mb, prekeyPQOneTime, &ps.pqOneTime); err != nil {
						return err
					}
					return txn.Set(mailboxKey(tagPrekeyState, &mb), ps.encode())
				})
				if errors.Is(err, store.ErrBusy) {
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				log.add(t, b)
			}
		})
	}
	wg.Wait()
	log.check(t, 20)
}

// TestStorePrekeyTakesAcrossRestart: a storm of takes with the store closed
// and reopened in the middle (by the goroutine that got the 20th prekey,
// while the others keep taking); callers that meet store.ErrClosed retry on the
// new store. No prekey is handed out twice, and all 50 are handed out.
func TestStorePrekeyTakesAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Config{})
	if err != nil {
		t.Fatal(err)
	}
	mb := stRegister(t, s, "alice")
	stUploadFull(t, s, mb, 50)
	var cur atomic.Pointer[DB]
	cur.Store(s)
	t.Cleanup(func() { cur.Load().Close() })
	log := newStTakeLog()
	var taken, closedSeen, handedAtRestart atomic.Int32
	restart := func() {
		old := cur.Load()
		if err := old.Close(); err != nil {
			t.Error(err)
		}
		s2, err := Open(dir, Config{})
		if err != nil {
			t.Error(err)
			return
		}
		cur.Store(s2)
	}
	var wg sync.WaitGroup
	for range 100 {
		wg.Go(func() {
			empty := 0
			for range 10_000 {
				b, err := cur.Load().TakeBundle(mb, true)
				if errors.Is(err, store.ErrClosed) {
					closedSeen.Add(1)
					time.Sleep(100 * time.Microsecond)
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				log.add(t, b)
				if b.OneTime == nil {
					if empty++; empty == 2 {
						return
					}
					continue
				}
				if taken.Add(1) == 20 {
					handedAtRestart.Store(20)
					restart()
				}
			}
			t.Error("storm did not end")
		})
	}
	wg.Wait()
	if handedAtRestart.Load() != 20 || closedSeen.Load() == 0 {
		t.Fatalf("the restart did not happen in the middle of the storm (%d calls met the closed store)", closedSeen.Load())
	}
	t.Logf("%d calls met the closed store", closedSeen.Load())
	for range 10 {
		b, err := cur.Load().TakeBundle(mb, true)
		if err != nil {
			t.Fatal(err)
		}
		log.add(t, b)
	}
	log.check(t, 50)
}

func TestStorePrekeyReuse(t *testing.T) {
	dir := t.TempDir()
	s := stOpen(t, dir, Config{})
	mb := stRegister(t, s, "alice")
	if err := s.UploadPrekeys(mb, proto.PrekeyUpload{OneTime: stPrekeys(1, 3), PQOneTime: stPrekeys(1, 3)}); err != nil {
		t.Fatal(err)
	}
	// Held, not handed out.
	if err := s.UploadPrekeys(mb, proto.PrekeyUpload{OneTime: stPrekeys(3, 2)}); !errors.Is(err, store.ErrPrekeyReused) {
		t.Fatalf("held ID: %v", err)
	}
	// Nothing of a refused upload is stored.
	if b, _ := s.TakeBundle(mb, false); b.OneTimeLeft != 3 || b.Signed != nil {
		t.Fatalf("after the refused upload: %+v", b)
	}
	b, err := s.TakeBundle(mb, true)
	if err != nil || b.OneTime.ID != 1 || b.PQOneTime.ID != 1 || b.OneTimeLeft != 2 {
		t.Fatalf("take: %+v %v", b, err)
	}
	// Handed out, also after a restart.
	s.Close()
	s = stOpen(t, dir, Config{})
	if err := s.UploadPrekeys(mb, proto.PrekeyUpload{OneTime: []proto.Prekey{stPrekey(1, 36)}}); !errors.Is(err, store.ErrPrekeyReused) {
		t.Fatalf("handed-out ID: %v", err)
	}
	if err := s.UploadPrekeys(mb, proto.PrekeyUpload{PQOneTime: []proto.Prekey{stPrekey(1, 36)}}); !errors.Is(err, store.ErrPrekeyReused) {
		t.Fatalf("handed-out PQ ID: %v", err)
	}
	if err := s.UploadPrekeys(mb, proto.PrekeyUpload{OneTime: []proto.Prekey{stPrekey(9, 36), stPrekey(9, 36)}}); !errors.Is(err, store.ErrPrekeyReused) {
		t.Fatalf("repeated ID: %v", err)
	}
	// The ID spaces of the two kinds are separate; new IDs are fine.
	if err := s.UploadPrekeys(mb, proto.PrekeyUpload{OneTime: []proto.Prekey{stPrekey(9, 36)}, PQOneTime: []proto.Prekey{stPrekey(9, 36)}}); err != nil {
		t.Fatal(err)
	}
	// The handed-out prekey reappears (a Delete undone): still never
	// handed out again, and deleted again.
	s.db.Update(func(txn *badger.Txn) error {
		p := stPrekey(1, 36)
		return txn.Set(prekeyKey(tagPrekey, &mb, prekeyOneTime, 1), encodePrekey(&p))
	})
	b, err = s.TakeBundle(mb, true)
	if err != nil || b.OneTime == nil || b.OneTime.ID != 2 {
		t.Fatalf("after a reappearing prekey: %+v %v", b, err)
	}
	s.db.View(func(txn *badger.Txn) error {
		if _, found, _ := get(txn, prekeyKey(tagPrekey, &mb, prekeyOneTime, 1)); found {
			t.Error("reappeared prekey not deleted again")
		}
		return nil
	})
}

func TestStorePrekeyLimits(t *testing.T) {
	s := stOpen(t, "", Config{})
	mb := stRegister(t, s, "alice")
	big := stPrekey(1, store.MaxPrekeyData+1)
	for _, c := range []struct {
		up  proto.PrekeyUpload
		err error
	}{
		{proto.PrekeyUpload{Signed: &big}, store.ErrTooLarge},
		{proto.PrekeyUpload{LastResort: &proto.Prekey{ID: 1}}, store.ErrInvalid},
		{proto.PrekeyUpload{OneTime: []proto.Prekey{big}}, store.ErrTooLarge},
		{proto.PrekeyUpload{OneTime: stPrekeys(1, 1001)}, store.ErrTooLarge},
		{proto.PrekeyUpload{PQOneTime: stPrekeys(1, 201)}, store.ErrTooLarge},
	} {
		if err := s.UploadPrekeys(mb, c.up); !errors.Is(err, c.err) {
			t.Errorf("%v, want %v", err, c.err)
		}
	}
	if err := s.UploadPrekeys(mb, proto.PrekeyUpload{OneTime: stPrekeys(1, 1000), PQOneTime: stPrekeys(1, 200)}); err != nil {
		t.Fatal(err)
	}
	if err := s.UploadPrekeys(mb, proto.PrekeyUpload{OneTime: stPrekeys(5000, 1)}); !errors.Is(err, store.ErrQuota) {
		t.Fatalf("1001 held: %v", err)
	}
	if err := s.UploadPrekeys(mb, proto.PrekeyUpload{PQOneTime: stPrekeys(5000, 1)}); !errors.Is(err, store.ErrQuota) {
		t.Fatalf("201 held: %v", err)
	}
	if _, err := s.TakeBundle(mb, true); err != nil {
		t.Fatal(err)
	}
	if err := s.UploadPrekeys(mb, proto.PrekeyUpload{OneTime: stPrekeys(5000, 1), PQOneTime: stPrekeys(5000, 1)}); err != nil {
		t.Fatalf("after a take: %v", err)
	}
	b, err := s.TakeBundle(mb, false)
	if err != nil || b.OneTimeLeft != 1000 || b.PQOneTimeLeft != 200 || b.OneTime != nil || b.Signed != nil {
		t.Fatalf("bundle %+v %v", b, err)
	}
}

package mailbox

import (
	"fmt"

	"github.com/dgraph-io/badger/v4"
	"github.com/sealnet/sealnet/mailbox/proto"
)

// storeSub is one Notify subscription.
type storeSub struct {
	ch     chan struct{}
	closed bool // guarded by Store.subsMu
}

// Notify returns a channel that receives (non-blocking, capacity 1) after
// each durable delivery to mb (before that Deliver call returns), and a
// function to stop, which closes the
// channel and may be called more than once. Close closes every channel.
// Bounded: at most 64 subscriptions per mailbox and 10,000 in all (ErrBusy
// beyond). ErrNotFound if there is no such mailbox.
func (s *Store) Notify(mb proto.MailboxID) (<-chan struct{}, func(), error) {
	if err := s.enter(); err != nil {
		return nil, nil, err
	}
	err := s.db.View(func(txn *badger.Txn) error { return storeMailboxExists(txn, &mb) })
	s.leave()
	if err != nil {
		return nil, nil, err
	}
	s.subsMu.Lock()
	defer s.subsMu.Unlock()
	if s.subsClosed {
		return nil, nil, ErrClosed
	}
	set := s.subs[mb]
	if len(set) >= storeMaxSubsPerMailbox {
		return nil, nil, fmt.Errorf("%w: %d subscriptions to one mailbox", ErrBusy, len(set))
	}
	if s.nsubs >= storeMaxSubs {
		return nil, nil, fmt.Errorf("%w: %d subscriptions", ErrBusy, s.nsubs)
	}
	if set == nil {
		set = make(map[*storeSub]struct{})
		s.subs[mb] = set
	}
	sub := &storeSub{ch: make(chan struct{}, 1)}
	set[sub] = struct{}{}
	s.nsubs++
	stop := func() {
		s.subsMu.Lock()
		defer s.subsMu.Unlock()
		if sub.closed {
			return
		}
		sub.closed = true
		close(sub.ch)
		if set := s.subs[mb]; set != nil {
			delete(set, sub)
			s.nsubs--
			if len(set) == 0 {
				delete(s.subs, mb)
			}
		}
	}
	return sub.ch, stop, nil
}

// notify wakes mb's subscribers without blocking.
func (s *Store) notify(mb *proto.MailboxID) {
	s.subsMu.Lock()
	defer s.subsMu.Unlock()
	for sub := range s.subs[*mb] {
		select {
		case sub.ch <- struct{}{}:
		default:
		}
	}
}

// closeSubs closes every subscription channel (at Close).
func (s *Store) closeSubs() {
	s.subsMu.Lock()
	defer s.subsMu.Unlock()
	s.subsClosed = true
	for mb, set := range s.subs {
		for sub := range set {
			sub.closed = true
			close(sub.ch)
		}
		delete(s.subs, mb)
	}
	s.nsubs = 0
}

package badger

import (
	"fmt"

	"github.com/dgraph-io/badger/v4"
	"github.com/sealnet/sealnet/mailbox/proto"
	"github.com/sealnet/sealnet/mailbox/store"
)

// subscription is one Notify subscription.
type subscription struct {
	ch     chan struct{}
	closed bool // guarded by DB.subsMu
}

// Notify returns a channel that receives (non-blocking, capacity 1) after
// each durable delivery to mb (before that Deliver call returns), and a
// function to stop, which closes the
// channel and may be called more than once. Close closes every channel.
// Bounded: at most 64 subscriptions per mailbox and 10,000 in all (store.ErrBusy
// beyond). store.ErrNotFound if there is no such mailbox.
func (s *DB) Notify(mb proto.MailboxID) (<-chan struct{}, func(), error) {
	if err := s.enter(); err != nil {
		return nil, nil, err
	}
	err := s.db.View(func(txn *badger.Txn) error { return mailboxExists(txn, &mb) })
	s.leave()
	if err != nil {
		return nil, nil, err
	}
	s.subsMu.Lock()
	defer s.subsMu.Unlock()
	if s.subsClosed {
		return nil, nil, store.ErrClosed
	}
	set := s.subs[mb]
	if len(set) >= store.MaxSubsPerMailbox {
		return nil, nil, fmt.Errorf("%w: %d subscriptions to one mailbox", store.ErrBusy, len(set))
	}
	if s.nsubs >= store.MaxSubs {
		return nil, nil, fmt.Errorf("%w: %d subscriptions", store.ErrBusy, s.nsubs)
	}
	if set == nil {
		set = make(map[*subscription]struct{})
		s.subs[mb] = set
	}
	sub := &subscription{ch: make(chan struct{}, 1)}
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
func (s *DB) notify(mb *proto.MailboxID) {
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
func (s *DB) closeSubs() {
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

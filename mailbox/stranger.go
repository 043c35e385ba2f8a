package mailbox

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sealnet/sealnet/mailbox/proto"
	"github.com/sealnet/sealnet/mailbox/store"
)

// StrangerAnswerTime is when a provider answers, on a direct link (client
// or user), the requests anyone may make about any mailbox: a bundle
// request, and a delivery that no valid delivery token authorizes. Each
// is answered this long after it arrived (after its last frame was
// read), whether the mailbox exists or not, so that how long the work
// took (an account lookup, a Badger commit, a prekey hand-out) does not
// show. It is well above a commit's time (milliseconds); it is the added
// latency of a first contact over the onion route (docs/tor.md).
//
// If the work has not finished by then, the answer goes at this time all
// the same: "accepted" for a delivery (what it answers without a token
// anyway; the work goes on and may still store the envelope), and
// "unavailable" for a bundle request (the client asks again; a one-time
// prekey the work hands out is used up, as it is for a real account
// and a fake one alike). A delivery the mailbox's token authorizes is
// answered as soon as it is done: its sender knows the mailbox exists.
//
// The work runs on at most Settings.DeliveryWorkers goroutines at once
// for the whole provider; a request that finds none free is answered
// "unavailable" at the same time, without being looked at.
const StrangerAnswerTime = 250 * time.Millisecond

// legacyStranger, set by the tests (export_test.go), turns a service back
// into what it was before issue 15 when its settings ask for it.
var legacyStranger func(*Service)

// strangerWorkTimeout bounds the work of one such request that outlives
// its answer.
const strangerWorkTimeout = 30 * time.Second

// answerAt runs work for a request that arrived at arrived and returns its
// answer at arrived + the answer time (StrangerAnswerTime), or as soon as
// work is done if it called authorized first. late is the answer if work
// is not done by then, busy the answer if no worker is free. A work
// outliving its answer is added to stragglers, which the link's handler
// waits for before it returns.
func (s *Service) answerAt(ctx context.Context, arrived time.Time, stragglers *sync.WaitGroup,
	work func(ctx context.Context, authorized func()) proto.Message, late, busy proto.Message) proto.Message {
	deadline := s.clock.NewTimer(arrived.Add(s.answerTime).Sub(s.now()))
	defer deadline.Stop()
	select {
	case s.strangerSlots <- struct{}{}:
	default:
		s.m.rejected("busy").Inc()
		<-deadline.C()
		return busy
	}
	var auth atomic.Bool
	authCh := make(chan struct{})
	done := make(chan proto.Message, 1)
	stragglers.Go(func() {
		defer func() { <-s.strangerSlots }()
		wctx, cancel := context.WithTimeout(ctx, strangerWorkTimeout)
		defer cancel()
		done <- work(wctx, func() {
			if !auth.Swap(true) {
				close(authCh)
			}
		})
	})
	for {
		select {
		case m := <-done:
			if !auth.Load() {
				<-deadline.C()
			}
			return m
		case <-authCh:
			authCh = nil // wait for done alone
			deadline.Stop()
		case <-deadline.C():
			s.m.rejected("overrun").Inc()
			return late
		}
	}
}

// anyones answers, at the answer time, the requests of m's kinds that
// anyone may make (a delivery, a bundle request); nil for any other
// request, or when the answer time is zero (handle answers those at once).
func (s *Service) anyones(ctx context.Context, arrived time.Time, stragglers *sync.WaitGroup, m proto.Message) proto.Message {
	if s.answerTime <= 0 {
		return nil
	}
	busy := &proto.Status{Code: proto.StatusUnavailable, Detail: "busy; try again"}
	switch r := m.(type) {
	case *proto.DeliverRequest:
		env := store.Envelope{Kind: proto.EnvelopeSealed, ID: r.EnvelopeID, Data: r.Data}
		busy.EnvelopeID = r.EnvelopeID
		return s.answerAt(ctx, arrived, stragglers, func(ctx context.Context, authorized func()) proto.Message {
			return s.deliverAs(ctx, r.Mailbox, env, r.Token, authorized)
		}, &proto.Status{Code: proto.StatusAccepted, EnvelopeID: r.EnvelopeID}, busy)
	case *proto.BundleRequest:
		return s.answerAt(ctx, arrived, stragglers, func(context.Context, func()) proto.Message {
			return s.bundle(r.Mailbox)
		}, &proto.Status{Code: proto.StatusUnavailable, Detail: "busy; try again"}, busy)
	}
	return nil
}

package sender

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/sealnet/sealnet/internal/loopwatch"
	"github.com/sealnet/sealnet/mailbox/proto"
	"github.com/sealnet/sealnet/mixnet"
	"github.com/sealnet/sealnet/mixnet/directory"
	"github.com/sealnet/sealnet/sender/seal"
)

// Run sends and fetches like a Loopix client until ctx is done or done
// (checked after every event) reports true. Sending is a Poisson stream
// of rate Settings.Rate: at each tick the next queued real packet leaves,
// or a cover packet if none is queued, so an observer sees the same
// stream whether the user writes or not; every packet, real or cover,
// brings one reply back through its SURB, so what returns does not tell
// them apart either. Fragments not acknowledged in time are sent again on
// a new path after a random extra delay.
func (c *Client) Run(ctx context.Context, done func() bool) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() { c.fetchLoop(ctx) })
	if c.opts.OnionDial != nil {
		wg.Go(func() { c.directLoop(ctx) })
	}
	c.spoolIn()
	err := c.sendLoop(ctx, done)
	cancel()
	wg.Wait()
	return err
}

func (c *Client) exp(rate float64) time.Duration {
	if rate <= 0 {
		return time.Duration(1<<62 - 1)
	}
	c.rngMu.Lock()
	defer c.rngMu.Unlock()
	return time.Duration(c.rng.ExpFloat64() / rate * float64(time.Second))
}

func (c *Client) jitter(max time.Duration) time.Duration {
	if max <= 0 {
		return 0
	}
	c.rngMu.Lock()
	defer c.rngMu.Unlock()
	return time.Duration(c.rng.Int64N(int64(max)))
}

func (c *Client) sendLoop(ctx context.Context, done func() bool) error {
	c.started = c.now()
	s := c.settings()
	nextSend := c.now().Add(c.exp(s.Rate))
	const tickEvery = 500 * time.Millisecond
	tick := c.clock.NewTimer(tickEvery)
	defer tick.Stop()
	timer := c.clock.NewTimer(0)
	defer timer.Stop()
	for {
		if done != nil && done() {
			return nil
		}
		if r := c.net().ClientRate; r != s.Rate {
			// A new epoch's rate (or the first document's): exponential
			// gaps are memoryless, so drawing afresh is the new stream.
			s.Rate = r
			nextSend = c.now().Add(c.exp(r))
		}
		if !timer.Stop() {
			select {
			case <-timer.C():
			default:
			}
		}
		timer.Reset(nextSend.Sub(c.now()))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C():
			tick.Reset(tickEvery)
			c.maintain()
			c.spoolIn()
			c.checkLoops()
			if s.Rate <= 0 {
				c.sendDue(ctx)
			}
			continue
		case <-c.wake:
			if s.Rate <= 0 {
				c.sendDue(ctx)
			}
			continue
		case <-timer.C():
		}
		now := c.now()
		if !now.Before(nextSend) {
			if err := c.slot(ctx); err != nil && ctx.Err() == nil {
				c.log.Warn("sending", "err", err)
			}
			nextSend = nextSend.Add(c.exp(s.Rate))
			if nextSend.Before(now) {
				nextSend = now.Add(c.exp(s.Rate)) // fell behind: do not burst
			}
		}
		c.maintain()
	}
}

// settings are the client's settings with the network's parameters in
// force (netSettings).
func (c *Client) settings() Settings {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.netSettings(c.st.Settings)
}

// net returns the network's parameters (directory.Parameters) the client
// follows: those of the newest document it holds, or the defaults before
// it has one, changed by Options.Params if set (tests and measurement
// controls only). The client never uses its own: a client with other
// rates or delays than everybody else's stands out.
func (c *Client) net() directory.Parameters {
	p := directory.DefaultParameters()
	if l := c.dir.Latest(); l != nil {
		p = l.Doc.Params()
	}
	if c.opts.Params != nil {
		c.opts.Params(&p)
	}
	return p
}

// netSettings returns s with the network's parameters in place of the
// fields they replace (the state keeps those fields only so that old
// states load).
func (c *Client) netSettings(s Settings) Settings {
	p := c.net()
	s.Rate, s.MeanDelay, s.FetchInterval = p.ClientRate, p.MeanDelay, p.FetchInterval
	s.AckTimeout, s.RetryJitter, s.MaxAttempts = p.AckTimeout, p.RetryJitter, p.MaxAttempts
	s.LoopRate = 0
	return s
}

// pick returns a random element.
func (c *Client) pick(ds []*directory.Descriptor) *directory.Descriptor {
	c.rngMu.Lock()
	defer c.rngMu.Unlock()
	return ds[c.rng.IntN(len(ds))]
}

// path selects a stratified path to dest.
func (c *Client) path(doc *directory.Document, dest *directory.Descriptor, epoch uint64) ([]mixnet.Hop, error) {
	c.rngMu.Lock()
	defer c.rngMu.Unlock()
	return doc.SelectPath(c.rng, dest, epoch, c.net().MeanDelay)
}

// newSURB makes a SURB that brings a reply to this user's mailbox, and
// records its keys; the caller holds mu and saves.
func (c *Client) newSURBLocked(doc *directory.Document, epoch uint64, purpose, msg string, index int) ([]byte, string, error) {
	own, err := c.provider(doc, c.st.Address)
	if err != nil {
		return nil, "", err
	}
	back, err := c.path(doc, own, epoch)
	if err != nil {
		return nil, "", err
	}
	mb := proto.MailboxOf(c.st.Address)
	if c.replyKeyLink != own.LinkKey || c.replyKeyMB != mb || c.replyKeyLink == ([32]byte{}) {
		k, err := proto.OwnerReplyKey(c.id.X25519, own.LinkKey, mb)
		if err != nil {
			return nil, "", err
		}
		c.replyKey, c.replyKeyLink, c.replyKeyMB = k, own.LinkKey, mb
	}
	// The ID tells the provider that this user made the SURB: replies to
	// it are stored, forgeries are not (docs/mailbox.md §3).
	sid, err := c.replyKey.NewReplyID(crand.Reader, mb)
	if err != nil {
		return nil, "", err
	}
	surb, keys, err := mixnet.NewSURBWithID(crand.Reader, c.geo, back, mixnet.RecipientID(mb), sid)
	if err != nil {
		return nil, "", err
	}
	kb, err := keys.MarshalBinary()
	if err != nil {
		return nil, "", err
	}
	id := hex.EncodeToString(keys.ID[:])
	sk := &SURBKeys{Keys: kb, Purpose: purpose, Message: msg, Index: index, Expires: c.now().Add(24 * time.Hour)}
	if purpose == "loop" {
		// Loop keys live in memory only: losing them in a crash costs
		// nothing, and an idle client then writes nothing to disk.
		sk.Expires = c.now().Add(10 * time.Minute)
		c.loopKeys[id] = sk
	} else {
		c.st.SURBs[id] = sk
	}
	sb, err := surb.MarshalBinary()
	return sb, id, err
}

// packet is a packet ready to leave for an entry mix.
type packet struct {
	kind  string // "real" (a fragment), "bundle" (a key request), "cover", "drop" (before registration)
	entry *directory.Descriptor
	pkt   []byte
	loop  [16]byte // a cover packet's SURB ID: the loop the alarm watches
}

// slot fills one tick of the Poisson stream: the next real packet, or a
// drop cover packet.
func (c *Client) slot(ctx context.Context) error {
	doc, epoch, err := c.document(ctx)
	if err != nil {
		return err
	}
	p, err := c.nextReal(doc, epoch)
	if err != nil {
		return err
	}
	if p == nil {
		if p, err = c.cover(doc, epoch); err != nil {
			return err
		}
	}
	return c.emitPacket(ctx, p)
}

// sendDue sends every real packet due now, without waiting for a slot:
// the client of Settings.Rate 0, which sends no drop cover and so shows an
// observer when its user writes (measurement control runs, docs/measure.md).
func (c *Client) sendDue(ctx context.Context) {
	doc, epoch, err := c.document(ctx)
	if err != nil {
		c.log.Warn("sending", "err", err)
		return
	}
	for range 256 {
		p, err := c.nextReal(doc, epoch)
		if err == nil && p != nil {
			err = c.emitPacket(ctx, p)
		}
		if err != nil && ctx.Err() == nil {
			c.log.Warn("sending", "err", err)
		}
		if err != nil || p == nil {
			return
		}
	}
}

func (c *Client) emitPacket(ctx context.Context, p *packet) error {
	if w := c.watch.Load(); w != nil && p.kind == "cover" {
		// Watched from here: a packet a test filter drops, or the
		// entry link refuses, is lost like one an adversary drops.
		w.Sent(p.loop, c.now())
	}
	if c.opts.Filter != nil && !c.opts.Filter(p.kind, p.pkt) {
		return nil // a test dropped it
	}
	return c.links.send(ctx, p.entry, p.pkt)
}

// loopCheck is how often the loop alarm's tests run (its false-alarm
// bound counts them: docs/client.md §5).
const loopCheck = 5 * time.Second

// checkLoops runs the loop alarm and tells the user when it starts or
// clears: an EventWarning (the daemon prints it) and a log line with the
// figures, nothing about contacts or packets.
func (c *Client) checkLoops() {
	now := c.now()
	if now.Sub(c.lastCheck) < loopCheck {
		return
	}
	c.lastCheck = now
	p := c.net()
	w := c.watch.Load()
	if w == nil {
		// Armed once the client is up: its fetches work, and an
		// acknowledgement timeout has passed since it started, so that
		// what a starting network or link loses is not taken for an
		// attack. A loop is lost once it is twice the acknowledgement
		// timeout late: by then a reply would have been resent for a
		// message.
		if !c.pulled.Load() || now.Sub(c.started) < p.AckTimeout {
			return
		}
		var err error
		if w, err = loopwatch.New(loopwatch.Config{Timeout: 2 * p.AckTimeout}); err != nil {
			c.log.Error("loop alarm", "err", err)
			return
		}
		c.watch.Store(w)
	}
	layers := 3
	if l := c.dir.Latest(); l != nil {
		layers = len(l.Doc.Layers)
	}
	// Out through every layer to a provider, which holds it, and back
	// through every layer to the own provider, which holds it too; then
	// the reply waits for the next fetch. The providers' holds, the fetch
	// and the links are the fixed allowance (five mean holds: the hold's
	// tail, as the directory's acknowledgement bound counts it).
	allowance := 5*p.ProviderHold + p.FetchInterval + proto.PullAnswerDelay + time.Duration(2*layers+3)*250*time.Millisecond
	w.SetSlowRTT(loopwatch.ExpectedRTT(2*(layers+1), p.MeanDelay, allowance, 1-loopwatch.DefaultSlowShare))
	st := w.Check(now)
	switch {
	case st.Started != 0:
		c.log.Warn("cover packets do not come back as they should", "alarm", st.Alarm.String(),
			"lost", st.Loss.Lost(), "sent", st.Loss.Sent, "slow", st.Delay.Slow, "returned", st.Delay.Returned)
		c.emit(Event{Kind: EventWarning, Text: st.Text()})
	case st.Cleared != 0 && st.Alarm == 0:
		c.log.Info("cover packets come back normally again")
		c.emit(Event{Kind: EventNotice, Text: st.Text()})
	}
}

// nextReal builds the next real packet due, if any: a bundle request for
// a first contact, or a fragment's first or next transmission. State is
// saved (with the SURB keys) before the packet can leave.
func (c *Client) nextReal(doc *directory.Document, epoch uint64) (*packet, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	s := c.netSettings(c.st.Settings)
	for _, o := range c.st.Outbox {
		if o.Route == RouteOnion {
			continue // directLoop's
		}
		if !now.Before(o.Deadline(c.ttl())) {
			continue // expired: maintain reports it
		}
		switch o.Status {
		case StatusBundle:
			if now.Before(o.BundleNextAt) || o.BundleAttempts-o.BundleRefused >= s.MaxAttempts {
				continue
			}
			return c.bundleRequestLocked(doc, epoch, o)
		case StatusSending:
			for _, f := range o.Fragments {
				if f.Acked || f.silent() >= s.MaxAttempts || now.Before(f.NextAt) {
					continue
				}
				return c.fragmentPacketLocked(doc, epoch, o, f)
			}
		}
	}
	return nil, nil
}

func (c *Client) bundleRequestLocked(doc *directory.Document, epoch uint64, o *Outgoing) (*packet, error) {
	dest, err := c.provider(doc, o.To)
	if err != nil {
		c.failLocked(o, err.Error())
		return nil, nil
	}
	sb, sid, err := c.newSURBLocked(doc, epoch, "bundle", o.idHex(), 0)
	if err != nil {
		return nil, err
	}
	msg, err := proto.MarshalMixRequest(c.geo, &proto.MixRequest{SURB: sb, Bundle: true})
	if err != nil {
		return nil, err
	}
	o.BundleAttempts++
	o.BundleSURB, o.BundleLater = sid, false
	s := c.net()
	o.BundleNextAt = c.now().Add(s.AckTimeout + c.jitter(s.RetryJitter))
	p, err := c.buildLocked(doc, epoch, dest, proto.MailboxOf(o.To), msg)
	if p != nil {
		p.kind = "bundle"
	}
	return p, err
}

func (c *Client) fragmentPacketLocked(doc *directory.Document, epoch uint64, o *Outgoing, f *OutFragment) (*packet, error) {
	dest, err := c.provider(doc, o.To)
	if err != nil {
		c.failLocked(o, err.Error())
		return nil, nil
	}
	sb, sid, err := c.newSURBLocked(doc, epoch, "ack", o.idHex(), f.Index)
	if err != nil {
		return nil, err
	}
	var token [32]byte
	copy(token[:], o.Token)
	md := &proto.MixDeliver{Token: token, Data: f.Blob}
	copy(md.EnvelopeID[:], f.EnvelopeID)
	msg, err := proto.MarshalMixRequest(c.geo, &proto.MixRequest{SURB: sb, Deliver: md})
	if err != nil {
		return nil, err
	}
	f.Attempts++
	f.SURB, f.Later = sid, false
	s := c.net()
	f.NextAt = c.now().Add(s.AckTimeout + c.jitter(s.RetryJitter))
	return c.buildLocked(doc, epoch, dest, proto.MailboxOf(o.To), msg)
}

// buildLocked wraps msg in a Sphinx packet along a fresh path to dest,
// after saving the state.
func (c *Client) buildLocked(doc *directory.Document, epoch uint64, dest *directory.Descriptor, mb proto.MailboxID, msg []byte) (*packet, error) {
	return c.buildSaveLocked(doc, epoch, dest, mb, msg, true)
}

func (c *Client) buildSaveLocked(doc *directory.Document, epoch uint64, dest *directory.Descriptor, mb proto.MailboxID, msg []byte, save bool) (*packet, error) {
	path, err := c.path(doc, dest, epoch)
	if err != nil {
		return nil, err
	}
	pkt, err := mixnet.NewPacket(crand.Reader, c.geo, path, mixnet.RecipientID(mb), msg)
	if err != nil {
		return nil, err
	}
	entry, ok := doc.Node(path[0].ID)
	if !ok {
		return nil, errors.New("sender: entry mix not in the document")
	}
	if save {
		if err := c.saveLocked(); err != nil {
			return nil, err
		}
	}
	return &packet{kind: "real", entry: entry, pkt: pkt}, nil
}

// CoverReturns says what a cover packet of the Poisson stream is: a
// request that brings a reply back through its SURB, like every real
// packet (cover). The simulator's client.cover = "returns" models this,
// and TestCoverReturns checks it.
const CoverReturns = true

// cover is a cover packet: a request to a random provider that it
// discards and answers through the packet's SURB, after the same hold as
// any reply. Every packet the client sends, real or cover, so brings one
// reply back into the user's mailbox (Nym's cover carries a SURB for the
// same reason): what comes back, and when, does not tell a provider or an
// observer which of the client's packets were real. The reply is the
// cover's return, the loop that shows the path works (its keys live in
// memory only: losing them in a crash costs nothing, and an idle client
// writes nothing to disk).
func (c *Client) cover(doc *directory.Document, epoch uint64) (*packet, error) {
	dest := c.pick(doc.Providers)
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.st.Registered {
		// No mailbox for a reply yet: a plain drop.
		path, err := c.path(doc, dest, epoch)
		if err != nil {
			return nil, err
		}
		pkt, err := mixnet.NewPacket(crand.Reader, c.geo, path, mixnet.RecipientID{}, nil)
		if err != nil {
			return nil, err
		}
		entry, _ := doc.Node(path[0].ID)
		return &packet{kind: "drop", entry: entry, pkt: pkt}, nil
	}
	for id, sk := range c.loopKeys {
		if c.now().After(sk.Expires) {
			delete(c.loopKeys, id)
		}
	}
	sb, sid, err := c.newSURBLocked(doc, epoch, "loop", "", 0)
	if err != nil {
		return nil, err
	}
	msg, err := proto.MarshalMixRequest(c.geo, &proto.MixRequest{SURB: sb, Cover: true})
	if err != nil {
		return nil, err
	}
	p, err := c.buildSaveLocked(doc, epoch, dest, proto.MailboxID{}, msg, false)
	if err != nil {
		return nil, err
	}
	p.kind = "cover"
	hex.Decode(p.loop[:], []byte(sid))
	return p, nil
}

// maintain settles messages: delivered when every fragment is
// acknowledged; not delivered when a fragment (or a bundle request) met
// only silence MaxAttempts times, or when the message's TTL passed with
// no transmission still awaiting an answer (retry.go); and forgets what
// is done.
func (c *Client) maintain() {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	s := c.netSettings(c.st.Settings)
	changed := false
	for _, o := range c.st.Outbox {
		expired := !now.Before(o.Deadline(c.ttl()))
		switch o.Status {
		case StatusBundle:
			switch {
			case o.BundleAttempts-o.BundleRefused >= s.MaxAttempts && !o.BundleLater && !now.Before(o.BundleNextAt):
				why := fmt.Sprintf("no answer to %d requests for %s's keys", o.BundleAttempts-o.BundleRefused, o.To)
				if o.Detail != "" {
					why += " (last answer: " + o.Detail + ")"
				}
				c.failLocked(o, why)
				changed = true
			case expired && !o.bundleAwaiting(now):
				c.failLocked(o, c.expiredText(o))
				changed = true
			}
		case StatusSending:
			all, awaiting := true, false
			for _, f := range o.Fragments {
				if !f.Acked {
					all = false
					awaiting = awaiting || f.awaiting(now)
					if f.silent() >= s.MaxAttempts && !f.Later && !now.Before(f.NextAt) {
						why := fmt.Sprintf("no acknowledgement after %d attempts", f.silent())
						if o.Detail != "" {
							why += " (last answer: " + o.Detail + ")"
						}
						c.failLocked(o, why)
						changed = true
						break
					}
				}
			}
			switch {
			case all && o.Status == StatusSending:
				o.Status = StatusDelivered
				changed = true
			case expired && !awaiting && o.Status == StatusSending:
				c.failLocked(o, c.expiredText(o))
				changed = true
			}
		}
		if o.Status.Done() && !o.Reported {
			o.Reported = true
			changed = true
			kind := EventDelivered
			switch o.Status {
			case StatusFailed:
				kind = EventFailed
			case StatusBlocked:
				kind = EventWarning
			}
			c.recordOutgoingLocked(o)
			c.emit(Event{Kind: kind, ID: o.idHex(), To: o.To, Text: o.Detail})
		}
	}
	// Drop finished messages and their SURB keys; SURBs past their time.
	keep := c.st.Outbox[:0]
	settled := map[string]bool{}
	for _, o := range c.st.Outbox {
		if !o.Reported || o.Status == StatusBlocked {
			keep = append(keep, o)
		} else {
			settled[o.idHex()] = true
		}
	}
	for id, sk := range c.st.SURBs {
		if settled[sk.Message] {
			delete(c.st.SURBs, id)
		}
	}
	if len(keep) != len(c.st.Outbox) {
		changed = true
	}
	clear(c.st.Outbox[len(keep):])
	c.st.Outbox = keep
	for id, sk := range c.st.SURBs {
		if now.After(sk.Expires) {
			delete(c.st.SURBs, id)
			changed = true
		}
	}
	if changed {
		if err := c.saveLocked(); err != nil {
			c.log.Error("saving state", "err", err)
		}
	}
}

func (c *Client) failLocked(o *Outgoing, why string) {
	o.Status, o.Detail = StatusFailed, why
	o.Body = nil
}

// Outbox returns a copy of the messages not yet settled, fragments
// included, safe to read while the client runs.
func (c *Client) Outbox() []Outgoing {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Outgoing, 0, len(c.st.Outbox))
	for _, o := range c.st.Outbox {
		cp := *o
		// The fragments too: the client updates them under c.mu.
		cp.Fragments = make([]*OutFragment, len(o.Fragments))
		for i, f := range o.Fragments {
			fc := *f
			cp.Fragments[i] = &fc
		}
		out = append(out, cp)
	}
	return out
}

// sealLocked encrypts o for its recipient on session sess (or the
// recipient's current session) and cuts it into fragments.
func (c *Client) sealLocked(o *Outgoing, sess *seal.Session) error {
	if sess == nil {
		sid, ok := c.sendableLocked(o.To)
		if !ok {
			return fmt.Errorf("sender: no session to send to %s on", o.To)
		}
		var err error
		if sess, err = seal.UnmarshalSession(c.st.Sessions[sid]); err != nil {
			return err
		}
	}
	plain := encodePlain(o.ID, c.now(), c.st.Token, o.Body)
	sm, err := sess.Seal(crand.Reader, plain)
	clear(plain)
	if err != nil {
		return err
	}
	raw, err := sess.MarshalBinary()
	if err != nil {
		return err
	}
	sid := sess.ID()
	c.st.Sessions[hex.EncodeToString(sid[:])] = raw
	var mid [16]byte
	copy(mid[:], o.ID)
	blobs, err := seal.SealEnvelope(crand.Reader, sess.Peer(), c.st.Certificate, sm, mid, proto.MaxMixEnvelope(c.geo))
	if err != nil {
		return err
	}
	o.Fragments = o.Fragments[:0]
	for i, b := range blobs {
		eid := seal.EnvelopeID(mid, i)
		o.Fragments = append(o.Fragments, &OutFragment{Index: i, EnvelopeID: eid[:], Blob: b})
	}
	if ct := c.st.Contacts[o.To]; ct != nil {
		o.Token = ct.Token
	}
	o.Status, o.Body = StatusSending, nil
	return nil
}

package sender

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/sealnet/sealnet/mailbox/proto"
	"github.com/sealnet/sealnet/mixnet"
	"github.com/sealnet/sealnet/mixnet/directory"
	"github.com/sealnet/sealnet/sender/seal"
)

// fetchLoop keeps a user link to the own provider and fetches mail until
// ctx is done; a broken link is redialed after a growing pause. With a
// FetchInterval it pulls one fixed-size page per interval on a fixed
// clock (pullOn); with none, it long-polls (fetchOn), which shows an
// observer every arrival (measurement control runs only).
func (c *Client) fetchLoop(ctx context.Context) {
	pause := time.Second
	for ctx.Err() == nil {
		if !c.registered() {
			c.sleep(ctx, time.Second)
			continue
		}
		var err error
		if c.settings().FetchInterval > 0 {
			err = c.pullOn(ctx)
		} else {
			err = c.fetchOn(ctx, func(int, bool) bool { return true })
		}
		if ctx.Err() != nil {
			return
		}
		c.log.Warn("fetching from the provider; will retry", "err", err, "in", pause)
		c.sleep(ctx, pause)
		pause = min(2*pause, 30*time.Second)
	}
}

// upkeepDelay is the mean of the random wait between the provider asking
// for prekeys and the upload: the upload is a visible exchange on the user
// link, and it must not follow the first contact that used the keys.
const upkeepDelay = 10 * time.Minute

// pullOn pulls the own mailbox at a constant rate: one request per
// FetchInterval, at a random phase and then on a fixed clock, each
// acknowledging what the previous page held, each answered by the provider
// PullAnswerDelay later with a page of PageRecords slots. Neither what
// arrived nor what the client does with a page (opening, saving,
// acknowledging) changes when a request leaves or how big any message is.
// A page that takes longer than the interval to process makes the client
// skip a slot, never catch up in a burst.
func (c *Client) pullOn(ctx context.Context) error {
	mc, err := c.dialOwner(ctx)
	if err != nil {
		return err
	}
	defer mc.Close()
	if err := c.upkeep(ctx, mc, 0); err != nil {
		return err
	}
	every := c.settings().FetchInterval
	next := c.now().Add(c.jitter(every))
	var through uint64
	var replenish byte
	var upkeepAt time.Time
	for {
		c.sleep(ctx, next.Sub(c.now()))
		if ctx.Err() != nil {
			return ctx.Err()
		}
		page, err := mc.Pull(ctx, through)
		if err != nil {
			return err
		}
		c.pulled.Store(true)
		last, err := c.processPage(ctx, page)
		if err != nil {
			return err
		}
		through = max(through, last)
		if page.Replenish != 0 && replenish == 0 {
			upkeepAt = c.now().Add(c.exp(1 / upkeepDelay.Seconds()))
		}
		replenish |= page.Replenish
		if replenish != 0 && c.now().After(upkeepAt) {
			if err := c.upkeep(ctx, mc, replenish); err != nil {
				return err
			}
			replenish = 0
		}
		for next = next.Add(every); !next.After(c.now()); next = next.Add(every) {
		}
	}
}

// sleep waits d on the client's clock, or until ctx is done.
func (c *Client) sleep(ctx context.Context, d time.Duration) {
	t := c.clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C():
	}
}

func (c *Client) registered() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.st.Registered
}

// Fetch fetches and processes mail once: every page the provider has,
// waiting up to wait for the first record. It returns the messages
// received (they are also sent as events and kept in the history).
func (c *Client) Fetch(ctx context.Context, wait time.Duration) ([]*Message, error) {
	if !c.registered() {
		return nil, errors.New("sender: not registered yet; run `sealnet register`")
	}
	var got []*Message
	c.mu.Lock()
	c.collect = func(m *Message) { got = append(got, m) }
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.collect = nil
		c.mu.Unlock()
	}()
	first := true
	err := c.fetchOn(ctx, func(records int, more bool) bool {
		if more {
			return true
		}
		if first && records == 0 && wait > 0 {
			first = false
			return true
		}
		return false
	}, wait)
	c.maintain()
	return got, err
}

// fetchOn dials the provider and fetches pages until again (given the
// page's record count and its More flag) returns false, or an error. With
// no wait argument it long-polls with the configured FetchWait.
func (c *Client) fetchOn(ctx context.Context, again func(records int, more bool) bool, wait ...time.Duration) error {
	mc, err := c.dialOwner(ctx)
	if err != nil {
		return err
	}
	defer mc.Close()
	w := c.settings().FetchWait
	if len(wait) > 0 {
		w = wait[0]
	}
	if err := c.upkeep(ctx, mc, 0); err != nil {
		return err
	}
	for ctx.Err() == nil {
		page, err := mc.Fetch(ctx, w)
		if err != nil {
			return err
		}
		last, err := c.processPage(ctx, page)
		if err != nil {
			return err
		}
		if len(page.Records) > 0 {
			if err := mc.Ack(ctx, last); err != nil {
				return err
			}
		}
		if err := c.upkeep(ctx, mc, page.Replenish); err != nil {
			return err
		}
		if !again(len(page.Records), page.More) {
			return nil
		}
	}
	return ctx.Err()
}

// upkeep renews the sender certificate at half its lifetime, rotates the
// signed prekeys weekly, and uploads prekeys the provider says run low.
func (c *Client) upkeep(ctx context.Context, mc *proto.Client, replenish byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	changed := false
	if half := c.st.CertIssued.Add(c.st.CertExpires.Sub(c.st.CertIssued) / 2); len(c.st.Certificate) == 0 || now.After(half) {
		if err := c.renewCertificateLocked(ctx, mc); err != nil {
			return err
		}
		changed = true
	}
	rotate := replenish&proto.ReplenishSigned != 0 || now.Sub(c.st.Prekeys.SignedRotated) > SignedPrekeyLifetime
	if rotate || replenish != 0 {
		if err := c.replenishLocked(ctx, mc, rotate); err != nil {
			return err
		}
		changed = true
	}
	if changed {
		return c.saveLocked()
	}
	return nil
}

// processPage handles every record of a page, saves the state and the
// history, and only then acknowledges the page to the provider: a crash
// in between means the records come again, and are recognised.
// processPage opens, shows and saves what a page holds and returns the
// sequence number of its last record, for the caller to acknowledge (0 if
// the page is empty).
func (c *Client) processPage(ctx context.Context, page *proto.Page) (uint64, error) {
	if len(page.Records) == 0 {
		c.maintain()
		return 0, nil
	}
	doc, _, err := c.document(ctx)
	if err != nil {
		return 0, err
	}
	c.mu.Lock()
	var shown []*Message
	var last uint64
	dirty := false // loop cover alone changes nothing on disk
	for i := range page.Records {
		r := &page.Records[i]
		last = max(last, r.Seq)
		var m *Message
		switch r.Kind {
		case proto.EnvelopeSURBReply:
			dirty = c.surbReplyLocked(doc, r) || dirty
		case proto.EnvelopeSealed:
			m = c.sealedLocked(doc, r)
		}
		if m != nil {
			shown = append(shown, m)
			dirty = true
		}
	}
	if dirty {
		err = c.saveLocked()
	}
	collect := c.collect
	c.mu.Unlock()
	if err != nil {
		return 0, err
	}
	for _, m := range shown {
		c.emit(Event{Kind: EventReceived, Message: m})
		if collect != nil {
			collect(m)
		}
	}
	c.maintain()
	return last, nil
}

// surbReplyLocked opens a reply that came back through one of this
// client's SURBs: an acknowledgement, a bundle, or a loop's return. It
// reports whether the saved state changed.
func (c *Client) surbReplyLocked(doc *directory.Document, r *proto.Record) (changed bool) {
	id := hex.EncodeToString(r.ID[:])
	sk := c.st.SURBs[id]
	changed = sk != nil
	if sk == nil {
		sk = c.loopKeys[id]
	}
	if sk == nil {
		c.log.Debug("reply for an unknown or expired SURB")
		return false
	}
	delete(c.st.SURBs, id) // single use, whatever the reply holds
	delete(c.loopKeys, id)
	keys, err := mixnet.UnmarshalSURBKeys(sk.Keys)
	if err != nil {
		return changed
	}
	msg, err := keys.Open(r.Data)
	if err != nil {
		c.log.Debug("SURB reply does not open", "err", err)
		return changed
	}
	reply, err := proto.ParseReply(msg)
	if err != nil {
		c.log.Debug("SURB reply malformed", "err", err)
		return changed
	}
	c.replies++
	var o *Outgoing
	for _, x := range c.st.Outbox {
		if x.idHex() == sk.Message {
			o = x
		}
	}
	switch sk.Purpose {
	case "loop":
		c.loopsBack++
		if w := c.watch.Load(); w != nil {
			w.Returned([16]byte(r.ID), c.now())
		}
	case "ack":
		st, ok := reply.(*proto.Status)
		if !ok || o == nil || o.Status != StatusSending {
			return changed
		}
		c.ackLocked(o, sk.Index, id, st)
	case "bundle":
		if o == nil || o.Status != StatusBundle {
			return changed
		}
		switch rep := reply.(type) {
		case *proto.BundleResponse:
			c.bundleLocked(o, rep.Bundle)
		case *proto.Status:
			if rep.Code.Transient() {
				c.refusedLocked(o, rep, &o.BundleRefused, &o.BundleNextAt, &o.BundleLater, o.BundleSURB == id)
			} else {
				c.failLocked(o, refusalText(rep))
			}
		}
	}
	return changed
}

// ackLocked applies the provider's answer st to fragment index of o,
// through the SURB surb: acknowledged, refused for now (an answer, so not
// silence: sent again when the provider asked, retry.go), or refused for
// good.
func (c *Client) ackLocked(o *Outgoing, index int, surb string, st *proto.Status) {
	for _, f := range o.Fragments {
		if f.Index != index || !bytes.Equal(f.EnvelopeID, st.EnvelopeID[:]) {
			continue
		}
		switch {
		case st.Code == proto.StatusOK, st.Code == proto.StatusDuplicate, st.Code == proto.StatusAccepted:
			f.Acked = true
		case st.Code.Transient():
			c.refusedLocked(o, st, &f.Refused, &f.NextAt, &f.Later, f.SURB == surb)
		default:
			c.failLocked(o, refusalText(st))
		}
	}
}

// bundleLocked starts a session from a recipient's prekey bundle, after
// the trust-on-first-use check, and seals every message waiting for it.
func (c *Client) bundleLocked(o *Outgoing, raw []byte) {
	b, err := seal.ParseBundle(raw)
	if err != nil {
		c.failLocked(o, fmt.Sprintf("the keys %s's provider sent are malformed", o.To))
		return
	}
	c.startSessionLocked(o, b)
}

// startSessionLocked is bundleLocked after parsing.
func (c *Client) startSessionLocked(o *Outgoing, b *seal.PrekeyBundle) {
	pub := seal.PublicIdentity{X25519: b.IdentityX25519, Ed25519: b.IdentityEd25519}
	if !c.pinLocked(o.To, pub) {
		for _, x := range c.st.Outbox {
			if x.To == o.To && x.Status == StatusBundle {
				x.Status, x.Detail = StatusBlocked, warnChanged(o.To)
			}
		}
		return
	}
	sess, err := seal.Initiate(crand.Reader, c.id, b)
	if err != nil {
		c.failLocked(o, fmt.Sprintf("%s's keys do not verify: %v", o.To, err))
		return
	}
	sid := sess.ID()
	c.st.Current[o.To] = hex.EncodeToString(sid[:])
	for _, x := range c.st.Outbox {
		if x.To == o.To && x.Status == StatusBundle {
			if err := c.sealLocked(x, sess); err != nil {
				c.failLocked(x, err.Error())
			}
		}
	}
}

// pinLocked applies trust on first use: the first identity seen for addr
// is pinned; a different one later is recorded as pending and refused
// until the user trusts it. It reports whether pub is the pinned identity.
func (c *Client) pinLocked(addr string, pub seal.PublicIdentity) bool {
	ct := c.st.Contacts[addr]
	if ct == nil {
		c.st.Contacts[addr] = &Contact{Address: addr, X25519: pub.X25519[:], Ed25519: pub.Ed25519[:], FirstSeen: c.now()}
		return true
	}
	var pinned seal.PublicIdentity
	copy(pinned.X25519[:], ct.X25519)
	copy(pinned.Ed25519[:], ct.Ed25519)
	if pinned.Equal(pub) {
		return true
	}
	if !ct.Changed() || !bytes.Equal(ct.PendingX25519, pub.X25519[:]) || !bytes.Equal(ct.PendingEd25519, pub.Ed25519[:]) {
		ct.PendingX25519, ct.PendingEd25519 = pub.X25519[:], pub.Ed25519[:]
		c.log.Warn("identity key changed", "contact", addr)
		c.emit(Event{Kind: EventWarning, To: addr, Text: warnChanged(addr)})
	}
	return false
}

// sealedLocked opens a sealed envelope: fragment, reassembly, then
// seal.Open, which verifies the sender certificate against the sender's
// provider key from the directory before anything decrypts.
func (c *Client) sealedLocked(doc *directory.Document, r *proto.Record) *Message {
	if _, ok := c.loops[r.ID]; ok {
		delete(c.loops, r.ID)
		c.loopsBack++
		return nil
	}
	f, err := seal.OpenFragment(c.id, r.Data)
	if err != nil {
		c.log.Debug("envelope does not open", "err", err)
		return nil
	}
	inner, complete, err := c.reas.Add(f)
	if err != nil || !complete {
		return nil
	}
	// found and certified are what Open looked up and verified: for a
	// refused message, its session and the sender's checked address.
	var found, certified string
	lookup := func(id [16]byte) (*seal.Session, bool) {
		raw, ok := c.st.Sessions[hex.EncodeToString(id[:])]
		if !ok {
			return nil, false
		}
		s, err := seal.UnmarshalSession(raw)
		if err == nil {
			found = hex.EncodeToString(id[:])
		}
		return s, err == nil
	}
	verify := func(cert []byte) (*seal.Certificate, error) {
		pc, err := seal.ParseCertificate(cert)
		if err != nil {
			return nil, err
		}
		d := domainOf(pc.Address)
		p, ok := doc.Provider(d)
		if !ok {
			return nil, fmt.Errorf("no provider for %q in the directory", d)
		}
		vc, err := seal.VerifyCertificate(cert, p.IdentityKey, d, c.now())
		if err == nil {
			certified = vc.Address
		}
		return vc, err
	}
	op, err := seal.Open(c.id, statePrekeys{&c.st.Prekeys}, lookup, verify, inner)
	if err != nil {
		if errors.Is(err, seal.ErrReplay) {
			c.log.Debug("message already received")
			// Open refuses a used number only after the certificate and
			// the session's peer agree, so certified is that peer.
			if mid := hex.EncodeToString(f.MessageID[:]); !c.seen[mid] && found != "" && certified != "" {
				c.reusedNumberLocked(found, certified)
			}
		} else {
			c.log.Info("a message was refused", "err", err)
			c.refused++
		}
		return nil
	}
	// Delete what decrypted it before anything else can go wrong: this is
	// the initial message's forward secrecy.
	if op.UsedOneTime != nil {
		clear(c.st.Prekeys.OneTime[*op.UsedOneTime])
		delete(c.st.Prekeys.OneTime, *op.UsedOneTime)
	}
	if op.UsedPQ != nil {
		clear(c.st.Prekeys.PQ[*op.UsedPQ])
		delete(c.st.Prekeys.PQ, *op.UsedPQ)
	}
	raw, err := op.Session.MarshalBinary()
	if err != nil {
		return nil
	}
	sid := op.Session.ID()
	sidHex := hex.EncodeToString(sid[:])
	c.st.Sessions[sidHex] = raw
	from := op.Sender.Address
	pt, err := decodePlain(op.Plaintext)
	if err != nil {
		return nil
	}
	mid := hex.EncodeToString(pt.ID[:])
	if c.seen[mid] {
		return nil // a copy of a message already shown
	}
	pub := seal.PublicIdentity{X25519: op.Sender.IdentityX25519, Ed25519: op.Sender.IdentityEd25519}
	m := &Message{ID: mid, From: from, To: c.st.Address, Sent: pt.Sent, Received: c.now(), Body: string(pt.Body), Fingerprint: pub.Fingerprint()}
	if c.pinLocked(from, pub) {
		m.Verified = true
		ct := c.st.Contacts[from]
		ct.Token = append([]byte(nil), pt.Token[:]...)
		// Send on the newest session the contact started (a contact whose
		// state was restored starts one), else on this one if there is
		// no other; never on a retired one.
		if _, ok := c.sendableLocked(from); (op.New || !ok) && !c.st.Retired[sidHex] {
			c.st.Current[from] = sidHex
		}
	} else {
		m.Warning = warnChanged(from)
	}
	if err := c.appendHistoryLocked(m); err != nil {
		c.log.Error("writing the history", "err", err)
	}
	c.seen[mid] = true
	return m
}

// appendHistoryLocked adds a record to the encrypted history.
func (c *Client) appendHistoryLocked(m *Message) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	err = c.v.appendHistory(b)
	clear(b)
	return err
}

// recordOutgoingLocked writes an outgoing message's final state to the
// history.
func (c *Client) recordOutgoingLocked(o *Outgoing) {
	m := &Message{ID: o.idHex(), From: c.st.Address, To: o.To, Sent: o.Created, Outgoing: true, Status: o.Status, Warning: o.Detail}
	if err := c.appendHistoryLocked(m); err != nil {
		c.log.Error("writing the history", "err", err)
	}
}

// History returns the history, oldest first: received messages, and
// outgoing ones with their latest status.
func (c *Client) History() ([]*Message, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return historyOf(c.v)
}

func historyOf(v *vault) ([]*Message, error) {
	recs, err := v.readHistory()
	var out []*Message
	byID := map[string]*Message{}
	for _, r := range recs {
		m := &Message{}
		if json.Unmarshal(r, m) != nil {
			continue
		}
		if prev := byID[m.ID]; prev != nil && m.Outgoing && prev.Outgoing {
			// A later status of an outgoing message.
			prev.Status, prev.Warning = m.Status, m.Warning
			if m.Body != "" {
				prev.Body = m.Body
			}
			continue
		}
		byID[m.ID] = m
		out = append(out, m)
	}
	return out, err
}

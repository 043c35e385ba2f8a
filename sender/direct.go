package sender

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sealnet/sealnet/mailbox/proto"
	"github.com/sealnet/sealnet/mixnet/directory"
	"github.com/sealnet/sealnet/sender/seal"
)

// Direct delivery over Tor (RouteOnion), as Pond did: the client opens a
// connection through Tor to the recipient's provider's onion service, on
// a circuit of its own (OnionDial isolates every connection), runs an
// anonymous Noise_NK client link, sends one request and reads one answer,
// and closes. A deliver request and its status each fit one fixed-size
// frame, as do a bundle request and its answer, so every connection
// carries the same bytes whatever it holds. The provider's status is the
// acknowledgement; there is no SURB. A failure leaves the message queued
// and retries it with a growing delay, until Settings.MaxAttempts failures;
// a transient refusal is retried when the provider asked, until the
// message's TTL (retry.go).

// directJob is one connection's worth of work.
type directJob struct {
	o      *Outgoing
	frag   *OutFragment // nil: a bundle request
	onion  string
	key    [32]byte
	mb     proto.MailboxID
	token  [32]byte
	envID  [16]byte
	blob   []byte
	result func(err error, st *proto.Status, b *seal.PrekeyBundle)
}

// directEvery is how often directLoop looks for due work.
const directEvery = time.Second

// directLoop delivers the messages queued with RouteOnion until ctx ends,
// looking for due work every directEvery on the client's clock.
func (c *Client) directLoop(ctx context.Context) {
	tick := c.clock.NewTimer(directEvery)
	defer tick.Stop()
	for {
		for _, j := range c.directDue(ctx) {
			if ctx.Err() != nil {
				return
			}
			c.directRun(ctx, j)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C():
			// Re-armed at once, as a ticker would be: a slow connection
			// does not push the next look back.
			tick.Reset(directEvery)
		}
	}
}

// directBackoff is the wait before attempt n+1: AckTimeout doubled per
// failed attempt, at most ten minutes, plus jitter.
func (c *Client) directBackoff(s Settings, attempts int) time.Duration {
	d := s.AckTimeout
	for i := 1; i < attempts && d < 10*time.Minute; i++ {
		d *= 2
	}
	return min(d, 10*time.Minute) + c.jitter(s.RetryJitter)
}

// directDue collects the due work and marks each attempt before it runs,
// so a crash in the middle counts it.
func (c *Client) directDue(ctx context.Context) []*directJob {
	c.mu.Lock()
	has := false
	for _, o := range c.st.Outbox {
		if o.Route == RouteOnion && (o.Status == StatusBundle || o.Status == StatusSending) {
			has = true
		}
	}
	c.mu.Unlock()
	if !has {
		return nil
	}
	doc, _, err := c.document(ctx)
	if err != nil {
		c.log.Warn("direct delivery: no directory", "err", err)
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	s := c.netSettings(c.st.Settings)
	var jobs []*directJob
	for _, o := range c.st.Outbox {
		if o.Route != RouteOnion || !now.Before(o.Deadline(c.ttl())) {
			continue // not ours, or expired (maintain reports it)
		}
		var p *directory.Descriptor
		if o.Status == StatusBundle || o.Status == StatusSending {
			if p, err = c.provider(doc, o.To); err != nil {
				c.failLocked(o, err.Error())
				continue
			}
			if p.Onion == "" {
				c.failLocked(o, fmt.Sprintf("%s's provider publishes no onion service; send it through the mix network (--route mix)", o.To))
				continue
			}
		}
		switch o.Status {
		case StatusBundle:
			if now.Before(o.BundleNextAt) || o.BundleAttempts-o.BundleRefused >= s.MaxAttempts {
				continue
			}
			o.BundleAttempts++
			o.BundleNextAt, o.BundleLater = now.Add(c.directBackoff(s, o.BundleAttempts-o.BundleRefused)), false
			jobs = append(jobs, &directJob{o: o, onion: p.Onion, key: p.LinkKey, mb: proto.MailboxOf(o.To),
				result: func(err error, _ *proto.Status, b *seal.PrekeyBundle) {
					var se *proto.StatusError
					if errors.As(err, &se) && se.Status.Code.Transient() {
						c.refusedLocked(o, se.Status, &o.BundleRefused, &o.BundleNextAt, &o.BundleLater, true)
						return
					}
					if err != nil {
						o.Detail = "keys not fetched: " + err.Error()
						return
					}
					if o.Status == StatusBundle {
						o.Detail = ""
						c.startSessionLocked(o, b)
					}
				}})
		case StatusSending:
			for _, f := range o.Fragments {
				if f.Acked || f.silent() >= s.MaxAttempts || now.Before(f.NextAt) {
					continue
				}
				f.Attempts++
				f.NextAt, f.Later = now.Add(c.directBackoff(s, f.silent())), false
				j := &directJob{o: o, frag: f, onion: p.Onion, key: p.LinkKey, mb: proto.MailboxOf(o.To), blob: f.Blob,
					result: func(err error, st *proto.Status, _ *seal.PrekeyBundle) {
						switch {
						case err != nil:
							o.Detail = "not delivered yet: " + err.Error()
						case st.Code == proto.StatusOK || st.Code == proto.StatusDuplicate || st.Code == proto.StatusAccepted:
							f.Acked = true
						case st.Code.Transient():
							c.refusedLocked(o, st, &f.Refused, &f.NextAt, &f.Later, true)
						default:
							c.failLocked(o, refusalText(st))
						}
					}}
				copy(j.token[:], o.Token)
				copy(j.envID[:], f.EnvelopeID)
				jobs = append(jobs, j)
			}
		}
	}
	if len(jobs) > 0 {
		if err := c.saveLocked(); err != nil {
			c.log.Error("saving state", "err", err)
			return nil
		}
	}
	return jobs
}

// directRun makes one connection for j and records the outcome.
func (c *Client) directRun(ctx context.Context, j *directJob) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	var (
		st *proto.Status
		b  *seal.PrekeyBundle
	)
	mc, err := proto.Dial(ctx, c.geo, j.onion, j.key, proto.DialOptions{Dial: c.opts.OnionDial, Timeout: time.Minute})
	if err == nil {
		if j.frag == nil {
			b, err = mc.Bundle(ctx, j.mb)
		} else {
			var code proto.StatusCode
			code, err = mc.Deliver(ctx, j.mb, j.envID, j.token, j.blob)
			st = &proto.Status{Code: code}
			var se *proto.StatusError
			if errors.As(err, &se) {
				st, err = se.Status, nil
			}
		}
		mc.Close()
	}
	if err != nil && ctx.Err() == nil {
		c.log.Warn("direct delivery over Tor failed; will retry", "err", err)
	}
	c.mu.Lock()
	j.result(err, st, b)
	if err := c.saveLocked(); err != nil {
		c.log.Error("saving state", "err", err)
	}
	c.mu.Unlock()
	c.maintain()
}

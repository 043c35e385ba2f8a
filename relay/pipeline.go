package relay

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sealnet/sealnet/mixnet"
	"github.com/sealnet/sealnet/mixnet/directory"
	"github.com/sealnet/sealnet/mixnet/mix"
)

func epochAt(t time.Time, period time.Duration) uint64 { return directory.EpochAt(t, period) }

// worker unwraps packets from the input queue until ctx is done.
func (n *Node) worker(ctx context.Context) {
	var cands []*epochKey
	var spare []byte
	for {
		var pkt []byte
		select {
		case <-ctx.Done():
			return
		case pkt = <-n.input:
		}
		start := time.Now()
		res, seq, err := n.unwrap(pkt, &cands, &spare)
		n.m.unwrapTime.ObserveDuration(time.Since(start))
		if err != nil {
			n.countUnwrapError(err)
			continue
		}
		if res.Delay > n.params().MaxDelay {
			// Asks more than the network allows: a sender marking its
			// packet, or one that ignores the document. Its replay tag
			// stays recorded, so a copy is refused as a replay.
			n.m.dropped("delay_out_of_bounds").Inc()
			continue
		}
		op := &outPacket{next: res.NextHop, pkt: res.Packet, seq: seq}
		if res.Final {
			if n.cfg.Role != directory.RoleProvider {
				// A mix's own loop coming back, or a misrouted packet:
				// nothing leaves, so there is nothing to mix.
				n.final(&res)
				continue
			}
			// A provider is a mixing hop: the packet waits its sender's
			// delay in the mixer, then its replay tag's sync, like any
			// other (ProvidersHoldFinalHop).
			r := res
			op.final, op.pkt = &r, nil
		}
		it := mix.Item[*outPacket]{
			Value:   op,
			Arrived: n.now(),
			Delay:   res.Delay,
		}
		if err := n.mixer.Add(it); err != nil {
			n.m.dropped("mix_full").Inc()
		}
	}
}

// unwrap tries the candidate keys for now. Only when more than one key
// could apply (near an epoch boundary) is the packet copied first, because
// a failed attempt destroys it.
func (n *Node) unwrap(pkt []byte, cands *[]*epochKey, spare *[]byte) (mixnet.Result, uint64, error) {
	*cands = n.keys.candidates(n.now(), (*cands)[:0])
	if len(*cands) == 0 {
		return mixnet.Result{}, 0, errNoKey
	}
	if len(*cands) > 1 {
		*spare = append((*spare)[:0], pkt...)
	}
	var err error
	for i, ek := range *cands {
		if i > 0 {
			copy(pkt, *spare)
		}
		var res mixnet.Result
		res, err = ek.key.Unwrap(pkt, ek.rc)
		if err == nil {
			return res, n.gate.mark(), nil
		}
		if !errors.Is(err, mixnet.ErrHeaderAuth) {
			break // the key matched: a replay, a full cache, bad routing or payload
		}
	}
	return mixnet.Result{}, 0, err
}

var errNoKey = errors.New("relay: no mix key for the current epoch")

func (n *Node) countUnwrapError(err error) {
	switch {
	case errors.Is(err, mixnet.ErrReplay):
		n.m.replayed.Inc()
		n.m.dropped("replay").Inc()
	case errors.Is(err, mixnet.ErrHeaderAuth):
		// A wrong key, another epoch (expired), tampering or garbage.
		n.m.dropped("header_invalid").Inc()
	case errors.Is(err, mixnet.ErrReplayCacheFull):
		n.m.dropped("replay_cache_full").Inc()
	case errors.Is(err, mixnet.ErrPayloadAuth):
		n.m.dropped("payload_invalid").Inc()
	case errors.Is(err, mixnet.ErrRouting):
		n.m.dropped("routing_invalid").Inc()
	case errors.Is(err, mixnet.ErrPacketSize), errors.Is(err, mixnet.ErrUnsupportedVersion):
		n.m.dropped("malformed").Inc()
	default:
		n.m.dropped("no_key").Inc()
	}
}

// final handles a packet that ends here. At a provider it is called by
// the releaser, after the packet waited the delay its sender drew for this
// hop and its replay tag was synced (so a crash cannot make the provider
// act on it twice); at a mix, by the worker at once (a mix's own loop, or
// a packet that should not end there). This is what
// ProvidersHoldFinalHop (true) describes, and what the simulator's
// mixing.at = "all" models; change one only with the other.
func (n *Node) final(res *mixnet.Result) {
	switch {
	case res.Recipient == n.loopID:
		n.loopReturned(res.Payload)
	case res.Recipient == (mixnet.RecipientID{}) && (n.cfg.Role != directory.RoleProvider || n.opts.Deliverer == nil):
		n.m.coverDropsReceived.Inc() // drop cover: discarded by design
	case n.cfg.Role != directory.RoleProvider:
		n.m.dropped("final_at_mix").Inc()
	case n.opts.Deliverer != nil:
		if err := n.opts.Deliverer.Deliver(res); err != nil {
			n.m.dropped("delivery_failed").Inc()
			return
		}
		n.m.delivered.Inc()
	default:
		n.m.delivered.Inc()
	}
	if res.SURBReply {
		n.m.surbReplies.Inc()
	}
}

// forward is the mixer's output. It never blocks the mixer: released
// packets go to the release stage, which sends them once their replay tags
// are on disk.
func (n *Node) forward(batch []*outPacket) {
	if !n.release.put(batch) {
		n.m.dropped("release_queue_full").Add(uint64(len(batch)))
	}
}

// releaser is the stage between the mixer and the links. It takes every
// packet released so far, waits for one journal sync to cover all their
// replay tags (group commit), and sends them; meanwhile the mixer goes on
// releasing into the next group. Its queue is bounded.
type releaser struct {
	mu     sync.Mutex
	cond   *sync.Cond
	queue  []*outPacket
	limit  int
	closed bool
}

func newReleaser(limit int) *releaser {
	r := &releaser{limit: limit}
	r.cond = sync.NewCond(&r.mu)
	return r
}

// put queues a batch (the mixer reuses the slice; the pointers are kept).
func (r *releaser) put(batch []*outPacket) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || len(r.queue)+len(batch) > r.limit {
		return false
	}
	r.queue = append(r.queue, batch...)
	r.cond.Signal()
	return true
}

func (r *releaser) close() {
	r.mu.Lock()
	r.closed = true
	r.cond.Broadcast()
	r.mu.Unlock()
}

func (r *releaser) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.queue)
}

// run sends released packets until close; what is queued then is sent
// (once durable) before it returns.
func (n *Node) runReleaser(r *releaser) {
	var group []*outPacket
	for {
		r.mu.Lock()
		for len(r.queue) == 0 && !r.closed {
			r.cond.Wait()
		}
		if len(r.queue) == 0 {
			r.mu.Unlock()
			return
		}
		group, r.queue = r.queue, group[:0]
		r.mu.Unlock()
		var maxSeq uint64
		for _, p := range group {
			maxSeq = max(maxSeq, p.seq)
		}
		if err := n.gate.wait(maxSeq); err != nil {
			// Without durable replay tags the packets must not leave: a
			// crash now could let them be replayed through this node.
			n.m.dropped("replay_journal_error").Add(uint64(len(group)))
			n.log.Error("replay journal cannot be synced; dropping packets", "err", err)
		} else {
			for _, p := range group {
				if p.final != nil {
					n.final(p.final)
					continue
				}
				n.send(p.next, p.pkt)
			}
		}
		clear(group)
	}
}

// send hands a packet to the link of the node with ID next, counting
// failures (Send does the work).
func (n *Node) send(next mixnet.NodeID, pkt []byte) { n.Send(next, pkt) }

// durability makes sure a packet leaves only after its replay tag is on
// disk, so that a crash cannot forget the tag of a packet already sent.
// Tags are numbered in the order they were added (mark); run syncs every
// interval; wait blocks until a sync covers a number, starting one at
// once if none is running. Syncs are shared by all packets added before
// them: group commit.
type durability struct {
	sync   func() error // guarded by mu (tests replace it)
	added  atomic.Uint64
	mu     sync.Mutex
	cond   *sync.Cond
	synced uint64
	busy   bool
	err    error
}

func newDurability(sync func() error) *durability {
	d := &durability{sync: sync}
	d.cond = newCond(&d.mu)
	return d
}

func newCond(l sync.Locker) *sync.Cond { return sync.NewCond(l) }

// mark numbers a tag that has just been added to a replay cache.
func (d *durability) mark() uint64 { return d.added.Add(1) }

// flush syncs once, covering every tag marked before it starts.
func (d *durability) flush() {
	d.mu.Lock()
	for d.busy {
		d.cond.Wait()
	}
	target := d.added.Load()
	if d.synced >= target {
		d.mu.Unlock()
		return
	}
	d.busy = true
	sync := d.sync
	d.mu.Unlock()
	err := sync()
	d.mu.Lock()
	d.busy = false
	d.err = err
	if err == nil {
		d.synced = target
	}
	d.cond.Broadcast()
	d.mu.Unlock()
}

// wait returns once the tag numbered seq is on disk, or the error of the
// sync that should have put it there.
func (d *durability) wait(seq uint64) error {
	d.mu.Lock()
	done := d.synced >= seq
	d.mu.Unlock()
	if done {
		return nil
	}
	d.flush() // covers every tag marked so far, seq included, or fails
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.synced >= seq {
		return nil
	}
	if d.err != nil {
		return d.err
	}
	return errors.New("relay: replay journal sync did not complete")
}

// run syncs every interval until ctx is done, then once more. The interval
// paces disk I/O, so it is real time, not the node's clock.
func (d *durability) run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			d.flush()
			return
		case <-t.C:
			d.flush()
		}
	}
}

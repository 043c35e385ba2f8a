package sim

// What comes back tells real packets from cover (docs/sim.md §3.9). A real
// message carries a SURB and its acknowledgement lands in the sender's
// mailbox; drop cover brings nothing back; a loop is a delivery into the
// sender's own mailbox followed, one acknowledgement transit later, by its
// own acknowledgement into the same mailbox. A provider sees both kinds of
// arrival in its users' mailboxes (a SURB reply is marked as one), so it
//
//   - strips loops: a delivery into u's mailbox matched by a SURB reply
//     into u's mailbox within the acknowledgement's transit is a loop (the
//     earliest unmatched delivery takes the reply); the other deliveries
//     are real mail;
//   - counts real sends: a SURB reply into u's mailbox that matched no
//     delivery acknowledges one of u's real messages.
//
// Those counts feed the statistical disclosure and intersection attacks
// in place of "every packet sent, every envelope received" (Disclosure's
// Returns fields), as colluding providers would run them: cover that
// never returns a reply and loops that return one twice hide nothing from
// them.

type returnsState struct {
	m      *model
	at     *attacks
	lo, hi int64 // a loop's acknowledgement arrives in [lo, hi] after it
	queue  []pendingDelivery
	head   int
	open   map[int32][]int // per mailbox: queue indices still unmatched
	seen   bool            // typed arrivals were observed (not on a wire trace)
	pages  bool            // a trace's classified pages were fed instead
	// confusion counts: deliveries (loop or real) and replies (loop's
	// or a real message's), as classified against the truth
	delLoopOK, delLoopBad, delRealOK, delRealBad float64
	repRealOK, repRealBad, repLoopOK, repLoopBad float64
}

type pendingDelivery struct {
	t       int64
	u       int32
	loop    bool // the truth, for scoring only
	matched bool
}

func (r *returnsState) init(m *model, at *attacks) {
	r.m, r.at = m, at
	r.lo, r.hi = int64(at.ackPDF.shift), int64(at.ackPDF.quantile(1-1e-4))
	r.open = map[int32][]int{}
}

// flush classifies the deliveries whose window has closed by t.
func (r *returnsState) flush(t int64) {
	for r.head < len(r.queue) && r.queue[r.head].t+r.hi < t {
		d := &r.queue[r.head]
		r.head++
		if o := r.open[d.u]; len(o) > 0 && o[0] == r.head-1 {
			if len(o) == 1 {
				delete(r.open, d.u)
			} else {
				r.open[d.u] = o[1:]
			}
		}
		counted := d.t >= r.m.warmup
		switch {
		case d.matched && d.loop:
			r.delLoopOK += b2f(counted)
		case d.matched:
			r.delRealBad += b2f(counted) // real mail taken for a loop
		case d.loop:
			r.delLoopBad += b2f(counted)
			r.at.ret.received(d.u)
			r.at.block.delivered(d.u, d.t)
		default:
			r.delRealOK += b2f(counted)
			r.at.ret.received(d.u)
			r.at.block.delivered(d.u, d.t)
		}
	}
	if r.head > 4096 && r.head > len(r.queue)/2 {
		n := copy(r.queue, r.queue[r.head:])
		r.queue = r.queue[:n]
		for u, o := range r.open {
			for i := range o {
				o[i] -= r.head
			}
			r.open[u] = o
		}
		r.head = 0
	}
}

// deliveryAt: an envelope was stored in u's mailbox at t (loop: it was u's
// own loop; the adversary does not know).
func (r *returnsState) deliveryAt(u int32, t int64, loop bool) {
	r.seen = true
	r.at.advance(t)
	r.flush(t)
	r.queue = append(r.queue, pendingDelivery{t: t, u: u, loop: loop})
	r.open[u] = append(r.open[u], len(r.queue)-1)
}

// replyAt: a SURB reply landed in u's mailbox at t (real: it acknowledges
// a real message; otherwise a loop).
func (r *returnsState) replyAt(u int32, t int64, real bool) {
	r.seen = true
	r.at.advance(t)
	r.flush(t)
	counted := t >= r.m.warmup
	o := r.open[u]
	for k, i := range o {
		d := &r.queue[i]
		if dt := t - d.t; dt < r.lo || dt > r.hi {
			continue
		}
		d.matched = true
		r.open[u] = append(o[:k:k], o[k+1:]...)
		if real {
			r.repRealBad += b2f(counted)
		} else {
			r.repLoopOK += b2f(counted)
		}
		return
	}
	if real {
		r.repRealOK += b2f(counted)
	} else {
		r.repLoopBad += b2f(counted)
	}
	r.at.ret.sent(u)
}

// page: on a trace, a fetch of u's at t that the observer classified (by
// the client's pause before acknowledging it) as real, or as a loop's
// return. A real page is an acknowledgement of u's message or mail for u;
// the wire cannot tell which, so it counts as both.
func (r *returnsState) page(u int32, t int64, real bool) {
	r.pages = true
	r.at.advance(t)
	if real {
		r.at.ret.sent(u)
		r.at.ret.received(u)
	}
}

func (r *returnsState) result(d *Disclosure) {
	if r.pages && !r.seen {
		// A wire trace: only the disclosure attacks fed by the pages.
		rs := &Returns{Wire: true}
		_, rs.SDA, rs.SDARounds, rs.Intersection, rs.IntersectionRounds = r.at.ret.result(r.at.checkpoint, r.at.rounds)
		d.Returns = rs
		return
	}
	if !r.seen {
		return
	}
	r.flush(r.m.end + r.hi + 1)
	del := r.delLoopOK + r.delLoopBad + r.delRealOK + r.delRealBad
	rep := r.repRealOK + r.repRealBad + r.repLoopOK + r.repLoopBad
	rs := &Returns{}
	if del > 0 {
		rs.LoopStripAccuracy = (r.delLoopOK + r.delRealOK) / del
		rs.LoopShare = (r.delLoopOK + r.delLoopBad) / del
		rs.Deliveries = int(del)
	}
	if rep > 0 {
		rs.ReplyAccuracy = (r.repRealOK + r.repLoopOK) / rep
		rs.RealReplyShare = (r.repRealOK + r.repRealBad) / rep
		rs.Replies = int(rep)
	}
	_, rs.SDA, rs.SDARounds, rs.Intersection, rs.IntersectionRounds = r.at.ret.result(r.at.checkpoint, r.at.rounds)
	d.Returns = rs
}

// Returns is what the providers learn from what comes back (returns.go).
type Returns struct {
	// LoopStripAccuracy is the share of deliveries after the warm-up that
	// loop stripping classifies right (loop or real mail); LoopShare is
	// the share that were loops, so max(LoopShare, 1 − LoopShare) is what
	// a guess without the returns gets.
	LoopStripAccuracy float64 `json:"loop_strip_accuracy"`
	LoopShare         float64 `json:"loop_share"`
	Deliveries        int     `json:"deliveries"`
	// ReplyAccuracy is the share of SURB replies classified right (a real
	// message's acknowledgement, or a loop's); RealReplyShare the share
	// that acknowledged real messages.
	ReplyAccuracy  float64 `json:"reply_accuracy"`
	RealReplyShare float64 `json:"real_reply_share"`
	Replies        int     `json:"replies"`
	// Wire: from a trace, where the pages the observer classified as real
	// feed the disclosure attacks; the loop-stripping fields are then 0
	// (the capture analysis scores the classifier itself).
	Wire bool `json:"wire,omitempty"`
	// The statistical disclosure and intersection attacks fed with the
	// classified real sends and receipts, at Disclosure.Checkpoints.
	SDA                []float64 `json:"sda_success"`
	SDARounds          int       `json:"sda_rounds_to_half"`
	Intersection       float64   `json:"intersection_success"`
	IntersectionRounds int       `json:"intersection_rounds_median"`
}

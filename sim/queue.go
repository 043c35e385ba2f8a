package sim

// event kinds
const (
	evUser      uint8 = iota // a user's Poisson sending tick
	evLoop                   // a user's loop cover
	evMsg                    // a user writes a message
	evArrive                 // a packet arrives at its next node
	evRelease                // a node's strategy is due
	evRelayLoop              // a mix sends loop cover
	evInject                 // a user writes one message (tests)
	evReply                  // a user answers a message (a: user, b: to)
	evToggle                 // a user goes online or offline
	evAckSend                // a provider sends a held acknowledgement (a: packet, b: provider)
	evRelayDrop              // a node sends drop cover
	evRetry                  // a real message's retransmission timer (a: message)
	evPull                   // a user's constant-rate fetch (recorded traces only; a: user)
)

// event is one entry of the calendar. Equal times are ordered by seq, the
// order in which they were scheduled, so a run is deterministic.
type event struct {
	t    int64 // ns of simulated time
	seq  uint64
	a, b int32
	kind uint8
}

func (e *event) before(f *event) bool {
	return e.t < f.t || (e.t == f.t && e.seq < f.seq)
}

// queue is a 4-ary min-heap of events: shallower than a binary heap, and
// its children share cache lines.
type queue struct {
	h   []event
	seq uint64
}

func (q *queue) push(t int64, kind uint8, a int32) { q.pushB(t, kind, a, 0) }

func (q *queue) pushB(t int64, kind uint8, a, b int32) {
	q.seq++
	q.h = append(q.h, event{t: t, seq: q.seq, a: a, b: b, kind: kind})
	i := len(q.h) - 1
	for i > 0 {
		p := (i - 1) / 4
		if !q.h[i].before(&q.h[p]) {
			break
		}
		q.h[i], q.h[p] = q.h[p], q.h[i]
		i = p
	}
}

func (q *queue) pop() event {
	top := q.h[0]
	n := len(q.h) - 1
	q.h[0] = q.h[n]
	q.h = q.h[:n]
	i := 0
	for {
		c := 4*i + 1
		if c >= n {
			break
		}
		m := c
		for k := c + 1; k < c+4 && k < n; k++ {
			if q.h[k].before(&q.h[m]) {
				m = k
			}
		}
		if !q.h[m].before(&q.h[i]) {
			break
		}
		q.h[i], q.h[m] = q.h[m], q.h[i]
		i = m
	}
	return top
}

func (q *queue) len() int { return len(q.h) }

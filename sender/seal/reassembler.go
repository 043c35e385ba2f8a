package seal

import (
	"bytes"
	"fmt"
	"sync"
)

// Reassembler limits (docs/envelope.md §5.3).
const (
	// DefaultMaxIncomplete is the default number of incomplete messages a
	// Reassembler holds.
	DefaultMaxIncomplete = 256
	// DefaultMaxHeld is the default number of chunk bytes it holds.
	DefaultMaxHeld = 8 << 20
	// rememberCompleted is how many completed message IDs it remembers to
	// recognise retransmitted fragments.
	rememberCompleted = 1024
)

// Reassembler collects opened fragments per message ID and returns each
// message's sealed inner once all its fragments are in. It holds at most
// maxMessages incomplete messages and maxHeld bytes of chunks; beyond
// either it drops the incomplete messages that started earliest. It is
// safe for concurrent use.
type Reassembler struct {
	mu          sync.Mutex
	maxMessages int
	maxHeld     int
	held        int
	seq         uint64
	pending     map[[16]byte]*partial
	completed   map[[16]byte]struct{}
	ring        [rememberCompleted][16]byte // completed IDs, a circular buffer
	ringNext    int
	dropped     int
}

type partial struct {
	seq    uint64 // arrival order of its first fragment
	count  int
	have   int
	held   int
	chunks [][]byte
}

// NewReassembler returns a Reassembler with the default limits
// (DefaultMaxIncomplete messages, DefaultMaxHeld bytes).
func NewReassembler() *Reassembler {
	return NewReassemblerLimits(DefaultMaxIncomplete, DefaultMaxHeld)
}

// NewReassemblerLimits returns a Reassembler holding at most maxMessages
// incomplete messages and maxHeld bytes of chunks; zero or negative means
// the default.
func NewReassemblerLimits(maxMessages, maxHeld int) *Reassembler {
	if maxMessages <= 0 {
		maxMessages = DefaultMaxIncomplete
	}
	if maxHeld <= 0 {
		maxHeld = DefaultMaxHeld
	}
	return &Reassembler{
		maxMessages: maxMessages,
		maxHeld:     maxHeld,
		pending:     map[[16]byte]*partial{},
		completed:   map[[16]byte]struct{}{},
	}
}

// Add takes one opened fragment. When it completes its message, Add
// returns the sealed inner message (for Open) and true. Errors leave the
// Reassembler as it was: ErrMalformed for a fragment out of range or
// whose count differs from its message's earlier fragments, ErrDuplicate
// for a fragment it holds already or of a message it completed recently,
// ErrTooLarge for a chunk larger than the whole memory limit.
func (r *Reassembler) Add(f *Fragment) (inner []byte, complete bool, err error) {
	if f == nil || f.Count < 1 || f.Count > MaxFragments || f.Index < 0 || f.Index >= f.Count || len(f.Chunk) == 0 || len(f.Chunk) > MaxChunk {
		return nil, false, fmt.Errorf("%w: fragment out of range", ErrMalformed)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(f.Chunk) > r.maxHeld {
		return nil, false, fmt.Errorf("%w: chunk of %d bytes, limit %d", ErrTooLarge, len(f.Chunk), r.maxHeld)
	}
	if _, ok := r.completed[f.MessageID]; ok {
		return nil, false, fmt.Errorf("%w: message already complete", ErrDuplicate)
	}
	p := r.pending[f.MessageID]
	if p != nil {
		if p.count != f.Count {
			return nil, false, fmt.Errorf("%w: fragment says %d fragments, earlier ones %d", ErrMalformed, f.Count, p.count)
		}
		if p.chunks[f.Index] != nil {
			return nil, false, fmt.Errorf("%w: fragment %d of %d", ErrDuplicate, f.Index, f.Count)
		}
	}
	if f.Count == 1 {
		r.complete(f.MessageID)
		return bytes.Clone(f.Chunk), true, nil
	}
	if p == nil {
		for len(r.pending) >= r.maxMessages {
			r.dropOldest(f.MessageID)
		}
	}
	for r.held+len(f.Chunk) > r.maxHeld {
		if r.dropOldest(f.MessageID) {
			continue
		}
		if p == nil {
			break // nothing is held; cannot happen, since the chunk fits alone
		}
		// Only this message is left and it does not fit: start it over.
		r.forget(f.MessageID, p)
		r.dropped++
		p = nil
	}
	if p == nil {
		p = &partial{seq: r.seq, count: f.Count, chunks: make([][]byte, f.Count)}
		r.seq++
		r.pending[f.MessageID] = p
	}
	p.chunks[f.Index] = bytes.Clone(f.Chunk)
	p.have++
	p.held += len(f.Chunk)
	r.held += len(f.Chunk)
	if p.have < p.count {
		return nil, false, nil
	}
	inner = bytes.Join(p.chunks, nil)
	r.forget(f.MessageID, p)
	r.complete(f.MessageID)
	return inner, true, nil
}

// dropOldest drops the incomplete message that started earliest, other
// than except, and reports whether there was one.
func (r *Reassembler) dropOldest(except [16]byte) bool {
	var oldest [16]byte
	var op *partial
	for id, p := range r.pending {
		if id != except && (op == nil || p.seq < op.seq) {
			oldest, op = id, p
		}
	}
	if op == nil {
		return false
	}
	r.forget(oldest, op)
	r.dropped++
	return true
}

func (r *Reassembler) forget(id [16]byte, p *partial) {
	for _, c := range p.chunks {
		clear(c)
	}
	r.held -= p.held
	delete(r.pending, id)
}

func (r *Reassembler) complete(id [16]byte) {
	if len(r.completed) >= rememberCompleted {
		delete(r.completed, r.ring[r.ringNext])
	}
	r.ring[r.ringNext] = id
	r.ringNext = (r.ringNext + 1) % rememberCompleted
	r.completed[id] = struct{}{}
}

// Stats reports the number of incomplete messages and chunk bytes held,
// and how many incomplete messages were dropped to stay within the limits.
func (r *Reassembler) Stats() (incomplete, held, dropped int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.pending), r.held, r.dropped
}

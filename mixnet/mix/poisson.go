package mix

import "time"

// poisson is the continuous-time mix: a binary min-heap of entries ordered
// by (due, seq). seq counts Adds, so equal due times leave in arrival
// order. The heap is a slice of structs, not of pointers or interfaces, so
// Add does not allocate once the slice has grown to the steady-state size.
type poisson[T any] struct {
	capacity int
	maxDelay time.Duration
	seq      uint64
	heap     []poissonEntry[T]
}

type poissonEntry[T any] struct {
	due time.Time
	seq uint64
	v   T
}

func newPoisson[T any](cfg Config) *poisson[T] {
	return &poisson[T]{capacity: cfg.Capacity, maxDelay: cfg.MaxDelay}
}

// less orders entries by due time, then by arrival.
func (p *poisson[T]) less(i, j int) bool {
	a, b := &p.heap[i], &p.heap[j]
	if a.due.Equal(b.due) {
		return a.seq < b.seq
	}
	return a.due.Before(b.due)
}

// Add schedules it at it.Arrived + min(max(it.Delay, 0), MaxDelay); now is
// not used.
func (p *poisson[T]) Add(_ time.Time, it Item[T]) error {
	if len(p.heap) >= p.capacity {
		return ErrFull
	}
	d := min(max(it.Delay, 0), p.maxDelay)
	p.heap = append(p.heap, poissonEntry[T]{due: it.Arrived.Add(d), seq: p.seq, v: it.Value})
	p.seq++
	p.up(len(p.heap) - 1)
	return nil
}

func (p *poisson[T]) Release(now time.Time, dst []T) []T {
	for len(p.heap) > 0 && !p.heap[0].due.After(now) {
		dst = append(dst, p.pop())
	}
	return dst
}

func (p *poisson[T]) Next() (time.Time, bool) {
	if len(p.heap) == 0 {
		return time.Time{}, false
	}
	return p.heap[0].due, true
}

func (p *poisson[T]) Len() int { return len(p.heap) }

// Drain returns the held items in due order.
func (p *poisson[T]) Drain(dst []T) []T {
	for len(p.heap) > 0 {
		dst = append(dst, p.pop())
	}
	return dst
}

// pop removes and returns the root. The vacated slot is zeroed so that the
// heap does not keep the value alive.
func (p *poisson[T]) pop() T {
	n := len(p.heap) - 1
	v := p.heap[0].v
	p.heap[0] = p.heap[n]
	p.heap[n] = poissonEntry[T]{}
	p.heap = p.heap[:n]
	if n > 0 {
		p.down(0)
	}
	return v
}

func (p *poisson[T]) up(i int) {
	for i > 0 {
		parent := (i - 1) / 2
		if !p.less(i, parent) {
			return
		}
		p.heap[i], p.heap[parent] = p.heap[parent], p.heap[i]
		i = parent
	}
}

func (p *poisson[T]) down(i int) {
	n := len(p.heap)
	for {
		small := i
		if l := 2*i + 1; l < n && p.less(l, small) {
			small = l
		}
		if r := 2*i + 2; r < n && p.less(r, small) {
			small = r
		}
		if small == i {
			return
		}
		p.heap[i], p.heap[small] = p.heap[small], p.heap[i]
		i = small
	}
}

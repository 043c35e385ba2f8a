package loopwatch

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"
)

// Defaults of a Config's zero fields.
const (
	DefaultWindow       = 100
	DefaultMinSamples   = 20
	DefaultBaselineLoss = 0.01
	DefaultSlowShare    = 0.05
	DefaultAlpha        = 1e-7
	DefaultClearAlpha   = 1e-3
	DefaultMaxPending   = 4096
)

// Config sets a Watcher's expectations and its test. Zero fields take the
// defaults above, except Timeout (required) and SlowRTT (zero turns the
// delay test off).
type Config struct {
	// Timeout is how long after it was sent a loop counts as lost if it
	// has not come back.
	Timeout time.Duration
	// BaselineLoss is the share of loops lost when nobody interferes, in
	// (0, 1).
	BaselineLoss float64
	// SlowRTT is the round trip only SlowShare of loops should exceed when
	// nobody interferes (ExpectedRTT); zero turns the delay test off.
	// SetSlowRTT changes it for loops sent afterwards.
	SlowRTT time.Duration
	// SlowShare is the share of loops expected slower than SlowRTT, in
	// (0, 1).
	SlowShare float64
	// Window is how many loops each test looks at: the last Window past
	// their deadline (loss), the last Window returned (delay).
	Window int
	// MinSamples is how many loops a window must hold before it can
	// raise an alarm.
	MinSamples int
	// Alpha is the significance of each test: an alarm starts when a
	// p-value is below it.
	Alpha float64
	// ClearAlpha is where an alarm ends: when the p-value is above it (at
	// least Alpha).
	ClearAlpha float64
	// MaxPending caps the loops in flight that are tracked.
	MaxPending int
}

func (c *Config) fill() error {
	def := func(v *float64, d float64) {
		if *v == 0 {
			*v = d
		}
	}
	defInt := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.BaselineLoss, DefaultBaselineLoss)
	def(&c.SlowShare, DefaultSlowShare)
	def(&c.Alpha, DefaultAlpha)
	def(&c.ClearAlpha, DefaultClearAlpha)
	defInt(&c.Window, DefaultWindow)
	defInt(&c.MinSamples, DefaultMinSamples)
	defInt(&c.MaxPending, DefaultMaxPending)
	switch {
	case c.Timeout <= 0:
		return errors.New("loopwatch: Timeout must be positive")
	case c.SlowRTT < 0:
		return errors.New("loopwatch: SlowRTT must not be negative")
	case !(c.BaselineLoss > 0 && c.BaselineLoss < 1):
		return fmt.Errorf("loopwatch: BaselineLoss %v is not in (0, 1)", c.BaselineLoss)
	case !(c.SlowShare > 0 && c.SlowShare < 1):
		return fmt.Errorf("loopwatch: SlowShare %v is not in (0, 1)", c.SlowShare)
	case !(c.Alpha > 0 && c.Alpha < 1):
		return fmt.Errorf("loopwatch: Alpha %v is not in (0, 1)", c.Alpha)
	case !(c.ClearAlpha >= c.Alpha && c.ClearAlpha < 1):
		return fmt.Errorf("loopwatch: ClearAlpha %v is not in [Alpha, 1)", c.ClearAlpha)
	case c.Window < 1 || c.Window > 1<<20:
		return fmt.Errorf("loopwatch: Window %d is not in [1, 2^20]", c.Window)
	case c.MinSamples < 1 || c.MinSamples > c.Window:
		return fmt.Errorf("loopwatch: MinSamples %d is not in [1, Window]", c.MinSamples)
	case c.MaxPending < 1 || c.MaxPending > 1<<24:
		return fmt.Errorf("loopwatch: MaxPending %d is not in [1, 2^24]", c.MaxPending)
	}
	return nil
}

// Alarm is a set of alarm kinds; zero is no alarm.
type Alarm uint8

const (
	// Loss: significantly more loops lost than the baseline.
	Loss Alarm = 1 << iota
	// Delay: significantly more loops slower than SlowRTT than expected.
	Delay
)

// String is "ok", "loss", "delay" or "loss+delay".
func (a Alarm) String() string {
	switch a {
	case 0:
		return "ok"
	case Loss:
		return "loss"
	case Delay:
		return "delay"
	case Loss | Delay:
		return "loss+delay"
	}
	return fmt.Sprintf("Alarm(%d)", uint8(a))
}

// LossFigures are the loss test's window and result.
type LossFigures struct {
	Sent     int     // loops in the window: the last Window past their deadline
	Returned int     // of them, back before their deadline
	Expected float64 // returns expected at the baseline loss: Sent × (1 − BaselineLoss)
	PValue   float64 // P(at least Sent − Returned lost) at the baseline loss; 1 for an empty window
}

// Lost is Sent − Returned.
func (f LossFigures) Lost() int { return f.Sent - f.Returned }

// DelayFigures are the delay test's window and result.
type DelayFigures struct {
	Returned int     // loops in the window: the last Window that came back in time
	Slow     int     // of them, slower than the SlowRTT in effect when each was sent
	Expected float64 // slow returns expected: Returned × SlowShare
	PValue   float64 // P(at least Slow slow) at SlowShare; 1 for an empty window
}

// Totals count every loop since New.
type Totals struct {
	Sent      uint64 // tracked by Sent
	Returned  uint64 // back before their deadline
	Lost      uint64 // past their deadline without coming back (resolved by Check)
	Late      uint64 // came back after their deadline, before Check forgot them (also in Lost once resolved)
	Untracked uint64 // refused by Sent: MaxPending in flight, or an ID already in flight
}

// Status is what a Check concluded.
type Status struct {
	Alarm   Alarm // kinds in alarm after this check; 0 is ok
	Started Alarm // kinds whose alarm started at this check
	Cleared Alarm // kinds whose alarm ended at this check
	Loss    LossFigures
	Delay   DelayFigures
	Totals  Totals
}

// OK reports whether no alarm is on.
func (s Status) OK() bool { return s.Alarm == 0 }

// Text is a one-line description of the alarm for a person, to show as a
// warning event; after an alarm ends it says so, and otherwise it is "".
func (s Status) Text() string {
	var parts []string
	if s.Alarm&Loss != 0 {
		f := s.Loss
		parts = append(parts, fmt.Sprintf("%d of your last %d cover packets did not come back (expected %s): someone may be blocking or delaying your connection",
			f.Lost(), f.Sent, about(float64(f.Sent)-f.Expected)))
	}
	if s.Alarm&Delay != 0 {
		f := s.Delay
		parts = append(parts, fmt.Sprintf("%d of your last %d cover packets came back later than the network's delays explain (expected %s): someone may be delaying your connection",
			f.Slow, f.Returned, about(f.Expected)))
	}
	if len(parts) == 0 && s.Cleared != 0 {
		return "your cover packets come back normally again"
	}
	return strings.Join(parts, "; ")
}

func about(x float64) string {
	if x < 0.5 {
		return "fewer than 1"
	}
	return fmt.Sprintf("about %.0f", x)
}

// Watcher tracks one node's loops. It is safe for concurrent use and
// starts no goroutine; its clock is the times it is given.
type Watcher struct {
	mu  sync.Mutex
	cfg Config

	// pending is a ring of the tracked loops in the order they were sent,
	// which is also the order of their deadlines: pending[head] is the
	// oldest, count are in flight. index maps the ID of every pending loop
	// that has not come back to its slot.
	pending []entry
	head    int
	count   int
	index   map[[16]byte]int32
	base    time.Time     // times are kept as offsets from the first Sent
	last    time.Duration // the latest Sent offset: offsets never go back
	slowRTT time.Duration

	loss, delay window
	lossNew     bool // loops resolved since the last loss test
	delayNew    bool
	status      Status // as of the last Check
}

type entry struct {
	id       [16]byte
	sent     time.Duration // offset from base
	slow     time.Duration // SlowRTT when sent; 0: not timed
	returned bool
}

// window is a ring of the last len(hit) outcomes and how many were hits.
type window struct {
	hit  []bool
	next int
	n    int
	hits int
}

func (w *window) push(hit bool) {
	if w.n == len(w.hit) {
		if w.hit[w.next] {
			w.hits--
		}
	} else {
		w.n++
	}
	w.hit[w.next] = hit
	if hit {
		w.hits++
	}
	w.next++
	if w.next == len(w.hit) {
		w.next = 0
	}
}

// New returns a Watcher for cfg, with its defaults filled in.
func New(cfg Config) (*Watcher, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	w := &Watcher{
		cfg:     cfg,
		pending: make([]entry, cfg.MaxPending),
		index:   make(map[[16]byte]int32, cfg.MaxPending),
		slowRTT: cfg.SlowRTT,
		loss:    window{hit: make([]bool, cfg.Window)},
		delay:   window{hit: make([]bool, cfg.Window)},
	}
	w.status.Loss.PValue, w.status.Delay.PValue = 1, 1
	return w, nil
}

// Config returns the configuration in use, defaults filled in.
func (w *Watcher) Config() Config {
	w.mu.Lock()
	defer w.mu.Unlock()
	c := w.cfg
	c.SlowRTT = w.slowRTT
	return c
}

// SetSlowRTT changes SlowRTT for the loops sent from now on (zero: they
// are not timed). A node calls it when the path length or the published
// delays change.
func (w *Watcher) SetSlowRTT(d time.Duration) {
	w.mu.Lock()
	w.slowRTT = max(d, 0)
	w.mu.Unlock()
}

// Sent records that the loop id left at at. Times given to Sent should
// not go back; an earlier one is taken as the latest so far. It reports
// whether the loop is tracked: not if MaxPending are in flight or id is
// already in flight.
func (w *Watcher) Sent(id [16]byte, at time.Time) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.count == len(w.pending) {
		w.status.Totals.Untracked++
		return false
	}
	if _, dup := w.index[id]; dup {
		w.status.Totals.Untracked++
		return false
	}
	if w.base.IsZero() {
		w.base = at
	}
	off := max(at.Sub(w.base), w.last)
	w.last = off
	slot := w.head + w.count
	if slot >= len(w.pending) {
		slot -= len(w.pending)
	}
	w.pending[slot] = entry{id: id, sent: off, slow: w.slowRTT}
	w.index[id] = int32(slot)
	w.count++
	w.status.Totals.Sent++
	return true
}

// Returned records that the loop id came back at at. It returns the
// loop's round trip and whether it counts: not if id is unknown, came
// back already, or is past its deadline (then it stays lost).
func (w *Watcher) Returned(id [16]byte, at time.Time) (time.Duration, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	slot, ok := w.index[id]
	if !ok {
		return 0, false
	}
	delete(w.index, id)
	e := &w.pending[slot]
	rtt := max(at.Sub(w.base)-e.sent, 0)
	if rtt > w.cfg.Timeout {
		w.status.Totals.Late++
		return rtt, false
	}
	e.returned = true
	w.status.Totals.Returned++
	if e.slow > 0 {
		w.delay.push(rtt > e.slow)
		w.delayNew = true
	}
	return rtt, true
}

// Check resolves the loops whose deadline has passed by now, tests both
// windows if they changed, and returns the result.
func (w *Watcher) Check(now time.Time) Status {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.base.IsZero() {
		cut := now.Sub(w.base) - w.cfg.Timeout
		for w.count > 0 && w.pending[w.head].sent <= cut {
			e := &w.pending[w.head]
			if !e.returned {
				if s, ok := w.index[e.id]; ok && int(s) == w.head {
					delete(w.index, e.id)
				}
				w.status.Totals.Lost++
			}
			w.loss.push(!e.returned)
			w.lossNew = true
			*e = entry{}
			w.head++
			if w.head == len(w.pending) {
				w.head = 0
			}
			w.count--
		}
	}
	before := w.status.Alarm
	if w.lossNew {
		w.lossNew = false
		f := &w.status.Loss
		f.Sent, f.Returned = w.loss.n, w.loss.n-w.loss.hits
		f.Expected = float64(f.Sent) * (1 - w.cfg.BaselineLoss)
		f.PValue = BinomialTail(w.loss.n, w.loss.hits, w.cfg.BaselineLoss)
		w.decide(Loss, f.Sent, f.PValue)
	}
	if w.delayNew {
		w.delayNew = false
		f := &w.status.Delay
		f.Returned, f.Slow = w.delay.n, w.delay.hits
		f.Expected = float64(f.Returned) * w.cfg.SlowShare
		f.PValue = BinomialTail(w.delay.n, w.delay.hits, w.cfg.SlowShare)
		w.decide(Delay, f.Returned, f.PValue)
	}
	st := w.status
	st.Started = st.Alarm &^ before
	st.Cleared = before &^ st.Alarm
	return st
}

// decide turns kind on when p < Alpha (with MinSamples in the window) and
// off when p > ClearAlpha; in between it stays as it was.
func (w *Watcher) decide(kind Alarm, n int, p float64) {
	switch {
	case w.status.Alarm&kind == 0 && n >= w.cfg.MinSamples && p < w.cfg.Alpha:
		w.status.Alarm |= kind
	case w.status.Alarm&kind != 0 && p > w.cfg.ClearAlpha:
		w.status.Alarm &^= kind
	}
}

// Status returns the result of the last Check (Started and Cleared
// empty) with the current Totals.
func (w *Watcher) Status() Status {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.status
}

// BinomialTail returns P(X ≥ k) for X ~ Binomial(n, p): the p-value of
// the one-sided exact binomial test of k successes in n trials against
// success probability p. It sums the probabilities of the shorter side,
// from k up (k above the mean) or from k − 1 down, each term from the
// last: exact to float64 rounding, without allocating.
func BinomialTail(n, k int, p float64) float64 {
	switch {
	case k <= 0:
		return 1
	case k > n:
		return 0
	case p <= 0:
		return 0
	case p >= 1:
		return 1
	}
	r := p / (1 - p) // term(i+1) / term(i) = (n−i)/(i+1) × r
	if float64(k) > float64(n)*p {
		var s float64
		for i, t := k, binomialTerm(n, k, p); i <= n && t > 0; i++ {
			s += t
			if t < s*1e-17 {
				break // past the mode the terms only shrink
			}
			t *= float64(n-i) / float64(i+1) * r
		}
		return min(s, 1)
	}
	var s float64 // P(X ≤ k−1), summed down from k−1
	for i, t := k-1, binomialTerm(n, k-1, p); i >= 0 && t > 0; i-- {
		s += t
		if t < s*1e-17 {
			break
		}
		t *= float64(i) / (float64(n-i+1) * r)
	}
	return max(1-s, 0)
}

// binomialTerm is P(X = k) for X ~ Binomial(n, p), 0 < p < 1.
func binomialTerm(n, k int, p float64) float64 {
	ln, _ := math.Lgamma(float64(n + 1))
	lk, _ := math.Lgamma(float64(k + 1))
	lnk, _ := math.Lgamma(float64(n - k + 1))
	return math.Exp(ln - lk - lnk + float64(k)*math.Log(p) + float64(n-k)*math.Log1p(-p))
}

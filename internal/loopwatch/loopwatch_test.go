package loopwatch

import (
	"math"
	"math/big"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

// The relay's defaults, which the simulated loops below follow: 0.2 loops
// a second, each through two Poisson mixes of mean 100 ms and three links
// allowed 250 ms each, a deadline of a minute, a Check every 5 s.
const (
	relayRate    = 0.2
	relayHops    = 2
	relayMean    = 100 * time.Millisecond
	relayHold    = 3 * 250 * time.Millisecond
	relayTimeout = time.Minute
	checkEvery   = 5 * time.Second
)

var relaySlow = ExpectedRTT(relayHops, relayMean, relayHold, 1-DefaultSlowShare)

// sim drives a Watcher with simulated loops: Poisson sends, each lost with
// probability lost(sent) or back after an Erlang round trip plus hold plus
// extra(sent). With lost = 0.01 and extra = 0 it is the null hypothesis at
// its edge: the true loss is the baseline, and the true share of slow
// loops is SlowShare.
type sim struct {
	t       *testing.T
	w       *Watcher
	rng     *rand.Rand
	start   time.Time
	now     time.Duration // since start
	nextID  uint64
	nextAt  time.Duration
	returns []ret
	lost    func(sent time.Duration) float64
	extra   func(sent time.Duration) time.Duration

	checks        int
	starts        map[Alarm]int   // alarm starts by kind
	sentTimes     []time.Duration // send times of every loop, in order
	firstStart    map[Alarm]time.Duration
	firstStartIdx map[Alarm]int // loops sent before the first start
}

type ret struct {
	id [16]byte
	at time.Duration
}

func newSim(t *testing.T, seed uint64, cfg Config) *sim {
	t.Helper()
	if cfg.Timeout == 0 {
		cfg.Timeout = relayTimeout
	}
	if cfg.SlowRTT == 0 {
		cfg.SlowRTT = relaySlow
	}
	w, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := &sim{t: t, w: w, rng: rand.New(rand.NewPCG(seed, 0x6c6f6f70)), start: time.Unix(1_700_000_000, 0),
		lost:   func(time.Duration) float64 { return DefaultBaselineLoss },
		extra:  func(time.Duration) time.Duration { return 0 },
		starts: make(map[Alarm]int), firstStart: make(map[Alarm]time.Duration), firstStartIdx: make(map[Alarm]int)}
	s.nextAt = s.exp(time.Duration(float64(time.Second) / relayRate))
	return s
}

func (s *sim) exp(mean time.Duration) time.Duration {
	return time.Duration(s.rng.ExpFloat64() * float64(mean))
}

func idOf(n uint64) (id [16]byte) {
	for i := range 8 {
		id[i] = byte(n >> (8 * i))
	}
	id[15] = 0xa5
	return id
}

// run advances the simulation by d, one Check every checkEvery.
func (s *sim) run(d time.Duration) {
	end := s.now + d
	for s.now < end {
		step := s.now + checkEvery
		for s.nextAt < step {
			at := s.nextAt
			id := idOf(s.nextID)
			s.nextID++
			if !s.w.Sent(id, s.start.Add(at)) {
				s.t.Fatal("a loop was not tracked")
			}
			s.sentTimes = append(s.sentTimes, at)
			if s.rng.Float64() >= s.lost(at) {
				rtt := s.extra(at) + relayHold
				for range relayHops {
					rtt += s.exp(relayMean)
				}
				s.returns = append(s.returns, ret{id, at + rtt})
			}
			s.nextAt += s.exp(time.Duration(float64(time.Second) / relayRate))
		}
		slices.SortFunc(s.returns, func(a, b ret) int { return int(a.at - b.at) })
		i := 0
		for ; i < len(s.returns) && s.returns[i].at < step; i++ {
			s.w.Returned(s.returns[i].id, s.start.Add(s.returns[i].at))
		}
		s.returns = s.returns[:copy(s.returns, s.returns[i:])]
		s.now = step
		st := s.w.Check(s.start.Add(s.now))
		s.checks++
		for _, k := range []Alarm{Loss, Delay} {
			if st.Started&k != 0 {
				s.starts[k]++
				if _, ok := s.firstStart[k]; !ok {
					s.firstStart[k] = s.now
					s.firstStartIdx[k] = len(s.sentTimes)
				}
			}
		}
	}
}

const day = 24 * time.Hour

// TestFalseAlarmRate: with loops lost at exactly the baseline rate and
// slow at exactly SlowShare (the worst case the test must tolerate), the
// measured false alarms per day stay below the documented bound,
// 2 × Alpha × checks per day, at the default Alpha (0.0035 a day at the
// relay's rates) and at two looser ones where alarms do happen, which
// shows the bound is a bound and not only a small number.
func TestFalseAlarmRate(t *testing.T) {
	days := 100
	if testing.Short() {
		days = 10
	}
	for _, c := range []struct {
		alpha float64
		days  int
	}{
		{DefaultAlpha, days},
		{1e-4, 10},
		{1e-3, 10},
	} {
		s := newSim(t, 1, Config{Alpha: c.alpha, ClearAlpha: max(c.alpha, DefaultClearAlpha)})
		s.run(time.Duration(c.days) * day)
		perDay := float64(s.checks) / float64(c.days)
		bound := 2 * c.alpha * perDay
		got := float64(s.starts[Loss]+s.starts[Delay]) / float64(c.days)
		st := s.w.Status()
		t.Logf("alpha %g, %d days, %.0f loops/day, %.0f checks/day: %d loss and %d delay alarms, %.4f a day (bound %.4f)",
			c.alpha, c.days, float64(st.Totals.Sent)/float64(c.days), perDay, s.starts[Loss], s.starts[Delay], got, bound)
		if got > bound {
			t.Errorf("alpha %g: %.4f false alarms a day, above the bound %.4f", c.alpha, got, bound)
		}
		if c.alpha == DefaultAlpha && bound > 0.0035 {
			t.Errorf("the documented bound at the defaults is 0.0035 a day; the relay's rates give %.4f", bound)
		}
		// The simulation is the null at its edge, so that the test means
		// something: the measured rates are the baselines.
		if loss := float64(st.Totals.Lost) / float64(st.Totals.Sent); math.Abs(loss-DefaultBaselineLoss) > 0.002 {
			t.Errorf("simulated loss %.4f, want %.2f", loss, DefaultBaselineLoss)
		}
	}
}

// TestLossAlarmWhenAllDropped: once every loop is dropped, the loss alarm
// starts at most 10 loops after the attack does (10 lost in the last 100
// is P = 7.6e-8 < Alpha at 1 % loss), within Timeout + the time to send
// them + one check interval; the delay alarm does not start (no loop
// returns to be slow). Control: the same run undisturbed raises nothing.
func TestLossAlarmWhenAllDropped(t *testing.T) {
	if p := BinomialTail(100, 10, DefaultBaselineLoss); p >= DefaultAlpha {
		t.Fatalf("P(X >= 10) = %g, not below Alpha: the documented 10 is wrong", p)
	}
	if p := BinomialTail(100, 9, DefaultBaselineLoss); p < DefaultAlpha {
		t.Fatalf("P(X >= 9) = %g is below Alpha: the documented 10 is wrong", p)
	}
	const onset = 2 * time.Hour
	worst, worstTime := 0, time.Duration(0)
	for seed := range uint64(50) {
		s := newSim(t, 100+seed, Config{})
		s.lost = func(at time.Duration) float64 {
			if at >= onset {
				return 1
			}
			return DefaultBaselineLoss
		}
		s.run(onset + 30*time.Minute)
		at, ok := s.firstStart[Loss]
		if !ok {
			t.Fatalf("seed %d: every loop dropped for 30 min and no loss alarm", seed)
		}
		if at < onset {
			t.Fatalf("seed %d: loss alarm at %v, before the attack", seed, at)
		}
		// The tenth dropped loop's send time bounds the detection time.
		var tenth time.Duration
		c := 0
		for _, st := range s.sentTimes {
			if st >= onset {
				if c++; c == 10 {
					tenth = st
					break
				}
			}
		}
		if at > tenth+relayTimeout+checkEvery {
			t.Errorf("seed %d: alarm %v after onset, later than the tenth loop's deadline plus a check (%v)", seed, at-onset, tenth+relayTimeout+checkEvery-onset)
		}
		if s.starts[Delay] != 0 {
			t.Errorf("seed %d: a delay alarm when loops are dropped, not delayed", seed)
		}
		worstTime = max(worstTime, at-onset)
		// Dropped loops past their deadline by the check before the
		// alarm: fewer than 10, or it would have started then.
		resolved := 0
		for _, st := range s.sentTimes {
			if st >= onset && st+relayTimeout <= at-checkEvery {
				resolved++
			}
		}
		worst = max(worst, resolved+1)
		if resolved >= 10 {
			t.Errorf("seed %d: %d dropped loops past their deadline a check before the alarm, want fewer than 10", seed, resolved)
		}
		if seed == 0 {
			// Control: the same seed, undisturbed.
			ctl := newSim(t, 100+seed, Config{})
			ctl.run(onset + 30*time.Minute)
			if ctl.starts[Loss]+ctl.starts[Delay] != 0 {
				t.Errorf("control: %d alarms on an undisturbed run", ctl.starts[Loss]+ctl.starts[Delay])
			}
		}
	}
	t.Logf("all dropped: alarm at the first check after at most %d dropped loops passed their deadline, at most %v after onset (timeout %v, %.1f loops/s)",
		worst, worstTime, relayTimeout, relayRate)
}

// TestLossAlarmWhen30PercentDropped: with 30 % of loops dropped (on top
// of the 1 % baseline) the loss alarm starts in every one of 100 runs,
// within 100 loops of the attack; the documented mean is about 30.
func TestLossAlarmWhen30PercentDropped(t *testing.T) {
	const onset = 2 * time.Hour
	var loops []int
	var times []time.Duration
	for seed := range uint64(100) {
		s := newSim(t, 200+seed, Config{})
		s.lost = func(at time.Duration) float64 {
			if at >= onset {
				return 0.3 + 0.7*DefaultBaselineLoss
			}
			return DefaultBaselineLoss
		}
		s.run(onset + time.Hour)
		at, ok := s.firstStart[Loss]
		if !ok || at < onset {
			t.Fatalf("seed %d: loss alarm %v (ok %v), want one after %v", seed, at, ok, onset)
		}
		// Loops sent after onset whose deadline passed before the alarm:
		// what the test had seen.
		n := 0
		for _, st := range s.sentTimes {
			if st >= onset && st+relayTimeout <= at {
				n++
			}
		}
		loops = append(loops, n)
		times = append(times, at-onset)
		if s.starts[Delay] != 0 {
			t.Errorf("seed %d: a delay alarm when loops are dropped, not delayed", seed)
		}
	}
	slices.Sort(loops)
	slices.Sort(times)
	mean := 0.0
	for _, n := range loops {
		mean += float64(n)
	}
	mean /= float64(len(loops))
	t.Logf("30%% dropped: alarm after %.1f loops on average (median %d, max %d); after %v median, %v at most",
		mean, loops[len(loops)/2], loops[len(loops)-1], times[len(times)/2], times[len(times)-1])
	if loops[len(loops)-1] > 100 {
		t.Errorf("an alarm took %d loops, want at most 100", loops[len(loops)-1])
	}
}

// TestDelayAlarm: a delay added to every loop raises the delay alarm, not
// the loss alarm: 1 s more (every loop slow) within 21 returns, 200 ms
// more (a quarter of loops slow instead of 5 %) within 200; the alarm
// clears once the delay stops. Control: the same seeds undisturbed.
func TestDelayAlarm(t *testing.T) {
	if p := BinomialTail(100, 21, DefaultSlowShare); p >= DefaultAlpha {
		t.Fatalf("P(X >= 21) = %g, not below Alpha: the documented 21 is wrong", p)
	}
	const onset, stop = 2 * time.Hour, 4 * time.Hour
	for _, c := range []struct {
		extra time.Duration
		max   int
	}{
		{time.Second, 21},
		{200 * time.Millisecond, 200},
	} {
		var worst int
		for seed := range uint64(20) {
			s := newSim(t, 300+seed, Config{})
			s.extra = func(at time.Duration) time.Duration {
				if at >= onset && at < stop {
					return c.extra
				}
				return 0
			}
			var cleared bool
			s.run(onset + time.Hour)
			at, ok := s.firstStart[Delay]
			if !ok || at < onset {
				t.Fatalf("+%v, seed %d: delay alarm %v (ok %v), want one after %v", c.extra, seed, at, ok, onset)
			}
			// Returns of loops sent after onset, before the alarm.
			n := 0
			for _, st := range s.sentTimes {
				if st >= onset && st+relayHold+c.extra <= at {
					n++
				}
			}
			worst = max(worst, n)
			if n > c.max+5 { // a few more sent than returned at the check
				t.Errorf("+%v, seed %d: %d loops before the alarm, want about %d at most", c.extra, seed, n, c.max)
			}
			if s.starts[Loss] != 0 {
				t.Errorf("+%v, seed %d: a loss alarm for delayed loops", c.extra, seed)
			}
			s.run(stop - s.now)
			for range 200 {
				s.run(checkEvery)
				if s.w.Status().Alarm&Delay == 0 {
					cleared = true
					break
				}
			}
			if !cleared {
				t.Errorf("+%v, seed %d: the delay alarm did not clear after the delay stopped", c.extra, seed)
			}
			if seed == 0 {
				ctl := newSim(t, 300+seed, Config{})
				ctl.run(stop + time.Hour)
				if ctl.starts[Loss]+ctl.starts[Delay] != 0 {
					t.Errorf("control: alarms on an undisturbed run")
				}
			}
		}
		t.Logf("+%v to every loop: delay alarm after at most %d loops", c.extra, worst)
	}
}

// TestAlarmClears: when the drops stop, the loss alarm clears (Cleared,
// and a text saying so) once the window holds few enough lost loops.
func TestAlarmClears(t *testing.T) {
	s := newSim(t, 7, Config{})
	s.lost = func(at time.Duration) float64 {
		if at >= time.Hour && at < 2*time.Hour {
			return 1
		}
		return DefaultBaselineLoss
	}
	s.run(2 * time.Hour)
	if st := s.w.Status(); st.Alarm&Loss == 0 {
		t.Fatalf("no loss alarm after an hour of drops: %+v", st)
	}
	var cleared Status
	for range 2000 {
		s.run(checkEvery)
		st := s.w.Check(s.start.Add(s.now))
		if st.Alarm&Loss == 0 {
			cleared = st
			break
		}
	}
	if cleared.Loss.Sent == 0 {
		t.Fatal("the loss alarm never cleared")
	}
	if cleared.Loss.PValue <= DefaultClearAlpha {
		t.Errorf("cleared at p = %g, at or below ClearAlpha", cleared.Loss.PValue)
	}
	t.Logf("cleared at %v with %d of %d lost (p = %.3g)", s.now, cleared.Loss.Lost(), cleared.Loss.Sent, cleared.Loss.PValue)
}

// TestStartedAndClearedOnce: Started and Cleared report the transition
// at the Check that made it, and only there.
func TestStartedAndClearedOnce(t *testing.T) {
	w, err := New(Config{Timeout: time.Second, MinSamples: 5, Window: 10, SlowRTT: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Unix(0, 0)
	for i := range 10 {
		w.Sent(idOf(uint64(i)), t0.Add(time.Duration(i)*time.Millisecond))
	}
	st := w.Check(t0.Add(2 * time.Second))
	if st.Alarm != Loss || st.Started != Loss || st.Cleared != 0 {
		t.Fatalf("10 of 10 lost: %+v, want Loss started", st)
	}
	if st = w.Check(t0.Add(3 * time.Second)); st.Alarm != Loss || st.Started != 0 {
		t.Fatalf("the next check: %+v, want Loss on, not started again", st)
	}
	// Ten loops back in time, fast: the window holds 0 of 10 lost.
	for i := range 10 {
		id := idOf(uint64(100 + i))
		at := t0.Add(4*time.Second + time.Duration(i)*time.Millisecond)
		w.Sent(id, at)
		if _, ok := w.Returned(id, at.Add(10*time.Millisecond)); !ok {
			t.Fatal("a return in time did not count")
		}
	}
	st = w.Check(t0.Add(6 * time.Second))
	if st.Alarm != 0 || st.Cleared != Loss || st.Started != 0 {
		t.Fatalf("10 of 10 back: %+v, want Loss cleared", st)
	}
	if got := st.Text(); got != "your cover packets come back normally again" {
		t.Errorf("text on clearing: %q", got)
	}
	if st = w.Check(t0.Add(7 * time.Second)); st.Cleared != 0 || st.Text() != "" {
		t.Fatalf("the next check: %+v, want nothing to report", st)
	}
}

// TestReturnedOnlyCountsOnce: an unknown ID, a second return and a return
// after the deadline do not count; the late one stays lost.
func TestReturnedOnlyCountsOnce(t *testing.T) {
	w, err := New(Config{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Unix(0, 0)
	if _, ok := w.Returned(idOf(1), t0); ok {
		t.Error("an unknown loop counted")
	}
	w.Sent(idOf(1), t0)
	w.Sent(idOf(2), t0)
	if w.Sent(idOf(2), t0) {
		t.Error("an ID already in flight was tracked twice")
	}
	if rtt, ok := w.Returned(idOf(1), t0.Add(300*time.Millisecond)); !ok || rtt != 300*time.Millisecond {
		t.Errorf("a return in time: %v, %v", rtt, ok)
	}
	if _, ok := w.Returned(idOf(1), t0.Add(400*time.Millisecond)); ok {
		t.Error("a second return counted")
	}
	if _, ok := w.Returned(idOf(2), t0.Add(1500*time.Millisecond)); ok {
		t.Error("a return after the deadline counted")
	}
	st := w.Check(t0.Add(2 * time.Second))
	want := Totals{Sent: 2, Returned: 1, Lost: 1, Late: 1, Untracked: 1}
	if st.Totals != want {
		t.Errorf("totals %+v, want %+v", st.Totals, want)
	}
	if st.Loss.Sent != 2 || st.Loss.Returned != 1 {
		t.Errorf("loss window %+v, want 1 of 2 back", st.Loss)
	}
	if _, ok := w.Returned(idOf(2), t0.Add(3*time.Second)); ok {
		t.Error("a loop already resolved counted")
	}
}

// TestBoundedMemory: a million loops that never return, sent faster than
// they expire, never hold more than MaxPending; the rest are refused and
// counted, and once past their deadline the tracked ones are lost and
// forgotten.
func TestBoundedMemory(t *testing.T) {
	w, err := New(Config{Timeout: time.Hour, MaxPending: 1000})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Unix(0, 0)
	for i := range 1_000_000 {
		w.Sent(idOf(uint64(i)), t0.Add(time.Duration(i)*time.Microsecond))
		if i%10_000 == 0 {
			w.Check(t0.Add(time.Duration(i) * time.Microsecond))
		}
	}
	if len(w.index) > 1000 || w.count > 1000 {
		t.Fatalf("%d IDs indexed, %d pending: above MaxPending", len(w.index), w.count)
	}
	st := w.Check(t0.Add(2 * time.Hour))
	if st.Totals.Sent != 1000 || st.Totals.Untracked != 999_000 || st.Totals.Lost != 1000 {
		t.Errorf("totals %+v", st.Totals)
	}
	if len(w.index) != 0 || w.count != 0 {
		t.Errorf("%d IDs indexed, %d pending after every deadline passed", len(w.index), w.count)
	}
	if st.Alarm&Loss == 0 {
		t.Error("1000 of 1000 lost and no loss alarm")
	}
}

// TestSteadyStateDoesNotAllocate: Sent, Returned and Check allocate
// nothing once the Watcher exists.
func TestSteadyStateDoesNotAllocate(t *testing.T) {
	w, err := New(Config{Timeout: time.Second, SlowRTT: 100 * time.Millisecond, MaxPending: 256})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Unix(0, 0)
	var i uint64
	step := func() {
		at := t0.Add(time.Duration(i) * 10 * time.Millisecond)
		id := idOf(i)
		w.Sent(id, at)
		if i%50 != 0 {
			w.Returned(id, at.Add(time.Duration(i%7)*20*time.Millisecond))
		}
		w.Check(at)
		i++
	}
	for range 10_000 { // fill the rings and let the map reach its size
		step()
	}
	if a := testing.AllocsPerRun(10_000, step); a != 0 {
		t.Errorf("%v allocations per loop", a)
	}
}

// TestOutOfOrderSentTimes: a Sent time earlier than the last is taken as
// the last, so deadlines stay in order.
func TestOutOfOrderSentTimes(t *testing.T) {
	w, err := New(Config{Timeout: time.Second, MinSamples: 1, Window: 2})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Unix(100, 0)
	w.Sent(idOf(1), t0)
	w.Sent(idOf(2), t0.Add(-time.Minute))
	if st := w.Check(t0.Add(999 * time.Millisecond)); st.Loss.Sent != 0 {
		t.Errorf("a loop resolved before its deadline: %+v", st.Loss)
	}
	if st := w.Check(t0.Add(time.Second)); st.Loss.Sent != 2 {
		t.Errorf("after both deadlines: %+v", st.Loss)
	}
}

func TestText(t *testing.T) {
	st := Status{Alarm: Loss | Delay,
		Loss:  LossFigures{Sent: 100, Returned: 88, Expected: 99},
		Delay: DelayFigures{Returned: 88, Slow: 30, Expected: 4.4}}
	want := "12 of your last 100 cover packets did not come back (expected about 1): someone may be blocking or delaying your connection; " +
		"30 of your last 88 cover packets came back later than the network's delays explain (expected about 4): someone may be delaying your connection"
	if got := st.Text(); got != want {
		t.Errorf("Text:\n%s\nwant\n%s", got, want)
	}
	st = Status{Alarm: Loss, Loss: LossFigures{Sent: 20, Returned: 10, Expected: 19.8}}
	if got := st.Text(); !strings.HasPrefix(got, "10 of your last 20 cover packets did not come back (expected fewer than 1)") {
		t.Errorf("Text: %q", got)
	}
	if got := (Status{}).Text(); got != "" {
		t.Errorf("no alarm: %q", got)
	}
	for a, want := range map[Alarm]string{0: "ok", Loss: "loss", Delay: "delay", Loss | Delay: "loss+delay"} {
		if a.String() != want {
			t.Errorf("%d: %q, want %q", a, a.String(), want)
		}
	}
}

func TestConfigRefused(t *testing.T) {
	for name, c := range map[string]Config{
		"no timeout":       {},
		"loss of 1":        {Timeout: time.Second, BaselineLoss: 1},
		"negative slow":    {Timeout: time.Second, SlowRTT: -1},
		"share above 1":    {Timeout: time.Second, SlowShare: 2},
		"clear below":      {Timeout: time.Second, Alpha: 0.01, ClearAlpha: 0.001},
		"min above window": {Timeout: time.Second, Window: 10, MinSamples: 11},
		"negative pending": {Timeout: time.Second, MaxPending: -1},
	} {
		if _, err := New(c); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	w, err := New(Config{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if c := w.Config(); c.Window != DefaultWindow || c.Alpha != DefaultAlpha || c.MaxPending != DefaultMaxPending || c.SlowRTT != 0 {
		t.Errorf("defaults not filled in: %+v", c)
	}
}

// TestBinomialTail against exact rational sums, on both sides of the
// mean, and at a size where the naive first term underflows.
func TestBinomialTail(t *testing.T) {
	exact := func(n, k int, p *big.Rat) float64 {
		q := new(big.Rat).Sub(big.NewRat(1, 1), p)
		s := new(big.Rat)
		for i := k; i <= n; i++ {
			c := new(big.Int).Binomial(int64(n), int64(i))
			term := new(big.Rat).SetInt(c)
			pi := new(big.Rat).SetInt64(1)
			for range i {
				pi.Mul(pi, p)
			}
			qi := new(big.Rat).SetInt64(1)
			for range n - i {
				qi.Mul(qi, q)
			}
			term.Mul(term, pi).Mul(term, qi)
			s.Add(s, term)
		}
		f, _ := s.Float64()
		return f
	}
	for _, c := range []struct {
		n      int
		p      *big.Rat
		pf     float64
		ks     []int
		relTol float64
	}{
		{100, big.NewRat(1, 100), 0.01, []int{1, 2, 5, 9, 10, 30, 100}, 1e-9},
		{100, big.NewRat(5, 100), 0.05, []int{1, 5, 6, 20, 21, 50}, 1e-9},
		{40, big.NewRat(1, 2), 0.5, []int{1, 10, 20, 21, 39, 40}, 1e-9},
	} {
		for _, k := range c.ks {
			want := exact(c.n, k, c.p)
			got := BinomialTail(c.n, k, c.pf)
			if math.Abs(got-want) > c.relTol*want && math.Abs(got-want) > 1e-15 {
				t.Errorf("P(Bin(%d, %v) >= %d) = %.12g, want %.12g", c.n, c.pf, k, got, want)
			}
		}
	}
	if got := BinomialTail(1_000_000, 1, 0.5); got != 1 {
		t.Errorf("P(Bin(1e6, 0.5) >= 1) = %g, want 1", got)
	}
	if got := BinomialTail(1_000_000, 600_000, 0.5); got != 0 && got > 1e-300 {
		t.Errorf("P(Bin(1e6, 0.5) >= 600000) = %g, want about 0", got)
	}
	if BinomialTail(10, 0, 0.3) != 1 || BinomialTail(10, 11, 0.3) != 0 {
		t.Error("edge cases")
	}
}

// TestExpectedRTT: Erlang quantiles against chi-square tables (2Y is
// chi-square with 2k degrees of freedom), and a Monte Carlo check that 5 %
// of simulated round trips exceed the 95th percentile.
func TestExpectedRTT(t *testing.T) {
	for _, c := range []struct {
		hops int
		chi2 float64 // chi-square 95th percentile, 2·hops degrees of freedom
	}{
		{1, 5.9915}, {2, 9.4877}, {3, 12.5916}, {6, 21.0261},
	} {
		got := ExpectedRTT(c.hops, time.Second, 0, 0.95).Seconds()
		if want := c.chi2 / 2; math.Abs(got-want) > 1e-3 {
			t.Errorf("%d hops: 95th percentile %.4f s, want %.4f s", c.hops, got, want)
		}
	}
	if got := ExpectedRTT(2, 100*time.Millisecond, 750*time.Millisecond, 0.95); got.Round(time.Millisecond) != 1224*time.Millisecond {
		t.Errorf("the relay default: %v, want 1.224s", got)
	}
	if ExpectedRTT(0, time.Second, 7, 0.95) != 7 || ExpectedRTT(3, 0, 7, 0.95) != 7 || ExpectedRTT(3, time.Second, 7, 1) != math.MaxInt64 {
		t.Error("edge cases")
	}
	rng := rand.New(rand.NewPCG(3, 4))
	q := ExpectedRTT(3, 50*time.Millisecond, 0, 0.95)
	const draws = 200_000
	above := 0
	for range draws {
		var d float64
		for range 3 {
			d += rng.ExpFloat64() * float64(50*time.Millisecond)
		}
		if time.Duration(d) > q {
			above++
		}
	}
	// The standard error of the share is 0.05 %.
	if share := float64(above) / draws; math.Abs(share-0.05) > 0.0025 {
		t.Errorf("%.4f of simulated round trips above the 95th percentile", share)
	}
}

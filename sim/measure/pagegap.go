package measure

import (
	"math"
	"slices"
	"time"

	"github.com/sealnet/sealnet/internal/stats"
	"github.com/sealnet/sealnet/internal/testbed/load"
)

// Loop stripping on the wire. After a page that carried mail or a reply
// to one of its own messages, the client saves its state (an fsync)
// before it acknowledges the page; after a page with only its loop's
// return it acknowledges at once (sender/receive.go, processPage). So the
// pause between a fetch answered early and the client's next request on
// the user link tells a wire observer which mail events were real — the
// loop stripping a provider does from its own view (docs/sim.md §3.9),
// done by anyone who sees the user's link.
//
// The observer's classifier is unsupervised: two-means on the log of the
// pauses, the boundary halfway between the clusters; a pause above it is
// "real". The ground truth (a message shown to the user, or the user told
// that one of its messages was delivered, within 200 ms after the mail
// event) only scores it.

// PageGap is that attack's outcome on one capture.
type PageGap struct {
	Events   int     `json:"events"`     // mail events followed by the client's next request
	Real     int     `json:"real"`       // of them, pages with the user's mail or an acknowledgement (ground truth)
	Boundary float64 `json:"boundary_s"` // the classifier's boundary, seconds
	// Accuracy is the share classified right, with its 95 % Wilson
	// interval; Base is what a guess without the pause gets (the larger
	// class's share).
	Accuracy    float64 `json:"accuracy"`
	Lo, Hi      float64 `json:"-"`
	Base        float64 `json:"base"`
	RealMedian  float64 `json:"real_median_s"`
	OtherMedian float64 `json:"other_median_s"`
}

// pageGapAttack classifies the mail events (setting each one's page) and
// scores the classifier.
func pageGapAttack(mails []mailEvent, truth *load.Truth, at func(time.Time) int64) PageGap {
	real := realTimes(truth, at)
	var logs []float64
	var idx []int
	var truthReal []bool
	var gaps [2][]float64
	for i, e := range mails {
		if e.ackGap < 0 {
			continue
		}
		idx = append(idx, i)
		ts := real[e.u]
		// The client shows the mail (or the delivery) right after it
		// saved the page: within milliseconds of the answer.
		isReal := realWithin(ts, e.t, -10*time.Millisecond, 200*time.Millisecond)
		logs = append(logs, math.Log(max(float64(e.ackGap), 1)))
		truthReal = append(truthReal, isReal)
		gaps[b2i(isReal)] = append(gaps[b2i(isReal)], float64(e.ackGap)/1e9)
	}
	g := PageGap{Events: len(logs), Real: len(gaps[1])}
	if len(logs) < 2 {
		return g
	}
	lo, hi := slices.Min(logs), slices.Max(logs)
	for range 100 {
		var s [2]float64
		var n [2]int
		mid := (lo + hi) / 2
		for _, x := range logs {
			c := b2i(x > mid)
			s[c] += x
			n[c]++
		}
		if n[0] == 0 || n[1] == 0 {
			break
		}
		lo, hi = s[0]/float64(n[0]), s[1]/float64(n[1])
	}
	mid := (lo + hi) / 2
	right := 0
	for i, x := range logs {
		if (x > mid) == truthReal[i] {
			right++
		}
		mails[idx[i]].page = -1
		if x > mid {
			mails[idx[i]].page = 1
		}
	}
	n := float64(len(logs))
	g.Boundary = math.Exp(mid) / 1e9
	g.Accuracy = float64(right) / n
	g.Lo, g.Hi = stats.Wilson(float64(right), n)
	g.Base = max(float64(g.Real), n-float64(g.Real)) / n
	g.RealMedian, g.OtherMedian = median(gaps[1]), median(gaps[0])
	return g
}

// realTimes is the ground truth of both wire classifiers: per user, the
// times (sorted) its client showed mail or heard of a delivery.
func realTimes(truth *load.Truth, at func(time.Time) int64) map[int32][]int64 {
	real := map[int32][]int64{}
	for _, m := range truth.Messages {
		if !m.Received.IsZero() {
			real[m.To] = append(real[m.To], at(m.Received))
		}
		if !m.Delivered.IsZero() {
			real[m.From] = append(real[m.From], at(m.Delivered))
		}
	}
	for _, ts := range real {
		slices.Sort(ts)
	}
	return real
}

// realWithin reports whether ts (sorted) has a time in [t+lo, t+hi].
func realWithin(ts []int64, t int64, lo, hi time.Duration) bool {
	k, _ := slices.BinarySearch(ts, t+int64(lo))
	return k < len(ts) && ts[k] <= t+int64(hi)
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func median(x []float64) float64 {
	if len(x) == 0 {
		return math.NaN()
	}
	s := slices.Clone(x)
	slices.Sort(s)
	return s[len(s)/2]
}

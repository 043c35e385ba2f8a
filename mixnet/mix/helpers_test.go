package mix

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/sealnet/sealnet/internal/stats"
)

// detRand returns a reproducible random source.
func detRand(seed uint64) *rand.Rand {
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	return rand.New(rand.NewChaCha8(s))
}

// t0 is an arbitrary origin for the tests' times, with a nonzero
// nanosecond part so that tick arithmetic cannot pass by accident.
var t0 = time.Date(2026, 3, 14, 15, 9, 26, 535897932, time.UTC)

func mustNew(tb testing.TB, cfg Config, seed uint64) Strategy[int] {
	tb.Helper()
	s, err := New[int](cfg, detRand(seed))
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func mustAdd(tb testing.TB, s Strategy[int], now time.Time, it Item[int]) {
	tb.Helper()
	if err := s.Add(now, it); err != nil {
		tb.Fatalf("Add(%v, %d): %v", now, it.Value, err)
	}
}

// chiSquare is Pearson's statistic against the uniform distribution.
func chiSquare(counts []int) float64 { return stats.ChiSquare(counts) }

// Upper critical values of the chi-square distribution at p = 0.001.
const (
	chi2df3  = 16.266 // 3 degrees of freedom
	chi2df14 = 36.123
	chi2df23 = 49.728
)

func sameInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// isPermutation reports whether got holds exactly the values of want, each
// once, in any order.
func isPermutation(got, want []int) bool {
	if len(got) != len(want) {
		return false
	}
	seen := make(map[int]int, len(want))
	for _, v := range want {
		seen[v]++
	}
	for _, v := range got {
		if seen[v] == 0 {
			return false
		}
		seen[v]--
	}
	return true
}

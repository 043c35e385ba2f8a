package relay_test

import (
	"math/rand/v2"
	"runtime"
	"time"
)

func numCPU() int { return runtime.NumCPU() }

func expDelay(mean time.Duration) time.Duration {
	return time.Duration(rand.ExpFloat64() * float64(mean))
}

package sim

import (
	"bytes"
	"context"
	"math"
	"strconv"
	"testing"
)

func parse(t *testing.T, text string) *Config {
	t.Helper()
	c, err := ParseConfig(text)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestThresholdMixGivesLog2B: one threshold mix whose every batch holds b
// messages from b different senders gives each message exactly log2 b
// bits of sender entropy, and min-entropy, and the adversary's top-1
// guess is right 1/b of the time.
func TestThresholdMixGivesLog2B(t *testing.T) {
	for _, b := range []int{2, 5, 16, 100} {
		const batches = 40
		cfg := parse(t, `
users = `+itoa(b*batches)+`
layers = 1
width = 1
providers = 1
duration = "1h"
warmup = "0s"
[mixing]
kind = "threshold"
threshold = `+itoa(b)+`
at = "mixes"
[client]
rate = 0
loop_rate = 0
[relay]
loop_rate = 0
[workload]
message_rate = 0.0000001
contacts = 1
acks = false # replies would join the batches
[adversary]
targets = 1000
top_k = [1]
`)
		m, err := newModel(cfg)
		if err != nil {
			t.Fatal(err)
		}
		m.targetP = 1
		// Batch k: users k·b .. k·b+b−1, one message each, a millisecond apart.
		for k := range batches {
			for j := range b {
				m.q.push(int64(k)*1e9+int64(j)*1e6, evInject, int32(k*b+j))
			}
		}
		if err := m.loop(context.Background()); err != nil {
			t.Fatal(err)
		}
		a := &m.adv.res
		if len(a.h) != b*batches {
			t.Fatalf("b=%d: %d targets scored, want %d", b, len(a.h), b*batches)
		}
		want := math.Log2(float64(b))
		for i := range a.h {
			if math.Abs(a.h[i]-want) > 1e-9 || math.Abs(a.hmin[i]-want) > 1e-9 {
				t.Fatalf("b=%d: target %d has H=%v, Hmin=%v; want exactly %v", b, i, a.h[i], a.hmin[i], want)
			}
		}
		if got := a.topKHits[0] / float64(len(a.h)); math.Abs(got-1/float64(b)) > 1e-9 {
			t.Fatalf("b=%d: top-1 %v, want %v", b, got, 1/float64(b))
		}
	}
}

// TestPoissonMixEntropy: one Poisson mix with arrival rate λ and mean
// delay d gives about log2(e·λ·d) bits (Danezis, "The traffic analysis of
// continuous-time mixes", PET 2004) when λd is large; the simulator must
// stay within 0.1 bit of it.
func TestPoissonMixEntropy(t *testing.T) {
	if testing.Short() {
		t.Skip("long")
	}
	for _, c := range []struct{ lambda, d float64 }{{50, 1}, {200, 0.5}, {100, 2}} {
		users := 20000
		cfg := parse(t, `
users = `+itoa(users)+`
layers = 1
width = 1
providers = 1
duration = "200s"
warmup = "40s"
[mixing]
kind = "poisson"
mean_delay = "`+ftoa(c.d)+`s"
at = "mixes"
[client]
rate = 0
loop_rate = 0
[relay]
loop_rate = 0
[workload]
message_rate = `+ftoa(c.lambda/float64(users))+`
contacts = 1
[adversary]
targets = 2000
`)
		r, err := Run(context.Background(), cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		want := math.Log2(math.E * c.lambda * c.d)
		t.Logf("λ=%v d=%v: H = %.3f ± %.3f bits over %d targets; log2(eλd) = %.3f", c.lambda, c.d, r.Entropy.Mean, r.Entropy.CI95, r.Targets, want)
		if r.Targets < 1000 || math.Abs(r.Entropy.Mean-want) > 0.1 {
			t.Errorf("λ=%v d=%v: H = %.3f, want %.3f ± 0.1", c.lambda, c.d, r.Entropy.Mean, want)
		}
	}
}

// TestDeterministic: the same seed and configuration give the same bytes;
// another seed gives others.
func TestDeterministic(t *testing.T) {
	text := `
users = 150
duration = "40s"
latency = { kind = "exponential", mean = "10ms", min = "2ms" }
[client]
rate = 2
loop_rate = 0.2
[relay]
loop_rate = 1
[workload]
message_rate = 0.05
zipf = 1
[adversary]
targets = 150
corrupt_relays = 0.2
`
	out := func(seed string) []byte {
		cfg := parse(t, "seed = "+seed+"\n"+text)
		r, err := Run(context.Background(), cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		r.WriteJSON(&b)
		return b.Bytes()
	}
	a, b, c := out("7"), out("7"), out("8")
	if !bytes.Equal(a, b) {
		t.Fatalf("two runs with seed 7 differ:\n%s\n%s", a, b)
	}
	if bytes.Equal(a, c) {
		t.Fatal("seeds 7 and 8 give the same output")
	}
}
func itoa(i int) string     { return strconv.Itoa(i) }
func ftoa(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

// TestLoopixBound: in a stratified network of Poisson mixes (Loopix's
// evaluation topology, 3 layers of 3, with client and mix loop cover),
// the adversary's probability of linking any output of an honest mix to
// any input is at most 1/(l+k), the number of messages the mix held
// (Loopix, Theorem 1), and reaches it for the latest arrivals.
func TestLoopixBound(t *testing.T) {
	cfg := parse(t, `
users = 100
layers = 3
width = 3
duration = "3m"
[mixing]
mean_delay = "500ms"
[client]
rate = 2
loop_rate = 0.2
[relay]
loop_rate = 1
[workload]
message_rate = 0.05
[adversary]
targets = 20
`)
	m, err := newModel(cfg)
	if err != nil {
		t.Fatal(err)
	}
	m.adv.bound = true
	if err := m.run(context.Background()); err != nil {
		t.Fatal(err)
	}
	a := m.adv
	t.Logf("%d outputs checked; max linking probability × messages held = %.6f", a.boundChecks, a.boundMax)
	if a.boundChecks < 10000 {
		t.Fatalf("only %d outputs checked", a.boundChecks)
	}
	if a.boundMax > 1+1e-3 {
		t.Errorf("an output was linked with probability %.6f/(l+k): Loopix's bound broken", a.boundMax)
	}
	if a.boundMax < 0.99 {
		t.Errorf("max %.6f/(l+k): the latest arrival should reach the bound", a.boundMax)
	}
}

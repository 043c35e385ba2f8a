package directory

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/sealnet/sealnet/internal/stats"
	"github.com/sealnet/sealnet/mixnet"
)

func TestSelectPathShape(t *testing.T) {
	net := newTestNet(t, 3, 5, 2)
	doc := net.doc
	rng := rand.New(rand.NewPCG(3, 4))
	for _, epoch := range []uint64{doc.Epoch, doc.Epoch + 1} {
		for _, dest := range doc.Providers {
			for range 50 {
				path, err := doc.SelectPath(rng, dest, epoch, 10*time.Millisecond)
				if err != nil {
					t.Fatal(err)
				}
				if len(path) != len(doc.Layers)+1 {
					t.Fatalf("%d hops, want %d", len(path), len(doc.Layers)+1)
				}
				for i, hop := range path {
					n, ok := doc.Node(hop.ID)
					if !ok {
						t.Fatalf("hop %d is not in the document", i)
					}
					if i < len(doc.Layers) && (n.Role != RoleMix || n.Layer != i+1) {
						t.Fatalf("hop %d is %q, a %s in layer %d", i, n.Name, n.Role, n.Layer)
					}
					if i == len(doc.Layers) && n != dest {
						t.Fatalf("last hop is %q, want %q", n.Name, dest.Name)
					}
					if hop.PublicKey != n.MixKeys[epoch] {
						t.Fatalf("hop %d carries another key than %q's for epoch %d", i, n.Name, epoch)
					}
					if hop.Delay <= 0 {
						t.Fatalf("hop %d has no delay", i)
					}
				}
			}
		}
	}
}

// TestSelectPathRoutes builds packets along selected paths for both
// epochs and has the chosen nodes unwrap them with their mix keys for that
// epoch; the other epoch's key refuses them.
func TestSelectPathRoutes(t *testing.T) {
	net := newTestNet(t, 3, 3, 2)
	doc := net.doc
	rng := rand.New(rand.NewPCG(5, 6))
	seed := sha256.Sum256([]byte("packet randomness"))
	pktRNG := rand.NewChaCha8(seed)
	for _, epoch := range []uint64{doc.Epoch, doc.Epoch + 1} {
		path, err := doc.SelectPath(rng, doc.Providers[1], epoch, time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		msg := []byte("through the directory's path")
		pkt, err := mixnet.NewPacket(pktRNG, doc.Geometry, path, mixnet.RecipientID{7}, msg)
		if err != nil {
			t.Fatal(err)
		}
		otherEpoch := doc.Epoch + 1
		if epoch == otherEpoch {
			otherEpoch = doc.Epoch
		}
		for i, hop := range path {
			node := net.nodes[hop.ID]
			rc, _ := mixnet.NewReplayCache(epoch, 16)
			if _, err := node.mix[otherEpoch].Unwrap(bytes.Clone(pkt), rc); !errors.Is(err, mixnet.ErrHeaderAuth) {
				t.Fatalf("epoch %d hop %d: the key for epoch %d opened the packet: %v", epoch, i, otherEpoch, err)
			}
			res, err := node.mix[epoch].Unwrap(pkt, rc)
			if err != nil {
				t.Fatalf("epoch %d hop %d: %v", epoch, i, err)
			}
			if i == len(path)-1 {
				if !res.Final || !bytes.HasPrefix(res.Payload, msg) {
					t.Fatalf("epoch %d: not delivered at the provider", epoch)
				}
				break
			}
			if res.Final || res.NextHop != path[i+1].ID {
				t.Fatalf("epoch %d hop %d: next hop %v, want %v", epoch, i, res.NextHop, path[i+1].ID)
			}
			pkt = res.Packet
		}
	}
}

// TestSelectPathUniform: over many draws each mix of a layer is chosen
// about equally often, and the layers are chosen independently.
func TestSelectPathUniform(t *testing.T) {
	const perLayer, draws = 20, 40_000
	net := newTestNet(t, 3, perLayer, 1)
	doc := net.doc
	index := map[mixnet.NodeID]int{}
	for _, l := range doc.Layers {
		for i, n := range l {
			index[n.ID()] = i
		}
	}
	counts := make([][]uint64, len(doc.Layers))
	for i := range counts {
		counts[i] = make([]uint64, perLayer)
	}
	pairs := make([]uint64, perLayer*perLayer) // layers 1 and 2 jointly
	rng := rand.New(rand.NewPCG(7, 8))
	for range draws {
		path, err := doc.SelectPath(rng, doc.Providers[0], doc.Epoch, 0)
		if err != nil {
			t.Fatal(err)
		}
		for l := range doc.Layers {
			counts[l][index[path[l].ID]]++
		}
		pairs[index[path[0].ID]*perLayer+index[path[1].ID]]++
	}
	// Seven tests at alpha 1e-4 each; the seed is fixed, so the outcome is
	// too, but a biased selector fails by orders of magnitude.
	crit := stats.ChiSquareCritical(perLayer-1, 1e-4)
	for l, c := range counts {
		x := stats.ChiSquare(c)
		t.Logf("layer %d: chi-square %.1f (critical %.1f)", l+1, x, crit)
		if x > crit {
			t.Fatalf("layer %d: selection is not uniform: chi-square %.1f > %.1f (%v)", l+1, x, crit, c)
		}
	}
	if x, crit := stats.ChiSquare(pairs), stats.ChiSquareCritical(perLayer*perLayer-1, 1e-4); x > crit {
		t.Fatalf("layers 1 and 2 are not independent: chi-square %.1f > %.1f", x, crit)
	}
	// The statistic does see bias of the size a broken selector would
	// have (say, one mix never chosen).
	biased := append([]uint64(nil), counts[0]...)
	biased[1] += biased[0]
	biased[0] = 0
	if stats.ChiSquare(biased) < crit {
		t.Fatal("the test cannot tell a mix that is never chosen")
	}
}

func TestSelectPathDelays(t *testing.T) {
	net := newTestNet(t, 2, 2, 1)
	doc := net.doc
	// Delays clip at the document's MaxDelay (TestSelectPathClipsAtMaxDelay);
	// here it is the longest encodable, so that a 30 s mean stays exponential.
	doc.Parameters = DefaultParameters()
	doc.Parameters.MaxDelay = mixnet.MaxDelay
	rng := rand.New(rand.NewPCG(9, 10))
	const draws = 20_000
	for _, mean := range []time.Duration{time.Millisecond, 250 * time.Millisecond, 30 * time.Second} {
		sums := make([]float64, len(doc.Layers)+1)
		var sq float64
		for range draws {
			path, err := doc.SelectPath(rng, doc.Providers[0], doc.Epoch, mean)
			if err != nil {
				t.Fatal(err)
			}
			for i, h := range path {
				if h.Delay < 0 || h.Delay > mixnet.MaxDelay {
					t.Fatalf("delay %v out of range", h.Delay)
				}
				sums[i] += float64(h.Delay)
			}
			sq += float64(path[0].Delay) * float64(path[0].Delay)
		}
		// The standard error of the mean is mean/sqrt(draws), 0.7%; allow 4%.
		for i, s := range sums {
			got := s / draws
			if math.Abs(got-float64(mean)) > 0.04*float64(mean) {
				t.Fatalf("mean %v: hop %d delays average %v", mean, i, time.Duration(got))
			}
		}
		// Exponential: the standard deviation equals the mean.
		m := sums[0] / draws
		sd := math.Sqrt(sq/draws - m*m)
		if math.Abs(sd-float64(mean)) > 0.08*float64(mean) {
			t.Fatalf("mean %v: standard deviation %v, not exponential", mean, time.Duration(sd))
		}
	}
	// Zero mean: no delays.
	path, err := doc.SelectPath(rng, doc.Providers[0], doc.Epoch, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i, h := range path {
		if h.Delay != 0 {
			t.Fatalf("hop %d delay %v with mean 0", i, h.Delay)
		}
	}
	// A mean far above MaxDelay clips.
	clipped := 0
	for range 100 {
		path, err := doc.SelectPath(rng, doc.Providers[0], doc.Epoch, 100*mixnet.MaxDelay)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range path {
			if h.Delay > mixnet.MaxDelay {
				t.Fatalf("delay %v above MaxDelay", h.Delay)
			}
			if h.Delay == mixnet.MaxDelay {
				clipped++
			}
		}
	}
	if clipped < 250 {
		t.Fatalf("only %d of 300 delays clipped at a mean of 100 x MaxDelay", clipped)
	}
}

func TestSelectPathErrors(t *testing.T) {
	net := newTestNet(t, 2, 2, 1)
	doc := net.doc
	rng := rand.New(rand.NewPCG(11, 12))
	dest := doc.Providers[0]
	stranger := newTestNode(t, doc.Geometry, "stranger", RoleProvider, 0, doc.Epoch).desc
	emptyLayer := cloneDocument(doc)
	emptyLayer.Layers[1] = nil
	lastEpoch := cloneDocument(doc)
	lastEpoch.Epoch = math.MaxUint64
	cases := []struct {
		name  string
		doc   *Document
		rng   *rand.Rand
		dest  *Descriptor
		epoch uint64
		mean  time.Duration
	}{
		{"previous epoch", doc, rng, dest, doc.Epoch - 1, 0},
		{"epoch after next", doc, rng, dest, doc.Epoch + 2, 0},
		{"epoch 0", doc, rng, dest, 0, 0},
		{"no next epoch after the last", lastEpoch, rng, dest, 0, 0},
		{"unknown provider", doc, rng, stranger, doc.Epoch, 0},
		{"a mix as destination", doc, rng, doc.Layers[1][0], doc.Epoch, 0},
		{"nil destination", doc, rng, nil, doc.Epoch, 0},
		{"nil rng", doc, nil, dest, doc.Epoch, 0},
		{"negative mean delay", doc, rng, dest, doc.Epoch, -time.Second},
		{"empty layer", emptyLayer, rng, dest, doc.Epoch, 0},
		{"no layers", &Document{Epoch: doc.Epoch, Providers: doc.Providers}, rng, dest, doc.Epoch, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path, err := c.doc.SelectPath(c.rng, c.dest, c.epoch, c.mean)
			if !errors.Is(err, ErrPath) || path != nil {
				t.Fatalf("got %v, %v; want ErrPath", path, err)
			}
		})
	}
}

// TestSelectPathUsesDocumentCopy: the destination is identified by ID and
// the document's descriptor supplies its key, not the caller's copy.
func TestSelectPathUsesDocumentCopy(t *testing.T) {
	net := newTestNet(t, 1, 2, 1)
	doc := net.doc
	stale := cloneDescriptor(doc.Providers[0])
	stale.MixKeys[doc.Epoch] = [32]byte{1, 2, 3}
	path, err := doc.SelectPath(rand.New(rand.NewPCG(1, 1)), stale, doc.Epoch, 0)
	if err != nil {
		t.Fatal(err)
	}
	if last := path[len(path)-1]; last.PublicKey != doc.Providers[0].MixKeys[doc.Epoch] {
		t.Fatal("the caller's copy of the provider supplied the key")
	}
}

// TestSelectPathDeterministic: the same seed gives the same path, as the
// simulator needs.
func TestSelectPathDeterministic(t *testing.T) {
	net := newTestNet(t, 3, 10, 2)
	draw := func() [][]mixnet.Hop {
		rng := rand.New(rand.NewPCG(42, 43))
		var out [][]mixnet.Hop
		for range 20 {
			p, err := net.doc.SelectPath(rng, net.doc.Providers[1], net.doc.Epoch, time.Second)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, p)
		}
		return out
	}
	a, b := draw(), draw()
	for i := range a {
		for j := range a[i] {
			if a[i][j] != b[i][j] {
				t.Fatalf("draw %d hop %d differs", i, j)
			}
		}
	}
}

package directory

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/sealnet/sealnet/mixnet"
)

// SelectPath picks a stratified path to dest: one mix uniformly at random
// from each layer in order, then dest, a provider of d, as the final hop.
// Each hop carries the node's ID, its mix key for epoch, and a delay drawn
// from an exponential distribution with mean meanDelay (0: no delays),
// clipped at the document's d.Params().MaxDelay, the longest delay its
// relays accept; the provider gets a delay too. Clients pass
// d.Params().MeanDelay: a client with its own mean stands out.
//
// epoch must be d.Epoch or d.Epoch+1: every descriptor carries both keys,
// so a client whose newer document has not arrived can still build packets
// for the next epoch. dest is looked up by its ID, and the document's copy
// is used, so a stale dest cannot smuggle in other keys.
//
// rng must be seeded from crypto/rand for real traffic: whoever can predict
// it knows the path. For reproducibility, the draws are, per layer in
// order, IntN(len(layer)) and then (if meanDelay > 0) ExpFloat64, and
// finally the provider's ExpFloat64.
//
// d should be a document that passed Validate (as every document from
// ParseSignedDocument and Verify has); SelectPath checks only what it
// needs not to fail.
func (d *Document) SelectPath(rng *rand.Rand, dest *Descriptor, epoch uint64, meanDelay time.Duration) ([]mixnet.Hop, error) {
	switch {
	case rng == nil:
		return nil, fmt.Errorf("%w: no random source", ErrPath)
	case meanDelay < 0:
		return nil, fmt.Errorf("%w: negative mean delay %v", ErrPath, meanDelay)
	case epoch != d.Epoch && (d.Epoch == ^uint64(0) || epoch != d.Epoch+1):
		return nil, fmt.Errorf("%w: the document for epoch %d has no keys for epoch %d", ErrPath, d.Epoch, epoch)
	case dest == nil:
		return nil, fmt.Errorf("%w: no destination", ErrPath)
	case len(d.Layers) == 0:
		return nil, fmt.Errorf("%w: the document has no layers", ErrPath)
	}
	provider, ok := d.provider(dest.ID())
	if !ok {
		return nil, fmt.Errorf("%w: destination %v is not a provider in the document for epoch %d", ErrPath, dest.ID(), d.Epoch)
	}
	maxDelay := min(d.Params().MaxDelay, mixnet.MaxDelay) // the min only for documents that skipped Validate
	delay := func() time.Duration {
		if meanDelay == 0 {
			return 0
		}
		x := rng.ExpFloat64() * float64(meanDelay)
		if x >= float64(maxDelay) {
			return maxDelay
		}
		return time.Duration(x)
	}
	path := make([]mixnet.Hop, 0, len(d.Layers)+1)
	hop := func(n *Descriptor, what string) error {
		if n == nil {
			return fmt.Errorf("%w: %s is nil", ErrPath, what)
		}
		key, ok := n.MixKeys[epoch]
		if !ok {
			return fmt.Errorf("%w: %s %q has no mix key for epoch %d", ErrPath, what, n.Name, epoch)
		}
		path = append(path, mixnet.Hop{ID: n.ID(), PublicKey: key, Delay: delay()})
		return nil
	}
	for i, layer := range d.Layers {
		if len(layer) == 0 {
			return nil, fmt.Errorf("%w: layer %d is empty", ErrPath, i+1)
		}
		if err := hop(layer[rng.IntN(len(layer))], fmt.Sprintf("layer %d mix", i+1)); err != nil {
			return nil, err
		}
	}
	if err := hop(provider, "provider"); err != nil {
		return nil, err
	}
	return path, nil
}

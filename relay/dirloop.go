package relay

import (
	"context"
	"crypto/ed25519"
	"errors"
	"time"

	"github.com/sealnet/sealnet/mixnet/directory"
	"github.com/sealnet/sealnet/mixnet/directory/client"
)

// descriptor builds and signs this node's descriptor for epoch e, which
// carries the mix keys of e and e+1.
func (n *Node) descriptor(e uint64) ([]byte, error) {
	cur, ok1 := n.keys.public(e)
	next, ok2 := n.keys.public(e + 1)
	if !ok1 || !ok2 {
		if err := n.keys.ensure(e, e+1); err != nil {
			return nil, err
		}
		cur, _ = n.keys.public(e)
		next, _ = n.keys.public(e + 1)
	}
	d := &directory.Descriptor{
		Name:         n.cfg.Name,
		Role:         n.cfg.Role,
		Layer:        n.cfg.Layer,
		Domain:       n.cfg.Domain,
		Address:      n.cfg.Address,
		Onion:        n.onion,
		IdentityKey:  n.identity.Public().(ed25519.PublicKey),
		LinkKey:      [32]byte(n.linkKey.Public),
		Epoch:        e,
		MixKeys:      map[uint64][32]byte{e: cur, e + 1: next},
		GeometryHash: n.geo.Hash(),
	}
	return directory.SignDescriptor(d, n.identity)
}

// directoryLoop publishes descriptors for the current and next epochs to
// every authority until each has accepted them, and keeps the documents of
// the current and next epochs. When the authorities are unreachable the
// node keeps working on the newest document it holds, and says so once
// per epoch.
func (n *Node) directoryLoop(ctx context.Context) {
	published := make(map[uint64]map[string]bool) // epoch -> authority URL -> accepted
	warnedStale := uint64(0)
	poll := n.cfg.Directory.Poll.D()
	t := n.clock.NewTimer(poll)
	defer t.Stop()
	for {
		e := n.epoch()
		for _, x := range []uint64{e, e + 1} {
			if published[x] == nil {
				published[x] = make(map[string]bool)
			}
			if len(published[x]) == len(n.cfg.Directory.Authorities) {
				continue
			}
			if _, ok := n.dir.Document(x); ok {
				continue // too late to change it, and not needed
			}
			desc, err := n.descriptor(x)
			if err != nil {
				n.log.Error("cannot build descriptor", "epoch", x, "err", err)
				continue
			}
			pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			ok, err := n.dir.Publish(pctx, desc, published[x])
			cancel()
			for _, u := range ok {
				published[x][u] = true
			}
			if err != nil && ctx.Err() == nil {
				n.log.Warn("publishing descriptor", "epoch", x, "err", err)
			}
		}
		for x := range published {
			if x+1 < e {
				delete(published, x)
			}
		}
		for _, x := range []uint64{e, e + 1} {
			if _, ok := n.dir.Document(x); ok {
				continue
			}
			fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			sd, err := n.dir.Fetch(fctx, x)
			cancel()
			switch {
			case err == nil:
				if sd.Doc.Period != n.cfg.Directory.EpochPeriod.D() {
					n.log.Error("the network's epoch period differs from directory.epoch_period; fix the configuration",
						"network", sd.Doc.Period, "configured", n.cfg.Directory.EpochPeriod.D())
				}
				n.log.Info("new network document", "epoch", x, "layers", len(sd.Doc.Layers), "providers", len(sd.Doc.Providers))
			case x == e && !errors.Is(err, client.ErrNotYet) && ctx.Err() == nil:
				n.log.Debug("fetching document", "epoch", x, "err", err)
			}
		}
		n.refreshParams()
		if latest := n.dir.Latest(); latest != nil {
			n.m.docEpoch.Set(int64(latest.Doc.Epoch))
			if latest.Doc.Epoch < e {
				n.m.docStale.Set(1)
				if warnedStale != e {
					warnedStale = e
					n.log.Warn("no document for the current epoch; still using an older one (are the directory authorities reachable?)",
						"epoch", e, "using", latest.Doc.Epoch)
				}
			} else {
				n.m.docStale.Set(0)
			}
		}
		n.dir.Forget(e - 1)
		select {
		case <-ctx.Done():
			return
		case <-t.C():
			t.Reset(poll)
		}
	}
}

// epochLoop creates keys ahead of need and erases expired ones, waking at
// each epoch boundary and at the end of each grace window.
func (n *Node) epochLoop(ctx context.Context) {
	period, grace := n.cfg.Directory.EpochPeriod.D(), n.cfg.Directory.EpochGrace.D()
	for {
		now := n.now()
		e := epochAt(now, period)
		if err := n.keys.ensure(e, e+1, e+2); err != nil {
			n.log.Error("cannot create mix keys", "err", err)
		}
		if gone := n.keys.retire(now); len(gone) > 0 {
			n.log.Info("erased expired mix keys", "epochs", gone)
		}
		start := directory.EpochStart(e, period)
		wake := start.Add(grace)
		if !now.Before(wake) {
			wake = start.Add(period)
		}
		t := n.clock.NewTimer(wake.Sub(now) + 10*time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C():
		}
	}
}

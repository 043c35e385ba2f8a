package torctl

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cretz/bine/control"
	"github.com/cretz/bine/tor"

	"github.com/sealnet/sealnet/mixnet/directory"
)

// Onion is a v3 onion service of this tor. It is a net.Listener: each
// connection a Tor client makes to Address arrives through Accept (from
// tor, on loopback).
type Onion struct {
	net.Listener
	// Address is "<host>.onion:port".
	Address string
	svc     *tor.OnionService
	t       *Tor
}

// Listen publishes a v3 onion service with key (an Ed25519 key kept on
// disk, so the address stays the same across restarts) on virtual port
// port, and waits until tor reports its descriptor uploaded to at least
// one directory, or ctx ends (ErrPublish, naming tor's log). The service
// ends when the Onion is closed or the control connection goes.
func (t *Tor) Listen(ctx context.Context, key ed25519.PrivateKey, port int) (*Onion, error) {
	if t.t == nil {
		return nil, fmt.Errorf("%w: an onion service needs tor's control port (attach mode: set control)", ErrControl)
	}
	if len(key) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("torctl: onion key is %d bytes, want %d", len(key), ed25519.PrivateKeySize)
	}
	if port < 1 || port > 65535 {
		return nil, fmt.Errorf("torctl: onion port %d outside [1, 65535]", port)
	}
	host := directory.OnionHost(key.Public().(ed25519.PublicKey))
	id := strings.TrimSuffix(host, ".onion")

	// Subscribe to descriptor events on a connection of its own, before
	// the service exists, so the upload cannot pass unseen; the kept
	// connection never runs an event loop (see the package doc).
	ev, err := t.dialControl(ctx)
	if err != nil {
		return nil, err
	}
	defer ev.Close()
	uploaded := make(chan error, 1)
	evCtx, evCancel := context.WithCancel(ctx)
	defer evCancel()
	var failures atomic.Int32
	go func() {
		_, err := ev.EventWait(evCtx, []control.EventCode{control.EventCodeHSDesc}, func(e control.Event) (bool, error) {
			hs, _ := e.(*control.HSDescEvent)
			if hs == nil || hs.Address != id {
				return false, nil
			}
			switch hs.Action {
			case "UPLOADED":
				return true, nil
			case "FAILED":
				failures.Add(1) // tor retries other directories itself
			}
			return false, nil
		})
		uploaded <- err
	}()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	var svc *tor.OnionService
	err = t.ctl(ctx, func(*control.Conn) error {
		var err error
		// A non-nil config always (bine panics on nil); Version3 so that
		// v0.2.0 does not ask for a v2 key; NoWait because bine's own wait
		// runs on the kept connection.
		svc, err = t.t.Listen(ctx, &tor.ListenConf{
			Key:           key,
			Version3:      true,
			LocalListener: ln,
			RemotePorts:   []int{port},
			NoWait:        true,
		})
		return err
	})
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("%w: adding the onion service: %v%s", ErrControl, err, t.readLog())
	}
	if svc.ID != id {
		svc.Close()
		return nil, fmt.Errorf("torctl: tor published %s.onion, expected %s", svc.ID, host)
	}
	o := &Onion{Listener: ln, Address: net.JoinHostPort(host, strconv.Itoa(port)), svc: svc, t: t}
	select {
	case err = <-uploaded:
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil {
		o.Close()
		return nil, fmt.Errorf("%w: %s (%d uploads failed): %v%s", ErrPublish, host, failures.Load(), err, t.readLog())
	}
	t.log.Info("onion service published", "address", o.Address)
	return o, nil
}

// Close removes the onion service and closes the local listener.
func (o *Onion) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := o.t.ctl(ctx, func(c *control.Conn) error {
		return c.DelOnion(o.svc.ID)
	})
	o.Listener.Close()
	if o.t.isClosed() {
		return nil // the service went with the control connection
	}
	return err
}

func (t *Tor) isClosed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.closed
}

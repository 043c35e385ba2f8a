package link

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"time"
)

// maxBatch is the most queued packets an Outbound writes at once.
const maxBatch = 16

// Outbound keeps a link to one node open and sends queued packets on it.
// Send never blocks; Run, on one goroutine owned by the caller, dials,
// handshakes, writes, sends padding when idle, and dials again after a
// failure or when a session reaches its frame limit. Links are one-way:
// the dialing end writes, the listening end reads.
type Outbound struct {
	cfg   Config
	kind  Kind
	addr  string
	peer  [32]byte
	opts  OutboundOptions
	queue chan []byte
}

// OutboundOptions tune an Outbound.
type OutboundOptions struct {
	// QueueLen bounds the packets waiting to be sent. Default 1024.
	QueueLen int
	// Padding, if nonzero, sends a padding frame whenever no frame has been
	// sent for this long, so an idle link looks like a busy one.
	Padding time.Duration
	// IdleClose closes a link without padding after this long without a
	// frame, before the listener's read timeout would. Default 1 min.
	IdleClose time.Duration
	// Dial opens the TCP connection. Default: net.Dialer.DialContext.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Logger for dial failures; nil discards.
	Logger *slog.Logger
}

// NewOutbound returns a sender to the node at addr whose link key is peer.
func NewOutbound(cfg Config, kind Kind, addr string, peer [32]byte, opts OutboundOptions) *Outbound {
	if opts.QueueLen <= 0 {
		opts.QueueLen = 1024
	}
	if opts.IdleClose <= 0 {
		opts.IdleClose = time.Minute
	}
	if opts.Dial == nil {
		var d net.Dialer
		opts.Dial = d.DialContext
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Outbound{cfg: cfg.withDefaults(), kind: kind, addr: addr, peer: peer, opts: opts, queue: make(chan []byte, opts.QueueLen)}
}

// Send queues pkt (which the Outbound now owns) or returns ErrQueueFull.
func (o *Outbound) Send(pkt []byte) error {
	select {
	case o.queue <- pkt:
		return nil
	default:
		o.cfg.Stats.Dropped.Add(1)
		return ErrQueueFull
	}
}

// Queued returns the number of packets waiting.
func (o *Outbound) Queued() int { return len(o.queue) }

// Run sends until ctx is done. Packets still queued then are dropped and
// counted.
func (o *Outbound) Run(ctx context.Context) error {
	defer func() {
		for {
			select {
			case <-o.queue:
				o.cfg.Stats.Dropped.Add(1)
			default:
				return
			}
		}
	}()
	var pending [][]byte // taken from the queue but not yet written
	backoff := 50 * time.Millisecond
	for {
		c, err := o.dial(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			o.opts.Logger.Warn("link dial failed", "addr", o.addr, "err", err, "retry_in", backoff)
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 10*time.Second)
			continue
		}
		backoff = 50 * time.Millisecond
		pending, err = o.write(ctx, c, pending)
		c.Close()
		if ctx.Err() != nil {
			o.cfg.Stats.Dropped.Add(uint64(len(pending)))
			return ctx.Err()
		}
		if errors.Is(err, ErrSessionExhausted) {
			o.cfg.Stats.Sessions.Add(1)
		} else if err != nil {
			o.opts.Logger.Debug("link closed", "addr", o.addr, "err", err)
		}
	}
}

func (o *Outbound) dial(ctx context.Context) (*Conn, error) {
	dctx, cancel := context.WithTimeout(ctx, o.cfg.HandshakeTimeout)
	defer cancel()
	nc, err := o.opts.Dial(dctx, "tcp", o.addr)
	if err != nil {
		return nil, err
	}
	c, err := Client(dctx, nc, o.cfg, o.kind, o.peer)
	if err != nil {
		o.cfg.Stats.HandshakesFailed.Add(1)
		return nil, err
	}
	o.cfg.Stats.HandshakesOK.Add(1)
	return c, nil
}

// write sends pending and then queued packets on c until an error, an idle
// close, or ctx. It returns the packets it took but could not write, which
// the next session sends first.
//
// The listening end never writes after the handshake, so a read on c can
// only end in EOF or an error: a watcher goroutine waits for that and ends
// the session at once, rather than letting the next packet go into a
// connection the other end has already closed. A packet written in the
// moment before the close is noticed can still be lost; end-to-end
// acknowledgements recover it.
func (o *Outbound) write(ctx context.Context, c *Conn, pending [][]byte) ([][]byte, error) {
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	gone := make(chan struct{})
	watcher := make(chan struct{})
	go func() {
		defer close(watcher)
		var b [1]byte
		c.nc.Read(b[:])
		close(gone)
	}()
	defer func() {
		c.Close()
		<-watcher
	}()
	idle := o.opts.IdleClose
	if o.opts.Padding > 0 {
		idle = o.opts.Padding
	}
	timer := time.NewTimer(idle)
	defer timer.Stop()
	for {
		if len(pending) > 0 {
			// Take whatever else is queued and write it in one go.
		more:
			for len(pending) < maxBatch {
				select {
				case p := <-o.queue:
					pending = append(pending, p)
				default:
					break more
				}
			}
			n, err := c.WritePackets(pending)
			pending = pending[n:]
			if err != nil {
				return pending, err
			}
			timer.Reset(idle)
		}
		select {
		case <-ctx.Done():
			return pending, ctx.Err()
		case <-gone:
			return pending, net.ErrClosed
		case p := <-o.queue:
			pending = append(pending[:0], p)
		case <-timer.C:
			if o.opts.Padding <= 0 {
				return pending, nil // idle: close before the listener times out
			}
			if err := c.WritePadding(); err != nil {
				return pending, err
			}
			timer.Reset(idle)
		}
	}
}

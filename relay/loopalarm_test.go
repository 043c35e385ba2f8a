package relay_test

import (
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sealnet/sealnet/mixnet/directory"

	"github.com/sealnet/sealnet/internal/config"
	"github.com/sealnet/sealnet/internal/testbed/testnet"
	"github.com/sealnet/sealnet/relay"
)

const (
	lossAlarm  = `sealnet_relay_loop_alarm{kind="loss"}`
	delayAlarm = `sealnet_relay_loop_alarm{kind="delay"}`
)

// TestLoopAlarmWhenARelayStops: relays on loopback (two layers of two
// mixes, one provider; real TCP and Noise links) send loops at 20 a second
// with a 2 s loop timeout. Undisturbed, every node's loss and delay alarms
// stay at 0 while each one's loss window fills with 100 loops (the
// control). Then mix-2a stops: half the loops of mix-1a, mix-1b and the
// provider cross it and are lost, and their loss alarms turn on within
// 10 s; mix-2b, whose loops cross only layer 1, stays at 0, and no delay
// alarm starts. When mix-2a comes back the alarms clear.
// fastLoops: 20 loops a second per relay, 5 ms per hop.
func fastLoops() directory.Parameters {
	p := directory.DefaultParameters()
	p.RelayLoopRate, p.MeanDelay = 20, 5*time.Millisecond
	return p
}

func TestLoopAlarmWhenARelayStops(t *testing.T) {
	const timeout = 2 * time.Second
	n := startNetwork(t, testnet.Spec{EpochPeriod: time.Hour, Layers: 2, Width: 2, Providers: 1, Parameters: fastLoops()},
		func(_ string, cfg *relay.Config) { cfg.Cover.LoopTimeout = config.Duration(timeout) })
	names := []string{"mix-1a", "mix-1b", "mix-2a", "mix-2b", "provider-a"}
	node := n.p.Node
	alarmsOff := func(t *testing.T, names ...string) {
		t.Helper()
		for _, name := range names {
			for _, s := range []string{lossAlarm, delayAlarm} {
				if v := metric(t, node(name), s); v != 0 {
					t.Fatalf("%s: %s = %v", name, s, v)
				}
			}
		}
	}

	// Control: the undisturbed network, until every window is full.
	start := time.Now()
	waitFor(t, "full loss windows", 60*time.Second, func() bool {
		alarmsOff(t, names...)
		for _, name := range names {
			if metric(t, node(name), `sealnet_relay_loop_window{figure="sent"}`) < 100 {
				return false
			}
		}
		return true
	}, n.dump)
	for _, name := range names {
		nd := node(name)
		t.Logf("undisturbed after %v: %s lost %v of %v, %v of %v returns slow (slow is above %.3fs)", time.Since(start).Round(time.Millisecond), name,
			metric(t, nd, `sealnet_relay_loop_window{figure="lost"}`), metric(t, nd, `sealnet_relay_loop_window{figure="sent"}`),
			metric(t, nd, `sealnet_relay_loop_window{figure="slow"}`), metric(t, nd, `sealnet_relay_loop_window{figure="returned"}`),
			metric(t, nd, "sealnet_relay_loop_slow_seconds"))
		if metric(t, nd, "sealnet_relay_loop_slow_seconds") == 0 {
			t.Errorf("%s: the delay test is off", name)
		}
	}

	// mix-2a stops.
	if err := n.p.StopNode("mix-2a"); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	hit := []string{"mix-1a", "mix-1b", "provider-a"}
	waitFor(t, "loss alarms", 10*time.Second, func() bool {
		alarmsOff(t, "mix-2b")
		for _, name := range hit {
			if metric(t, node(name), lossAlarm) != 1 {
				return false
			}
		}
		return true
	}, n.dump)
	t.Logf("mix-2a stopped: loss alarms on at mix-1a, mix-1b and provider-a after %v", time.Since(stopped).Round(time.Millisecond))
	for _, name := range hit {
		if v := metric(t, node(name), delayAlarm); v != 0 {
			t.Errorf("%s: a delay alarm when loops are lost", name)
		}
		if v := metric(t, node(name), `sealnet_relay_loop_alarms_total{kind="loss"}`); v != 1 {
			t.Errorf("%s: %v loss alarms started, want 1", name, v)
		}
	}
	// mix-2b's loops do not cross mix-2a: it stays quiet while its loops
	// keep resolving.
	before := metric(t, node("mix-2b"), "sealnet_cover_loops_received_total")
	waitFor(t, "mix-2b's loops", 10*time.Second, func() bool {
		alarmsOff(t, "mix-2b")
		return metric(t, node("mix-2b"), "sealnet_cover_loops_received_total") >= before+40
	})

	// mix-2a comes back: the alarms clear.
	if err := n.p.StartNode("mix-2a"); err != nil {
		t.Fatal(err)
	}
	restarted := time.Now()
	waitFor(t, "alarms to clear", 60*time.Second, func() bool {
		for _, name := range hit {
			if metric(t, node(name), lossAlarm) != 0 {
				return false
			}
		}
		return true
	}, n.dump)
	t.Logf("mix-2a restarted: alarms clear after %v", time.Since(restarted).Round(time.Millisecond))
}

// TestLoopAlarmWhenARelayIsDelayed: the same network, where everything
// arriving at mix-2a is held back 1 s once the control phase is over
// (loops stay well inside their 2 s timeout). The loops of mix-1a, mix-1b
// and the provider that cross mix-2a come back later than the 95th
// percentile their relays expect (mean delay 5 ms per mix plus 250 ms per
// link), and their delay alarms turn on within 10 s; no loss alarm starts,
// and mix-2b, whose loops avoid mix-2a, stays at 0. Control: before the
// delay, every alarm is 0 with full windows.
func TestLoopAlarmWhenARelayIsDelayed(t *testing.T) {
	const timeout = 2500 * time.Millisecond
	var hold atomic.Int64 // the delay added at mix-2a, ns
	n := startNetworkListen(t, testnet.Spec{EpochPeriod: time.Hour, Layers: 2, Width: 2, Providers: 1, Parameters: fastLoops()},
		func(_ string, cfg *relay.Config) { cfg.Cover.LoopTimeout = config.Duration(timeout) }, nil,
		func(_ *network, name string, ln net.Listener) net.Listener {
			if name != "mix-2a" {
				return ln
			}
			return delayListener{ln, &hold}
		})
	names := []string{"mix-1a", "mix-1b", "mix-2a", "mix-2b", "provider-a"}
	node := n.p.Node
	alarmsOff := func(t *testing.T, kinds []string, names ...string) {
		t.Helper()
		for _, name := range names {
			for _, s := range kinds {
				if v := metric(t, node(name), s); v != 0 {
					t.Fatalf("%s: %s = %v", name, s, v)
				}
			}
		}
	}
	both := []string{lossAlarm, delayAlarm}
	waitFor(t, "full windows", 60*time.Second, func() bool {
		alarmsOff(t, both, names...)
		for _, name := range names {
			if metric(t, node(name), `sealnet_relay_loop_window{figure="returned"}`) < 100 {
				return false
			}
		}
		return true
	}, n.dump)

	hold.Store(int64(time.Second))
	delayed := time.Now()
	hit := []string{"mix-1a", "mix-1b", "provider-a"}
	waitFor(t, "delay alarms", 10*time.Second, func() bool {
		alarmsOff(t, both, "mix-2b")
		alarmsOff(t, []string{lossAlarm}, hit...)
		for _, name := range hit {
			if metric(t, node(name), delayAlarm) != 1 {
				return false
			}
		}
		return true
	}, n.dump)
	t.Logf("1 s added at mix-2a: delay alarms on at mix-1a, mix-1b and provider-a after %v", time.Since(delayed).Round(time.Millisecond))
	for _, name := range hit {
		nd := node(name)
		t.Logf("%s: %v of %v returns slower than %.3fs", name, metric(t, nd, `sealnet_relay_loop_window{figure="slow"}`),
			metric(t, nd, `sealnet_relay_loop_window{figure="returned"}`), metric(t, nd, "sealnet_relay_loop_slow_seconds"))
	}
}

// delayListener holds back everything its connections receive by the
// current value of d (ns), without slowing their throughput: a link
// observer's delay.
type delayListener struct {
	net.Listener
	d *atomic.Int64
}

func (l delayListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	dc := &delayConn{Conn: c, d: l.d, ch: make(chan chunk, 4096), done: make(chan struct{})}
	go dc.pump() // ends when the connection fails or is closed
	return dc, nil
}

type chunk struct {
	b   []byte
	at  time.Time
	err error
}

type delayConn struct {
	net.Conn
	d     *atomic.Int64
	ch    chan chunk
	done  chan struct{}
	close sync.Once
	rest  []byte
	err   error
}

func (c *delayConn) pump() {
	for {
		buf := make([]byte, 16<<10)
		n, err := c.Conn.Read(buf)
		select {
		case c.ch <- chunk{buf[:n], time.Now(), err}:
		case <-c.done:
			return
		}
		if err != nil {
			return
		}
	}
}

func (c *delayConn) Read(p []byte) (int, error) {
	if len(c.rest) == 0 {
		if c.err != nil {
			return 0, c.err
		}
		var ch chunk
		select {
		case ch = <-c.ch:
		case <-c.done:
			return 0, net.ErrClosed
		}
		if wait := time.Until(ch.at.Add(time.Duration(c.d.Load()))); wait > 0 {
			select {
			case <-time.After(wait):
			case <-c.done:
				return 0, net.ErrClosed
			}
		}
		c.rest, c.err = ch.b, ch.err
	}
	n := copy(p, c.rest)
	c.rest = c.rest[n:]
	if n == 0 && c.err != nil {
		return 0, c.err
	}
	return n, nil
}

func (c *delayConn) Close() error {
	c.close.Do(func() { close(c.done) })
	return c.Conn.Close()
}

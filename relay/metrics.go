package relay

import (
	"github.com/sealnet/sealnet/internal/loopwatch"
	"github.com/sealnet/sealnet/internal/metrics"
)

// nodeMetrics are the relay's Prometheus metrics. All are aggregates: no
// label names a peer, a user or a packet.
type nodeMetrics struct {
	reg                *metrics.Registry
	in, out            *metrics.Counter
	replayed           *metrics.Counter
	delivered          *metrics.Counter
	surbReplies        *metrics.Counter
	unwrapTime         *metrics.Histogram
	loopsSent          *metrics.Counter
	loopRTT            *metrics.Histogram
	loopAlarm          map[loopwatch.Alarm]*metrics.Gauge   // 0/1 by kind; fixed after newNodeMetrics
	loopAlarms         map[loopwatch.Alarm]*metrics.Counter // alarm starts by kind
	dropsSent          *metrics.Counter
	coverDropsReceived *metrics.Counter
	docStale           *metrics.Gauge
	docEpoch           *metrics.Gauge
	drop               map[string]*metrics.Counter // fixed after newNodeMetrics
}

// dropReasons are registered up front so that every series exists from the
// first scrape.
var dropReasons = []string{
	"input_queue_full", "mix_full", "output_queue_full", "unknown_next_hop",
	"header_invalid", "replay", "replay_cache_full", "routing_invalid", "payload_invalid",
	"malformed", "no_key", "delay_out_of_bounds", "final_at_mix", "delivery_failed", "replay_journal_error", "release_queue_full", "shutdown",
}

func newNodeMetrics(n *Node) *nodeMetrics {
	r := n.reg
	m := &nodeMetrics{reg: r, drop: make(map[string]*metrics.Counter)}
	m.in = r.Counter("sealnet_packets_in_total", "Packets received on links.")
	m.out = r.Counter("sealnet_packets_out_total", "Packets handed to outgoing links.")
	m.replayed = r.Counter("sealnet_packets_replayed_total", "Packets refused as replays.")
	m.delivered = r.Counter("sealnet_packets_delivered_total", "Packets that ended at this provider and were delivered.")
	m.surbReplies = r.Counter("sealnet_surb_replies_total", "Delivered packets that were SURB replies.")
	m.unwrapTime = r.Histogram("sealnet_unwrap_seconds", "Time to unwrap one packet.", metrics.ExponentialBuckets(10e-6, 2, 12))
	for _, reason := range dropReasons {
		m.drop[reason] = r.Counter("sealnet_packets_dropped_total", "Packets dropped, by reason.", "reason", reason)
	}
	m.loopsSent = r.Counter("sealnet_cover_loops_sent_total", "Loop cover packets sent.")
	totals := func(f func(loopwatch.Totals) uint64) func() uint64 {
		return func() uint64 { return f(n.loops.Status().Totals) }
	}
	r.CounterFunc("sealnet_cover_loops_received_total", "Loop cover packets that came back before loop_timeout.",
		totals(func(t loopwatch.Totals) uint64 { return t.Returned }))
	r.CounterFunc("sealnet_cover_loops_lost_total", "Loop cover packets that did not come back within loop_timeout.",
		totals(func(t loopwatch.Totals) uint64 { return t.Lost }))
	r.CounterFunc("sealnet_cover_loops_late_total", "Loop cover packets that came back after loop_timeout (counted lost).",
		totals(func(t loopwatch.Totals) uint64 { return t.Late }))
	r.CounterFunc("sealnet_cover_loops_untracked_total", "Loop cover packets sent while the most loops the alarm tracks were in flight.",
		totals(func(t loopwatch.Totals) uint64 { return t.Untracked }))
	m.loopRTT = r.Histogram("sealnet_cover_loop_seconds", "Round-trip time of loop cover packets.", metrics.ExponentialBuckets(0.01, 2, 12))
	m.loopAlarm = make(map[loopwatch.Alarm]*metrics.Gauge)
	m.loopAlarms = make(map[loopwatch.Alarm]*metrics.Counter)
	for _, kind := range []loopwatch.Alarm{loopwatch.Loss, loopwatch.Delay} {
		k := kind.String()
		m.loopAlarm[kind] = r.Gauge("sealnet_relay_loop_alarm", "1 while the loop alarm of this kind is on: loops lost, or late, significantly more than expected.", "kind", k)
		m.loopAlarms[kind] = r.Counter("sealnet_relay_loop_alarms_total", "Loop alarms started, by kind.", "kind", k)
		r.GaugeFunc("sealnet_relay_loop_p_value", "p-value of the loop alarm's last test, by kind (1 before the first).", func() float64 {
			st := n.loops.Status()
			if kind == loopwatch.Loss {
				return st.Loss.PValue
			}
			return st.Delay.PValue
		}, "kind", k)
	}
	for _, w := range []struct {
		figure string
		f      func(loopwatch.Status) int
	}{
		{"sent", func(st loopwatch.Status) int { return st.Loss.Sent }},
		{"lost", func(st loopwatch.Status) int { return st.Loss.Lost() }},
		{"returned", func(st loopwatch.Status) int { return st.Delay.Returned }},
		{"slow", func(st loopwatch.Status) int { return st.Delay.Slow }},
	} {
		r.GaugeFunc("sealnet_relay_loop_window", "The loop alarm's windows: loops past their deadline (sent) and of them lost; loops back in time (returned) and of them slow.",
			func() float64 { return float64(w.f(n.loops.Status())) }, "figure", w.figure)
	}
	r.GaugeFunc("sealnet_relay_loop_slow_seconds", "The round trip the delay test expects only 5% of loops to exceed (0: delay test off).", func() float64 {
		return n.loops.Config().SlowRTT.Seconds()
	})
	m.dropsSent = r.Counter("sealnet_cover_drops_sent_total", "Drop cover packets sent.")
	m.coverDropsReceived = r.Counter("sealnet_cover_drops_received_total", "Drop cover packets discarded here.")
	m.docStale = r.Gauge("sealnet_directory_stale", "1 while no document for the current epoch is held and an older one is in use.")
	m.docEpoch = r.Gauge("sealnet_directory_epoch", "Epoch of the newest document held.")
	r.GaugeFunc("sealnet_epoch", "Current epoch.", func() float64 { return float64(n.epoch()) })
	r.GaugeFunc("sealnet_input_queue_depth", "Packets waiting to be unwrapped.", func() float64 { return float64(len(n.input)) })
	r.GaugeFunc("sealnet_mix_queue_depth", "Packets held for mixing.", func() float64 { return float64(n.mixer.Len()) })
	r.GaugeFunc("sealnet_release_queue_depth", "Packets released by the mixer, waiting for their replay tags to reach disk.", func() float64 { return float64(n.release.len()) })
	r.GaugeFunc("sealnet_output_queue_depth", "Packets waiting on outgoing links.", func() float64 { return float64(n.peers.queued()) })
	r.GaugeFunc("sealnet_replay_tags", "Replay tags held, all epochs.", func() float64 { return float64(n.keys.replayTags()) })
	r.GaugeFunc("sealnet_replay_capacity", "Replay tags one key epoch holds before the relay refuses its packets (limits.replay_capacity).", func() float64 { return float64(n.cfg.Limits.ReplayCapacity) })
	l := n.links
	r.CounterFunc("sealnet_link_frames_in_total", "Packet frames received.", l.FramesIn.Load)
	r.CounterFunc("sealnet_link_frames_out_total", "Packet frames sent.", l.FramesOut.Load)
	r.CounterFunc("sealnet_link_padding_in_total", "Padding frames received.", l.PaddingIn.Load)
	r.CounterFunc("sealnet_link_padding_out_total", "Padding frames sent.", l.PaddingOut.Load)
	r.CounterFunc("sealnet_link_handshakes_total", "Link handshakes completed.", l.HandshakesOK.Load)
	r.CounterFunc("sealnet_link_handshakes_failed_total", "Link handshakes failed or refused.", l.HandshakesFailed.Load)
	r.CounterFunc("sealnet_link_refused_total", "Incoming connections refused by a connection cap.", l.ConnsRefused.Load)
	r.CounterFunc("sealnet_link_dropped_total", "Packets dropped by outgoing links (queue full or shutdown).", l.Dropped.Load)
	return m
}

func (m *nodeMetrics) dropped(reason string) *metrics.Counter {
	c := m.drop[reason]
	if c == nil {
		panic("relay: unregistered drop reason " + reason) // programming error
	}
	return c
}

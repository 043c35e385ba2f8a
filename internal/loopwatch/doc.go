// Package loopwatch notices active attacks on a node's links from the
// cover packets it sends to itself.
//
// # The property
//
// An active adversary can block or delay a client's or a relay's links
// and watch what stops arriving downstream (an n−1 or blocking attack).
// Loopix's answer is loops: a node sends cover packets that come back to
// it, and if too many do not come back, or come back too late, it knows
// (Piotrowska et al., "The Loopix Anonymity System", USENIX Security
// 2017, §4.3). This package is the "knows": a Watcher remembers the loops
// in flight and, at every Check, decides with a one-sided statistical
// test whether
//
//   - loss is significantly above the baseline loss rate expected with no
//     attack (Loss), or
//   - round-trip delay is significantly above what the network's
//     published delays imply (Delay),
//
// and reports a typed Status with the figures: how many were sent, how
// many came back, how many were expected to, and the p-value.
//
// It does not tell an attack from a failure: a stopped relay, a broken
// link or an overloaded machine raise the same alarm, and deserve the same
// look. It cannot see an attack below its detection floor: a loss a few
// points above the baseline, or a delay within the allowance the caller
// adds for link latency (see ExpectedRTT). And it relies on what Loopix
// relies on: that the adversary cannot tell loops from other traffic, so
// that dropping or delaying the node's real packets drops or delays its
// loops at the same rate.
//
// # The test
//
// Loss. Each loop counts once its deadline (Config.Timeout after it was
// sent) has passed: lost if it was not back by then. The window is the
// last Config.Window such loops, in the order they were sent; with L of
// its n lost, the p-value is P(X ≥ L) for X ~ Binomial(n, BaselineLoss),
// the exact one-sided binomial test (e.g. Conover, Practical
// Nonparametric Statistics, 3rd ed., §3.1). An alarm starts when the
// p-value falls below Config.Alpha, with at least Config.MinSamples loops
// in the window, and clears when it rises above Config.ClearAlpha.
//
// Delay. The caller gives SlowRTT, a round trip that only a SlowShare of
// loops (default 5 %) should exceed when nobody interferes: the
// (1 − SlowShare) quantile of the expected round-trip distribution, which
// ExpectedRTT computes for loops through Poisson mixes. The window is the
// last Config.Window loops that came back; with S of its n slower than
// SlowRTT, the p-value is P(X ≥ S) for X ~ Binomial(n, SlowShare). The
// same thresholds apply. A loop that comes back after its deadline counts
// as lost, not slow: a delay longer than Timeout is seen as loss.
//
// At the defaults (a window of 100, a baseline loss of 1 %, Alpha 10⁻⁷)
// the loss alarm needs 10 lost loops in the last 100 (P = 7.6·10⁻⁸ at
// 1 % loss), so when every loop is dropped it starts at the first Check
// after the deadline of the tenth dropped loop; with 30 % dropped, after
// about 30 loops. The delay alarm needs 21 slow returns in the last 100
// (P = 2.1·10⁻⁸).
//
// A sequential test (Page's CUSUM, Wald's SPRT) would notice a small
// sustained shift a little sooner; a windowed count was chosen because
// its figures are what a person can read ("12 of your last 100 cover
// packets did not come back"), and because its false-alarm rate has a
// simple bound.
//
// # The false-alarm rate
//
// A test runs at a Check only if a loop was resolved since the last one
// (for that kind), and an alarm can start only at a test whose p-value is
// below Alpha. When loops are lost or slow independently at no more than
// the baseline rates, each test has a probability at most Alpha of that,
// so by the union bound (Boole's inequality), however the windows
// overlap, the expected number of false alarms per day is at most
//
//	2 × Alpha × (tests per day),  tests per day ≤ min(checks, loops) per day
//
// A relay at its defaults (0.2 loops/s, a Check every 5 s) runs at most
// 17,280 tests of each kind a day: at most 0.0035 false alarms a day, one
// in 290 days. A client checking every 5 s has the same bound whatever its
// packet rate. The windows overlap heavily, so the real rate is far lower:
// TestFalseAlarmRate measures it (docs/relay.md has the figures). The
// bound holds only if BaselineLoss is at least the real loss of an
// undisturbed network; set it from measurement.
//
// # Memory
//
// A Watcher tracks at most Config.MaxPending loops in flight (about 70
// bytes each, allocated once by New); a loop sent while that many are
// pending is not tracked (Totals.Untracked) and changes nothing. A loop
// past its deadline is resolved and forgotten at the next Check. Sent,
// Returned and Check do not allocate in steady state.
//
// # Use in a relay
//
// Package relay sends loops through the other layers and back to itself
// (relay/cover.go), calls Sent with each loop's random ID, Returned when
// it arrives, Check every few seconds, and turns the Status into metrics
// and log lines (docs/relay.md, "Loop alarm").
//
// # Use in a client
//
// Every client packet, real or cover, carries a SURB, and its reply comes
// back to the client's mailbox. A client uses its cover replies as loops:
//
//   - Sent(surbID, now) when a cover packet with a SURB leaves (the SURB's
//     ID is the loop's ID; mixnet.SURBID is a [16]byte);
//   - Returned(surbID, now) when the client fetches the reply from its
//     mailbox: the fetch is part of the round trip;
//   - Check(now) every few seconds (5 s keeps the bound above), and on
//     an alarm an event for the user: Event{Kind: EventWarning, Text:
//     status.Text()}; on a clear, the Text of the clearing status.
//
// Its expectation: the forward path crosses the mixes with the delays the
// client drew (mean MeanDelay each; the provider hop's is discarded), the
// reply crosses the mixes of its SURB, and then waits in the mailbox
// until the next fetch. So
//
//	SlowRTT = ExpectedRTT(mixHopsOut+mixHopsBack, MeanDelay,
//	                      fetchInterval + providerHold + links×linkLatency,
//	                      1-DefaultSlowShare)
//
// where fetchInterval is the longest a reply can wait before a fetch
// picks it up (near zero with a long poll that is always open),
// providerHold the recipient provider's commit before it answers, and
// Timeout at least the client's acknowledgement timeout.
package loopwatch

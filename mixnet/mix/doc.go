// Package mix holds the mixing strategies: the rules by which a relay holds
// packets for a while and lets them go in an order and at times an observer
// cannot link to their arrival.
//
// # The property
//
// The order and the times at which a strategy releases its items depend
// only on its documented rule, on the times the caller hands in (the now of
// each Add and Release, and an item's Arrived), on the delay the sender
// asked for (Poisson only), on the order of the Adds, and on the random
// source; never on the items themselves. Item.Value is held and returned
// and never inspected, so two packets that arrive at the same times are
// interchangeable to the strategy, and which of them leaves first is
// decided by rng alone. The tests check each rule to the nanosecond and
// each random choice for uniformity (chi-square at p = 0.001).
//
// The random choices are only as secret as rng: relays pass a *rand.Rand
// over a ChaCha8 seeded from crypto/rand, used by nothing else; an
// adversary who knows the seed can undo every shuffle. Simulations pass a
// fixed seed, and the same seed and the same inputs give the same outputs.
//
// # The strategies
//
// Poisson is the continuous-time mix of Loopix (Piotrowska et al., USENIX
// Security 2017): every item leaves on its own at Arrived + min(Delay,
// MaxDelay), Delay being what the sender chose for this hop. When senders
// draw their delays from one exponential distribution, the delay is
// memoryless: whatever the observer saw, every item still held is equally
// likely to be the next to leave. By Little's law a relay with arrival rate
// λ and mean delay μ holds about λμ items, so the anonymity of an output
// grows with rate × delay (log2 λμ bits when the held items are from
// different senders); cover traffic keeps λ up when real traffic is low.
// The relay cannot check the sender's distribution, only cap it: MaxDelay
// bounds how long a sender can make a relay hold a packet, and should be
// many times the mean (at 10 means, one item in 22,000 is capped; a capped
// item leaves at a time an observer can predict). Equal due times leave in
// arrival order.
//
// Threshold is Chaum's batch mix (1981): when N items are held they all
// leave at once, in an order drawn uniformly from the N! orders. An
// observer who sees the batch go learns nothing about which output is
// which input, so a batch of b items gives log2 b bits when every input
// came from a different sender, and fewer when one sender (or the
// adversary, in the n−1 attack that fills b−1 places with its own packets)
// contributed several. Latency is unbounded when traffic is low.
//
// TimedPool is the timed pool mix (Serjantov and Danezis, PET 2002; Díaz
// and Serjantov, "Generalising Mixes", PET 2003): at every tick, Start +
// k·Interval, all but Keep of the held items leave in a uniformly random
// order, and the Keep that stay are a uniformly random choice among those
// held. Output happens only on ticks, so output times reveal nothing but
// the tick; an item can stay for several rounds (geometrically many), so
// an output may be any item that entered since long before, and flooding
// the pool to isolate one packet takes several rounds and is visible. The
// price is latency: at least until the next tick, and unbounded in
// principle.
//
// # State machines
//
// A Strategy never reads the clock and never starts a goroutine: the
// caller passes the time to every Add and Release and asks Next when to
// call Release again. The traffic simulator drives the same code with a
// virtual clock; Mixer drives it in a relay with a Clock (the System clock, or a
// manual one in tests) from the one goroutine that calls Run.
//
// A strategy holds at most Capacity items and refuses more with ErrFull;
// the relay drops such a packet and counts it. Memory grows with what is
// held, never beyond Capacity items, and Poisson does not allocate per
// Add once its heap has grown to the steady-state size.
//
// Drain removes everything at shutdown. Drained items have not been mixed:
// Poisson returns them in due order, the batch strategies in the order they
// hold them (arrival order for Threshold), so a relay must not forward them
// as if they had been.
package mix

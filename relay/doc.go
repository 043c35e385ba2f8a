// Package relay is the mix node daemon (`sealnet relay`): it accepts
// packets on authenticated links, removes one layer with the packet code
// of package mixnet, refuses replays, holds each packet for its mixing
// delay among other packets, and forwards it on.
//
// The property it owns: an observer of a relay's links, or a colluding set
// of other relays, cannot match the packets leaving it to the packets that
// entered it better than the mixing strategy allows, and the relay keeps no
// record that would let anyone do so later: no per-packet logs, bounded
// queues, and keys that rotate every epoch.
//
// A Node is the whole daemon: New checks the configuration and opens the
// keys and replay journals, Run owns every goroutine (the input side —
// directory, epoch and cover loops, link and onion listeners, metrics —
// the worker pool that peels packets, the Mixer, and the releaser that
// writes to the next hop) and stops them in order, so a packet accepted
// is forwarded or counted as dropped. A provider runs a Node whose final
// hop hands packets to a Deliverer (package mailbox). docs/relay.md is
// the operator's guide; docs/architecture.md shows where it sits.
package relay

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
// The daemon arrives with the relay issue; today the package holds only
// this statement of its job.
package relay

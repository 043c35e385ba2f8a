// Package sim is the traffic-analysis simulator (`sealnet sim`): a
// deterministic discrete-event model of the network that drives the same
// mixing code the relays run, and measures what an adversary can still
// learn about who talks to whom.
//
// The property it owns: its figures are honest. Runs are reproducible from
// a seed, the adversary uses everything its model allows (including the
// exact delay distribution), and results are checked against closed forms
// where they exist.
//
// Run simulates one scenario (Config, read from TOML by ParseConfig) and
// returns its Result; docs/sim.md defines the model, the adversary and
// every figure.
package sim

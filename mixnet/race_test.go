//go:build race

package mixnet

// raceEnabled: the race detector changes allocation counts.
const raceEnabled = true

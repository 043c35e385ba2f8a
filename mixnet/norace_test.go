//go:build !race

package mixnet

const raceEnabled = false

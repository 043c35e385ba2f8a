//go:build race

package hmac256

// raceEnabled: sync.Pool drops items at random under the race detector.
const raceEnabled = true

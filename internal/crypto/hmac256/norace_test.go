//go:build !race

package hmac256

const raceEnabled = false

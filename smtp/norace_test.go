//go:build !race

package smtp

// raceEnabled is true under the race detector.
const raceEnabled = false

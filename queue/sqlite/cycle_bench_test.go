package sqlite

import (
	"path/filepath"
	"testing"

	"github.com/outbox-mail/outbox/queue/queuetest"
)

// BenchmarkCycle measures what one message costs the store end to end
// (see queuetest.BenchCycle): "claim" is three write transactions and a
// body read per message, "leased" the one-write path.
func BenchmarkCycle(b *testing.B) {
	for _, leased := range []bool{false, true} {
		name := map[bool]string{false: "claim", true: "leased"}[leased]
		b.Run(name, func(b *testing.B) {
			s, err := Open(filepath.Join(b.TempDir(), "bench.db"), Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			queuetest.BenchCycle(b, s, leased)
		})
	}
}

package sqlite

import (
	"path/filepath"
	"testing"

	"github.com/outbox-mail/outbox/queue"
	"github.com/outbox-mail/outbox/queue/queuetest"
)

// BenchmarkCycle measures what one message costs the store end to end
// (see queuetest.BenchCycle): "claim" is three write transactions and a
// body read per message, "leased" the one-write path, and
// "leased-search-off" the same without the search index.
func BenchmarkCycle(b *testing.B) {
	for _, c := range []struct {
		name   string
		leased bool
		search queue.SearchMode
	}{
		{"claim", false, ""},
		{"leased", true, ""},
		{"leased-search-off", true, queue.SearchOff},
	} {
		b.Run(c.name, func(b *testing.B) {
			s, err := Open(filepath.Join(b.TempDir(), "bench.db"), Options{Queue: queue.Options{Search: c.search}})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			queuetest.BenchCycle(b, s, c.leased)
		})
	}
}

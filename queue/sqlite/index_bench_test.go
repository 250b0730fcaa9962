package sqlite

import (
	"path/filepath"
	"testing"

	"github.com/outbox-mail/outbox/queue/queuetest"
)

// waiting counts the messages waiting for the search index.
func waiting(b *testing.B, s *Store) func() int {
	return func() int {
		var n int
		if err := s.d.rdb.QueryRow(`SELECT count(*) FROM search_pending`).Scan(&n); err != nil {
			b.Fatal(err)
		}
		return n
	}
}

func benchStore(b *testing.B) *Store {
	s, err := Open(filepath.Join(b.TempDir(), "bench.db"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// BenchmarkEnqueueIndexed measures accepting 2 KiB MIME messages with the
// search indexing they cause (see queuetest.BenchEnqueueIndexed).
func BenchmarkEnqueueIndexed(b *testing.B) {
	s := benchStore(b)
	queuetest.BenchEnqueueIndexed(b, s, waiting(b, s))
}

// BenchmarkSearchable measures how soon an accepted message is found.
func BenchmarkSearchable(b *testing.B) { queuetest.BenchSearchable(b, benchStore(b)) }

// BenchmarkSearch measures searches among 100,000 messages.
func BenchmarkSearch(b *testing.B) {
	s := benchStore(b)
	queuetest.BenchSearch(b, s, 100_000, waiting(b, s))
}

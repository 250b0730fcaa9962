package postgres

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outbox-mail/outbox/queue"
	"github.com/outbox-mail/outbox/queue/queuetest"
)

// BenchmarkEnqueue measures durable enqueue throughput (each Enqueue
// returns after its commit) with 2 KiB bodies, from 1 and 16 concurrent
// producers, reporting msgs/s, latency percentiles and messages per commit.
func BenchmarkEnqueue(b *testing.B) {
	body := bytes.Repeat([]byte("0123456789abcdef"), 128) // 2 KiB
	// batch=1 turns group commit off (one transaction per message), for
	// comparison.
	for _, c := range []struct{ producers, batch int }{{1, 0}, {16, 0}, {16, 1}} {
		producers := c.producers
		name := fmt.Sprintf("producers=%d", producers)
		if c.batch > 0 {
			name += fmt.Sprintf("/batch=%d", c.batch)
		}
		b.Run(name, func(b *testing.B) {
			dsn, _ := freshSchema(b)
			s := openStore(b, dsn, Options{Queue: queue.Options{BatchMessages: c.batch}})
			ctx := context.Background()
			lat := make([]time.Duration, b.N)
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			start := time.Now()
			for range producers {
				wg.Go(func() {
					for {
						i := next.Add(1) - 1
						if i >= int64(b.N) {
							return
						}
						t0 := time.Now()
						_, err := s.Enqueue(ctx, queue.NewMessage{From: "a@x.test",
							Recipients: []string{"b@x.test"}, Subject: "bench", Body: bytes.NewReader(body)})
						lat[i] = time.Since(t0)
						if err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
			if c, n := s.CommitStats(); c > 0 {
				b.ReportMetric(float64(n)/float64(c), "msgs/commit")
			}
		})
	}
}

// BenchmarkCycle measures what one message costs this process end to end
// (see queuetest.BenchCycle); PostgreSQL's own CPU is not counted.
func BenchmarkCycle(b *testing.B) {
	for _, leased := range []bool{false, true} {
		name := map[bool]string{false: "claim", true: "leased"}[leased]
		b.Run(name, func(b *testing.B) {
			dsn, _ := freshSchema(b)
			queuetest.BenchCycle(b, openStore(b, dsn, Options{}), leased)
		})
	}
}

// waiting counts the messages waiting for the search index.
func waiting(b *testing.B, s *Store) func() int {
	return func() int {
		var n int
		if err := s.d.pool.QueryRow(context.Background(), `SELECT count(*) FROM outbox_search_pending`).Scan(&n); err != nil {
			b.Fatal(err)
		}
		return n
	}
}

// BenchmarkEnqueueIndexed measures accepting 2 KiB MIME messages with the
// search indexing they cause (see queuetest.BenchEnqueueIndexed); the
// server's own CPU is not counted.
func BenchmarkEnqueueIndexed(b *testing.B) {
	dsn, _ := freshSchema(b)
	s := openStore(b, dsn, Options{})
	queuetest.BenchEnqueueIndexed(b, s, waiting(b, s))
}

// BenchmarkSearchable measures how soon an accepted message is found.
func BenchmarkSearchable(b *testing.B) {
	dsn, _ := freshSchema(b)
	queuetest.BenchSearchable(b, openStore(b, dsn, Options{}))
}

// BenchmarkSearch measures searches among 100,000 messages, once the
// tables are analysed, as autovacuum keeps them: the plan for a search
// depends on the word statistics.
func BenchmarkSearch(b *testing.B) {
	dsn, _ := freshSchema(b)
	s := openStore(b, dsn, Options{})
	left := waiting(b, s)
	queuetest.BenchSearch(b, s, 100_000, func() int {
		n := left()
		if n == 0 {
			if _, err := s.d.pool.Exec(context.Background(), "ANALYZE"); err != nil {
				b.Fatal(err)
			}
		}
		return n
	})
}

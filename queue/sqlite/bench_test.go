package sqlite

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outbox-mail/outbox/queue"
)

// BenchmarkEnqueue measures durable enqueues (each acknowledged only after
// its fsync'd commit) of 2 KiB messages on the real disk, from 1 and 16
// concurrent producers, and reports throughput and latency percentiles.
func BenchmarkEnqueue(b *testing.B) {
	for _, producers := range []int{1, 16} {
		b.Run(fmt.Sprintf("producers=%d", producers), func(b *testing.B) {
			benchEnqueue(b, producers)
		})
	}
}

func benchEnqueue(b *testing.B, producers int) {
	s, err := Open(filepath.Join(b.TempDir(), "bench.db"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	body := bytes.Repeat([]byte("0123456789abcdef"), 128) // 2 KiB
	lat := make([][]time.Duration, producers)
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for p := range producers {
		wg.Go(func() {
			for next.Add(1) <= int64(b.N) {
				t0 := time.Now()
				_, err := s.Enqueue(context.Background(), queue.NewMessage{
					From: "bench@x.test", Recipients: []string{"to@x.test"},
					Subject: "bench", Body: bytes.NewReader(body),
				})
				if err != nil {
					b.Error(err)
					return
				}
				lat[p] = append(lat[p], time.Since(t0))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	all := slices.Concat(lat...)
	slices.Sort(all)
	if len(all) == 0 {
		return
	}
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(float64(all[len(all)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(all[len(all)*99/100].Microseconds()), "p99-µs")
	commits, msgs := s.CommitStats()
	b.ReportMetric(float64(msgs)/float64(max(commits, 1)), "msgs/commit")
}

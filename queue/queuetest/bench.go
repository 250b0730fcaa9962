package queuetest

import (
	"bytes"
	"context"
	"io"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/outbox-mail/outbox/queue"
)

// cpuTime is the process's user+system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// committer batches results as a delivery engine does: every result
// waiting when a commit starts shares it.
type committer struct {
	s       queue.LeaseHolder
	results chan cycleResult
	done    sync.WaitGroup
}

type cycleResult struct {
	r  queue.Result
	ok chan struct{}
}

func startCommitter(b *testing.B, s queue.LeaseHolder) *committer {
	c := &committer{s: s, results: make(chan cycleResult, 256)}
	c.done.Add(1)
	go func() {
		defer c.done.Done()
		for first := range c.results {
			batch := []cycleResult{first}
		drain:
			for len(batch) < 256 {
				select {
				case r, ok := <-c.results:
					if !ok {
						break drain
					}
					batch = append(batch, r)
				default:
					break drain
				}
			}
			rs := make([]queue.Result, len(batch))
			for i := range batch {
				rs[i] = batch[i].r
			}
			errs, err := c.s.Complete(context.Background(), "bench", rs)
			if err != nil {
				b.Error(err)
			}
			for i := range batch {
				if err == nil && errs[i] != nil {
					b.Error(errs[i])
				}
				close(batch[i].ok)
			}
		}
	}()
	return c
}

// complete hands m's result to the committer without waiting for it, as
// a delivery worker hands its result over and takes the next message.
func (c *committer) complete(m *queue.Claimed) {
	c.results <- cycleResult{ok: make(chan struct{}), r: queue.Result{MessageID: m.ID,
		Attempt:    queue.Attempt{Number: m.Attempts, Route: "bench", Transcript: "S: 250 ok\r\n"},
		Recipients: []queue.RecipientResult{{Address: m.Recipients[0].Address, Status: queue.RecipientDelivered, Code: 250}}}}
}

var cycleBody = bytes.Repeat([]byte("0123456789abcdef"), 128) // 2 KiB

func cycleMsg() queue.NewMessage {
	return queue.NewMessage{From: "bench@x.test", Recipients: []string{"to@x.test"},
		Subject: "bench", Body: bytes.NewReader(cycleBody)}
}

// BenchCycle measures what one message costs a store end to end with 16
// producers and a committer that batches results as a delivery engine
// does. leased false enqueues, claims, reads the body back and records the
// result; leased true writes the message leased in its group commit and
// records the result (one write per message, shared with others). It
// reports msgs/s and cpu-µs/msg, the process's user+system CPU time per
// message (a server's own CPU, for PostgreSQL, is not counted).
func BenchCycle(b *testing.B, s queue.Store, leased bool) {
	c := startCommitter(b, s)
	ctx := context.Background()
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	cpu0, start := cpuTime(), time.Now()
	for range 16 {
		wg.Go(func() {
			for next.Add(1) <= int64(b.N) {
				if leased {
					e, err := s.EnqueueLeased(ctx, cycleMsg(), "bench", time.Minute)
					if err != nil || e.Claimed == nil || len(e.Body) != len(cycleBody) {
						b.Errorf("EnqueueLeased: %v", err)
						return
					}
					c.complete(e.Claimed)
					continue
				}
				if _, err := s.Enqueue(ctx, cycleMsg()); err != nil {
					b.Error(err)
					return
				}
				got, err := s.Claim(ctx, "bench", 1, time.Minute)
				if err != nil {
					b.Error(err)
					return
				}
				for i := range got {
					rc, err := s.OpenBody(ctx, got[i].ID)
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, rc)
					rc.Close()
					c.complete(&got[i])
				}
			}
		})
	}
	wg.Wait()
	close(c.results)
	c.done.Wait()
	elapsed, cpu := time.Since(start), cpuTime()-cpu0
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/msg")
}

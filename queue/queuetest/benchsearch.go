package queuetest

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outbox-mail/outbox/queue"
)

// MIMEBody is a realistic 2 KiB message for the index benchmarks: a
// header with display names and a plain-text part of varied words.
func MIMEBody(n int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: Shop Support <support@shop.example>\r\nTo: Customer %d <customer%d@example.org>\r\n"+
		"Subject: Your order %d has shipped\r\nDate: Mon, 2 Dec 2024 10:00:00 +0000\r\n"+
		"Message-ID: <%d@shop.example>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n", n, n, n, n)
	words := strings.Fields("parcel delivery tracking number warehouse invoice customer account " +
		"address street city postal code refund return window business days support team thanks")
	for i := 0; b.Len() < 2048; i++ {
		b.WriteString(words[(i*7+n)%len(words)])
		if i%12 == 11 {
			b.WriteString(".\r\n")
		} else {
			b.WriteByte(' ')
		}
	}
	return b.Bytes()
}

// BenchEnqueueIndexed measures what accepting mail costs with its search
// indexing: 16 producers enqueue MIMEBody messages, as fast as they can
// ("max") and at 1,000 messages a second ("1000/s", the load of a busy
// application, well below what the store can take, where the latency
// shows whether indexing slows acceptance). cpu-µs/msg is the process's
// user+system CPU from the first enqueue until waiting reports that the
// indexer has caught up (0 left), so it holds the indexing done off the
// accept path too; index-lag-ms is how long that took after the last
// enqueue returned.
func BenchEnqueueIndexed(b *testing.B, s queue.Store, waiting func() int) {
	for _, c := range []struct {
		name string
		rate int
	}{{"max", 0}, {"1000/s", 1000}} {
		b.Run(c.name, func(b *testing.B) { benchEnqueueIndexed(b, s, waiting, c.rate) })
	}
}

func benchEnqueueIndexed(b *testing.B, s queue.Store, waiting func() int, rate int) {
	bodies := make([][]byte, 64)
	for i := range bodies {
		bodies[i] = MIMEBody(i)
	}
	ctx := context.Background()
	lat := make([]time.Duration, b.N)
	var next atomic.Int64
	var wg sync.WaitGroup
	var tick <-chan time.Time
	if rate > 0 {
		t := time.NewTicker(time.Second / time.Duration(rate))
		defer t.Stop()
		tick = t.C
	}
	b.ResetTimer()
	cpu0, start := cpuTime(), time.Now()
	for range 16 {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < int64(b.N); i = next.Add(1) - 1 {
				if tick != nil {
					<-tick
				}
				t0 := time.Now()
				_, err := s.Enqueue(ctx, queue.NewMessage{From: "bounces@shop.example", Recipients: []string{"customer@example.org"},
					Subject: "Your order has shipped", Body: bytes.NewReader(bodies[i%int64(len(bodies))])})
				lat[i] = time.Since(t0)
				if err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	accepted := time.Now()
	for deadline := accepted.Add(5 * time.Minute); waiting() > 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatalf("the indexer did not catch up: %d messages still waiting", waiting())
		}
	}
	indexed, cpu := time.Now(), cpuTime()-cpu0
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(b.N)/accepted.Sub(start).Seconds(), "msgs/s")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/msg")
	b.ReportMetric(float64(indexed.Sub(accepted).Microseconds())/1000, "index-lag-ms")
}

// BenchSearchable measures how soon an accepted message can be found: each
// iteration enqueues a message with a word of its own and searches for it
// until found, reporting the time from Enqueue's return. "alone" waits
// 100 ms between messages, as mail arrives on a quiet day; "back-to-back"
// sends the next as soon as the last is found, so the indexer gathers
// messages for a while before it writes.
func BenchSearchable(b *testing.B, s queue.Store) {
	for _, c := range []struct {
		name  string
		pause time.Duration
	}{{"alone", 100 * time.Millisecond}, {"back-to-back", 0}} {
		b.Run(c.name, func(b *testing.B) { benchSearchable(b, s, c.name, c.pause) })
	}
}

func benchSearchable(b *testing.B, s queue.Store, name string, pause time.Duration) {
	ctx := context.Background()
	var lag []time.Duration
	for i := 0; b.Loop(); i++ {
		time.Sleep(pause)
		word := fmt.Sprintf("needle%s%dx", name[:1], i)
		body := append(MIMEBody(i), []byte(word+"\r\n")...)
		if _, err := s.Enqueue(ctx, queue.NewMessage{From: "a@x.test", Recipients: []string{"b@x.test"},
			Subject: "searchable", Body: bytes.NewReader(body)}); err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		for deadline := t0.Add(time.Minute); ; {
			page, err := s.List(ctx, queue.Filter{Search: word, Limit: 1})
			if err != nil {
				b.Fatal(err)
			}
			if len(page.Messages) == 1 {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("%s not found after a minute", word)
			}
			time.Sleep(100 * time.Microsecond)
		}
		lag = append(lag, time.Since(t0))
	}
	slices.Sort(lag)
	b.ReportMetric(float64(lag[len(lag)/2].Microseconds())/1000, "searchable-p50-ms")
	b.ReportMetric(float64(lag[len(lag)*99/100].Microseconds())/1000, "searchable-p99-ms")
	b.ReportMetric(float64(lag[len(lag)*9/10].Microseconds())/1000, "searchable-p90-ms")
	b.ReportMetric(float64(lag[len(lag)-1].Microseconds())/1000, "searchable-max-ms")
}

// BenchSearch measures searches in a store of n MIMEBody messages, once
// waiting reports them all indexed: a word in every message (the first
// page of a match-everything search), a word in one message in a hundred,
// a word in none, and a display name.
func BenchSearch(b *testing.B, s queue.Store, n int, waiting func() int) {
	ctx := context.Background()
	var wg sync.WaitGroup
	var next atomic.Int64
	for range 16 {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < int64(n); i = next.Add(1) - 1 {
				body := MIMEBody(int(i))
				if i%100 == 0 {
					body = append(body, []byte("rarebird\r\n")...)
				}
				if _, err := s.Enqueue(ctx, queue.NewMessage{From: "a@x.test", Recipients: []string{"b@x.test"},
					Subject: "order", Body: bytes.NewReader(body)}); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	for waiting() > 0 {
		time.Sleep(10 * time.Millisecond)
	}
	for _, c := range []struct{ name, q string }{{"every", "parcel"}, {"one-in-100", "rarebird"},
		{"none", "zzyzx"}, {"display-name", "customer 4242"}, {"prefix", "ware"}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := s.List(ctx, queue.Filter{Search: c.q}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

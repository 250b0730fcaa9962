package delivery_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/outbox-mail/outbox/delivery"
	"github.com/outbox-mail/outbox/internal/smtpsink"
	"github.com/outbox-mail/outbox/queue"
	"github.com/outbox-mail/outbox/smtp"
)

// BenchmarkDeliverToSink measures end-to-end delivery: b.N queued messages
// claimed from SQLite, sent over pooled SMTP connections to a go-smtp sink
// on loopback, and their results committed.
func BenchmarkDeliverToSink(b *testing.B) {
	for _, workers := range []int{1, 8} {
		b.Run("workers="+strconv.Itoa(workers), func(b *testing.B) {
			sink := startSink(b, smtpsink.Options{})
			st := openStore(b)
			body := rawMessage(1, "r@x.test") + strings.Repeat(strings.Repeat("x", 76)+"\r\n", 26)
			for range b.N {
				if _, err := st.Enqueue(context.Background(), queue.NewMessage{From: "s@app.test",
					Recipients: []string{"r@x.test"}, Body: strings.NewReader(body)}); err != nil {
					b.Fatal(err)
				}
			}
			r, _ := smtp.ParseRelayURL("smtp://" + sink.Addr() + "?starttls=off")
			tr := delivery.NewSMTPRelay(r, nil, smtp.PoolOptions{MaxConns: workers, MaxMessages: 1000})
			defer tr.Close()
			b.ResetTimer()
			start := time.Now()
			d, err := delivery.New(delivery.Config{Store: st, Transport: tr, Workers: workers, PollInterval: -1})
			if err != nil {
				b.Fatal(err)
			}
			d.Start()
			counts := waitSettled(b, st, 5*time.Minute)
			if counts[queue.StatusDelivered] != int64(b.N) || len(sink.Received()) != b.N {
				b.Fatalf("delivered %v, sink has %d, want %d", counts, len(sink.Received()), b.N)
			}
			elapsed := time.Since(start)
			b.StopTimer()
			d.Shutdown(context.Background())
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
		})
	}
}

package delivery_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/outbox-mail/outbox/delivery"
	"github.com/outbox-mail/outbox/internal/smtpsink"
	"github.com/outbox-mail/outbox/queue"
	"github.com/outbox-mail/outbox/smtp"
)

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(syscall.TimevalToNsec(ru.Utime) + syscall.TimevalToNsec(ru.Stime))
}

// benchBody is a 2 KiB message.
var benchBody = rawMessage(1, "r@x.test") + strings.Repeat(strings.Repeat("x", 76)+"\r\n", 26)

// runToSettled starts d, waits until b.N messages are delivered and
// reports msgs/s and the CPU time per message of the whole process: the
// engine, SQLite and the in-process SMTP servers together.
func runToSettled(b *testing.B, st queue.Store, cfg delivery.Config, received func() int) {
	b.Helper()
	b.ResetTimer()
	cpu0, start := cpuTime(), time.Now()
	d, err := delivery.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	d.Start()
	counts := waitSettled(b, st, 10*time.Minute)
	elapsed, cpu := time.Since(start), cpuTime()-cpu0
	b.StopTimer()
	reportRetries(b, st)
	if counts[queue.StatusDelivered] != int64(b.N) || received() != b.N {
		b.Fatalf("delivered %v, servers have %d, want %d", counts, received(), b.N)
	}
	d.Shutdown(context.Background())
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/msg")
}

// reportRetries counts the messages that took more than one attempt (a
// loaded machine's timeouts): their figures mean the retry schedule, not
// the engine.
func reportRetries(b *testing.B, st queue.Store) {
	page, err := st.List(context.Background(), queue.Filter{Limit: 1000})
	retried := 0
	for err == nil {
		for _, m := range page.Messages {
			if m.Attempts > 1 {
				if retried == 0 {
					atts, _ := st.Attempts(context.Background(), m.ID)
					b.Logf("retried: %s: %+v", m.ID, atts[0].Error)
				}
				retried++
			}
		}
		if page.Next == "" {
			break
		}
		page, err = st.List(context.Background(), queue.Filter{Limit: 1000, Cursor: page.Next})
	}
	b.ReportMetric(float64(retried), "retried")
}

// BenchmarkDeliverToSink measures end-to-end delivery: b.N queued messages
// claimed from SQLite, sent over pooled SMTP connections to a go-smtp sink
// on loopback, and their results committed. workers is the connection cap
// (MaxConnections, and the relay's own limit).
func BenchmarkDeliverToSink(b *testing.B) {
	for _, workers := range []int{1, 8} {
		b.Run("workers="+strconv.Itoa(workers), func(b *testing.B) {
			sink := startSink(b, smtpsink.Options{})
			st := openStore(b)
			for range b.N {
				if _, err := st.Enqueue(context.Background(), queue.NewMessage{From: "s@app.test",
					Recipients: []string{"r@x.test"}, Body: strings.NewReader(benchBody)}); err != nil {
					b.Fatal(err)
				}
			}
			r, _ := smtp.ParseRelayURL("smtp://" + sink.Addr() + "?starttls=off")
			tr := delivery.NewSMTPRelay(r, nil, smtp.PoolOptions{MaxConns: workers, MaxMessages: 1000})
			defer tr.Close()
			runToSettled(b, st, delivery.Config{Store: st, Transport: tr, MaxConnections: workers,
				DestinationConnections: workers, PollInterval: -1, Logger: quietLog},
				func() int { return len(sink.Received()) })
		})
	}
}

// BenchmarkDeliverToDestinations spreads b.N messages over 1,000 recipient
// domains, each its own MX destination (resolved through the in-process
// DNS server) with a concurrency of 2, served by four go-smtp hosts on
// 127.0.0.2-5; the engine's global cap is the default 100.
func BenchmarkDeliverToDestinations(b *testing.B) {
	const domains = 1000
	port, hosts := startHosts(b, &hostOpts{}, &hostOpts{}, &hostOpts{}, &hostOpts{})
	w := newWorld(b, port)
	for i, h := range hosts {
		w.host(fmt.Sprintf("h%d.test", i), h)
	}
	for i := range domains {
		// A host name per domain: 1,000 destinations, not four.
		name := fmt.Sprintf("mx.d%d.test", i)
		w.mx(fmt.Sprintf("d%d.test", i), 10, name)
		ip := strings.Split(hosts[i%len(hosts)].addr, ":")[0]
		w.dns.SetAddrs(name, ip)
	}
	st := openStore(b)
	for i := range b.N {
		to := fmt.Sprintf("r%d@d%d.test", i, i%domains)
		if _, err := st.Enqueue(context.Background(), queue.NewMessage{From: "s@app.test",
			Recipients: []string{to}, Body: strings.NewReader(benchBody)}); err != nil {
			b.Fatal(err)
		}
	}
	received := func() int {
		n := 0
		for _, h := range hosts {
			n += len(h.Received())
		}
		return n
	}
	runToSettled(b, st, delivery.Config{Store: st, Routing: w.routing(b), DestinationConnections: 2,
		PollInterval: -1, Logger: quietLog}, received)
}

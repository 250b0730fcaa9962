package submission

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/textproto"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outbox-mail/outbox/queue"
	"github.com/outbox-mail/outbox/queue/sqlite"
)

const benchConns = 16

// BenchmarkSubmission measures durable acceptances over SMTP: 16 clients,
// each sending small messages one after another over one session into a
// real SQLite store. With BDAT a message is one flight (MAIL, RCPT and
// BDAT LAST written together); with DATA the body follows the 354.
func BenchmarkSubmission(b *testing.B) {
	for _, mode := range []string{"BDAT", "DATA"} {
		b.Run(mode, func(b *testing.B) { benchSubmission(b, mode == "BDAT") })
	}
}

func benchSubmission(b *testing.B, bdat bool) {
	st, err := sqlite.Open(filepath.Join(b.TempDir(), "outbox.db"), sqlite.Options{Queue: queue.Options{Logger: slog.New(slog.DiscardHandler)}})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	srv, err := New(Config{
		Enqueuer: EnqueueFunc(st.Enqueue), AllowNoAuthOnLoopback: true,
		Hostname: "bench.test", Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		b.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go srv.Serve(l)
	defer srv.Close()

	var next atomic.Int64
	lat := make([][]time.Duration, benchConns)
	var wg sync.WaitGroup
	errs := make(chan error, benchConns)
	b.ResetTimer()
	start := time.Now()
	for i := range benchConns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := benchClient(l.Addr().String(), bdat, int64(b.N), &next, &lat[i]); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	reportLatency(b, lat, elapsed)
	counts, err := st.Counts(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	if total := counts["queued"]; total != int64(b.N) {
		b.Fatalf("%d messages queued, want %d", total, b.N)
	}
}

func reportLatency(b *testing.B, lat [][]time.Duration, elapsed time.Duration) {
	all := slices.Concat(lat...)
	slices.Sort(all)
	if len(all) == 0 {
		return
	}
	pct := func(p float64) float64 {
		return float64(all[int(p*float64(len(all)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(0, "ns/op") // per-op time is meaningless across 16 clients
}

// benchClient sends messages until next reaches n, recording each one's
// time from its first byte written to its final reply.
func benchClient(addr string, bdat bool, n int64, next *atomic.Int64, lat *[]time.Duration) error {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Minute))
	w := bufio.NewWriter(conn)
	r := textproto.NewReader(bufio.NewReader(conn))
	if err := benchExpect(r, 220); err != nil {
		return err
	}
	fmt.Fprintf(w, "EHLO bench.client\r\n")
	w.Flush()
	if err := benchExpect(r, 250); err != nil {
		return err
	}
	for k := next.Add(1); k <= n; k = next.Add(1) {
		body := fmt.Sprintf("From: a@example.com\r\nTo: b@example.com\r\nSubject: bench %d\r\n\r\nHello, number %d.\r\n", k, k)
		t0 := time.Now()
		if err := benchOne(w, r, body, bdat); err != nil {
			return fmt.Errorf("message %d: %w", k, err)
		}
		*lat = append(*lat, time.Since(t0))
	}
	io.WriteString(conn, "QUIT\r\n")
	return nil
}

func benchOne(w *bufio.Writer, r *textproto.Reader, body string, bdat bool) error {
	w.WriteString("MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\n")
	if bdat {
		fmt.Fprintf(w, "BDAT %d LAST\r\n%s", len(body), body)
	} else {
		w.WriteString("DATA\r\n")
	}
	if err := w.Flush(); err != nil {
		return err
	}
	for _, code := range []int{250, 250} {
		if err := benchExpect(r, code); err != nil {
			return err
		}
	}
	if !bdat {
		if err := benchExpect(r, 354); err != nil {
			return err
		}
		w.WriteString(body + ".\r\n")
		if err := w.Flush(); err != nil {
			return err
		}
	}
	return benchExpect(r, 250)
}

func benchExpect(r *textproto.Reader, code int) error {
	_, _, err := r.ReadResponse(code)
	return err
}

// BenchmarkStoreDirect is the same load without SMTP: 16 goroutines calling
// the store's Enqueue, the ceiling the listener can reach.
func BenchmarkStoreDirect(b *testing.B) {
	st, err := sqlite.Open(filepath.Join(b.TempDir(), "outbox.db"), sqlite.Options{Queue: queue.Options{Logger: slog.New(slog.DiscardHandler)}})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	var next atomic.Int64
	lat := make([][]time.Duration, benchConns)
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for i := range benchConns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := next.Add(1); k <= int64(b.N); k = next.Add(1) {
				t0 := time.Now()
				_, err := st.Enqueue(context.Background(), queue.NewMessage{
					From: "a@example.com", Recipients: []string{"b@example.com"},
					Body: strings.NewReader(fmt.Sprintf("Subject: bench %d\r\n\r\nHello.\r\n", k)),
				})
				if err != nil {
					b.Error(err)
					return
				}
				lat[i] = append(lat[i], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	reportLatency(b, lat, time.Since(start))
}

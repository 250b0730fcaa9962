package delivery_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/outbox-mail/outbox/delivery"
	"github.com/outbox-mail/outbox/internal/smtpsink"
	"github.com/outbox-mail/outbox/queue"
	"github.com/outbox-mail/outbox/queue/sqlite"
	"github.com/outbox-mail/outbox/smtp"
)

// fastRetry makes the Postfix schedule run in milliseconds.
var fastRetry = delivery.RetryPolicy{Initial: 30 * time.Millisecond, Max: 120 * time.Millisecond, Jitter: -1}

// fastHealth backs a failing destination off for milliseconds.
var fastHealth = delivery.HealthPolicy{Threshold: 3, Initial: 20 * time.Millisecond, Max: 100 * time.Millisecond}

// quietLog drops the per-recipient lines; tests that read them use a
// logger of their own.
var quietLog = slog.New(slog.NewTextHandler(io.Discard, nil))

func openStore(t testing.TB) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "outbox.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func startSink(t testing.TB, opts smtpsink.Options) *smtpsink.Sink {
	t.Helper()
	s, err := smtpsink.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Stop() })
	return s
}

func relayTo(t testing.TB, addr string) *delivery.SMTPRelay {
	t.Helper()
	r, err := smtp.ParseRelayURL("smtp://" + addr + "?starttls=off")
	if err != nil {
		t.Fatal(err)
	}
	tr := delivery.NewSMTPRelay(r, &smtp.Options{Timeouts: smtp.Timeouts{Dial: 2 * time.Second}},
		smtp.PoolOptions{MaxConns: 4})
	t.Cleanup(func() { tr.Close() })
	return tr
}

func startDeliverer(t testing.TB, cfg delivery.Config) *delivery.Deliverer {
	t.Helper()
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 200 * time.Millisecond
	}
	if cfg.Health == (delivery.HealthPolicy{}) {
		cfg.Health = fastHealth
	}
	if cfg.Logger == nil {
		cfg.Logger = quietLog
	}
	d, err := delivery.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		d.Shutdown(ctx)
	})
	return d
}

// rawMessage is a small RFC 5322 message whose Message-ID carries n.
func rawMessage(n int, to ...string) string {
	return fmt.Sprintf("From: sender@app.test\r\nTo: %s\r\nSubject: test %d\r\nMessage-ID: <%d@outbox.test>\r\n\r\nbody of message %d\r\n",
		strings.Join(to, ", "), n, n, n)
}

func enqueue(t testing.TB, st queue.Store, n int, to ...string) string {
	t.Helper()
	id, err := st.Enqueue(context.Background(), queue.NewMessage{
		From: "sender@app.test", Recipients: to, Subject: fmt.Sprintf("test %d", n),
		Body: strings.NewReader(rawMessage(n, to...)), ExpiresAt: time.Now().Add(time.Hour),
	})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

var messageIDRe = regexp.MustCompile(`Message-ID: <(\d+)@outbox.test>`)

// countByNumber counts the received copies of each numbered message.
func countByNumber(rs []smtpsink.Received) map[string]int {
	out := map[string]int{}
	for _, r := range rs {
		if m := messageIDRe.FindSubmatch(r.Data); m != nil {
			out[string(m[1])]++
		}
	}
	return out
}

// waitStatus polls the store until message id has status want.
func waitStatus(t testing.TB, st queue.Store, id string, want queue.Status) *queue.Message {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		m, err := st.Get(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if m.Status == want {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("message %s: status %s, want %s; recipients %+v", id, m.Status, want, m.Recipients)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitCounts polls until no message is waiting or sending.
func waitSettled(t testing.TB, st queue.Store, timeout time.Duration) map[queue.Status]int64 {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		c, err := st.Counts(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if c[queue.StatusQueued]+c[queue.StatusDeferred]+c[queue.StatusSending] == 0 {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("queue not settled after %v: %v", timeout, c)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

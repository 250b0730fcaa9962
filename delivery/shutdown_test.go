package delivery_test

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/outbox-mail/outbox/delivery"
	"github.com/outbox-mail/outbox/internal/smtpsink"
	"github.com/outbox-mail/outbox/queue"
)

// TestShutdownUnderLoad stops a busy deliverer twice — once with time to
// finish, once cut short — and checks that nothing is lost or left in
// sending, that nothing is marked delivered that the sink did not accept,
// and that a new deliverer finishes the rest.
func TestShutdownUnderLoad(t *testing.T) {
	for _, tc := range []struct {
		name  string
		grace time.Duration
	}{{"graceful", 10 * time.Second}, {"deadline", 30 * time.Millisecond}} {
		t.Run(tc.name, func(t *testing.T) {
			sink := startSink(t, smtpsink.Options{Delay: 15 * time.Millisecond})
			st := openStore(t)
			const n, workers = 60, 8
			for i := range n {
				enqueue(t, st, i, "r@x.test")
			}
			cfg := delivery.Config{Store: st, Transport: relayTo(t, sink.Addr()), Workers: workers, PollInterval: -1, Logger: quietLog}
			d, err := delivery.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if err := d.Start(); err != nil {
				t.Fatal(err)
			}
			sink.WaitFor(10, 10*time.Second)
			ctx, cancel := context.WithTimeout(context.Background(), tc.grace)
			err = d.Shutdown(ctx)
			cancel()
			if tc.grace > time.Second && err != nil {
				t.Fatalf("graceful shutdown: %v", err)
			}
			if tc.grace < time.Second && !errors.Is(err, context.DeadlineExceeded) {
				t.Logf("shutdown finished within %v (%v); the abort path may not have run", tc.grace, err)
			}
			counts, err := st.Counts(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if counts[queue.StatusSending] != 0 {
				t.Fatalf("%d messages left in sending after shutdown: %v", counts[queue.StatusSending], counts)
			}
			checkDeliveredWereReceived(t, st, sink)

			startDeliverer(t, delivery.Config{Store: st, Transport: relayTo(t, sink.Addr()), Workers: workers, PollInterval: -1})
			final := waitSettled(t, st, 20*time.Second)
			if final[queue.StatusDelivered] != n {
				t.Fatalf("after restart: %v, want %d delivered", final, n)
			}
			got := countByNumber(sink.Received())
			dups := 0
			for i := range n {
				c := got[strconv.Itoa(i)]
				if c == 0 {
					t.Errorf("message %d never reached the sink", i)
				}
				dups += max(c-1, 0)
			}
			if tc.grace > time.Second && dups != 0 {
				t.Errorf("graceful shutdown repeated %d deliveries", dups)
			}
			if dups > workers {
				t.Errorf("%d duplicates, more than the %d deliveries in flight", dups, workers)
			}
		})
	}
}

// checkDeliveredWereReceived: a message is never marked delivered unless
// the server acknowledged it.
func checkDeliveredWereReceived(t *testing.T, st queue.Store, sink *smtpsink.Sink) {
	t.Helper()
	got := countByNumber(sink.Received())
	page, err := st.List(context.Background(), queue.Filter{Status: queue.StatusDelivered, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range page.Messages {
		num := m.Subject[len("test "):]
		if got[num] == 0 {
			t.Errorf("message %s (%s) marked delivered but the sink never accepted it", num, m.ID)
		}
	}
}

// TestShutdownStartsNothingNew: a graceful shutdown waits for the
// sessions under way but does not send the claimed mail still waiting for
// a connection; that mail is given back unattempted.
func TestShutdownStartsNothingNew(t *testing.T) {
	sink := startSink(t, smtpsink.Options{Delay: 20 * time.Millisecond})
	st := openStore(t)
	const n = 30
	for i := range n {
		enqueue(t, st, i, "r@x.test")
	}
	d, err := delivery.New(delivery.Config{Store: st, Transport: relayTo(t, sink.Addr()), MaxConnections: 1,
		PollInterval: -1, Logger: quietLog})
	if err != nil {
		t.Fatal(err)
	}
	d.Start()
	sink.WaitFor(1, 10*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	got := len(sink.Received())
	counts, _ := st.Counts(context.Background())
	if got > 3 || counts[queue.StatusSending] != 0 || counts[queue.StatusDelivered] != int64(got) {
		t.Fatalf("after shutdown: sink has %d, store %v; want the one or two sessions under way finished and the rest given back", got, counts)
	}
	if counts[queue.StatusQueued] != int64(n-got) {
		t.Errorf("%d messages queued again, want %d (released unattempted)", counts[queue.StatusQueued], n-got)
	}
}

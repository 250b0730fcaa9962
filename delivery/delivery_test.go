package delivery_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/outbox-mail/outbox/delivery"
	"github.com/outbox-mail/outbox/internal/smtpsink"
	"github.com/outbox-mail/outbox/queue"
)

func TestPerRecipientOutcomesAndRetry(t *testing.T) {
	var busyFixed atomic.Bool
	sink := startSink(t, smtpsink.Options{Rcpt: func(to string) error {
		switch {
		case strings.HasPrefix(to, "gone@"):
			return &gosmtp.SMTPError{Code: 550, EnhancedCode: gosmtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
		case strings.HasPrefix(to, "busy@") && !busyFixed.Load():
			return &gosmtp.SMTPError{Code: 451, EnhancedCode: gosmtp.EnhancedCode{4, 2, 1}, Message: "mailbox busy"}
		}
		return nil
	}})
	st := openStore(t)
	id := enqueue(t, st, 1, "ok@x.test", "gone@x.test", "busy@x.test")
	startDeliverer(t, delivery.Config{Store: st, Transport: relayTo(t, sink.Addr()),
		Retry: delivery.RetryPolicy{Initial: 300 * time.Millisecond, Max: time.Second, Jitter: -1}})

	m := waitStatus(t, st, id, queue.StatusDeferred)
	want := map[string]struct {
		status queue.RecipientStatus
		code   int
		enh    string
	}{
		"ok@x.test":   {queue.RecipientDelivered, 250, ""},
		"gone@x.test": {queue.RecipientFailed, 550, "5.1.1"},
		"busy@x.test": {queue.RecipientDeferred, 451, "4.2.1"},
	}
	for _, r := range m.Recipients {
		w := want[r.Address]
		if r.Status != w.status || r.Code != w.code || (w.enh != "" && r.EnhancedCode != w.enh) {
			t.Errorf("after attempt 1, %s: %s %d %s %q; want %s %d %s", r.Address, r.Status, r.Code, r.EnhancedCode, r.Text, w.status, w.code, w.enh)
		}
	}
	if m.NextAttemptAt.IsZero() {
		t.Error("deferred message has no next attempt time")
	}
	busyFixed.Store(true)
	m = waitStatus(t, st, id, queue.StatusPartial)
	for _, r := range m.Recipients {
		if r.Address == "busy@x.test" && (r.Status != queue.RecipientDelivered || r.Attempts != 2) {
			t.Errorf("busy recipient after retry: %+v", r)
		}
	}
	got := sink.Received()
	if len(got) != 2 || strings.Join(got[0].To, ",") != "ok@x.test" || strings.Join(got[1].To, ",") != "busy@x.test" {
		t.Fatalf("sink received %d messages: %+v", len(got), got)
	}
	attempts, err := st.Attempts(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if len(attempts) != 2 {
		t.Fatalf("%d attempts recorded, want 2", len(attempts))
	}
	if !strings.Contains(attempts[0].Transcript, "RCPT TO:<gone@x.test>") || !strings.Contains(attempts[0].Transcript, "550") {
		t.Errorf("first attempt transcript lacks the refused RCPT:\n%s", attempts[0].Transcript)
	}
	if strings.Contains(attempts[1].Transcript, "gone@x.test") {
		t.Errorf("the retry must only address the deferred recipient:\n%s", attempts[1].Transcript)
	}
	if gap := attempts[1].StartedAt.Sub(attempts[0].FinishedAt); gap < 250*time.Millisecond {
		t.Errorf("retry came %v after the first attempt, want about the 300ms schedule", gap)
	}
}

func TestOutageThenRecovery(t *testing.T) {
	sink := startSink(t, smtpsink.Options{})
	if err := sink.Stop(); err != nil {
		t.Fatal(err)
	}
	st := openStore(t)
	const n = 20
	ids := make([]string, n)
	for i := range ids {
		ids[i] = enqueue(t, st, i, "rcpt@x.test")
	}
	startDeliverer(t, delivery.Config{Store: st, Transport: relayTo(t, sink.Addr()), Retry: fastRetry})
	for _, id := range ids {
		waitAttempts(t, st, id, 2)
	}
	if got := len(sink.Received()); got != 0 {
		t.Fatalf("sink down but received %d", got)
	}
	if err := sink.Restart(); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		m := waitStatus(t, st, id, queue.StatusDelivered)
		if m.Recipients[0].Code != 250 {
			t.Errorf("%s delivered with code %d", id, m.Recipients[0].Code)
		}
	}
	counts := countByNumber(sink.Received())
	if len(counts) != n {
		t.Fatalf("sink has %d distinct messages, want %d", len(counts), n)
	}
	for num, c := range counts {
		if c != 1 {
			t.Errorf("message %s received %d times", num, c)
		}
	}
	attempts, err := st.Attempts(context.Background(), ids[0])
	if err != nil {
		t.Fatal(err)
	}
	if attempts[0].Error == "" {
		t.Error("a refused connection must be recorded as the attempt's error")
	}
	for i := 1; i < len(attempts); i++ {
		gap := attempts[i].StartedAt.Sub(attempts[i-1].FinishedAt)
		if gap < 25*time.Millisecond {
			t.Errorf("attempt %d came %v after the previous one; schedule says ≥30ms", i+1, gap)
		}
	}
}

func waitAttempts(t *testing.T, st queue.Store, id string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		m, err := st.Get(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if m.Attempts >= n && m.Status == queue.StatusDeferred {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("message %s: %d attempts (%s), want %d deferred", id, m.Attempts, m.Status, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestLifetimeExpiryFailsForGood(t *testing.T) {
	sink := startSink(t, smtpsink.Options{Rcpt: func(string) error {
		return &gosmtp.SMTPError{Code: 452, EnhancedCode: gosmtp.EnhancedCode{4, 2, 2}, Message: "mailbox full"}
	}})
	st := openStore(t)
	id, err := st.Enqueue(context.Background(), queue.NewMessage{From: "s@app.test", Recipients: []string{"full@x.test"},
		Body: strings.NewReader(rawMessage(1, "full@x.test")), ExpiresAt: time.Now().Add(150 * time.Millisecond)})
	if err != nil {
		t.Fatal(err)
	}
	startDeliverer(t, delivery.Config{Store: st, Transport: relayTo(t, sink.Addr()), Retry: fastRetry})
	m := waitStatus(t, st, id, queue.StatusFailed)
	r := m.Recipients[0]
	if r.Status != queue.RecipientFailed || !strings.Contains(r.Text, "mailbox full") || !strings.Contains(r.Text, "lifetime") {
		t.Errorf("expired recipient: %+v", r)
	}
}

func TestScheduledAndCancelled(t *testing.T) {
	sink := startSink(t, smtpsink.Options{})
	st := openStore(t)
	ctx := context.Background()
	later := func(n int, d time.Duration) string {
		id, err := st.Enqueue(ctx, queue.NewMessage{From: "s@app.test", Recipients: []string{"r@x.test"},
			Body: strings.NewReader(rawMessage(n, "r@x.test")), SendAt: time.Now().Add(d), ExpiresAt: time.Now().Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	scheduled := later(1, 300*time.Millisecond)
	cancelled := later(2, 200*time.Millisecond)
	d := startDeliverer(t, delivery.Config{Store: st, Transport: relayTo(t, sink.Addr()), PollInterval: -1})
	if err := st.Cancel(ctx, cancelled); err != nil {
		t.Fatal(err)
	}
	d.Notify()
	if m, _ := st.Get(ctx, scheduled); m.Status != queue.StatusQueued || len(sink.Received()) != 0 {
		t.Fatalf("scheduled message went early: %s, sink has %d", m.Status, len(sink.Received()))
	}
	waitStatus(t, st, scheduled, queue.StatusDelivered)
	if got := countByNumber(sink.Received()); got["1"] != 1 || got["2"] != 0 {
		t.Errorf("sink got %v; want message 1 once and the cancelled 2 never", got)
	}
	if m, _ := st.Get(ctx, cancelled); m.Status != queue.StatusCancelled {
		t.Errorf("cancelled message is %s", m.Status)
	}
}

// countingStore counts claims, to show that an idle deliverer sleeps.
type countingStore struct {
	queue.Store
	claims atomic.Int64
}

func (c *countingStore) Claim(ctx context.Context, owner string, limit int, lease time.Duration) ([]queue.Claimed, error) {
	c.claims.Add(1)
	return c.Store.Claim(ctx, owner, limit, lease)
}

func TestIdleSleepsAndEnqueueWakes(t *testing.T) {
	sink := startSink(t, smtpsink.Options{})
	st := &countingStore{Store: openStore(t)}
	d := startDeliverer(t, delivery.Config{Store: st, Transport: relayTo(t, sink.Addr()), PollInterval: -1})
	time.Sleep(300 * time.Millisecond)
	if n := st.claims.Load(); n > 2 {
		t.Fatalf("idle deliverer claimed %d times in 300ms; it should sleep", n)
	}
	id := enqueue(t, st.Store, 1, "r@x.test")
	d.Notify()
	waitStatus(t, st.Store, id, queue.StatusDelivered)
}

func TestExpiredLeaseIsTakenOver(t *testing.T) {
	sink := startSink(t, smtpsink.Options{})
	st := openStore(t)
	id := enqueue(t, st, 1, "r@x.test")
	claimed, err := st.Claim(context.Background(), "crashed-node", 10, 50*time.Millisecond)
	if err != nil || len(claimed) != 1 {
		t.Fatalf("claim: %v, %d", err, len(claimed))
	}
	startDeliverer(t, delivery.Config{Store: st, Transport: relayTo(t, sink.Addr()), PollInterval: -1})
	waitStatus(t, st, id, queue.StatusDelivered)
	if got := len(sink.Received()); got != 1 {
		t.Errorf("sink received %d, want 1", got)
	}
}

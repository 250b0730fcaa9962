package queuetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/outbox-mail/outbox/queue"
)

// deferVia enqueues a message to rcpt and defers it for an hour after an
// attempt through route.
func deferVia(t *testing.T, s queue.Store, rcpt, route string) string {
	t.Helper()
	id := enqueue(t, s, newMsg(rcpt))
	claimOne(t, s, "w1", id, time.Minute)
	res := queue.Result{MessageID: id, NextAttemptAt: time.Now().Add(time.Hour),
		Recipients: []queue.RecipientResult{{Address: rcpt, Status: queue.RecipientDeferred, Code: 451}},
		Attempt:    queue.Attempt{Route: route}}
	if errs := complete(t, s, "w1", res); errs[0] != nil {
		t.Fatal(errs[0])
	}
	return id
}

// steerSet is a queue with one message in each situation a selection
// tells apart.
type steerSet struct {
	queued, relayA, multi, relayA2525, sending, delivered string
}

func newSteerSet(t *testing.T, s queue.Store) steerSet {
	var set steerSet
	set.relayA = deferVia(t, s, "b@x.test", "relay:relay-a.test:25")
	set.multi = deferVia(t, s, "c@y.test", "mx:mx1.y.test, relay:relay-b.test:25")
	set.relayA2525 = deferVia(t, s, "d@x.test", "relay:relay-a.test:2525")
	set.delivered = enqueue(t, s, newMsg("e@x.test"))
	deliverWith(t, s, set.delivered, queue.RecipientDelivered)
	set.sending = enqueue(t, s, newMsg("f@x.test"))
	claimOne(t, s, "w2", set.sending, time.Hour)
	// Scheduled for later, so that a retry visibly makes it due.
	m := newMsg("a@x.test")
	m.SendAt = time.Now().Add(time.Hour)
	set.queued = enqueue(t, s, m)
	return set
}

// dueNow reports whether message id is due at once.
func dueNow(t *testing.T, s queue.Store, id string) bool {
	t.Helper()
	m := get(t, s, id)
	return !m.NextAttemptAt.IsZero() && !m.NextAttemptAt.After(time.Now().Add(time.Second))
}

// testRetryMessages: a selection by status, route (exact, by kind, by
// host without port, any case) and recipient makes exactly its messages
// due now, and never touches one being sent or final.
func testRetryMessages(t *testing.T, s queue.Store) {
	ctx := context.Background()
	set := newSteerSet(t, s)
	// Messages once due stay due, so each case checks its count and that
	// exactly the messages selected so far are due now.
	due := map[string]bool{}
	for _, tc := range []struct {
		sel  queue.Selection
		want []string
	}{
		{queue.Selection{Status: queue.StatusDeferred, Route: "relay:relay-a.test:25"}, []string{set.relayA}},
		{queue.Selection{Route: "relay-a"}, nil},
		{queue.Selection{Route: "relay:relay-b.test:25"}, []string{set.multi}},
		{queue.Selection{Route: "MX"}, []string{set.multi}},
		{queue.Selection{Route: "relay:relay-a.test"}, []string{set.relayA, set.relayA2525}},
		{queue.Selection{Route: "relay"}, []string{set.relayA, set.multi, set.relayA2525}},
		{queue.Selection{Recipient: "@X.TEST", Status: queue.StatusDeferred}, []string{set.relayA, set.relayA2525}},
		{queue.Selection{Status: queue.StatusQueued}, []string{set.queued}},
		{queue.Selection{}, []string{set.relayA, set.multi, set.relayA2525, set.queued}},
	} {
		n, err := s.RetryMessages(ctx, tc.sel)
		if err != nil || n != len(tc.want) {
			t.Errorf("RetryMessages(%+v) = %d, %v; want %d", tc.sel, n, err, len(tc.want))
		}
		for _, id := range tc.want {
			due[id] = true
		}
		for _, id := range []string{set.relayA, set.multi, set.relayA2525, set.queued} {
			if got := dueNow(t, s, id); got != due[id] {
				t.Errorf("after RetryMessages(%+v): %s due now %v, want %v", tc.sel, id, got, due[id])
			}
		}
	}
	wantStatus(t, s, set.sending, queue.StatusSending)
	wantStatus(t, s, set.delivered, queue.StatusDelivered)
	for _, sel := range []queue.Selection{{Status: queue.StatusDelivered}, {Status: queue.StatusSending},
		{Status: "nonsense"}, {Route: "relay\x00"}, {Recipient: "a\r\nb"}} {
		if _, err := s.RetryMessages(ctx, sel); !errors.Is(err, queue.ErrInvalid) {
			t.Errorf("RetryMessages(%+v): %v, want ErrInvalid", sel, err)
		}
	}
}

// testCancelMessages: a selection cancels exactly its waiting messages,
// their open recipients failed, and reports their ids in order.
func testCancelMessages(t *testing.T, s queue.Store) {
	ctx := context.Background()
	set := newSteerSet(t, s)
	got, err := s.CancelMessages(ctx, queue.Selection{Recipient: "@x.test", Status: queue.StatusDeferred})
	want := []string{set.relayA, set.relayA2525}
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("CancelMessages = %v, %v; want %v", got, err, want)
	}
	for _, id := range want {
		if m := wantStatus(t, s, id, queue.StatusCancelled); m.Recipients[0].Status != queue.RecipientFailed {
			t.Errorf("cancelled message %s has recipient %s, want failed", id, m.Recipients[0].Status)
		}
	}
	wantStatus(t, s, set.queued, queue.StatusQueued)
	wantStatus(t, s, set.multi, queue.StatusDeferred)
	if got, err := s.CancelMessages(ctx, queue.Selection{Recipient: "@x.test"}); err != nil || !slices.Equal(got, []string{set.queued}) {
		t.Errorf("second CancelMessages = %v, %v; want only the queued message %s", got, err, set.queued)
	}
	wantStatus(t, s, set.sending, queue.StatusSending)
	wantStatus(t, s, set.delivered, queue.StatusDelivered)

	// Before keeps what was created later out.
	time.Sleep(5 * time.Millisecond)
	cutoff := time.Now()
	time.Sleep(5 * time.Millisecond)
	late := enqueue(t, s, newMsg("late@y.test"))
	if got, err := s.CancelMessages(ctx, queue.Selection{Before: cutoff}); err != nil || !slices.Equal(got, []string{set.multi}) {
		t.Errorf("CancelMessages(Before) = %v, %v; want only %s", got, err, set.multi)
	}
	wantStatus(t, s, late, queue.StatusQueued)
}

// testSteerBatches: a selection larger than one transaction's batch is
// steered whole, each message once.
func testSteerBatches(t *testing.T, s queue.Store) {
	ctx := context.Background()
	const n = 1234
	var mu sync.Mutex
	var all []string
	var wg sync.WaitGroup
	errc := make(chan error, 8)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 8 {
				id, err := s.Enqueue(ctx, newMsg(fmt.Sprintf("r%d@x.test", i)))
				if err != nil {
					errc <- err
					return
				}
				mu.Lock()
				all = append(all, id)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if got, err := s.RetryMessages(ctx, queue.Selection{Status: queue.StatusQueued}); err != nil || got != n {
		t.Fatalf("RetryMessages over %d messages = %d, %v", n, got, err)
	}
	got, err := s.CancelMessages(ctx, queue.Selection{})
	slices.Sort(all)
	if err != nil || !slices.Equal(got, all) {
		t.Fatalf("CancelMessages over %d messages gave %d ids (%v), want each once in id order", n, len(got), err)
	}
	if c, err := s.Counts(ctx); err != nil || c[queue.StatusCancelled] != n {
		t.Fatalf("after cancelling all: %v, %v", c, err)
	}
}

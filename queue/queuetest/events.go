package queuetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/outbox-mail/outbox/queue"
)

func claimEvents(t *testing.T, s queue.Store, owner string, limit int, lease time.Duration) []queue.Event {
	t.Helper()
	ev, err := s.ClaimEvents(context.Background(), owner, limit, lease)
	if err != nil {
		t.Fatalf("ClaimEvents(%s): %v", owner, err)
	}
	return ev
}

func event(endpoint, typ, msgID string) queue.NewEvent {
	return queue.NewEvent{Endpoint: endpoint, Type: typ, MessageID: msgID,
		Payload: []byte(fmt.Sprintf(`{"type":%q,"id":%q}`, typ, msgID))}
}

// testEventsWithResults: events ride in the result's transaction, and a
// result that is not recorded (lease lost) records no events either.
func testEventsWithResults(t *testing.T, s queue.Store) {
	ctx := context.Background()
	id := enqueue(t, s, newMsg("b@example.com"))
	claimOne(t, s, "w1", id, time.Minute)
	lost := enqueue(t, s, newMsg("c@example.com"))
	claimOne(t, s, "w2", lost, time.Minute)
	errs := complete(t, s, "w1",
		queue.Result{MessageID: id, Recipients: []queue.RecipientResult{{Address: "b@example.com", Status: queue.RecipientDelivered, Code: 250}},
			Events: []queue.NewEvent{event("http://127.0.0.1:1/a", "delivered", id), event("http://127.0.0.1:1/b", "delivered", id)}},
		queue.Result{MessageID: lost, Recipients: []queue.RecipientResult{{Address: "c@example.com", Status: queue.RecipientDelivered}},
			Events: []queue.NewEvent{event("http://127.0.0.1:1/a", "delivered", lost)}})
	if errs[0] != nil || !errors.Is(errs[1], queue.ErrLeaseLost) {
		t.Fatalf("Complete errors %v, want [nil ErrLeaseLost]", errs)
	}
	got := claimEvents(t, s, "hook", 10, time.Minute)
	if len(got) != 2 {
		t.Fatalf("claimed %d events, want the 2 of the recorded result", len(got))
	}
	endpoints := map[string]bool{}
	for _, e := range got {
		if e.MessageID != id || e.Type != "delivered" || e.Attempts != 1 || string(e.Payload) != string(event("", "delivered", id).Payload) {
			t.Errorf("event %+v", e)
		}
		endpoints[e.Endpoint] = true
	}
	if !endpoints["http://127.0.0.1:1/a"] || !endpoints["http://127.0.0.1:1/b"] {
		t.Errorf("event endpoints %v", endpoints)
	}
	if _, ok, err := s.NextEventDue(ctx); err != nil || !ok {
		t.Errorf("NextEventDue with events leased = %v, %v; want the lease expiry", ok, err)
	}
}

func testEventsClaimAndFinish(t *testing.T, s queue.Store) {
	ctx := context.Background()
	if _, ok, err := s.NextEventDue(ctx); err != nil || ok {
		t.Fatalf("NextEventDue on an empty store = %v, %v", ok, err)
	}
	if err := s.AddEvents(ctx, []queue.NewEvent{event("http://127.0.0.1:1/h", "cancelled", "m1"),
		event("http://127.0.0.1:1/h", "cancelled", "m2"), event("http://127.0.0.1:1/h", "cancelled", "m3")}); err != nil {
		t.Fatal(err)
	}
	if err := s.AddEvents(ctx, []queue.NewEvent{{Type: "x"}}); err == nil {
		t.Error("AddEvents without an endpoint succeeded")
	}
	got := claimEvents(t, s, "hook", 10, time.Minute)
	if len(got) != 3 {
		t.Fatalf("claimed %d events, want 3", len(got))
	}
	if again := claimEvents(t, s, "other", 10, time.Minute); len(again) != 0 {
		t.Fatalf("leased events claimed again by another owner: %d", len(again))
	}
	if err := s.FinishEvent(ctx, "other", got[0].ID, true, time.Time{}, ""); err == nil {
		t.Error("FinishEvent by an owner without the lease succeeded")
	}
	if err := s.FinishEvent(ctx, "hook", got[0].ID, true, time.Time{}, ""); err != nil {
		t.Fatal(err)
	}
	retryAt := time.Now().Add(-time.Millisecond)
	if err := s.FinishEvent(ctx, "hook", got[1].ID, false, retryAt, "503 from endpoint"); err != nil {
		t.Fatal(err)
	}
	if err := s.FinishEvent(ctx, "hook", got[2].ID, false, time.Time{}, "gave up"); err != nil {
		t.Fatal(err)
	}
	again := claimEvents(t, s, "hook", 10, time.Minute)
	if len(again) != 1 || again[0].ID != got[1].ID || again[0].Attempts != 2 || again[0].LastError != "503 from endpoint" {
		t.Fatalf("after finishing: claimed %+v, want only the retried event on attempt 2", again)
	}
	if err := s.FinishEvent(ctx, "hook", again[0].ID, false, time.Now().Add(time.Hour), "down"); err != nil {
		t.Fatal(err)
	}
	next, ok, err := s.NextEventDue(ctx)
	if err != nil || !ok || next.Before(time.Now().Add(59*time.Minute)) {
		t.Errorf("NextEventDue = %v %v %v, want about an hour from now", next, ok, err)
	}
}

func testEventsLeaseLapses(t *testing.T, s queue.Store) {
	ctx := context.Background()
	if err := s.AddEvents(ctx, []queue.NewEvent{event("http://127.0.0.1:1/h", "failed", "m1")}); err != nil {
		t.Fatal(err)
	}
	first := claimEvents(t, s, "crashed", 10, expired)
	if len(first) != 1 {
		t.Fatalf("claimed %d, want 1", len(first))
	}
	second := claimEvents(t, s, "survivor", 10, time.Minute)
	if len(second) != 1 || second[0].ID != first[0].ID || second[0].Attempts != 2 {
		t.Fatalf("after the lease lapsed, claimed %+v", second)
	}
	if err := s.FinishEvent(ctx, "crashed", first[0].ID, true, time.Time{}, ""); err == nil {
		t.Error("the crashed owner finished an event it no longer holds")
	}
}

func testPurge(t *testing.T, s queue.Store) {
	ctx := context.Background()
	done := enqueue(t, s, newMsg("b@example.com"))
	claimOne(t, s, "w", done, time.Minute)
	complete(t, s, "w", queue.Result{MessageID: done,
		Recipients: []queue.RecipientResult{{Address: "b@example.com", Status: queue.RecipientDelivered}}})
	keyed := newMsg("c@example.com")
	keyed.IdempotencyKey = "purge-key"
	cancelled := enqueue(t, s, keyed)
	if err := s.Cancel(ctx, cancelled); err != nil {
		t.Fatal(err)
	}
	waiting := enqueue(t, s, newMsg("d@example.com"))

	if n, err := s.Purge(ctx, time.Now().Add(-time.Hour)); err != nil || n != 0 {
		t.Fatalf("Purge of mail older than an hour = %d, %v; want 0", n, err)
	}
	n, err := s.Purge(ctx, time.Now().Add(time.Second))
	if err != nil || n != 2 {
		t.Fatalf("Purge = %d, %v; want the 2 final messages", n, err)
	}
	for _, id := range []string{done, cancelled} {
		if _, err := s.Get(ctx, id); !errors.Is(err, queue.ErrNotFound) {
			t.Errorf("purged message %s: Get = %v, want ErrNotFound", id, err)
		}
		if _, err := s.OpenBody(ctx, id); err == nil {
			t.Errorf("purged message %s still has a body", id)
		}
	}
	wantStatus(t, s, waiting, queue.StatusQueued)
	again := enqueue(t, s, keyed)
	if again == cancelled {
		t.Error("the idempotency key of a purged message still returns the purged id")
	}
}

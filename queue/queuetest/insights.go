package queuetest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/outbox-mail/outbox/queue"
)

// testInsights checks the dashboard's queries; every store here implements
// queue.Insights, and a store that does not fails this test rather than
// skipping it.
func testInsights(t *testing.T, s queue.Store) {
	ins, ok := s.(queue.Insights)
	if !ok {
		t.Fatalf("%T does not implement queue.Insights", s)
	}
	ctx := context.Background()
	since := time.Now().Add(-time.Hour).Truncate(time.Minute)
	if m, err := ins.OldestWaiting(ctx); err != nil || m != nil {
		t.Fatalf("empty store: %v %v", m, err)
	}
	var ids []string
	for _, to := range []string{"a@x.org", "b@x.org", "c@x.org"} {
		id, err := s.Enqueue(ctx, queue.NewMessage{From: "f@x.org", Recipients: []string{to}, Body: strings.NewReader("Subject: s\r\n\r\nx\r\n")})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
		time.Sleep(2 * time.Millisecond)
	}
	claimed, err := s.Claim(ctx, "w", 2, time.Minute)
	if err != nil || len(claimed) != 2 {
		t.Fatalf("claim: %d %v", len(claimed), err)
	}
	now := time.Now()
	res := []queue.Result{
		{MessageID: claimed[0].ID, Recipients: []queue.RecipientResult{{Address: claimed[0].Recipients[0].Address, Status: queue.RecipientDelivered, Code: 250}},
			Attempt: queue.Attempt{StartedAt: now, FinishedAt: now, Route: "r1"}},
		{MessageID: claimed[1].ID, Recipients: []queue.RecipientResult{{Address: claimed[1].Recipients[0].Address, Status: queue.RecipientFailed, Code: 550}},
			Attempt: queue.Attempt{StartedAt: now, FinishedAt: now, Route: "r1"}},
	}
	if _, err := s.Complete(ctx, "w", res); err != nil {
		t.Fatal(err)
	}
	act, err := ins.Activity(ctx, since, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	sum := func(s []int64) (n int64) {
		for _, v := range s {
			n += v
		}
		return n
	}
	if len(act["created"]) != 61 || sum(act["created"]) != 3 || sum(act["delivered"]) != 1 || sum(act["failed"]) != 1 || sum(act["cancelled"]) != 0 {
		t.Fatalf("activity: %d buckets, %v", len(act["created"]), act)
	}
	if act["created"][60] != 3 {
		t.Fatalf("created not in the last bucket: %v", act["created"][55:])
	}
	attempts, failures, err := ins.RouteHealth(ctx, since)
	if err != nil || attempts["r1"] != 2 || failures["r1"] != 1 {
		t.Fatalf("route health: %v %v %v", attempts, failures, err)
	}
	m, err := ins.OldestWaiting(ctx)
	if err != nil || m == nil {
		t.Fatalf("oldest waiting: %v %v", m, err)
	}
	done := map[string]bool{claimed[0].ID: true, claimed[1].ID: true}
	for _, id := range ids {
		if !done[id] && m.ID != id {
			t.Fatalf("oldest waiting is %s, want %s", m.ID, id)
		}
	}
	if _, err := ins.Activity(ctx, since, 0); err == nil {
		t.Fatal("a zero bucket was accepted")
	}
}

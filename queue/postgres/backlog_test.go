package postgres

import (
	"context"
	"testing"
	"time"

	"github.com/outbox-mail/outbox/queue"
)

// TestWebhookBacklog counts waiting events, those being posted among
// them, and abandoned ones.
func TestWebhookBacklog(t *testing.T) {
	dsn, _ := freshSchema(t)
	s := openStore(t, dsn, Options{})
	ctx := context.Background()
	if err := s.AddEvents(ctx, []queue.NewEvent{{Endpoint: "http://h/a", Type: "delivered", Payload: []byte(`{}`)},
		{Endpoint: "http://h/b", Type: "delivered", Payload: []byte(`{}`)},
		{Endpoint: "http://h/c", Type: "delivered", Payload: []byte(`{}`)}}); err != nil {
		t.Fatal(err)
	}
	evs, err := s.ClaimEvents(ctx, "me", 2, time.Minute)
	if err != nil || len(evs) != 2 {
		t.Fatalf("claim: %v %v", evs, err)
	}
	if err := s.FinishEvent(ctx, "me", evs[0].ID, false, time.Time{}, "gave up"); err != nil {
		t.Fatal(err)
	}
	// One pending, one being posted, one abandoned.
	waiting, abandoned, err := s.WebhookBacklog(ctx)
	if err != nil || waiting != 2 || abandoned != 1 {
		t.Fatalf("backlog: %d waiting, %d abandoned, %v; want 2 and 1", waiting, abandoned, err)
	}
}

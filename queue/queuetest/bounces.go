package queuetest

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/outbox-mail/outbox/queue"
)

// testHardBounceAtRcpt: a recipient the next hop refused at RCPT with a
// hard bounce's code is added to the suppression list, for every sender,
// by the Complete that records it; a policy refusal, a refusal of the
// message data and a temporary refusal are not. Two results refusing
// one address in one batch make one entry.
func testHardBounceAtRcpt(t *testing.T, s queue.Store) {
	ctx := context.Background()
	id := enqueue(t, s, newMsg("gone@x.test", "spam@x.test", "data@x.test", "later@x.test", "ok@x.test"))
	id2 := enqueue(t, s, newMsg("GONE@x.test"))
	if c := claim(t, s, "w", 10, time.Minute); len(c) != 2 {
		t.Fatalf("claimed %v, want both", ids(c))
	}
	res := queue.Result{MessageID: id, NextAttemptAt: time.Now().Add(time.Hour), Recipients: []queue.RecipientResult{
		{Address: "gone@x.test", Status: queue.RecipientFailed, Code: 550, EnhancedCode: "5.1.1", Text: "no such user", Refused: true},
		{Address: "spam@x.test", Status: queue.RecipientFailed, Code: 554, EnhancedCode: "5.7.1", Text: "client host blocked", Refused: true},
		{Address: "data@x.test", Status: queue.RecipientFailed, Code: 550, EnhancedCode: "5.1.1", Text: "after data"},
		{Address: "later@x.test", Status: queue.RecipientDeferred, Code: 450, EnhancedCode: "4.1.1", Text: "try later", Refused: true},
		{Address: "ok@x.test", Status: queue.RecipientDelivered, Code: 250},
	}}
	res2 := queue.Result{MessageID: id2, Recipients: []queue.RecipientResult{
		{Address: "GONE@x.test", Status: queue.RecipientFailed, Code: 550, Text: "unknown user", Refused: true}}}
	if errs := complete(t, s, "w", res, res2); errs[0] != nil || errs[1] != nil {
		t.Fatalf("Complete: %v", errs)
	}
	got, err := s.LookupSuppression(ctx, "gone@x.test", "any.example")
	if err != nil {
		t.Fatalf("a hard bounce at RCPT suppressed nothing: %v", err)
	}
	if got.Cause != queue.CauseBounced || got.Scope != "" || (got.MessageID != id && got.MessageID != id2) ||
		!strings.HasPrefix(got.Reason, "550") {
		t.Errorf("suppression %+v", got)
	}
	for _, a := range []string{"spam@x.test", "data@x.test", "later@x.test", "ok@x.test"} {
		if s, err := s.LookupSuppression(ctx, a, "sender.example"); !errors.Is(err, queue.ErrNotFound) {
			t.Errorf("%s suppressed: %+v, %v", a, s, err)
		}
	}
	// The next message to the address is suppressed at enqueue.
	next := get(t, s, enqueue(t, s, newMsg("gone@x.test")))
	if next.Status != queue.StatusFailed || next.Recipients[0].Status != queue.RecipientSuppressed {
		t.Errorf("next message to a hard-bounced address: %s, recipient %+v", next.Status, next.Recipients[0])
	}
	// A result whose lease was lost records nothing, suppressions included.
	id3 := enqueue(t, s, newMsg("stale@x.test"))
	claimOne(t, s, "w", id3, time.Minute)
	errs := complete(t, s, "other", queue.Result{MessageID: id3, Recipients: []queue.RecipientResult{
		{Address: "stale@x.test", Status: queue.RecipientFailed, Code: 550, EnhancedCode: "5.1.1", Refused: true}}})
	if !errors.Is(errs[0], queue.ErrLeaseLost) {
		t.Fatalf("Complete by another owner: %v", errs[0])
	}
	if _, err := s.LookupSuppression(ctx, "stale@x.test", ""); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("a lost result suppressed its recipient: %v", err)
	}
}

// testFeedbackSuppresses: a DSN's hard bounce suppresses the address for
// every sender and a complaint for the sender's domain, in the same
// transaction as the history and the webhook events given; a soft or
// policy bounce suppresses nothing. Suppress records its events too.
func testFeedbackSuppresses(t *testing.T, s queue.Store) {
	ctx := context.Background()
	m := newMsg("hard@x.test", "policy@x.test", "soft@x.test", "angry@x.test")
	m.From = "news@shop.example"
	id := enqueue(t, s, m)
	deliverWith(t, s, id, queue.RecipientDelivered, queue.RecipientDelivered, queue.RecipientDelivered, queue.RecipientDelivered)
	hook := queue.NewEvent{Endpoint: "http://127.0.0.1:1/hook", Type: "bounced", MessageID: id, Payload: []byte(`{}`)}
	err := s.AddRecipientEvents(ctx, []queue.RecipientEvent{
		{MessageID: id, Address: "hard@x.test", Type: queue.HistoryBounced, EnhancedCode: "5.1.1", Text: "550 5.1.1 user unknown"},
		{MessageID: id, Address: "policy@x.test", Type: queue.HistoryBounced, Code: 554, EnhancedCode: "5.7.1", Text: "spam"},
		{MessageID: id, Address: "soft@x.test", Type: queue.HistoryBounced, EnhancedCode: "4.4.7", Text: "expired"},
		{MessageID: id, Address: "angry@x.test", Type: queue.HistoryComplained, Text: "abuse"},
	}, hook)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.LookupSuppression(ctx, "hard@x.test", "other.example"); err != nil ||
		got.Cause != queue.CauseBounced || got.MessageID != id || got.Scope != "" || !strings.Contains(got.Reason, "user unknown") {
		t.Errorf("hard bounce: %+v, %v", got, err)
	}
	for _, a := range []string{"policy@x.test", "soft@x.test"} {
		if _, err := s.LookupSuppression(ctx, a, "shop.example"); !errors.Is(err, queue.ErrNotFound) {
			t.Errorf("%s suppressed: %v", a, err)
		}
	}
	got, err := s.LookupSuppression(ctx, "angry@x.test", "shop.example")
	if err != nil || got.Cause != queue.CauseComplained || got.Scope != "shop.example" || got.MessageID != id {
		t.Errorf("complaint: %+v, %v", got, err)
	}
	if _, err := s.LookupSuppression(ctx, "angry@x.test", "other.example"); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("a complaint about shop.example suppressed other senders: %v", err)
	}
	evs, err := s.ClaimEvents(ctx, "d", 10, time.Minute)
	if err != nil || len(evs) != 1 || evs[0].Type != "bounced" || evs[0].MessageID != id {
		t.Fatalf("webhook events recorded with the history: %+v, %v", evs, err)
	}
	// An unknown message records nothing: neither history nor events.
	err = s.AddRecipientEvents(ctx, []queue.RecipientEvent{{MessageID: "0190d5a0-0000-7000-8000-000000000000",
		Address: "x@x.test", Type: queue.HistoryComplained}}, hook)
	if !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("AddRecipientEvents of an unknown message: %v", err)
	}
	unsub := queue.NewEvent{Endpoint: "http://127.0.0.1:1/hook", Type: "unsubscribed", Payload: []byte(`{}`)}
	if err := s.Suppress(ctx, []queue.Suppression{{Address: "u@x.test", Scope: "shop.example", Cause: queue.CauseUnsubscribed},
		{Address: "U@x.test", Scope: "shop.example", Cause: queue.CauseUnsubscribed, Reason: "twice"}}, unsub); err != nil {
		t.Fatal(err)
	}
	if got, err := s.LookupSuppression(ctx, "u@x.test", "shop.example"); err != nil || got.Reason != "twice" {
		t.Errorf("Suppress of one address twice: %+v, %v (want the last entry)", got, err)
	}
	evs, err = s.ClaimEvents(ctx, "d", 10, time.Minute)
	if err != nil || len(evs) != 1 || evs[0].Type != "unsubscribed" {
		t.Fatalf("events recorded by Suppress: %+v, %v", evs, err)
	}
	// Bad events store nothing, the suppression included.
	if err := s.Suppress(ctx, []queue.Suppression{{Address: "v@x.test"}}, queue.NewEvent{Type: "x"}); !errors.Is(err, queue.ErrInvalid) {
		t.Errorf("Suppress with an event without endpoint: %v", err)
	}
	if _, err := s.LookupSuppression(ctx, "v@x.test", ""); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("a refused Suppress stored its entry: %v", err)
	}
}

// testRecipientIndex: claimed recipients carry their position in the
// message's recipient list, also once earlier ones are done.
func testRecipientIndex(t *testing.T, s queue.Store) {
	id := enqueue(t, s, newMsg("a@x.test", "b@x.test", "c@x.test"))
	c := claimOne(t, s, "w", id, time.Minute)
	for i, r := range c.Recipients {
		if r.Idx != i {
			t.Errorf("claimed recipient %s has index %d, want %d", r.Address, r.Idx, i)
		}
	}
	complete(t, s, "w", queue.Result{MessageID: id, NextAttemptAt: time.Now().Add(-time.Second), Recipients: []queue.RecipientResult{
		{Address: "a@x.test", Status: queue.RecipientDelivered}, {Address: "b@x.test", Status: queue.RecipientDeferred},
		{Address: "c@x.test", Status: queue.RecipientDeferred}}})
	c = claimOne(t, s, "w", id, time.Minute)
	if len(c.Recipients) != 2 || c.Recipients[0].Idx != 1 || c.Recipients[1].Idx != 2 {
		t.Errorf("reclaimed recipients %+v, want b and c at 1 and 2", c.Recipients)
	}
	m := get(t, s, id)
	for i, r := range m.Recipients {
		if r.Idx != i {
			t.Errorf("Get: recipient %s has index %d, want %d", r.Address, r.Idx, i)
		}
	}
	e := enqueueLeased(t, s, newMsg("p@x.test", "q@x.test"), "n", time.Minute)
	if e.Claimed == nil || e.Claimed.Recipients[1].Idx != 1 {
		t.Errorf("EnqueueLeased recipients %+v", e.Claimed)
	}
}

package queuetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/outbox-mail/outbox/queue"
)

func suppress(t *testing.T, s queue.Store, entries ...queue.Suppression) {
	t.Helper()
	if err := s.Suppress(context.Background(), entries); err != nil {
		t.Fatalf("Suppress: %v", err)
	}
}

// testSuppressions: add, replace, look up by scope, page through, expire
// and remove entries.
func testSuppressions(t *testing.T, s queue.Store) {
	ctx := context.Background()
	suppress(t, s,
		queue.Suppression{Address: "Ann@X.test", Reason: "550 no such user", Cause: queue.CauseBounced, MessageID: "m1"},
		queue.Suppression{Address: "bob@x.test", Scope: "Shop.example", Cause: queue.CauseUnsubscribed},
		queue.Suppression{Address: "old@x.test", ExpiresAt: time.Now().Add(-time.Minute)})
	got, err := s.LookupSuppression(ctx, "ann@x.TEST", "any.example")
	if err != nil || got.Address != "ann@x.test" || got.Reason != "550 no such user" || got.Cause != queue.CauseBounced ||
		got.MessageID != "m1" || got.CreatedAt.IsZero() {
		t.Fatalf("LookupSuppression(ann) = %+v, %v", got, err)
	}
	if got, err := s.LookupSuppression(ctx, "bob@x.test", "shop.example"); err != nil || got.Scope != "shop.example" {
		t.Errorf("LookupSuppression(bob, shop.example) = %+v, %v", got, err)
	}
	for _, c := range [][2]string{{"bob@x.test", "other.example"}, {"old@x.test", ""}, {"nobody@x.test", ""}} {
		if _, err := s.LookupSuppression(ctx, c[0], c[1]); !errors.Is(err, queue.ErrNotFound) {
			t.Errorf("LookupSuppression(%s, %s): %v, want ErrNotFound", c[0], c[1], err)
		}
	}
	// Adding again replaces.
	suppress(t, s, queue.Suppression{Address: "ann@x.test", Reason: "again", Cause: queue.CauseComplained})
	if got, _ := s.LookupSuppression(ctx, "ann@x.test", ""); got == nil || got.Reason != "again" || got.Cause != queue.CauseComplained {
		t.Errorf("after replacing: %+v", got)
	}
	for name, bad := range map[string]queue.Suppression{
		"empty address": {Address: " "}, "unknown cause": {Address: "a@x.test", Cause: "because"},
		"CRLF": {Address: "a@x\r\n.test"}, "scope with @": {Address: "a@x.test", Scope: "a@b"},
	} {
		if err := s.Suppress(ctx, []queue.Suppression{bad}); !errors.Is(err, queue.ErrInvalid) {
			t.Errorf("Suppress(%s): %v, want ErrInvalid", name, err)
		}
	}
	// Keyset paging by address then scope, expired entries included.
	for i := range 7 {
		suppress(t, s, queue.Suppression{Address: fmt.Sprintf("p%d@x.test", i)})
	}
	var seen []string
	f := queue.SuppressionFilter{Limit: 3}
	for range 10 {
		p, err := s.Suppressions(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range p.Suppressions {
			seen = append(seen, e.Address+"/"+e.Scope)
		}
		if p.Next == "" {
			break
		}
		f.Cursor = p.Next
	}
	if len(seen) != 10 || seen[0] != "ann@x.test/" || seen[1] != "bob@x.test/shop.example" || seen[9] != "p6@x.test/" {
		t.Errorf("paged through %v", seen)
	}
	if p, err := s.Suppressions(ctx, queue.SuppressionFilter{Address: "P3"}); err != nil || len(p.Suppressions) != 1 {
		t.Errorf("filtered listing: %+v %v", p, err)
	}
	if _, err := s.Suppressions(ctx, queue.SuppressionFilter{Cursor: "!!"}); !errors.Is(err, queue.ErrInvalid) {
		t.Errorf("bad cursor: %v, want ErrInvalid", err)
	}
	if err := s.Unsuppress(ctx, "ANN@x.test", ""); err != nil {
		t.Fatal(err)
	}
	if err := s.Unsuppress(ctx, "ann@x.test", ""); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("second Unsuppress: %v, want ErrNotFound", err)
	}
	if _, err := s.LookupSuppression(ctx, "ann@x.test", ""); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("removed entry still found: %v", err)
	}
}

// testSuppressedAtEnqueue: suppressed recipients are never sent; a
// message whose every recipient is suppressed is final at once; a
// message that ignores the list sends to everyone.
func testSuppressedAtEnqueue(t *testing.T, s queue.Store) {
	suppress(t, s, queue.Suppression{Address: "gone@x.test", Cause: queue.CauseBounced, Reason: "550 5.1.1"},
		queue.Suppression{Address: "unsub@x.test", Scope: "sender.example", Cause: queue.CauseUnsubscribed})
	m := newMsg("GONE@x.test", "ok@x.test", "unsub@x.test")
	m.From = "news@sender.example"
	id := enqueue(t, s, m)
	got := wantStatus(t, s, id, queue.StatusQueued)
	for addr, want := range map[string]queue.RecipientStatus{"GONE@x.test": queue.RecipientSuppressed,
		"ok@x.test": queue.RecipientPending, "unsub@x.test": queue.RecipientSuppressed} {
		if r := recipient(t, got, addr); r.Status != want {
			t.Errorf("%s is %s, want %s", addr, r.Status, want)
		}
	}
	if r := recipient(t, got, "GONE@x.test"); r.Text == "" {
		t.Error("a suppressed recipient does not say why")
	}
	c := claimOne(t, s, "w", id, time.Minute)
	if len(c.Recipients) != 1 || c.Recipients[0].Address != "ok@x.test" {
		t.Fatalf("claimed recipients %+v, want only ok@x.test", c.Recipients)
	}
	complete(t, s, "w", queue.Result{MessageID: id, Recipients: []queue.RecipientResult{{Address: "ok@x.test", Status: queue.RecipientDelivered}}})
	wantStatus(t, s, id, queue.StatusPartial)
	// The scope is the sender's domain: another sender may mail unsub.
	other := newMsg("unsub@x.test")
	other.From = "shop@elsewhere.example"
	wantStatus(t, s, enqueue(t, s, other), queue.StatusQueued)
	// Every recipient suppressed: failed at once, and not leased either.
	all := newMsg("gone@x.test")
	e, err := s.EnqueueLeased(context.Background(), all, "n", time.Minute)
	if err != nil || e.Claimed != nil {
		t.Fatalf("EnqueueLeased of fully suppressed mail: %+v, %v", e.Claimed, err)
	}
	if m := wantStatus(t, s, e.ID, queue.StatusFailed); !m.NextAttemptAt.IsZero() {
		t.Errorf("final message due at %v", m.NextAttemptAt)
	}
	ignore := newMsg("gone@x.test")
	ignore.IgnoreSuppressions = true
	got = wantStatus(t, s, enqueue(t, s, ignore), queue.StatusQueued)
	if !got.IgnoreSuppressions || got.Recipients[0].Status != queue.RecipientPending {
		t.Errorf("IgnoreSuppressions message: %+v", got)
	}
}

// testBounces: a bounce turns a delivered recipient bounced and the
// message's status follows; history keeps every event.
func testBounces(t *testing.T, s queue.Store) {
	ctx := context.Background()
	id := enqueue(t, s, newMsg("a@x.test", "b@x.test"))
	deliverWith(t, s, id, queue.RecipientDelivered, queue.RecipientDelivered)
	evs := []queue.RecipientEvent{
		{MessageID: id, Address: "A@x.test", Type: queue.HistoryBounced, Code: 550, EnhancedCode: "5.1.1", Text: "no such user"},
		{MessageID: id, Address: "b@x.test", Type: queue.HistoryDelayed, Text: "delayed downstream"},
	}
	if err := s.AddRecipientEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
	m := wantStatus(t, s, id, queue.StatusPartial)
	if a := recipient(t, m, "a@x.test"); a.Status != queue.RecipientBounced || a.Code != 550 || a.EnhancedCode != "5.1.1" || a.Text != "no such user" {
		t.Errorf("bounced recipient %+v", a)
	}
	if b := recipient(t, m, "b@x.test"); b.Status != queue.RecipientDelivered {
		t.Errorf("a delay notice changed b to %s", b.Status)
	}
	if err := s.AddRecipientEvents(ctx, []queue.RecipientEvent{{MessageID: id, Address: "b@x.test", Type: queue.HistoryBounced},
		{MessageID: id, Address: "b@x.test", Type: queue.HistoryComplained}}); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, s, id, queue.StatusFailed)
	h, err := s.History(ctx, id)
	if err != nil || len(h) != 4 || h[0].Type != queue.HistoryBounced || h[0].Code != 550 || h[1].Type != queue.HistoryDelayed ||
		h[3].Type != queue.HistoryComplained || h[0].At.IsZero() || h[0].Address != "A@x.test" {
		t.Fatalf("History = %+v, %v", h, err)
	}
	// Bounced recipients can be requeued.
	if err := s.Requeue(ctx, id); err != nil {
		t.Fatalf("Requeue of a bounced message: %v", err)
	}
	wantStatus(t, s, id, queue.StatusQueued)
	for name, bad := range map[string]queue.RecipientEvent{
		"unknown message": {MessageID: "0190d5a0-0000-7000-8000-000000000000", Address: "a@x.test", Type: queue.HistoryBounced},
		"unknown type":    {MessageID: id, Address: "a@x.test", Type: "opened"},
	} {
		if err := s.AddRecipientEvents(ctx, []queue.RecipientEvent{bad}); err == nil {
			t.Errorf("AddRecipientEvents(%s) succeeded", name)
		}
	}
	if _, err := s.History(ctx, "0190d5a0-0000-7000-8000-000000000000"); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("History of an unknown message: %v, want ErrNotFound", err)
	}
}

// testDelete: final messages can be deleted one by one or by status and
// age; waiting ones cannot.
func testDelete(t *testing.T, s queue.Store) {
	ctx := context.Background()
	later := newMsg("w@x.test")
	later.SendAt = time.Now().Add(time.Hour)
	waiting := enqueue(t, s, later)
	if err := s.Delete(ctx, waiting); !errors.Is(err, queue.ErrNotFinal) {
		t.Errorf("Delete(queued): %v, want ErrNotFinal", err)
	}
	one := enqueue(t, s, newMsg("a@x.test"))
	deliverWith(t, s, one, queue.RecipientDelivered)
	if err := s.Delete(ctx, one); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, one); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("deleted message: %v", err)
	}
	if _, err := s.OpenBody(ctx, one); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("deleted message's body: %v", err)
	}
	if err := s.Delete(ctx, one); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("second Delete: %v, want ErrNotFound", err)
	}
	var failed, delivered []string
	for i := range 3 {
		f := enqueue(t, s, newMsg(fmt.Sprintf("f%d@x.test", i)))
		deliverWith(t, s, f, queue.RecipientFailed)
		failed = append(failed, f)
		d := enqueue(t, s, newMsg(fmt.Sprintf("d%d@x.test", i)))
		deliverWith(t, s, d, queue.RecipientDelivered)
		delivered = append(delivered, d)
	}
	time.Sleep(2 * time.Millisecond)
	cutoff := time.Now()
	time.Sleep(2 * time.Millisecond)
	late := enqueue(t, s, newMsg("late@x.test"))
	deliverWith(t, s, late, queue.RecipientFailed)
	if _, err := s.DeleteMessages(ctx, queue.DeleteFilter{Status: queue.StatusQueued, Before: cutoff}); !errors.Is(err, queue.ErrInvalid) {
		t.Errorf("DeleteMessages(queued): %v, want ErrInvalid", err)
	}
	if _, err := s.DeleteMessages(ctx, queue.DeleteFilter{}); !errors.Is(err, queue.ErrInvalid) {
		t.Errorf("DeleteMessages without Before: %v, want ErrInvalid", err)
	}
	n, err := s.DeleteMessages(ctx, queue.DeleteFilter{Status: queue.StatusFailed, Before: cutoff})
	if err != nil || n != 3 {
		t.Fatalf("DeleteMessages(failed) = %d, %v; want 3", n, err)
	}
	for _, id := range failed {
		if _, err := s.Get(ctx, id); !errors.Is(err, queue.ErrNotFound) {
			t.Errorf("failed message %s survived: %v", id, err)
		}
	}
	wantStatus(t, s, late, queue.StatusFailed)
	if n, err := s.DeleteMessages(ctx, queue.DeleteFilter{Before: time.Now().Add(time.Second)}); err != nil || n != 4 {
		t.Errorf("DeleteMessages(all final) = %d, %v; want the 3 delivered and the late one", n, err)
	}
	wantStatus(t, s, waiting, queue.StatusQueued)
	_ = delivered
}

package webhook_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/outbox-mail/outbox/queue"
	"github.com/outbox-mail/outbox/webhook"
)

// A bounce and a complaint recorded with their history, and an
// unsubscribe recorded with its suppression, reach the endpoints that
// want them, signed, with what happened in the payload; an endpoint
// that does not subscribe gets none, and a delay makes no event.
func TestFeedbackEventsPosted(t *testing.T) {
	st := newStore(t)
	rc := newReceiver(t, nil)
	only := newReceiver(t, nil)
	const secret = "feedback-secret"
	d := startDispatcher(t, webhook.Config{Store: st, Endpoints: []webhook.Endpoint{{URL: rc.srv.URL, Secret: secret},
		{URL: only.srv.URL, Secret: secret, Events: []string{webhook.TypeUnsubscribed}}}})
	ob := startClient(t, st, d, nil) // nil: the capture transport
	id := enqueue(t, ob, "b@x.test", "c@x.test")
	m, err := st.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	bounce := queue.RecipientEvent{MessageID: id, Address: "b@x.test", Type: queue.HistoryBounced, EnhancedCode: "5.1.1", Text: "550 5.1.1 no such user"}
	complaint := queue.RecipientEvent{MessageID: id, Address: "c@x.test", Type: queue.HistoryComplained}
	delay := queue.RecipientEvent{MessageID: id, Address: "c@x.test", Type: queue.HistoryDelayed}
	if evs := d.FeedbackEvents(m, delay, ""); len(evs) != 0 {
		t.Errorf("a delay makes events: %+v", evs)
	}
	hooks := append(d.FeedbackEvents(m, bounce, ""), d.FeedbackEvents(m, complaint, "abuse")...)
	if len(hooks) != 2 {
		t.Fatalf("%d events for a bounce and a complaint, want 2 (one endpoint wants them)", len(hooks))
	}
	if err := st.AddRecipientEvents(ctx, []queue.RecipientEvent{bounce, complaint, delay}, hooks...); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := st.Suppress(ctx, []queue.Suppression{{Address: "c@x.test", Scope: "x.test", Cause: queue.CauseUnsubscribed}},
		d.UnsubscribedEvents("c@x.test", "x.test", "", at)...); err != nil {
		t.Fatal(err)
	}
	d.Notify()
	got := map[string]map[string]any{}
	for range 5 { // delivered twice, bounced, complained, unsubscribed
		h := rc.wait(t)
		var p map[string]any
		if err := json.Unmarshal(h.body, &p); err != nil || webhook.Verify(secret, h.header, h.body, time.Minute) != nil {
			t.Fatalf("payload %s: %v", h.body, err)
		}
		got[p["type"].(string)+" "+p["recipient"].(string)] = p
	}
	b := got["bounced b@x.test"]
	if b == nil || b["message_id"] != id || mustJSON(b["smtp"]) != `{"code":0,"enhanced_code":"5.1.1","text":"550 5.1.1 no such user"}` {
		t.Errorf("bounced event %v (all: %v)", b, got)
	}
	if c := got["complained c@x.test"]; c == nil || c["feedback_type"] != "abuse" || c["message_id"] != id {
		t.Errorf("complained event %v", c)
	}
	if u := got["unsubscribed c@x.test"]; u == nil || u["domain"] != "x.test" || u["timestamp"] != "2026-01-02T03:04:05Z" {
		t.Errorf("unsubscribed event %v", u)
	}
	h := only.wait(t)
	var p map[string]any
	json.Unmarshal(h.body, &p)
	if p["type"] != "unsubscribed" {
		t.Errorf("the unsubscribed-only endpoint got %s", h.body)
	}
	var nilD *webhook.Dispatcher
	if nilD.FeedbackEvents(m, bounce, "") != nil || nilD.UnsubscribedEvents("a@x", "x", "", at) != nil {
		t.Error("a nil dispatcher made events")
	}
}

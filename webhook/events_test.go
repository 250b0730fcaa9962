package webhook_test

import (
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	outbox "github.com/outbox-mail/outbox"
	"github.com/outbox-mail/outbox/delivery"
	"github.com/outbox-mail/outbox/message"
	"github.com/outbox-mail/outbox/queue"
	"github.com/outbox-mail/outbox/webhook"
)

// startClient runs a real outbox client on st with the dispatcher's hooks.
func startClient(t *testing.T, st queue.Store, d *webhook.Dispatcher, tr delivery.Transport) *outbox.Client {
	t.Helper()
	ob, err := outbox.New(outbox.Config{Store: st, Transport: tr, PollInterval: -1,
		Events: d.EventsFor, OnResult: d.ResultCommitted})
	if err != nil {
		t.Fatal(err)
	}
	if err := ob.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ob.Shutdown(ctx)
	})
	return ob
}

func enqueue(t *testing.T, ob *outbox.Client, to ...string) string {
	t.Helper()
	m := &message.Message{From: message.Address{Email: "a@x.test"}, Subject: "s", Text: "t"}
	for _, a := range to {
		m.To = append(m.To, message.Address{Email: a})
	}
	id, err := ob.Enqueue(context.Background(), m, nil)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestDeliveredEventEndToEnd(t *testing.T) {
	st := newStore(t)
	rc := newReceiver(t, nil)
	const secret = "e2e-secret"
	d := startDispatcher(t, webhook.Config{Store: st,
		Endpoints: []webhook.Endpoint{{URL: rc.srv.URL, Secret: secret}}})
	ob := startClient(t, st, d, nil) // nil: the capture transport
	id := enqueue(t, ob, "b@x.test")

	h := rc.wait(t)
	if err := webhook.Verify(secret, h.header, h.body, time.Minute); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	for k, want := range map[string]string{"Content-Type": "application/json", "User-Agent": "outbox-webhook/1"} {
		if got := h.header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	var p map[string]any
	if err := json.Unmarshal(h.body, &p); err != nil {
		t.Fatalf("payload %s: %v", h.body, err)
	}
	want := map[string]any{"type": "delivered", "message_id": id, "recipient": "b@x.test",
		"attempt": 1.0, "from": "a@x.test", "subject": "s",
		"smtp": map[string]any{"code": 250.0, "enhanced_code": "2.0.0", "text": "captured"}}
	for k, v := range want {
		if got, _ := json.Marshal(p[k]); string(got) != mustJSON(v) {
			t.Errorf("payload %s = %s, want %s", k, got, mustJSON(v))
		}
	}
	if p["id"] == "" || p["id"] != h.header.Get("Outbox-Event-Id") {
		t.Errorf("payload id %v, header %q: want the same, non-empty", p["id"], h.header.Get("Outbox-Event-Id"))
	}
	if ts, _ := p["timestamp"].(string); !validTime(ts) {
		t.Errorf("timestamp %q is not RFC 3339", ts)
	}
	if _, ok := p["next_attempt_at"]; ok {
		t.Error("a delivered event carries next_attempt_at")
	}
	noneDue(t, st)
	rc.quiet(t, 100*time.Millisecond)
}

// rejecting fails recipients whose address starts with "bad" (550) and
// defers those starting with "later" (451); it accepts the rest.
type rejecting struct{}

func (rejecting) Route() string { return "test" }

func (rejecting) Deliver(_ context.Context, env delivery.Envelope, body io.Reader) delivery.Outcome {
	io.Copy(io.Discard, body)
	var out delivery.Outcome
	for _, r := range env.Recipients {
		rep := delivery.Reply{Code: 250, EnhancedCode: "2.0.0", Text: "ok"}
		if strings.HasPrefix(r, "bad") {
			rep = delivery.Reply{Code: 550, EnhancedCode: "5.1.1", Text: "no such user"}
		} else if strings.HasPrefix(r, "later") {
			rep = delivery.Reply{Code: 451, EnhancedCode: "4.3.0", Text: "try later"}
		}
		out.Recipients = append(out.Recipients, delivery.RecipientReply{Address: r, Reply: rep})
	}
	return out
}

func TestEndpointTypeFilter(t *testing.T) {
	st := newStore(t)
	all := newReceiver(t, nil)
	failedOnly := newReceiver(t, nil)
	d := startDispatcher(t, webhook.Config{Store: st, Endpoints: []webhook.Endpoint{
		{URL: all.srv.URL, Secret: "a"},
		{URL: failedOnly.srv.URL, Secret: "f", Events: []string{"failed"}},
	}})
	ob := startClient(t, st, d, rejecting{})
	enqueue(t, ob, "good@x.test", "bad@x.test")

	types := map[string]string{}
	for range 2 {
		h := all.wait(t)
		var p webhook.Payload
		json.Unmarshal(h.body, &p)
		types[p.Recipient] = p.Type
	}
	if types["good@x.test"] != "delivered" || types["bad@x.test"] != "failed" {
		t.Errorf("all-types endpoint got %v", types)
	}
	h := failedOnly.wait(t)
	var p webhook.Payload
	if err := json.Unmarshal(h.body, &p); err != nil {
		t.Fatal(err)
	}
	if p.Type != "failed" || p.Recipient != "bad@x.test" || p.SMTP == nil || p.SMTP.Code != 550 {
		t.Errorf("failed-only endpoint got %s", h.body)
	}
	if err := webhook.Verify("f", h.header, h.body, time.Minute); err != nil {
		t.Errorf("Verify with the failed-only endpoint's secret: %v", err)
	}
	noneDue(t, st)
	failedOnly.quiet(t, 100*time.Millisecond)
}

func TestDeferredPayload(t *testing.T) {
	st := newStore(t)
	rc := newReceiver(t, nil)
	d := startDispatcher(t, webhook.Config{Store: st,
		Endpoints: []webhook.Endpoint{{URL: rc.srv.URL, Secret: "s", Events: []string{"deferred"}}}})
	ob := startClient(t, st, d, rejecting{})
	id := enqueue(t, ob, "later@x.test")

	h := rc.wait(t)
	var p webhook.Payload
	if err := json.Unmarshal(h.body, &p); err != nil {
		t.Fatal(err)
	}
	if p.Type != "deferred" || p.MessageID != id || p.Attempt != 1 || p.SMTP == nil || p.SMTP.Code != 451 {
		t.Errorf("deferred payload %s", h.body)
	}
	next, err := time.Parse(time.RFC3339, p.NextAttemptAt)
	if err != nil || !next.After(time.Now()) {
		t.Errorf("next_attempt_at %q: want a future RFC 3339 time (%v)", p.NextAttemptAt, err)
	}
}

func TestCancelledEvents(t *testing.T) {
	st := newStore(t)
	rc := newReceiver(t, nil)
	deliveredOnly := newReceiver(t, nil)
	d := startDispatcher(t, webhook.Config{Store: st, Endpoints: []webhook.Endpoint{
		{URL: rc.srv.URL, Secret: "s"},
		{URL: deliveredOnly.srv.URL, Secret: "d", Events: []string{"delivered"}},
	}})
	ctx := context.Background()
	id, err := st.Enqueue(ctx, queue.NewMessage{From: "a@x.test", Recipients: []string{"b@x.test", "c@x.test"},
		Subject: "later", Body: strings.NewReader("Subject: later\r\n\r\nhi\r\n"), SendAt: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Cancel(ctx, id); err != nil {
		t.Fatal(err)
	}
	m, err := st.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Cancelled(ctx, m); err != nil {
		t.Fatal(err)
	}
	h := rc.wait(t)
	if err := webhook.Verify("s", h.header, h.body, time.Minute); err != nil {
		t.Fatal(err)
	}
	var p webhook.Payload
	if err := json.Unmarshal(h.body, &p); err != nil {
		t.Fatal(err)
	}
	if p.Type != "cancelled" || p.MessageID != id || p.From != "a@x.test" || p.Subject != "later" ||
		strings.Join(p.Recipients, ",") != "b@x.test,c@x.test" || p.Recipient != "" || p.SMTP != nil {
		t.Errorf("cancelled payload %s", h.body)
	}
	noneDue(t, st)
	deliveredOnly.quiet(t, 100*time.Millisecond)
}

// TestEventsForDirect checks EventsFor on a hand-made result: one event per
// wanting endpoint per recipient outcome, none for a pending recipient.
func TestEventsForDirect(t *testing.T) {
	d := newDispatcher(t, webhook.Config{Store: newStore(t), Endpoints: []webhook.Endpoint{
		{URL: "https://one.example/hook", Secret: "1"},
		{URL: "http://two.example/hook", Secret: "2", Events: []string{"failed", "deferred"}},
	}})
	c := &queue.Claimed{Message: queue.Message{ID: "m1", From: "a@x.test", Subject: "s", Attempts: 3}}
	r := &queue.Result{MessageID: "m1", NextAttemptAt: time.Now().Add(time.Hour),
		Attempt: queue.Attempt{Number: 3, FinishedAt: time.Now(), Error: "connection reset"},
		Recipients: []queue.RecipientResult{
			{Address: "d@x.test", Status: queue.RecipientDelivered, Code: 250},
			{Address: "f@x.test", Status: queue.RecipientFailed, Code: 550},
			{Address: "w@x.test", Status: queue.RecipientDeferred},
			{Address: "p@x.test", Status: queue.RecipientPending},
		}}
	events := d.EventsFor(c, r)
	var got []string
	for _, e := range events {
		var p webhook.Payload
		if err := json.Unmarshal(e.Payload, &p); err != nil {
			t.Fatal(err)
		}
		if p.Type != e.Type || p.MessageID != e.MessageID || p.Attempt != 3 {
			t.Errorf("event %+v has payload %s", e, e.Payload)
		}
		if p.Recipient == "w@x.test" && (p.SMTP != nil || p.Error != "connection reset" || p.NextAttemptAt == "") {
			t.Errorf("deferred without a reply: %s", e.Payload)
		}
		got = append(got, e.Endpoint[:10]+" "+e.Type)
	}
	want := "https://on delivered|https://on failed|http://two failed|https://on deferred|http://two deferred"
	if strings.Join(got, "|") != want {
		t.Errorf("events\n got %s\nwant %s", strings.Join(got, "|"), want)
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func validTime(s string) bool {
	_, err := time.Parse(time.RFC3339, s)
	return err == nil
}

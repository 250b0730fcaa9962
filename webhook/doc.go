// Package webhook tells other systems what became of mail: it POSTs a signed
// JSON event to configured URLs when a recipient is delivered, deferred or
// failed, or a message is cancelled, and when a bounce report, a complaint
// or an unsubscribe comes back after sending (FeedbackEvents,
// UnsubscribedEvents).
//
// Events are durable. EventsFor builds them while a delivery result is being
// recorded, so the store commits result and events in one transaction (plug
// it into outbox.Config.Events, and ResultCommitted into
// outbox.Config.OnResult so the dispatcher wakes at once). Cancelled records
// a cancellation's event with Store.AddEvents. A Dispatcher then claims due
// events from the same store under a lease and POSTs them, retrying with
// backoff, so an event outlives a restart or a receiver that is down. Each
// event is delivered at least once: a receiver should deduplicate on its id.
//
// # Payload
//
// The body is one JSON object (field order is stable):
//
//	{
//	  "id": "0193…",                  // event id, the same in Outbox-Event-Id
//	  "type": "delivered",            // delivered, deferred, failed, cancelled,
//	                                  // bounced, complained, unsubscribed
//	  "message_id": "…",              // unsubscribed by a one-click link: ""
//	  "recipient": "b@x.test",        // all but cancelled
//	  "recipients": ["b@x.test"],     // cancelled: recipients not delivered
//	  "attempt": 2,                   // delivery attempt number, from 1
//	  "smtp": {"code": 250, "enhanced_code": "2.0.0", "text": "OK"},
//	                                  // bounced: the report's status and diagnostic
//	  "error": "dial tcp: …",         // no SMTP reply: why (connection level)
//	  "next_attempt_at": "RFC 3339",  // deferred only
//	  "feedback_type": "abuse",       // complained: the report's Feedback-Type
//	  "domain": "shop.example",       // unsubscribed: the sender domain left
//	  "from": "a@x.test",
//	  "subject": "…",
//	  "timestamp": "RFC 3339, UTC"    // when it happened
//	}
//
// Fields that do not apply are left out: "smtp" when no reply was received,
// "error" when there was a reply, "recipient"/"attempt" for cancelled,
// "recipients" for the others. Payload is the Go type of this object.
//
// # Signature
//
// Every POST carries Content-Type application/json, User-Agent
// outbox-webhook/1 and:
//
//	Outbox-Event-Id: <id>
//	Outbox-Timestamp: <unix seconds when this POST was made>
//	Outbox-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>
//
// A receiver verifies an event by reading the raw body (before any JSON
// decoding), computing HMAC-SHA256 keyed with the endpoint's secret over the
// Outbox-Timestamp value, a ".", and the body, and comparing its hex form
// with the v1 value in constant time; then it rejects timestamps too far from
// its own clock, which stops an old captured request being replayed. Verify
// does exactly this. The timestamp is inside the signed text, so it cannot be
// changed without breaking the signature. In a Go receiver:
//
//	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
//	if err != nil || webhook.Verify(secret, r.Header, body, 5*time.Minute) != nil {
//		http.Error(w, "bad signature", http.StatusUnauthorized)
//		return
//	}
//	// Deduplicate on Outbox-Event-Id, then handle the event; answer 2xx.
//
// Secrets are only ever used to sign; they are never logged, and endpoint
// URLs appear in logs and errors with any password and query hidden.
//
// # Retries
//
// A 2xx response delivers the event. Anything else (another status, a
// redirect, which is not followed, a transport error or timeout) schedules a
// retry after Initial (10s), doubling each attempt up to Max (1h). An event
// is abandoned — kept in the store with its last error, never sent again —
// after MaxAttempts (20) attempts or when its next attempt would fall more
// than MaxAge (24h) after it was created, or at once when its endpoint is no
// longer configured. A POST cut short by Shutdown is made due again at
// once (it still counts as an attempt), so a restart resends it without
// waiting for its lease.
package webhook

package webhook

import (
	"context"
	"encoding/json"
	"time"

	"github.com/google/uuid"

	"github.com/outbox-mail/outbox/queue"
)

// Payload is the JSON body of an event; see the package documentation for
// which fields each type carries.
type Payload struct {
	ID            string     `json:"id"`
	Type          string     `json:"type"`
	MessageID     string     `json:"message_id"`
	Recipient     string     `json:"recipient,omitempty"`
	Recipients    []string   `json:"recipients,omitempty"`
	Attempt       int        `json:"attempt,omitempty"`
	SMTP          *SMTPReply `json:"smtp,omitempty"`
	Error         string     `json:"error,omitempty"`
	NextAttemptAt string     `json:"next_attempt_at,omitempty"`
	// FeedbackType is a complaint's Feedback-Type (abuse, fraud…).
	FeedbackType string `json:"feedback_type,omitempty"`
	// Domain is the sender domain an unsubscribe is from.
	Domain    string `json:"domain,omitempty"`
	From      string `json:"from"`
	Subject   string `json:"subject"`
	Timestamp string `json:"timestamp"`
}

// SMTPReply is the server's last reply for a recipient.
type SMTPReply struct {
	Code         int    `json:"code"`
	EnhancedCode string `json:"enhanced_code,omitempty"`
	Text         string `json:"text,omitempty"`
}

// eventType maps a recipient's outcome to an event type; pending (an
// attempt interrupted before the recipient was tried) has none.
func eventType(s queue.RecipientStatus) (string, bool) {
	switch s {
	case queue.RecipientDelivered:
		return TypeDelivered, true
	case queue.RecipientDeferred:
		return TypeDeferred, true
	case queue.RecipientFailed:
		return TypeFailed, true
	}
	return "", false
}

// EventsFor returns the events of one delivery result: for every recipient
// delivered, deferred or failed, one event per endpoint that wants that
// type. Its signature is outbox.Config.Events's, so the events are
// committed in the same transaction as the result.
func (d *Dispatcher) EventsFor(c *queue.Claimed, r *queue.Result) []queue.NewEvent {
	if len(d.eps.Load().list) == 0 || c == nil || r == nil {
		return nil
	}
	at := r.Attempt.FinishedAt
	if at.IsZero() {
		at = time.Now()
	}
	var out []queue.NewEvent
	for _, rr := range r.Recipients {
		typ, ok := eventType(rr.Status)
		if !ok {
			continue
		}
		p := Payload{
			ID: newID(), Type: typ, MessageID: r.MessageID, Recipient: rr.Address,
			Attempt: r.Attempt.Number, From: c.From, Subject: c.Subject, Timestamp: stamp(at),
		}
		if rr.Code != 0 {
			p.SMTP = &SMTPReply{Code: rr.Code, EnhancedCode: rr.EnhancedCode, Text: rr.Text}
		} else {
			p.Error = r.Attempt.Error
		}
		if typ == TypeDeferred && !r.NextAttemptAt.IsZero() {
			p.NextAttemptAt = stamp(r.NextAttemptAt)
		}
		out = d.appendFor(out, &p)
	}
	return out
}

// ResultCommitted wakes the dispatcher when a committed result carried
// events. Its signature is outbox.Config.OnResult's: EventsFor runs before
// the commit, too early to wake anyone.
func (d *Dispatcher) ResultCommitted(_ *queue.Claimed, r *queue.Result) {
	if r != nil && len(r.Events) > 0 {
		d.Notify()
	}
}

// Cancelled records a "cancelled" event for message m, one per endpoint
// that wants it, listing the recipients that were not delivered. Call it
// after the store's Cancel succeeded; m may be read before or after it.
func (d *Dispatcher) Cancelled(ctx context.Context, m *queue.Message) error {
	if len(d.eps.Load().list) == 0 || m == nil {
		return nil
	}
	p := Payload{
		ID: newID(), Type: TypeCancelled, MessageID: m.ID, Recipients: []string{},
		From: m.From, Subject: m.Subject, Timestamp: stamp(time.Now()),
	}
	for _, r := range m.Recipients {
		if r.Status != queue.RecipientDelivered {
			p.Recipients = append(p.Recipients, r.Address)
		}
	}
	events := d.appendFor(nil, &p)
	if len(events) == 0 {
		return nil
	}
	if err := d.cfg.Store.AddEvents(ctx, events); err != nil {
		return err
	}
	d.Notify()
	return nil
}

// appendFor adds p, encoded once, as an event for every endpoint that wants
// its type. All endpoints share the id: it names what happened, and each
// receiver deduplicates on its own.
func (d *Dispatcher) appendFor(out []queue.NewEvent, p *Payload) []queue.NewEvent {
	var body []byte
	eps := d.eps.Load().list
	for i := range eps {
		ep := &eps[i]
		if !ep.wants(p.Type) {
			continue
		}
		if body == nil {
			var err error
			// Payload holds only strings, ints and slices: Marshal cannot fail.
			if body, err = json.Marshal(p); err != nil {
				d.log.Error("encoding webhook event", "type", p.Type, "message", p.MessageID, "err", err)
				return out
			}
		}
		out = append(out, queue.NewEvent{Endpoint: ep.URL, Type: p.Type, MessageID: p.MessageID, Payload: body})
	}
	return out
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// newID returns a time-ordered UUID, so ids sort by when events happened.
func newID() string {
	if id, err := uuid.NewV7(); err == nil {
		return id.String()
	}
	return uuid.NewString()
}

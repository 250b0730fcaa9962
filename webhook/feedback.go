package webhook

import (
	"time"

	"github.com/outbox-mail/outbox/queue"
)

// FeedbackEvents returns the events of what a report said about one
// recipient of m after it was sent: "bounced" for a bounce, with the
// report's status and diagnostic as "smtp", "complained" for a complaint,
// with its feedbackType; a delay has none. They are meant for
// queue.Feedback.AddRecipientEvents, which records them in the same
// transaction as the history; call Notify after it. A nil Dispatcher
// returns none.
func (d *Dispatcher) FeedbackEvents(m *queue.Message, e queue.RecipientEvent, feedbackType string) []queue.NewEvent {
	if d == nil || len(d.eps.Load().list) == 0 || m == nil {
		return nil
	}
	at := e.At
	if at.IsZero() {
		at = time.Now()
	}
	p := Payload{ID: newID(), MessageID: m.ID, Recipient: e.Address, From: m.From, Subject: m.Subject, Timestamp: stamp(at)}
	switch e.Type {
	case queue.HistoryBounced:
		p.Type = TypeBounced
		p.SMTP = &SMTPReply{Code: e.Code, EnhancedCode: e.EnhancedCode, Text: e.Text}
	case queue.HistoryComplained:
		p.Type, p.FeedbackType = TypeComplained, feedbackType
	default:
		return nil
	}
	return d.appendFor(nil, &p)
}

// UnsubscribedEvents returns the "unsubscribed" events of address
// leaving the mail of domain, with messageID when it is known (mail to
// the unsubscribe address names it; a one-click link does not). They are
// meant for queue.SuppressionList.Suppress, which records them with the
// suppression; call Notify after it. A nil Dispatcher returns none.
func (d *Dispatcher) UnsubscribedEvents(address, domain, messageID string, at time.Time) []queue.NewEvent {
	if d == nil || len(d.eps.Load().list) == 0 {
		return nil
	}
	p := Payload{ID: newID(), Type: TypeUnsubscribed, MessageID: messageID, Recipient: address,
		Domain: domain, Timestamp: stamp(at)}
	return d.appendFor(nil, &p)
}

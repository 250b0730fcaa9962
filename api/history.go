package api

import (
	"context"
	"time"

	"github.com/outbox-mail/outbox/queue"
)

// HistoryEvent is one thing learnt about a recipient after sending: a
// bounce report, a delay notice or a complaint.
type HistoryEvent struct {
	Type         queue.HistoryType `json:"type"` // bounced, delayed, complained
	Recipient    string            `json:"recipient"`
	Code         int               `json:"code,omitempty"`
	EnhancedCode string            `json:"enhanced_code,omitempty"`
	Text         string            `json:"text,omitempty"`
	At           time.Time         `json:"at"`
}

// history reads message id's recipient history for the API.
func (h *Handler) history(ctx context.Context, id string) ([]HistoryEvent, error) {
	evs, err := h.client.Store().History(ctx, id)
	if err != nil {
		return nil, err
	}
	out := make([]HistoryEvent, 0, len(evs))
	for _, e := range evs {
		out = append(out, HistoryEvent{Type: e.Type, Recipient: e.Address, Code: e.Code,
			EnhancedCode: e.EnhancedCode, Text: e.Text, At: e.At.UTC()})
	}
	return out, nil
}

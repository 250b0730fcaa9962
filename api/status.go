package api

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/outbox-mail/outbox/queue"
)

// Message is a message as GET /v1/messages/{id} and the listing show it.
type Message struct {
	ID             string            `json:"id"`
	Status         queue.Status      `json:"status"`
	From           string            `json:"from"`
	Subject        string            `json:"subject"`
	Size           int64             `json:"size"`
	AttemptCount   int               `json:"attempt_count"`
	IdempotencyKey string            `json:"idempotency_key,omitempty"`
	Tags           map[string]string `json:"tags,omitempty"`
	CreatedAt      time.Time         `json:"created_at"`
	UpdatedAt      time.Time         `json:"updated_at"`
	NextAttemptAt  *time.Time        `json:"next_attempt_at,omitempty"`
	ExpiresAt      *time.Time        `json:"expires_at,omitempty"`
	Recipients     []Recipient       `json:"recipients"`
	// Attempts is given by GET /v1/messages/{id} only, not in listings.
	Attempts []Attempt `json:"attempts,omitempty"`
	// History is what was learnt of the recipients after sending
	// (bounces, delays, complaints), oldest first; GET /v1/messages/{id}
	// only.
	History []HistoryEvent `json:"history,omitempty"`
}

// Recipient is one recipient's status with its last SMTP reply.
type Recipient struct {
	Address       string                `json:"address"`
	Status        queue.RecipientStatus `json:"status"`
	Attempts      int                   `json:"attempts"`
	Code          int                   `json:"code,omitempty"`
	EnhancedCode  string                `json:"enhanced_code,omitempty"`
	Text          string                `json:"text,omitempty"`
	LastAttemptAt *time.Time            `json:"last_attempt_at,omitempty"`
}

// Attempt is one delivery attempt with its redacted transcript.
type Attempt struct {
	Number     int        `json:"number"`
	StartedAt  time.Time  `json:"started_at"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
	Route      string     `json:"route,omitempty"`
	Host       string     `json:"host,omitempty"`
	Reply      string     `json:"reply,omitempty"`
	Error      string     `json:"error,omitempty"`
	Transcript string     `json:"transcript,omitempty"`
}

// optTime makes a zero time absent from the JSON instead of year 1.
func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

func viewMessage(m *queue.Message) Message {
	v := Message{
		ID: m.ID, Status: m.Status, From: m.From, Subject: m.Subject, Size: m.Size,
		AttemptCount: m.Attempts, IdempotencyKey: m.IdempotencyKey, Tags: m.Tags,
		CreatedAt: m.CreatedAt.UTC(), UpdatedAt: m.UpdatedAt.UTC(),
		NextAttemptAt: optTime(m.NextAttemptAt), ExpiresAt: optTime(m.ExpiresAt),
		Recipients: make([]Recipient, 0, len(m.Recipients)),
	}
	for _, r := range m.Recipients {
		v.Recipients = append(v.Recipients, Recipient{
			Address: r.Address, Status: r.Status, Attempts: r.Attempts, Code: r.Code,
			EnhancedCode: r.EnhancedCode, Text: r.Text, LastAttemptAt: optTime(r.LastAttemptAt),
		})
	}
	return v
}

// fullView reads a message and its attempts.
func (h *Handler) fullView(ctx context.Context, id string) (*Message, *apiError) {
	st := h.client.Store()
	m, err := st.Get(ctx, id)
	if err != nil {
		return nil, h.lookupError(err, id)
	}
	atts, err := st.Attempts(ctx, id)
	if err != nil {
		return nil, h.lookupError(err, id)
	}
	v := viewMessage(m)
	if v.History, err = h.history(ctx, id); err != nil {
		return nil, h.lookupError(err, id)
	}
	for _, a := range atts {
		v.Attempts = append(v.Attempts, Attempt{
			Number: a.Number, StartedAt: a.StartedAt.UTC(), FinishedAt: optTime(a.FinishedAt),
			Route: a.Route, Host: a.Host, Reply: a.Reply, Error: a.Error, Transcript: a.Transcript,
		})
	}
	return &v, nil
}

// lookupError maps a store error about message id to a response.
func (h *Handler) lookupError(err error, id string) *apiError {
	switch {
	case errors.Is(err, queue.ErrNotFound):
		return &apiError{Status: http.StatusNotFound, Field: "id", Msg: "No message has the id " + strconv.Quote(id) + "."}
	case errors.Is(err, queue.ErrFinal):
		return &apiError{Status: http.StatusConflict, Msg: "The message is already final (delivered, failed or cancelled), so this changes nothing."}
	case errors.Is(err, queue.ErrSending):
		return &apiError{Status: http.StatusConflict, Msg: "The message is being delivered right now; try again once this attempt ends."}
	}
	return h.storeError(err)
}

func (h *Handler) getMessage(w http.ResponseWriter, r *http.Request) {
	v, e := h.fullView(r.Context(), r.PathValue("id"))
	if e != nil {
		writeError(w, e)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// ListPage is the body of GET /v1/messages.
type ListPage struct {
	Messages   []Message `json:"messages"`
	NextCursor string    `json:"next_cursor,omitempty"`
}

func (h *Handler) listMessages(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := queue.Filter{
		Status: queue.Status(q.Get("status")), Recipient: q.Get("recipient"),
		From: q.Get("from"), Subject: q.Get("subject"), Cursor: q.Get("cursor"),
	}
	for _, p := range []struct{ field, v string }{{"recipient", f.Recipient}, {"from", f.From},
		{"subject", f.Subject}, {"cursor", f.Cursor}, {"to", q.Get("to")}} {
		if !utf8.ValidString(p.v) || strings.IndexByte(p.v, 0) >= 0 {
			writeError(w, badRequest(p.field, "%s must be valid UTF-8 text without NUL bytes", p.field))
			return
		}
	}
	if f.Status != "" && !f.Status.Valid() {
		writeError(w, badRequest("status", "unknown status %q; use queued, sending, deferred, delivered, partial, failed or cancelled", f.Status))
		return
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			writeError(w, badRequest("limit", "limit must be a whole number from 1 to 1000"))
			return
		}
		f.Limit = n
	}
	e := extraFilters(q, &f)
	var wait time.Duration
	if e == nil {
		wait, e = waitParam(q)
	}
	if e != nil {
		writeError(w, e)
		return
	}
	page, err := h.listWaiting(r.Context(), f, wait)
	if errors.Is(err, context.Canceled) {
		return // the client stopped waiting
	}
	if errors.Is(err, queue.ErrInvalid) {
		// The filter was checked above, so what is left is the cursor.
		writeError(w, badRequest("cursor", "cursor is not one this server returned"))
		return
	}
	if err != nil {
		writeError(w, h.storeError(err))
		return
	}
	out := ListPage{Messages: make([]Message, 0, len(page.Messages)), NextCursor: page.Next}
	for i := range page.Messages {
		out.Messages = append(out.Messages, viewMessage(&page.Messages[i]))
	}
	writeJSON(w, http.StatusOK, out)
}

// retryMessage makes a message due now; with ?include_failed=true its
// failed recipients are tried again too.
func (h *Handler) retryMessage(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	includeFailed := false
	if s := r.URL.Query().Get("include_failed"); s != "" {
		b, err := strconv.ParseBool(s)
		if err != nil {
			writeError(w, badRequest("include_failed", "include_failed must be true or false"))
			return
		}
		includeFailed = b
	}
	h.steer(w, r, id, func(ctx context.Context) error {
		if includeFailed {
			return h.client.Requeue(ctx, id)
		}
		return h.client.Retry(ctx, id)
	})
}

func (h *Handler) cancelMessage(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	h.steer(w, r, id, func(ctx context.Context) error {
		return h.client.Cancel(ctx, id)
	})
}

// steer applies op to message id and answers with the message after it.
func (h *Handler) steer(w http.ResponseWriter, r *http.Request, id string, op func(context.Context) error) {
	if err := op(r.Context()); err != nil {
		writeError(w, h.lookupError(err, id))
		return
	}
	// A retried message is due now: wake the workers rather than letting
	// them sleep until their previous wake-up time.
	h.client.Notify()
	h.changes.Notify()
	h.getMessage(w, r)
}

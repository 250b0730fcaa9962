package api

import (
	"errors"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/outbox-mail/outbox/queue"
)

// Deleted is the answer of DELETE /v1/messages.
type Deleted struct {
	Deleted int `json:"deleted"`
}

// Retried is the answer of POST /v1/messages/retry.
type Retried struct {
	Retried int `json:"retried"`
}

// Cancelled is the answer of POST /v1/messages/cancel.
type Cancelled struct {
	Cancelled int `json:"cancelled"`
}

// deleteMessage removes one final message with all it owns: 204, or 409
// for a message still waiting or being sent.
func (h *Handler) deleteMessage(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	err := h.client.Store().Delete(r.Context(), id)
	switch {
	case errors.Is(err, queue.ErrNotFinal):
		writeError(w, &apiError{Status: http.StatusConflict,
			Msg: "The message is still waiting or being sent; cancel it first, then delete it."})
	case err != nil:
		writeError(w, h.lookupError(err, id))
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

// onlyParams refuses a query parameter outside allowed: for operations
// that change many messages, a misspelt filter must not silently select
// more than was meant.
func onlyParams(q url.Values, allowed ...string) *apiError {
	var unknown []string
	for k := range q {
		ok := false
		for _, a := range allowed {
			ok = ok || k == a
		}
		if !ok {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	sort.Strings(unknown)
	return badRequest(unknown[0], "unknown parameter %q; this operation takes %s", unknown[0], strings.Join(allowed, ", "))
}

// timeParam parses an optional RFC 3339 parameter.
func timeParam(q url.Values, name string) (time.Time, *apiError) {
	s := q.Get(name)
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, badRequest(name, "%s must be an RFC 3339 time such as 2025-01-02T15:04:05Z", name)
	}
	return t, nil
}

// deleteMessages removes the final messages with a status (any final one
// when not given) created before a time (now when not given): the call
// that clears a capture inbox between tests. Waiting mail is never
// removed.
func (h *Handler) deleteMessages(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if e := onlyParams(q, "status", "before"); e != nil {
		writeError(w, e)
		return
	}
	f := queue.DeleteFilter{Status: queue.Status(q.Get("status"))}
	if f.Status != "" && !f.Status.Final() {
		writeError(w, badRequest("status", "only final messages can be deleted: status must be delivered, partial, failed or cancelled"))
		return
	}
	before, e := timeParam(q, "before")
	if e != nil {
		writeError(w, e)
		return
	}
	if before.IsZero() {
		before = time.Now()
	}
	f.Before = before
	n, err := h.client.Store().DeleteMessages(r.Context(), f)
	if err != nil {
		writeError(w, h.storeError(err))
		return
	}
	writeJSON(w, http.StatusOK, Deleted{Deleted: n})
}

// selection reads the filter of a bulk retry or cancel.
func selection(q url.Values) (queue.Selection, *apiError) {
	if e := onlyParams(q, "status", "route", "to", "before"); e != nil {
		return queue.Selection{}, e
	}
	sel := queue.Selection{Status: queue.Status(q.Get("status")), Route: q.Get("route"), Recipient: q.Get("to")}
	switch sel.Status {
	case "", queue.StatusQueued, queue.StatusDeferred:
	default:
		return sel, badRequest("status", "status must be queued or deferred: only waiting messages are steered in bulk")
	}
	for _, p := range []struct{ name, v string }{{"route", sel.Route}, {"to", sel.Recipient}} {
		if strings.ContainsAny(p.v, "\x00\r\n") || !utf8.ValidString(p.v) {
			return sel, badRequest(p.name, "%s must be one line of UTF-8 text", p.name)
		}
	}
	var e *apiError
	sel.Before, e = timeParam(q, "before")
	return sel, e
}

// retryMatching makes the waiting messages a filter selects due now.
func (h *Handler) retryMatching(w http.ResponseWriter, r *http.Request) {
	sel, e := selection(r.URL.Query())
	if e != nil {
		writeError(w, e)
		return
	}
	n, err := h.client.RetryMessages(r.Context(), sel)
	if err != nil {
		writeError(w, h.storeError(err))
		return
	}
	h.changes.Notify()
	writeJSON(w, http.StatusOK, Retried{Retried: n})
}

// cancelMatching cancels the waiting messages a filter selects; the
// filter may not be empty, so that no typing slip cancels everything.
func (h *Handler) cancelMatching(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	sel, e := selection(q)
	if e != nil {
		writeError(w, e)
		return
	}
	if sel == (queue.Selection{}) {
		writeError(w, badRequest("", "say which messages to cancel with status, route, to or before (before=%s selects every waiting message)",
			time.Now().UTC().Format(time.RFC3339)))
		return
	}
	ids, err := h.client.CancelMessages(r.Context(), sel)
	if err != nil {
		writeError(w, h.storeError(err))
		return
	}
	h.changes.Notify()
	writeJSON(w, http.StatusOK, Cancelled{Cancelled: len(ids)})
}

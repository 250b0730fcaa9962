package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/outbox-mail/outbox/message"
	"github.com/outbox-mail/outbox/queue"
)

// Suppression is one entry of the suppression list as the API shows it.
type Suppression struct {
	Address string `json:"address"`
	// Scope is the sender domain the entry is for; empty: every sender.
	Scope  string `json:"scope,omitempty"`
	Reason string `json:"reason,omitempty"`
	// Cause is bounced, complained, unsubscribed or manual.
	Cause     string     `json:"cause"`
	MessageID string     `json:"message_id,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	// Expired entries are listed until removed, but stop nothing.
	Expired bool `json:"expired,omitempty"`
}

// SuppressionPage is the body of GET /v1/suppressions.
type SuppressionPage struct {
	Suppressions []Suppression `json:"suppressions"`
	NextCursor   string        `json:"next_cursor,omitempty"`
}

// suppressionRequest is the body of POST /v1/suppressions.
type suppressionRequest struct {
	Address   string `json:"address"`
	Scope     string `json:"scope"`
	Reason    string `json:"reason"`
	ExpiresAt string `json:"expires_at"`
}

func (h *Handler) suppressionRoutes() {
	auth := h.requireToken
	h.mux.Handle("GET /v1/suppressions", auth(h.listSuppressions))
	h.mux.Handle("POST /v1/suppressions", auth(h.addSuppression))
	h.mux.Handle("DELETE /v1/suppressions/{address}", auth(h.removeSuppression))
	h.mux.Handle("/v1/suppressions", notAllowed("GET, HEAD, POST"))
	h.mux.Handle("/v1/suppressions/{address}", notAllowed("DELETE"))
}

// viewSuppression is s as the API shows it.
func viewSuppression(s *queue.Suppression, now time.Time) Suppression {
	return Suppression{Address: s.Address, Scope: s.Scope, Reason: s.Reason, Cause: s.Cause, MessageID: s.MessageID,
		CreatedAt: s.CreatedAt.UTC(), ExpiresAt: optTime(s.ExpiresAt), Expired: !s.ExpiresAt.IsZero() && !now.Before(s.ExpiresAt)}
}

// listSuppressions pages through the list by address: ?address= keeps
// entries whose address contains it, limit and cursor as for messages.
func (h *Handler) listSuppressions(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := queue.SuppressionFilter{Address: q.Get("address"), Cursor: q.Get("cursor")}
	for _, p := range []struct{ field, v string }{{"address", f.Address}, {"cursor", f.Cursor}} {
		if !utf8.ValidString(p.v) || strings.ContainsAny(p.v, "\x00\r\n") {
			writeError(w, badRequest(p.field, "%s must be one line of UTF-8 text", p.field))
			return
		}
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > queue.MaxLimit {
			writeError(w, badRequest("limit", "limit must be a whole number from 1 to %d", queue.MaxLimit))
			return
		}
		f.Limit = n
	}
	page, err := h.client.Store().Suppressions(r.Context(), f)
	if errors.Is(err, queue.ErrInvalid) {
		writeError(w, badRequest("cursor", "cursor is not one this server returned"))
		return
	}
	if err != nil {
		writeError(w, h.storeError(err))
		return
	}
	now := time.Now()
	out := SuppressionPage{Suppressions: make([]Suppression, 0, len(page.Suppressions)), NextCursor: page.Next}
	for i := range page.Suppressions {
		out.Suppressions = append(out.Suppressions, viewSuppression(&page.Suppressions[i], now))
	}
	writeJSON(w, http.StatusOK, out)
}

// maxSuppressionBody bounds the body of POST /v1/suppressions.
const maxSuppressionBody = 16 << 10

// addSuppression adds (or replaces) a manual entry and answers 201 with
// it.
func (h *Handler) addSuppression(w http.ResponseWriter, r *http.Request) {
	if e := requireJSON(r); e != nil {
		writeError(w, e)
		return
	}
	var req suppressionRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxSuppressionBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeError(w, decodeError(err, maxSuppressionBody))
		return
	}
	s, e := req.entry(time.Now())
	if e != nil {
		writeError(w, e)
		return
	}
	if err := h.client.Store().Suppress(r.Context(), []queue.Suppression{s}); err != nil {
		if errors.Is(err, queue.ErrInvalid) {
			writeError(w, unprocessable("", "%s", strings.TrimPrefix(err.Error(), "queue: ")))
			return
		}
		writeError(w, h.storeError(err))
		return
	}
	h.log.Info("api: address suppressed", "address", s.Address, "scope", s.Scope, "expires_at", s.ExpiresAt)
	writeJSON(w, http.StatusCreated, viewSuppression(&s, time.Now()))
}

// entry checks the request and makes the manual entry it asks for.
func (req *suppressionRequest) entry(now time.Time) (queue.Suppression, *apiError) {
	s := queue.Suppression{Cause: queue.CauseManual, Reason: req.Reason, CreatedAt: now}
	if strings.TrimSpace(req.Address) == "" {
		return s, unprocessable("address", "address is required")
	}
	a, err := message.ParseAddress(req.Address)
	if err != nil || strings.ContainsAny(req.Address, "<>") {
		return s, unprocessable("address", "address %q is not an email address (give it bare, like ann@example.com)", req.Address)
	}
	s.Address = strings.ToLower(a.Email)
	s.Scope = strings.ToLower(strings.TrimSpace(req.Scope))
	if strings.ContainsAny(s.Scope, "@ \r\n\x00") || len(s.Scope) > 253 {
		return s, unprocessable("scope", "scope %q is not a domain (the sender domain the entry is for; leave it out for every sender)", req.Scope)
	}
	if len(req.Reason) > 1000 || !utf8.ValidString(req.Reason) || strings.ContainsAny(req.Reason, "\x00") {
		return s, unprocessable("reason", "reason must be UTF-8 text of at most 1000 bytes")
	}
	if req.ExpiresAt != "" {
		t, err := time.Parse(time.RFC3339, req.ExpiresAt)
		if err != nil {
			return s, unprocessable("expires_at", "expires_at %q is not an RFC 3339 time such as 2026-01-02T15:04:05Z", req.ExpiresAt)
		}
		if !t.After(now) {
			return s, unprocessable("expires_at", "expires_at %s is not in the future", req.ExpiresAt)
		}
		s.ExpiresAt = t
	}
	return s, nil
}

// removeSuppression deletes the entry for an address (?scope= for a
// sender domain's entry) and answers 204; 404 when there is none.
func (h *Handler) removeSuppression(w http.ResponseWriter, r *http.Request) {
	addr, scope := r.PathValue("address"), r.URL.Query().Get("scope")
	err := h.client.Store().Unsuppress(r.Context(), addr, scope)
	switch {
	case errors.Is(err, queue.ErrNotFound):
		msg := "No suppression for " + strconv.Quote(addr)
		if scope != "" {
			msg += " in scope " + strconv.Quote(scope)
		}
		writeError(w, &apiError{Status: http.StatusNotFound, Field: "address", Msg: msg + "."})
	case err != nil:
		writeError(w, h.storeError(err))
	default:
		h.log.Info("api: suppression removed", "address", addr, "scope", scope)
		w.WriteHeader(http.StatusNoContent)
	}
}

package web

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/outbox-mail/outbox/message"
	"github.com/outbox-mail/outbox/queue"
)

// suppressionsData is the suppression list page.
type suppressionsData struct {
	Address string // the filter
	Entries []queue.Suppression
	Now     time.Time
	Next    string
	Done    string // what the last action did
	Error   string
	Form    suppressionForm // the add form, as typed
}

// suppressionForm is the add form's fields.
type suppressionForm struct {
	Address, Scope, Reason, Expires string
}

// doneText are the notes an action leaves on the page it redirects to;
// only these fixed strings can be shown.
var doneText = map[string]string{"added": "Address added to the suppression list.",
	"removed": "Address removed from the suppression list."}

func (h *handler) suppressionRoutes() {
	h.mux.Handle("GET /suppressions", h.page(h.suppressions))
	h.mux.Handle("POST /suppressions", h.action(h.addSuppression))
	h.mux.Handle("POST /suppressions/remove", h.action(h.removeSuppression))
}

// suppressions lists the suppression list by address, filtered and paged.
func (h *handler) suppressions(w http.ResponseWriter, r *http.Request, s *session) {
	q := r.URL.Query()
	d := &suppressionsData{Address: q.Get("address"), Done: doneText[q.Get("done")]}
	h.renderSuppressions(w, r, http.StatusOK, d, q.Get("cursor"))
}

func (h *handler) renderSuppressions(w http.ResponseWriter, r *http.Request, status int, d *suppressionsData, cursor string) {
	d.Now = time.Now()
	page, err := h.client.Store().Suppressions(r.Context(), queue.SuppressionFilter{Address: d.Address, Cursor: cursor, Limit: 100})
	if errors.Is(err, queue.ErrInvalid) {
		h.errorPage(w, r, http.StatusBadRequest, "That filter or page is not valid.")
		return
	}
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	d.Entries = page.Suppressions
	if page.Next != "" {
		d.Next = "/suppressions?" + url.Values{"address": {d.Address}, "cursor": {page.Next}}.Encode()
	}
	h.render(w, r, status, "suppressions", &view{Title: "Suppression list", Nav: "suppressions", Data: d})
}

// addSuppression adds a manual entry from the form; a mistake is shown
// on the page, with the form as typed.
func (h *handler) addSuppression(w http.ResponseWriter, r *http.Request, s *session) {
	f := suppressionForm{Address: r.PostFormValue("address"), Scope: r.PostFormValue("scope"),
		Reason: r.PostFormValue("reason"), Expires: r.PostFormValue("expires")}
	entry, problem := f.entry(time.Now())
	if problem == "" {
		if err := h.client.Store().Suppress(r.Context(), []queue.Suppression{entry}); errors.Is(err, queue.ErrInvalid) {
			problem = err.Error()
		} else if err != nil {
			h.serverError(w, r, err)
			return
		}
	}
	if problem != "" {
		h.renderSuppressions(w, r, http.StatusBadRequest, &suppressionsData{Error: problem, Form: f}, "")
		return
	}
	h.log.Info("web: address suppressed", "address", entry.Address, "scope", entry.Scope)
	http.Redirect(w, r, "/suppressions?done=added&address="+url.QueryEscape(entry.Address), http.StatusSeeOther)
}

// entry checks the form and makes its manual entry; problem says what
// is wrong.
func (f *suppressionForm) entry(now time.Time) (queue.Suppression, string) {
	e := queue.Suppression{Cause: queue.CauseManual, Reason: strings.TrimSpace(f.Reason), CreatedAt: now,
		Scope: strings.ToLower(strings.TrimSpace(f.Scope))}
	a, err := message.ParseAddress(strings.TrimSpace(f.Address))
	if err != nil || strings.ContainsAny(f.Address, "<>") {
		return e, "Address: give one email address, like ann@example.com."
	}
	e.Address = strings.ToLower(a.Email)
	if strings.ContainsAny(e.Scope, "@ ") {
		return e, "Sender domain: give a domain, like shop.example, or leave it empty for every sender."
	}
	if f.Expires != "" {
		t, err := time.Parse(timeForm, f.Expires)
		if err != nil || !t.After(now) {
			return e, "Expires: give a time in the future (UTC), or leave it empty."
		}
		e.ExpiresAt = t
	}
	return e, ""
}

// removeSuppression removes one entry (address and scope from the form).
func (h *handler) removeSuppression(w http.ResponseWriter, r *http.Request, s *session) {
	addr, scope := r.PostFormValue("address"), r.PostFormValue("scope")
	err := h.client.Store().Unsuppress(r.Context(), addr, scope)
	switch {
	case errors.Is(err, queue.ErrNotFound):
		h.errorPage(w, r, http.StatusNotFound, "That address is not on the suppression list (any more).")
		return
	case err != nil:
		h.serverError(w, r, err)
		return
	}
	h.log.Info("web: suppression removed", "address", addr, "scope", scope)
	http.Redirect(w, r, "/suppressions?done=removed", http.StatusSeeOther)
}

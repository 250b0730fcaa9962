package web

import (
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/outbox-mail/outbox/queue"
)

// listData is the message list page.
type listData struct {
	Filter   queue.Filter
	Since    string // the filter's times as typed, for the form
	Until    string
	Statuses []queue.Status
	Messages []queue.Message
	Next     string // address of the next page, empty on the last
	Live     string // address of the live rows
	Error    string
	// Advanced: a filter beyond the search is set, so they show.
	Advanced bool
}

// timeForm is the HTML datetime-local format; times are UTC.
const timeForm = "2006-01-02T15:04"

func (h *handler) messageList(w http.ResponseWriter, r *http.Request, s *session) {
	d, status, err := h.listPage(r)
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	h.render(w, r, status, "list", &view{Title: "Messages", Nav: "messages", Data: d})
}

// listLive is the list's rows alone, re-fetched by the live script.
func (h *handler) listLive(w http.ResponseWriter, r *http.Request, s *session) {
	d, status, err := h.listPage(r)
	if err != nil || status != http.StatusOK {
		h.log.Warn("web: live list", "err", err, "status", status)
		http.Error(w, "The list could not be read.", max(status, http.StatusInternalServerError))
		return
	}
	h.renderFragment(w, "list", "live", &view{Data: d, CSRF: s.csrf})
}

// listPage reads the page of messages the request's filter asks for; a
// filter the user got wrong is reported on the page with a 400.
func (h *handler) listPage(r *http.Request) (*listData, int, error) {
	q := r.URL.Query()
	d := &listData{Statuses: statusOrder, Since: q.Get("since"), Until: q.Get("until"),
		Live: "/live/list?" + q.Encode()}
	d.Filter = queue.Filter{Status: queue.Status(q.Get("status")), Recipient: q.Get("rcpt"),
		From: q.Get("from"), Subject: q.Get("subject"), Search: q.Get("q"), Cursor: q.Get("cursor"), Limit: 50}
	d.Advanced = d.Filter.Status != "" || d.Filter.Recipient != "" || d.Filter.From != "" || d.Filter.Subject != "" ||
		d.Since != "" || d.Until != ""
	var err error
	if d.Filter.Since, err = parseFormTime(d.Since); err != nil {
		d.Error = "Since: " + err.Error()
		return d, http.StatusBadRequest, nil
	}
	if d.Filter.Until, err = parseFormTime(d.Until); err != nil {
		d.Error = "Until: " + err.Error()
		return d, http.StatusBadRequest, nil
	}
	page, err := h.store.List(r.Context(), d.Filter)
	if errors.Is(err, queue.ErrInvalid) {
		d.Error = "That filter is not valid: " + err.Error()
		return d, http.StatusBadRequest, nil
	}
	if err != nil {
		return nil, 0, err
	}
	d.Messages = page.Messages
	if page.Next != "" {
		q.Set("cursor", page.Next)
		d.Next = "/messages?" + q.Encode()
	}
	return d, http.StatusOK, nil
}

func parseFormTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(timeForm, s)
	if err != nil {
		return time.Time{}, errors.New("use the form YYYY-MM-DDTHH:MM (UTC)")
	}
	return t, nil
}

func (h *handler) retry(w http.ResponseWriter, r *http.Request, s *session) {
	h.steer(w, r, "Retry requested.", func(id string) error { return h.client.Retry(r.Context(), id) })
}

func (h *handler) requeue(w http.ResponseWriter, r *http.Request, s *session) {
	h.steer(w, r, "Requeued, failed recipients included.", func(id string) error { return h.client.Requeue(r.Context(), id) })
}

func (h *handler) cancel(w http.ResponseWriter, r *http.Request, s *session) {
	h.steer(w, r, "Cancelled.", func(id string) error { return h.client.Cancel(r.Context(), id) })
}

// steer runs an action on the message and answers the script (a short
// text) or, without a script, redirects back to the message.
func (h *handler) steer(w http.ResponseWriter, r *http.Request, done string, fn func(id string) error) {
	id := r.PathValue("id")
	status, msg := http.StatusOK, done
	switch err := fn(id); {
	case err == nil:
	case errors.Is(err, queue.ErrNotFound):
		status, msg = http.StatusNotFound, "There is no message with that id."
	case errors.Is(err, queue.ErrFinal):
		status, msg = http.StatusConflict, "The message is already final; nothing to do."
	case errors.Is(err, queue.ErrSending):
		status, msg = http.StatusConflict, "The message is being delivered right now; try again in a moment."
	default:
		h.log.Error("web: steer message", "id", id, "path", r.URL.Path, "err", err)
		status, msg = http.StatusInternalServerError, "The action failed; the error is in the server log."
	}
	if r.Header.Get("X-Outbox-Fetch") == "1" {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(status)
		w.Write([]byte(msg))
		return
	}
	if status != http.StatusOK {
		h.errorPage(w, r, status, msg)
		return
	}
	http.Redirect(w, r, "/messages/"+url.PathEscape(id), http.StatusSeeOther)
}

// inboxData is the captured-mail inbox.
type inboxData struct {
	Search   string
	Messages []queue.Message
	Next     string
	Error    string
}

// inbox lists delivered mail whose last attempt went to the capture
// transport, newest first, paging on the store's keyset cursor; q searches
// as the message list's search does.
func (h *handler) inbox(w http.ResponseWriter, r *http.Request, s *session) {
	q := r.URL.Query()
	d := &inboxData{Search: q.Get("q")}
	page, err := h.store.List(r.Context(), queue.Filter{Status: queue.StatusDelivered,
		Search: d.Search, Subject: q.Get("subject"), Cursor: q.Get("cursor"), Limit: 50})
	if errors.Is(err, queue.ErrInvalid) {
		d.Error = "That search is not valid: " + err.Error()
		h.render(w, r, http.StatusBadRequest, "inbox", &view{Title: "Captured mail", Nav: "inbox", Data: d})
		return
	}
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	for _, m := range page.Messages {
		attempts, err := h.store.Attempts(r.Context(), m.ID)
		if err != nil && !errors.Is(err, queue.ErrNotFound) {
			h.serverError(w, r, err)
			return
		}
		if len(attempts) > 0 && attempts[len(attempts)-1].Route == CaptureRoute {
			d.Messages = append(d.Messages, m)
		}
	}
	if page.Next != "" {
		q.Set("cursor", page.Next)
		d.Next = "/inbox?" + q.Encode()
	}
	h.render(w, r, http.StatusOK, "inbox", &view{Title: "Captured mail", Nav: "inbox", Data: d})
}

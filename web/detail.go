package web

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"

	"github.com/outbox-mail/outbox/queue"
)

// The message page: the header's people, the content in tabs (HTML, text,
// links, headers, source, attachments), the delivery state (a live
// region) and the attempts.

// tab is one view of a message's content.
type tab struct {
	Name, Label string
	// Count is shown beside the label when not negative.
	Count int
	Href  string
}

// detailData is the message page; its live part is re-fetched while the
// message is not final.
type detailData struct {
	Message  *queue.Message
	Attempts []queue.Attempt
	// History is what was learnt of the recipients after sending.
	History []queue.RecipientEvent
	Content *content
	Remote  bool // the user asked for remote images
	Tab     string
	Tabs    []tab
	// Source is the start of the stored message, for the source tab.
	Source          string
	SourceTruncated bool
	// Captured: the message's last attempt went to the capture transport;
	// Release: it can be released (Config.Release is set).
	Captured, Release bool
	// LinkWarnings counts the links with a warning.
	LinkWarnings int
}

// tabNames are the tabs, in order.
var tabNames = []string{"html", "text", "links", "headers", "source", "attachments"}

func (h *handler) loadDetail(w http.ResponseWriter, r *http.Request) (*detailData, bool) {
	id := r.PathValue("id")
	m, err := h.store.Get(r.Context(), id)
	if errors.Is(err, queue.ErrNotFound) {
		h.notFound(w, r, "There is no message with that id; it may have been purged.")
		return nil, false
	}
	if err != nil {
		h.serverError(w, r, err)
		return nil, false
	}
	attempts, err := h.store.Attempts(r.Context(), id)
	if err != nil && !errors.Is(err, queue.ErrNotFound) {
		h.serverError(w, r, err)
		return nil, false
	}
	history, err := h.store.History(r.Context(), id)
	if err != nil && !errors.Is(err, queue.ErrNotFound) {
		h.serverError(w, r, err)
		return nil, false
	}
	d := &detailData{Message: m, Attempts: attempts, History: history, Release: h.cfg.Release != nil}
	d.Captured = len(attempts) > 0 && attempts[len(attempts)-1].Route == CaptureRoute && m.Status == queue.StatusDelivered
	return d, true
}

func (h *handler) messageDetail(w http.ResponseWriter, r *http.Request, s *session) {
	d, ok := h.loadDetail(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	d.Remote = q.Get("remote") == "1"
	c, err := h.loadContent(r.Context(), d.Message.ID)
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	d.Content = c
	if len(d.Message.Mailboxes) == 0 {
		// Not indexed yet: the header just read has the names.
		d.Message.Mailboxes = headerMailboxes(c)
	}
	for _, l := range c.Links {
		if len(l.Warnings) > 0 {
			d.LinkWarnings++
		}
	}
	d.Tab = q.Get("tab")
	if d.Tab == "" || !validTab(d.Tab) {
		d.Tab = "text"
		if c.HasHTML {
			d.Tab = "html"
		}
	}
	d.Tabs = h.tabs(d)
	if d.Tab == "source" {
		d.Source, d.SourceTruncated, err = h.source(r.Context(), d.Message.ID)
		if err != nil && !errors.Is(err, queue.ErrNotFound) {
			h.serverError(w, r, err)
			return
		}
	}
	h.render(w, r, http.StatusOK, "detail", &view{Title: "Message " + d.Message.Subject, Nav: "messages", Data: d})
}

func validTab(name string) bool {
	for _, t := range tabNames {
		if t == name {
			return true
		}
	}
	return false
}

// tabs are the tab links of d's message, each keeping the remote-images
// choice.
func (h *handler) tabs(d *detailData) []tab {
	c := d.Content
	labels := map[string]string{"html": "HTML", "text": "Text", "links": "Links", "headers": "Headers",
		"source": "Source", "attachments": "Attachments"}
	counts := map[string]int{"html": -1, "text": -1, "links": len(c.Links), "headers": len(c.Headers),
		"source": -1, "attachments": len(c.Attachments)}
	var out []tab
	for _, name := range tabNames {
		q := url.Values{"tab": {name}}
		if d.Remote {
			q.Set("remote", "1")
		}
		out = append(out, tab{Name: name, Label: labels[name], Count: counts[name],
			Href: "/messages/" + url.PathEscape(d.Message.ID) + "?" + q.Encode() + "#content"})
	}
	return out
}

func (h *handler) detailLive(w http.ResponseWriter, r *http.Request, s *session) {
	d, ok := h.loadDetail(w, r)
	if !ok {
		return
	}
	h.renderFragment(w, "detail", "live", &view{Data: d, CSRF: s.csrf})
}

// mailboxes are the From, To and Cc mailboxes as the queue's index keeps
// them.
func headerMailboxes(c *content) []queue.Mailbox {
	var out []queue.Mailbox
	for _, f := range []struct {
		name string
		list []mailbox
	}{{"from", c.From}, {"to", c.To}, {"cc", c.Cc}} {
		for _, m := range f.list {
			out = append(out, queue.Mailbox{Field: f.name, Name: m.Name, Address: m.Address})
		}
	}
	return out
}

// remoteHref is the message page with remote images on or off, same tab.
func remoteHref(d *detailData, on bool) string {
	q := url.Values{"tab": {d.Tab}}
	if on {
		q.Set("remote", "1")
	}
	return "/messages/" + url.PathEscape(d.Message.ID) + "?" + q.Encode() + "#content"
}

// sizeText is a byte count for people: "532 bytes", "12.3 KiB".
func sizeText(n int64) string {
	switch {
	case n < 1024:
		return strconv.FormatInt(n, 10) + " bytes"
	case n < 1<<20:
		return strconv.FormatFloat(float64(n)/1024, 'f', 1, 64) + " KiB"
	}
	return strconv.FormatFloat(float64(n)/(1<<20), 'f', 1, 64) + " MiB"
}

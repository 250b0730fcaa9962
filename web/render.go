package web

import (
	"bytes"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"

	"github.com/outbox-mail/outbox/queue"
)

// view is what every page template gets: the layout's fields and the
// page's own Data.
type view struct {
	Title string
	// Nav names the active navigation entry.
	Nav  string
	CSRF string
	// Open is true when no login is configured, which the layout says.
	Open    bool
	Refresh int64 // live refresh period, in milliseconds
	Data    any
}

// pageNames are the page templates; each is parsed with the layout.
var pageNames = []string{"login", "overview", "list", "detail", "inbox", "error", "release", "suppressions"}

var funcs = template.FuncMap{
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	},
	"iso": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"ago": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return ago(time.Since(t))
	},
	"final":      func(s queue.Status) bool { return s.Final() },
	"author":     author,
	"named":      named,
	"size":       sizeText,
	"remoteHref": remoteHref,
	"pct": func(n, d int64) string {
		if d == 0 {
			return "0%"
		}
		return fmt.Sprintf("%.0f%%", 100*float64(n)/float64(d))
	},
}

// author is who a listed message is from: the first mailbox of its
// header's From field, with its display name, once the message is
// indexed; its envelope sender before ("" is the null sender).
func author(mbs []queue.Mailbox, envelope string) mailbox {
	for _, m := range mbs {
		if m.Field == "from" {
			return mailbox{Name: m.Name, Address: m.Address}
		}
	}
	return mailbox{Address: envelope}
}

// named is an envelope address with the display name the header's To or
// Cc field gives it, if any.
func named(mbs []queue.Mailbox, addr string) mailbox {
	for _, m := range mbs {
		if m.Field != "from" && m.Name != "" && strings.EqualFold(m.Address, addr) {
			return mailbox{Name: m.Name, Address: addr}
		}
	}
	return mailbox{Address: addr}
}

// ago renders a duration as a short human one: "3m", "2h 5m".
func ago(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh %dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
	}
	return fmt.Sprintf("%dd", int(d/(24*time.Hour)))
}

func parsePages() (map[string]*template.Template, error) {
	pages := make(map[string]*template.Template, len(pageNames))
	for _, name := range pageNames {
		t, err := template.New(name).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("web: template %s: %w", name, err)
		}
		pages[name] = t
	}
	return pages, nil
}

// render executes a page into a buffer first, so a template error becomes
// a clean 500 rather than half a page.
func (h *handler) render(w http.ResponseWriter, r *http.Request, status int, name string, v *view) {
	v.Open = h.auth.open()
	v.Refresh = h.cfg.Refresh.Milliseconds()
	if s, ok := r.Context().Value(sessionKey{}).(*session); ok && v.CSRF == "" {
		v.CSRF = s.csrf
	} else if s := h.auth.verify(r); s != nil && v.CSRF == "" {
		v.CSRF = s.csrf
	}
	h.execute(w, status, name, "layout", v)
}

// renderFragment executes one named block of a page, for live refresh.
func (h *handler) renderFragment(w http.ResponseWriter, page, block string, v *view) {
	h.execute(w, http.StatusOK, page, block, v)
}

func (h *handler) execute(w http.ResponseWriter, status int, page, block string, v *view) {
	var buf bytes.Buffer
	if err := h.pages[page].ExecuteTemplate(&buf, block, v); err != nil {
		h.log.Error("web: render", "page", page, "block", block, "err", err)
		http.Error(w, "Internal error while rendering this page.", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// notFound answers 404 with a page that says what was missing.
func (h *handler) notFound(w http.ResponseWriter, r *http.Request, msg string) {
	h.errorPage(w, r, http.StatusNotFound, msg)
}

func (h *handler) errorPage(w http.ResponseWriter, r *http.Request, status int, msg string) {
	h.render(w, r, status, "error", &view{Title: http.StatusText(status), Data: msg})
}

// serverError answers a store that failed to answer: 503 with
// Retry-After, as the API does, since a store restarting or a full disk is
// trouble that passes; the details go to the log only.
func (h *handler) serverError(w http.ResponseWriter, r *http.Request, err error) {
	h.log.Error("web: request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	w.Header().Set("Retry-After", "5")
	h.errorPage(w, r, http.StatusServiceUnavailable,
		"The queue's store did not answer; try again in a few seconds. The error is in the server log.")
}

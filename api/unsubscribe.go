package api

import (
	"bytes"
	"context"
	"errors"
	"html/template"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"

	"github.com/outbox-mail/outbox/unsubscribe"
)

// Unsubscriber applies one-click unsubscribe tokens; *feedback.Handler
// is one.
type Unsubscriber interface {
	// Subscription returns what a token names, changing nothing; an error
	// wrapping unsubscribe.ErrBadToken for one that does not verify.
	Subscription(tok string) (unsubscribe.Subscription, error)
	// Unsubscribe suppresses the address the token names for the domain
	// it names.
	Unsubscribe(ctx context.Context, tok string) (unsubscribe.Subscription, error)
}

// NewUnsubscribe returns the handler of the one-click unsubscribe links
// (RFC 8058), to mount at "/u/" with no login in front: the token in the
// path is the only authority, and it names the one address and sender
// domain a POST changes. GET /u/TOKEN shows what the link would do and a
// button, and changes nothing (mail scanners follow links); POST /u/TOKEN
// with the body List-Unsubscribe=One-Click unsubscribes and answers 200.
func NewUnsubscribe(u Unsubscriber, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.Default()
	}
	h := &unsubscribeHandler{u: u, log: log}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /u/{token}", h.confirm)
	mux.HandleFunc("POST /u/{token}", h.unsubscribe)
	mux.HandleFunc("/u/{token}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", "GET, HEAD, POST")
		h.page(w, http.StatusMethodNotAllowed, pageData{Title: "Method not allowed", Text: "Use the link in the message."})
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		h.page(w, http.StatusNotFound, pageData{Title: "Not found", Text: "This unsubscribe link is not complete."})
	})
	return h.secure(mux)
}

type unsubscribeHandler struct {
	u   Unsubscriber
	log *slog.Logger
}

// secure sets the headers every answer carries: nothing may be loaded,
// framed or sent on as a referrer (the path holds the token).
func (h *unsubscribeHandler) secure(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

// confirm shows the address, the sender and a button that makes the
// RFC 8058 POST. It changes nothing.
func (h *unsubscribeHandler) confirm(w http.ResponseWriter, r *http.Request) {
	sub, err := h.u.Subscription(r.PathValue("token"))
	if err != nil {
		h.failed(w, err)
		return
	}
	h.page(w, http.StatusOK, pageData{Title: "Unsubscribe", Sub: &sub, Form: true,
		Action: "/u/" + url.PathEscape(r.PathValue("token")), Field: "List-Unsubscribe", Value: "One-Click"})
}

// maxUnsubscribeBody bounds the POST's body: RFC 8058's is 26 bytes.
const maxUnsubscribeBody = 4 << 10

// unsubscribe applies the one-click POST: a form body (urlencoded or
// multipart, RFC 8058 §3.1) holding List-Unsubscribe=One-Click.
func (h *unsubscribeHandler) unsubscribe(w http.ResponseWriter, r *http.Request) {
	if !oneClick(w, r) {
		h.page(w, http.StatusBadRequest, pageData{Title: "Bad request",
			Text: "An unsubscribe POST carries the form field List-Unsubscribe=One-Click (RFC 8058)."})
		return
	}
	sub, err := h.u.Unsubscribe(r.Context(), r.PathValue("token"))
	if err != nil {
		h.failed(w, err)
		return
	}
	h.page(w, http.StatusOK, pageData{Title: "Unsubscribed", Sub: &sub, Done: true})
}

// oneClick reports whether r's body is the RFC 8058 form.
func oneClick(w http.ResponseWriter, r *http.Request) bool {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	r.Body = http.MaxBytesReader(w, r.Body, maxUnsubscribeBody)
	switch mt {
	case "application/x-www-form-urlencoded":
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return false
		}
		v, err := url.ParseQuery(string(bytes.TrimSpace(b)))
		return err == nil && v.Get("List-Unsubscribe") == "One-Click"
	case "multipart/form-data":
		return r.ParseMultipartForm(maxUnsubscribeBody) == nil && r.PostFormValue("List-Unsubscribe") == "One-Click"
	}
	return false
}

// failed answers a token that does not verify with 404 and a store that
// failed with 503.
func (h *unsubscribeHandler) failed(w http.ResponseWriter, err error) {
	if errors.Is(err, unsubscribe.ErrBadToken) {
		h.page(w, http.StatusNotFound, pageData{Title: "Link not valid",
			Text: "This unsubscribe link was not made by this server, or it was changed on the way."})
		return
	}
	h.log.Error("api: unsubscribe failed", "err", err)
	w.Header().Set("Retry-After", "60")
	h.page(w, http.StatusServiceUnavailable, pageData{Title: "Try again later",
		Text: "Your request could not be recorded just now; please try again in a minute."})
}

type pageData struct {
	Title, Text          string
	Sub                  *unsubscribe.Subscription
	Form, Done           bool
	Action, Field, Value string
}

var unsubscribePage = template.Must(template.New("u").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<meta name="robots" content="noindex"><title>{{.Title}}</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:34em;margin:4em auto;padding:0 1em}button{font:inherit;padding:.5em 1.2em}</style>
</head><body><h1>{{.Title}}</h1>
{{with .Sub}}{{if $.Done}}<p><b>{{.Address}}</b> will get no more mail from <b>{{.Domain}}</b>.</p>
{{else}}<p>Stop mail from <b>{{.Domain}}</b> to <b>{{.Address}}</b>?</p>{{end}}{{end}}
{{if .Text}}<p>{{.Text}}</p>{{end}}
{{if .Form}}<form method="post" action="{{.Action}}" enctype="application/x-www-form-urlencoded">
<input type="hidden" name="{{.Field}}" value="{{.Value}}"><button type="submit">Unsubscribe</button></form>
<p>Nothing changes until you press the button.</p>{{end}}
</body></html>
`))

func (h *unsubscribeHandler) page(w http.ResponseWriter, status int, d pageData) {
	var buf bytes.Buffer
	if err := unsubscribePage.Execute(&buf, d); err != nil {
		h.log.Error("api: unsubscribe page", "err", err)
		http.Error(w, "Internal error.", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

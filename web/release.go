package web

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/outbox-mail/outbox/queue"
)

// Releasing captured mail: the message page of a captured message links
// to a form (recipients, by default the original ones, and a route); the
// form posts to a confirmation page that says exactly what will be sent
// where; only its own post sends, through Config.Release. Both posts are
// CSRF-protected actions, and every release is logged with who asked.

// Bounds on a release.
const (
	maxReleaseRecipients = 100
	releaseTimeout       = 5 * time.Minute
)

// releaseData is the release page in one of its steps.
type releaseData struct {
	Message *queue.Message
	// Step is "form", "confirm" or "done".
	Step string
	// To is the recipients as typed; Recipients as understood.
	To         string
	Recipients []string
	Routes     []string
	Route      string
	Error      string
	// Sent reports a release that went through.
	Sent bool
}

// releaseMessage reads the message to release, answering the request
// itself when it cannot be released.
func (h *handler) releaseMessage(w http.ResponseWriter, r *http.Request) (*queue.Message, bool) {
	if h.cfg.Release == nil {
		h.notFound(w, r, "Releasing captured mail is not configured here (outbox serve --release-relay URL).")
		return nil, false
	}
	d, ok := h.loadDetail(w, r)
	if !ok {
		return nil, false
	}
	if !d.Captured {
		h.errorPage(w, r, http.StatusConflict, "Only captured mail can be released, and this message was not captured.")
		return nil, false
	}
	return d.Message, true
}

func (h *handler) releaseForm(w http.ResponseWriter, r *http.Request, s *session) {
	m, ok := h.releaseMessage(w, r)
	if !ok {
		return
	}
	var to []string
	for _, rc := range m.Recipients {
		to = append(to, rc.Address)
	}
	h.renderRelease(w, r, http.StatusOK, &releaseData{Message: m, Step: "form", To: strings.Join(to, "\n"),
		Routes: h.cfg.ReleaseRoutes, Route: h.cfg.ReleaseRoutes[0]})
}

// release is the form's post: step "confirm" shows what would be sent,
// step "send" sends it.
func (h *handler) release(w http.ResponseWriter, r *http.Request, s *session) {
	m, ok := h.releaseMessage(w, r)
	if !ok {
		return
	}
	d := &releaseData{Message: m, Step: "form", To: r.PostFormValue("to"), Routes: h.cfg.ReleaseRoutes,
		Route: r.PostFormValue("route")}
	rcpts, err := parseRecipients(d.To)
	switch {
	case err != nil:
		d.Error = err.Error()
	case !slices.Contains(h.cfg.ReleaseRoutes, d.Route):
		d.Error = "Choose one of the routes listed."
	}
	if d.Error != "" {
		h.renderRelease(w, r, http.StatusBadRequest, d)
		return
	}
	d.Recipients = rcpts
	if r.PostFormValue("step") != "send" {
		d.Step = "confirm"
		h.renderRelease(w, r, http.StatusOK, d)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), releaseTimeout)
	defer cancel()
	err = h.cfg.Release(ctx, m.ID, rcpts, d.Route)
	audit := []any{"id", m.ID, "to", rcpts, "route", d.Route, "session", sessionTag(s), "remote", r.RemoteAddr}
	d.Step, d.Sent = "done", err == nil
	status := http.StatusOK
	if err != nil {
		h.log.Warn("web: release failed", append(audit, "err", err)...)
		d.Error, status = err.Error(), http.StatusBadGateway
	} else {
		h.log.Info("web: released captured message", audit...)
	}
	h.renderRelease(w, r, status, d)
}

func (h *handler) renderRelease(w http.ResponseWriter, r *http.Request, status int, d *releaseData) {
	h.render(w, r, status, "release", &view{Title: "Release " + d.Message.Subject, Nav: "inbox", Data: d})
}

// sessionTag names a login session in the log without giving away its
// cookie: the start of a digest of its id.
func sessionTag(s *session) string {
	sum := sha256.Sum256(s.id)
	return hex.EncodeToString(sum[:6])
}

// parseRecipients reads the recipients of a release: addresses separated
// by commas, semicolons or line breaks, each given once.
func parseRecipients(s string) ([]string, error) {
	var out []string
	for _, a := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ';' || r == '\n' || r == '\r' }) {
		a = strings.TrimSpace(a)
		if a == "" {
			continue
		}
		if err := checkAddress(a); err != nil {
			return nil, err
		}
		if !slices.ContainsFunc(out, func(b string) bool { return strings.EqualFold(a, b) }) {
			out = append(out, a)
		}
	}
	switch {
	case len(out) == 0:
		return nil, errors.New("Give at least one recipient.")
	case len(out) > maxReleaseRecipients:
		return nil, errors.New("At most 100 recipients at once.")
	}
	return out, nil
}

// checkAddress accepts a bare address (local@domain) that can go in an
// SMTP command as it is.
func checkAddress(a string) error {
	at := strings.LastIndexByte(a, '@')
	bad := !utf8.ValidString(a) || len(a) > 254 || at < 1 || at == len(a)-1 ||
		strings.ContainsFunc(a, func(r rune) bool { return r <= ' ' || r == 0x7f || strings.ContainsRune("<>()[]\\\",", r) })
	if bad {
		return errors.New("“" + strings.ToValidUTF8(a, "\uFFFD") + "” is not an email address; write one address (name@example.com) per line.")
	}
	return nil
}

package web

import (
	"context"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/outbox-mail/outbox/internal/mailview"
	"github.com/outbox-mail/outbox/queue"
)

// maxSourceShown bounds the source tab; the whole source is a download.
const maxSourceShown = 256 << 10

// inlineImageTypes are the image types an inline part is served as; any
// other part (SVG, which can hold script, among them) is served as
// application/octet-stream, which no browser renders.
var inlineImageTypes = map[string]bool{"image/png": true, "image/jpeg": true, "image/gif": true,
	"image/webp": true, "image/bmp": true, "image/avif": true}

// loadContent parses the stored body for display. A body that is gone or
// does not parse is reported on the page, not as a server error.
func (h *handler) loadContent(ctx context.Context, id string) (*content, error) {
	e, closer, err := mailview.Open(ctx, h.store, id)
	switch {
	case errors.Is(err, queue.ErrNotFound):
		return &content{Problem: "The message body is gone (purged)."}, nil
	case errors.Is(err, mailview.ErrMalformed):
		return &content{Problem: err.Error()}, nil
	case err != nil:
		return nil, err
	}
	defer closer.Close()
	return readContent(e), nil
}

// messageHTML serves the message's HTML part for the sandboxed iframe. The
// CSP's sandbox directive gives the document an opaque origin with scripts
// disabled even if it is opened directly; only inline styles and the
// message's own inline images load, unless the user asked for remote
// images too. cid: references are rewritten to the inline parts' URLs.
func (h *handler) messageHTML(w http.ResponseWriter, r *http.Request, s *session) {
	id := r.PathValue("id")
	img := "data:"
	if src := cidSource(r.Host, id); src != "" {
		img += " " + src
	}
	if r.URL.Query().Get("remote") == "1" {
		img += " https: http:"
	}
	hd := w.Header()
	hd.Set("Content-Security-Policy", "default-src 'none'; img-src "+img+
		"; style-src 'unsafe-inline'; sandbox; frame-ancestors 'self'")
	hd.Set("X-Frame-Options", "SAMEORIGIN")
	hd.Set("Content-Type", "text/html; charset=utf-8")
	key := h.auth.cidKey(id, time.Now().Add(h.cfg.SessionTTL))
	found, err := h.streamPart(r.Context(), id, w, func(l *mailview.Leaf) bool { return l.Kind == mailview.HTML }, maxHTMLServed,
		func(w io.Writer, r io.Reader) error {
			return rewriteCID(w, r, func(cid string) string { return cidURL(id, cid, key) })
		})
	h.finishPart(w, r, found, err)
}

// cidSource is the CSP source for message id's inline parts as this
// request reached us ("host:port/messages/ID/cid/"), or "" when the host
// or the id holds a character a CSP cannot carry.
func cidSource(host, id string) string {
	ok := func(s, extra string) bool {
		return s != "" && !strings.ContainsFunc(s, func(r rune) bool {
			return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || strings.ContainsRune(extra, r))
		})
	}
	if !ok(host, ".-:[]") || !ok(id, "-") {
		return ""
	}
	return host + "/messages/" + id + "/cid/"
}

// cidPart serves an inline part by its Content-ID, to the sandboxed frame
// (which has a key for it) or to a logged-in user. Raster images are
// served as their type so that the frame shows them; anything else is
// served as a download.
func (h *handler) cidPart(w http.ResponseWriter, r *http.Request) {
	id, cid := r.PathValue("id"), r.PathValue("cid")
	if !h.auth.cidKeyValid(id, r.URL.Query().Get("k")) && h.auth.verify(r) == nil && !h.auth.open() {
		http.Error(w, "Log in first.", http.StatusUnauthorized)
		return
	}
	w.Header().Set("Content-Security-Policy", "default-src 'none'; sandbox")
	found, err := h.streamPart(r.Context(), id, w, func(l *mailview.Leaf) bool {
		if l.Kind != mailview.Part || l.ContentID != cid {
			return false
		}
		ct, disp := "application/octet-stream", "attachment"
		if inlineImageTypes[l.ContentType] {
			ct, disp = l.ContentType, "inline"
		}
		w.Header().Set("Content-Type", ct)
		w.Header().Set("Content-Disposition", mime.FormatMediaType(disp, map[string]string{"filename": mailview.SafeFilename(l.Filename)}))
		return true
	}, -1, nil)
	h.finishPart(w, r, found, err)
}

// attachment serves attachment n as a download under a sanitised name.
func (h *handler) attachment(w http.ResponseWriter, r *http.Request, s *session) {
	n, err := strconv.Atoi(r.PathValue("n"))
	if err != nil || n < 0 {
		h.notFound(w, r, "There is no such attachment.")
		return
	}
	found, err := h.streamPart(r.Context(), r.PathValue("id"), w, func(l *mailview.Leaf) bool {
		if l.Kind != mailview.Part || l.Index != n {
			return false
		}
		// Always a download, never rendered: the type is not trusted.
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment",
			map[string]string{"filename": mailview.SafeFilename(l.Filename)}))
		return true
	}, -1, nil)
	h.finishPart(w, r, found, err)
}

// raw serves the stored message, byte for byte, as a download.
func (h *handler) raw(w http.ResponseWriter, r *http.Request, s *session) {
	id := r.PathValue("id")
	body, err := h.store.OpenBody(r.Context(), id)
	if err != nil {
		h.finishPart(w, r, false, err)
		return
	}
	defer body.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": mailview.SafeFilename(id) + ".eml"}))
	if _, err := io.Copy(w, body); err != nil {
		h.log.Warn("web: message source cut short", "path", r.URL.Path, "err", err)
	}
}

// source reads the start of the stored message for the source tab.
func (h *handler) source(ctx context.Context, id string) (text string, truncated bool, err error) {
	body, err := h.store.OpenBody(ctx, id)
	if err != nil {
		return "", false, err
	}
	defer body.Close()
	b, err := io.ReadAll(io.LimitReader(body, maxSourceShown+1))
	truncated = len(b) > maxSourceShown
	return strings.ToValidUTF8(string(b[:min(len(b), maxSourceShown)]), "\uFFFD"), truncated, err
}

// streamPart copies the first leaf match accepts to w, at most limit bytes
// (-1: all), through filter when given. Headers must be set before the
// first byte, which match may do.
func (h *handler) streamPart(ctx context.Context, id string, w io.Writer, match func(*mailview.Leaf) bool, limit int64,
	filter func(io.Writer, io.Reader) error) (bool, error) {
	e, closer, err := mailview.Open(ctx, h.store, id)
	if err != nil {
		return false, err
	}
	defer closer.Close()
	found := false
	err = mailview.Walk(e, func(l *mailview.Leaf) (bool, error) {
		if !match(l) {
			return false, nil
		}
		found = true
		var src io.Reader = l.Body
		if limit >= 0 {
			src = io.LimitReader(src, limit)
		}
		if filter != nil {
			return true, mailview.IgnoreCharset(filter(w, src))
		}
		_, err := io.Copy(w, src)
		return true, mailview.IgnoreCharset(err)
	})
	return found, err
}

func (h *handler) finishPart(w http.ResponseWriter, r *http.Request, found bool, err error) {
	switch {
	case found && err != nil:
		// Headers are gone; the truncated body is all we can do.
		h.log.Warn("web: message part cut short", "path", r.URL.Path, "err", err)
	case errors.Is(err, queue.ErrNotFound) || (!found && err == nil):
		w.Header().Del("Content-Disposition")
		http.Error(w, "Not found.", http.StatusNotFound)
	case err != nil:
		h.log.Error("web: message part", "path", r.URL.Path, "err", err)
		http.Error(w, "The message could not be read.", http.StatusInternalServerError)
	}
}

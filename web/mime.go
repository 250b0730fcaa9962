package web

import (
	"context"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/outbox-mail/outbox/internal/mailview"
	"github.com/outbox-mail/outbox/queue"
)

// Bounds on what a message page shows inline; the rest is streamed or
// left out, so a huge message costs no memory.
const (
	maxTextShown  = 256 << 10
	maxHTMLServed = 4 << 20
)

// content is what the message page shows of a stored body.
type content struct {
	Headers       []mailview.Field
	Text          string
	TextTruncated bool
	HasHTML       bool
	Attachments   []attachmentInfo
	// Problem says why the body could not be fully parsed, if it could not.
	Problem string
}

type attachmentInfo struct {
	Index       int
	Filename    string
	ContentType string
	Size        int64
}

// readContent parses the stored body for display. A body that does not
// parse is reported on the page, not as a server error.
func (h *handler) readContent(ctx context.Context, id string) (*content, error) {
	e, closer, err := mailview.Open(ctx, h.store, id)
	if errors.Is(err, queue.ErrNotFound) {
		return &content{Problem: "The message body is gone (purged)."}, nil
	}
	if errors.Is(err, mailview.ErrMalformed) {
		return &content{Problem: err.Error()}, nil
	}
	if err != nil {
		return nil, err
	}
	defer closer.Close()
	c := &content{}
	c.Headers = mailview.Fields(e.Header)
	err = mailview.Walk(e, func(l *mailview.Leaf) (bool, error) {
		switch l.Kind {
		case mailview.Text:
			b, err := io.ReadAll(io.LimitReader(l.Body, maxTextShown+1))
			c.TextTruncated = len(b) > maxTextShown
			c.Text = strings.ToValidUTF8(string(b[:min(len(b), maxTextShown)]), "\uFFFD")
			return false, mailview.IgnoreCharset(err)
		case mailview.HTML:
			c.HasHTML = true
		case mailview.Part:
			n, err := io.Copy(io.Discard, l.Body)
			c.Attachments = append(c.Attachments, attachmentInfo{Index: l.Index,
				Filename: mailview.SafeFilename(l.Filename), ContentType: l.ContentType, Size: n})
			return false, mailview.IgnoreCharset(err)
		}
		return false, nil
	})
	if err != nil {
		c.Problem = "Part of the message could not be read: " + err.Error()
	}
	return c, nil
}

// messageHTML serves the message's HTML part for the sandboxed iframe. The
// CSP's sandbox directive gives the document an opaque origin with scripts
// disabled even if it is opened directly, and only inline styles and
// embedded images load unless the user asked for remote images.
func (h *handler) messageHTML(w http.ResponseWriter, r *http.Request, s *session) {
	img := "data: cid:"
	if r.URL.Query().Get("remote") == "1" {
		img += " https: http:"
	}
	hd := w.Header()
	hd.Set("Content-Security-Policy", "default-src 'none'; img-src "+img+
		"; style-src 'unsafe-inline'; sandbox; frame-ancestors 'self'")
	hd.Set("X-Frame-Options", "SAMEORIGIN")
	hd.Set("Content-Type", "text/html; charset=utf-8")
	found, err := h.streamPart(r.Context(), r.PathValue("id"), w, func(l *mailview.Leaf) bool { return l.Kind == mailview.HTML }, maxHTMLServed)
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
	}, -1)
	h.finishPart(w, r, found, err)
}

// streamPart copies the first leaf match accepts to w, at most limit bytes
// (-1: all). Headers must be set before the first byte, which match may do.
func (h *handler) streamPart(ctx context.Context, id string, w io.Writer, match func(*mailview.Leaf) bool, limit int64) (bool, error) {
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

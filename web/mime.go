package web

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"unicode"

	"github.com/emersion/go-message"
	_ "github.com/emersion/go-message/charset" // decodes legacy charsets
	"github.com/outbox-mail/outbox/queue"
)

// Bounds on what a message page shows inline; the rest is streamed or
// left out, so a huge message costs no memory.
const (
	maxTextShown  = 256 << 10
	maxHTMLServed = 4 << 20
	maxHeaders    = 100
	maxHeaderLen  = 2000
	maxParts      = 500
	maxDepth      = 12
)

// content is what the message page shows of a stored body.
type content struct {
	Headers       []headerField
	Text          string
	TextTruncated bool
	HasHTML       bool
	Attachments   []attachmentInfo
	// Problem says why the body could not be fully parsed, if it could not.
	Problem string
}

type headerField struct{ Key, Value string }

type attachmentInfo struct {
	Index       int
	Filename    string
	ContentType string
	Size        int64
}

// partKind classifies a leaf MIME part.
type partKind int

const (
	kindText partKind = iota
	kindHTML
	kindAttachment
)

// leaf is one leaf part met by walk; attachments are numbered in order.
type leaf struct {
	e     *message.Entity
	kind  partKind
	index int // attachment number, for kindAttachment
	ctype string
	name  string
}

// walk visits the leaf parts of the body in order, streaming; fn returns
// true to stop. The first text/plain and first text/html parts that are not
// attachments are the message's bodies; every other leaf is an attachment.
func walk(e *message.Entity, fn func(*leaf) (bool, error)) error {
	st := &walkState{}
	_, err := st.visit(e, 0, fn)
	return err
}

type walkState struct {
	parts, attachments int
	text, html         bool
}

func (st *walkState) visit(e *message.Entity, depth int, fn func(*leaf) (bool, error)) (bool, error) {
	if st.parts++; st.parts > maxParts || depth > maxDepth {
		return true, errors.New("the message has too many or too deeply nested parts; the rest is not shown")
	}
	if mr := e.MultipartReader(); mr != nil {
		for {
			p, err := mr.NextPart()
			if errors.Is(err, io.EOF) {
				return false, nil
			}
			if err != nil && !message.IsUnknownCharset(err) {
				return true, err
			}
			if stop, err := st.visit(p, depth+1, fn); stop || err != nil {
				return stop, err
			}
		}
	}
	ct, params, _ := e.Header.ContentType()
	disp, dparams, _ := e.Header.ContentDisposition()
	l := &leaf{e: e, ctype: ct, name: dparams["filename"]}
	if l.name == "" {
		l.name = params["name"]
	}
	switch {
	case disp != "attachment" && l.name == "" && ct == "text/plain" && !st.text:
		st.text, l.kind = true, kindText
	case disp != "attachment" && l.name == "" && ct == "text/html" && !st.html:
		st.html, l.kind = true, kindHTML
	default:
		l.kind, l.index = kindAttachment, st.attachments
		st.attachments++
	}
	return fn(l)
}

// openMessage opens and parses the head of a stored body.
func (h *handler) openMessage(ctx context.Context, id string) (*message.Entity, io.Closer, error) {
	body, err := h.store.OpenBody(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	e, err := message.Read(body)
	if err != nil && !message.IsUnknownCharset(err) {
		body.Close()
		return nil, nil, fmt.Errorf("parse message: %w", err)
	}
	return e, body, nil
}

// readContent parses the stored body for display. A body that does not
// parse is reported on the page, not as a server error.
func (h *handler) readContent(ctx context.Context, id string) (*content, error) {
	e, closer, err := h.openMessage(ctx, id)
	if errors.Is(err, queue.ErrNotFound) {
		return &content{Problem: "The message body is gone (purged)."}, nil
	}
	if err != nil && closer == nil && strings.HasPrefix(err.Error(), "parse message") {
		return &content{Problem: "The message could not be parsed: " + err.Error()}, nil
	}
	if err != nil {
		return nil, err
	}
	defer closer.Close()
	c := &content{}
	for _, f := range fields(e.Header) {
		c.Headers = append(c.Headers, f)
	}
	err = walk(e, func(l *leaf) (bool, error) {
		switch l.kind {
		case kindText:
			b, err := io.ReadAll(io.LimitReader(l.e.Body, maxTextShown+1))
			c.TextTruncated = len(b) > maxTextShown
			c.Text = strings.ToValidUTF8(string(b[:min(len(b), maxTextShown)]), "\uFFFD")
			return false, ignoreCharset(err)
		case kindHTML:
			c.HasHTML = true
		case kindAttachment:
			n, err := io.Copy(io.Discard, l.e.Body)
			c.Attachments = append(c.Attachments, attachmentInfo{Index: l.index,
				Filename: safeFilename(l.name), ContentType: l.ctype, Size: n})
			return false, ignoreCharset(err)
		}
		return false, nil
	})
	if err != nil {
		c.Problem = "Part of the message could not be read: " + err.Error()
	}
	return c, nil
}

func ignoreCharset(err error) error {
	if message.IsUnknownCharset(err) {
		return nil
	}
	return err
}

// fields lists header fields decoded for display, bounded in count and size.
func fields(h message.Header) []headerField {
	var out []headerField
	for f := h.Fields(); f.Next() && len(out) < maxHeaders; {
		v, err := f.Text()
		if err != nil {
			v = f.Value()
		}
		if len(v) > maxHeaderLen {
			v = v[:maxHeaderLen] + "…"
		}
		out = append(out, headerField{Key: f.Key(), Value: strings.ToValidUTF8(v, "\uFFFD")})
	}
	return out
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
	found, err := h.streamPart(r.Context(), r.PathValue("id"), w, func(l *leaf) bool { return l.kind == kindHTML }, maxHTMLServed)
	h.finishPart(w, r, found, err)
}

// attachment serves attachment n as a download under a sanitised name.
func (h *handler) attachment(w http.ResponseWriter, r *http.Request, s *session) {
	n, err := strconv.Atoi(r.PathValue("n"))
	if err != nil || n < 0 {
		h.notFound(w, r, "There is no such attachment.")
		return
	}
	found, err := h.streamPart(r.Context(), r.PathValue("id"), w, func(l *leaf) bool {
		if l.kind != kindAttachment || l.index != n {
			return false
		}
		// Always a download, never rendered: the type is not trusted.
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment",
			map[string]string{"filename": safeFilename(l.name)}))
		return true
	}, -1)
	h.finishPart(w, r, found, err)
}

// streamPart copies the first leaf match accepts to w, at most limit bytes
// (-1: all). Headers must be set before the first byte, which match may do.
func (h *handler) streamPart(ctx context.Context, id string, w io.Writer, match func(*leaf) bool, limit int64) (bool, error) {
	e, closer, err := h.openMessage(ctx, id)
	if err != nil {
		return false, err
	}
	defer closer.Close()
	found := false
	err = walk(e, func(l *leaf) (bool, error) {
		if !match(l) {
			return false, nil
		}
		found = true
		var src io.Reader = l.e.Body
		if limit >= 0 {
			src = io.LimitReader(src, limit)
		}
		_, err := io.Copy(w, src)
		return true, ignoreCharset(err)
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

// safeFilename reduces an attachment's name to a plain file name: no
// directories, no control or quoting characters, never "." or "..".
func safeFilename(name string) string {
	name = strings.ReplaceAll(name, "\\", "/")
	if i := strings.LastIndex(name, "/"); i >= 0 {
		name = name[i+1:]
	}
	name = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == '"' || r == unicode.ReplacementChar {
			return -1
		}
		return r
	}, name)
	name = strings.TrimLeft(strings.TrimSpace(name), ".")
	if r := []rune(name); len(r) > 200 {
		name = string(r[:200])
	}
	if name == "" {
		return "attachment"
	}
	return name
}

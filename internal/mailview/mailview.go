// Package mailview reads a stored message for people and programs that
// look at it: the dashboard's message page and the API's content,
// attachment and raw endpoints. It walks the MIME tree as a stream, so a
// message of any size costs bounded memory, and it decides once, for
// both, which part is the text body, which the HTML body and how the
// other parts are numbered.
package mailview

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"

	"github.com/emersion/go-message"
	_ "github.com/emersion/go-message/charset" // decodes legacy charsets
	"github.com/outbox-mail/outbox/queue"
)

// Bounds of a walk and of the header fields given back; the rest of a
// message past them is left out, never read into memory.
const (
	MaxParts     = 500
	MaxDepth     = 12
	MaxHeaders   = 100
	MaxHeaderLen = 2000
)

// ErrTooComplex stops a walk of a message with more than MaxParts parts
// or nested deeper than MaxDepth.
var ErrTooComplex = errors.New("the message has too many or too deeply nested parts; the rest is not shown")

// Kind classifies a leaf MIME part.
type Kind int

// The kinds of leaf parts.
const (
	// Text is the message's text body: its first text/plain part that is
	// not an attachment.
	Text Kind = iota
	// HTML is the message's HTML body: its first text/html part that is
	// not an attachment.
	HTML
	// Part is any other leaf: an attachment, or an inline part (see
	// Leaf.Inline). Parts are numbered from 0 in the order they come.
	Part
)

// Leaf is one leaf part met by Walk. Its Body streams the part's content,
// transfer encoding (and, for text, charset) decoded; it is valid only
// during the call that receives the leaf.
type Leaf struct {
	Kind Kind
	// Index numbers the Part leaves in order; 0 for Text and HTML.
	Index int
	// ContentType is the media type, lower-cased, without parameters.
	ContentType string
	// Filename is the name the part gives itself (Content-Disposition
	// filename, else Content-Type name), as sent: see SafeFilename.
	Filename string
	// ContentID is the Content-ID without its angle brackets.
	ContentID string
	// Disposition is the Content-Disposition type, lower-cased.
	Disposition string
	Header      message.Header
	Body        io.Reader
}

// Inline reports whether a Part is meant to be shown within the HTML body
// (referenced as cid:ContentID) rather than offered as an attachment.
func (l *Leaf) Inline() bool {
	return l.Kind == Part && l.ContentID != "" && l.Disposition != "attachment"
}

// Walk visits the leaf parts of e in order, streaming; fn returns true to
// stop. The first text/plain and first text/html parts that are not
// attachments are the message's bodies; every other leaf is a Part.
// Walk returns ErrTooComplex past MaxParts parts or MaxDepth levels.
func Walk(e *message.Entity, fn func(*Leaf) (stop bool, err error)) error {
	st := &walkState{}
	_, err := st.visit(e, 0, fn)
	return err
}

type walkState struct {
	parts, numbered int
	text, html      bool
}

func (st *walkState) visit(e *message.Entity, depth int, fn func(*Leaf) (bool, error)) (bool, error) {
	if st.parts++; st.parts > MaxParts || depth > MaxDepth {
		return true, ErrTooComplex
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
	l := &Leaf{ContentType: strings.ToLower(ct), Filename: dparams["filename"], Header: e.Header, Body: e.Body,
		Disposition: strings.ToLower(disp), ContentID: contentID(e.Header.Get("Content-Id"))}
	if l.Filename == "" {
		l.Filename = params["name"]
	}
	switch {
	case l.Disposition != "attachment" && l.Filename == "" && l.ContentType == "text/plain" && !st.text:
		st.text, l.Kind = true, Text
	case l.Disposition != "attachment" && l.Filename == "" && l.ContentType == "text/html" && !st.html:
		st.html, l.Kind = true, HTML
	default:
		l.Kind, l.Index = Part, st.numbered
		st.numbered++
	}
	return fn(l)
}

// contentID strips a Content-ID's angle brackets and white space.
func contentID(v string) string {
	v = strings.TrimSpace(v)
	if strings.HasPrefix(v, "<") && strings.HasSuffix(v, ">") {
		v = v[1 : len(v)-1]
	}
	return strings.TrimSpace(v)
}

// Open opens message id's stored body and parses its header block. The
// caller closes the returned Closer. A body that does not parse gives an
// error wrapping ErrMalformed, and a message that is not in the store
// one wrapping queue.ErrNotFound.
func Open(ctx context.Context, store queue.Reader, id string) (*message.Entity, io.Closer, error) {
	body, err := store.OpenBody(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	e, err := message.Read(body)
	if err != nil && !message.IsUnknownCharset(err) {
		body.Close()
		return nil, nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return e, body, nil
}

// ErrMalformed: the stored body is not a message that parses.
var ErrMalformed = errors.New("the message could not be parsed")

// IgnoreCharset drops the error of a part in a charset that cannot be
// decoded: its bytes are given as they are.
func IgnoreCharset(err error) error {
	if message.IsUnknownCharset(err) {
		return nil
	}
	return err
}

// Field is one header field, decoded for display.
type Field struct{ Key, Value string }

// Fields lists h's fields in order, RFC 2047 words decoded, values as
// valid UTF-8; at most MaxHeaders fields, each cut at MaxHeaderLen bytes
// with an ellipsis.
func Fields(h message.Header) []Field {
	var out []Field
	for f := h.Fields(); f.Next() && len(out) < MaxHeaders; {
		v, err := f.Text()
		if err != nil {
			v = f.Value()
		}
		if len(v) > MaxHeaderLen {
			v = strings.ToValidUTF8(v[:MaxHeaderLen], "") + "…"
		}
		out = append(out, Field{Key: f.Key(), Value: strings.ToValidUTF8(v, "\uFFFD")})
	}
	return out
}

// SafeFilename reduces an attachment's name to a plain file name: no
// directories, no control or quoting characters, never "." or "..", at
// most 200 runes, "attachment" when nothing is left.
func SafeFilename(name string) string {
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

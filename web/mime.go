package web

// Reading a stored message for display: its header, its mailboxes with
// their display names, its text, whether it has HTML, its attachments and
// inline parts, and its links. Everything here works on a message.Entity
// or an io.Reader and knows nothing of HTTP, so that it can move to a
// package of its own (the API's content endpoint reads the same things).

import (
	"errors"
	"io"
	"strings"
	"unicode"

	"github.com/emersion/go-message"
	_ "github.com/emersion/go-message/charset" // decodes legacy charsets
	"github.com/emersion/go-message/mail"
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
	Headers []headerField
	// From, To, Cc and ReplyTo are the header's mailboxes.
	From, To, Cc, ReplyTo []mailbox
	Date                  string
	Text                  string
	TextTruncated         bool
	HasHTML               bool
	// Attachments lists every part that is neither the text nor the
	// HTML body, inline images included.
	Attachments []attachmentInfo
	Links       []link
	// Problem says why the body could not be fully parsed, if it could not.
	Problem string
}

type headerField struct{ Key, Value string }

// mailbox is an address with its display name.
type mailbox struct{ Name, Address string }

type attachmentInfo struct {
	Index       int
	Filename    string
	ContentType string
	Size        int64
	// ContentID is the part's Content-ID without its angle brackets, by
	// which the HTML refers to it as "cid:…"; Inline says its disposition
	// is inline.
	ContentID string
	Inline    bool
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
	cid   string // Content-ID without <>
	disp  string
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
	l := &leaf{e: e, ctype: ct, name: dparams["filename"], disp: disp, cid: contentID(e.Header.Get("Content-Id"))}
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

// contentID is a Content-ID field's value without its angle brackets and
// spaces ("<logo@shop>" → "logo@shop"), as "cid:" URLs name it (RFC 2392).
func contentID(v string) string {
	v = strings.TrimSpace(v)
	v = strings.TrimSuffix(strings.TrimPrefix(v, "<"), ">")
	if len(v) > 500 || strings.ContainsFunc(v, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return ""
	}
	return v
}

// parseMessage parses the head of a stored body.
func parseMessage(body io.Reader) (*message.Entity, error) {
	e, err := message.Read(body)
	if err != nil && !message.IsUnknownCharset(err) {
		return nil, err
	}
	return e, nil
}

// readContent reads a whole message for display. A body that breaks off
// or a part that cannot be read is reported in Problem.
func readContent(e *message.Entity) *content {
	c := &content{Headers: fields(e.Header)}
	h := mail.Header{Header: e.Header}
	c.From, c.To, c.Cc, c.ReplyTo = mailboxes(h, "From"), mailboxes(h, "To"), mailboxes(h, "Cc"), mailboxes(h, "Reply-To")
	c.Date = clean(e.Header.Get("Date"))
	err := walk(e, func(l *leaf) (bool, error) {
		switch l.kind {
		case kindText:
			b, err := io.ReadAll(io.LimitReader(l.e.Body, maxTextShown+1))
			c.TextTruncated = len(b) > maxTextShown
			c.Text = strings.ToValidUTF8(string(b[:min(len(b), maxTextShown)]), "\uFFFD")
			return false, ignoreCharset(err)
		case kindHTML:
			c.HasHTML = true
			links, err := htmlLinks(io.LimitReader(l.e.Body, maxHTMLServed))
			c.Links = append(c.Links, links...)
			return false, ignoreCharset(err)
		case kindAttachment:
			n, err := io.Copy(io.Discard, l.e.Body)
			c.Attachments = append(c.Attachments, attachmentInfo{Index: l.index,
				Filename: safeFilename(l.name), ContentType: l.ctype, Size: n, ContentID: l.cid, Inline: l.disp == "inline"})
			return false, ignoreCharset(err)
		}
		return false, nil
	})
	c.Links = append(c.Links, textLinks(c.Text)...)
	if err != nil {
		c.Problem = "Part of the message could not be read: " + err.Error()
	}
	return c
}

func ignoreCharset(err error) error {
	if message.IsUnknownCharset(err) {
		return nil
	}
	return err
}

// mailboxes reads an address field with its decoded display names; a
// field that does not parse as addresses is shown as its text.
func mailboxes(h mail.Header, key string) []mailbox {
	list, err := h.AddressList(key)
	if err != nil {
		if v := clean(h.Get(key)); v != "" {
			return []mailbox{{Name: v}}
		}
		return nil
	}
	out := make([]mailbox, 0, len(list))
	for _, a := range list {
		out = append(out, mailbox{Name: clean(a.Name), Address: clean(a.Address)})
	}
	return out
}

// clean makes header text displayable: valid UTF-8, bounded.
func clean(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) > maxHeaderLen {
		s = strings.ToValidUTF8(s[:maxHeaderLen], "") + "…"
	}
	return s
}

// fields lists header fields decoded for display, bounded in count and size.
func fields(h message.Header) []headerField {
	var out []headerField
	for f := h.Fields(); f.Next() && len(out) < maxHeaders; {
		v, err := f.Text()
		if err != nil {
			v = f.Value()
		}
		out = append(out, headerField{Key: f.Key(), Value: clean(v)})
	}
	return out
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

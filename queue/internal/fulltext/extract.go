package fulltext

import (
	"bytes"
	"io"
	"strings"
	"sync"

	"github.com/emersion/go-message"
	_ "github.com/emersion/go-message/charset" // decodes legacy charsets
	"github.com/emersion/go-message/mail"
	"golang.org/x/net/html"
)

// Bounds on what Extract reads and keeps, so that indexing a message costs
// at most a fixed amount of work whatever its size.
const (
	// MaxRead is how much of a stored body is read looking for its text.
	MaxRead = 1 << 20
	// MaxText is how much of the text is kept.
	MaxText = 64 << 10
	// MaxMailboxes bounds the header's mailboxes kept.
	MaxMailboxes = 50
	// MaxName bounds a display name, in bytes.
	MaxName = 200
	// maxNames bounds the attachment names kept.
	maxNames = 20
	maxParts = 100
	maxDepth = 8
)

// Mailbox is an address of the header with its display name.
type Mailbox struct {
	Field   string // "from", "to" or "cc"
	Name    string
	Address string
}

// Document is what the index keeps of one message.
type Document struct {
	// Subject is the decoded Subject field.
	Subject string
	// Mailboxes are the From, To and Cc mailboxes, in that order.
	Mailboxes []Mailbox
	// Text is the first plain-text part, or the text of the first HTML
	// part when there is none, at most MaxText bytes.
	Text string
	// Attachments are the names of the other parts that have one.
	Attachments []string
}

// Extract reads a message for the index. It never fails: what could not
// be parsed (a damaged header field, a truncated part) is left out, and a
// body without a header block still gives its text.
func Extract(r io.Reader) Document {
	var d Document
	e, err := message.Read(io.LimitReader(r, MaxRead))
	if e == nil || (err != nil && !message.IsUnknownCharset(err)) {
		return d
	}
	h := mail.Header{Header: e.Header}
	d.Subject, _ = h.Subject()
	d.Subject = strings.ToValidUTF8(d.Subject, "")
	for _, f := range []string{"From", "To", "Cc"} {
		list, _ := h.AddressList(f)
		for _, a := range list {
			if len(d.Mailboxes) == MaxMailboxes {
				break
			}
			d.Mailboxes = append(d.Mailboxes, Mailbox{Field: strings.ToLower(f),
				Name: clip(strings.ToValidUTF8(a.Name, ""), MaxName), Address: strings.ToValidUTF8(a.Address, "")})
		}
	}
	x := &extractor{doc: &d}
	x.visit(e, 0)
	if d.Text == "" && x.html != "" {
		d.Text = x.html
	}
	return d
}

// extractor walks the parts of one message.
type extractor struct {
	doc   *Document
	parts int
	text  bool   // a plain-text body was found
	html  string // the first HTML body's text, used when there is no plain one
}

func (x *extractor) visit(e *message.Entity, depth int) {
	if x.parts++; x.parts > maxParts || depth > maxDepth {
		return
	}
	if mr := e.MultipartReader(); mr != nil {
		for {
			p, err := mr.NextPart()
			if err != nil && !message.IsUnknownCharset(err) {
				return // the end, or a part past MaxRead
			}
			x.visit(p, depth+1)
		}
	}
	ct, params, _ := e.Header.ContentType()
	disp, dparams, _ := e.Header.ContentDisposition()
	name := dparams["filename"]
	if name == "" {
		name = params["name"]
	}
	switch {
	case disp != "attachment" && name == "" && ct == "text/plain" && !x.text:
		x.text = true
		x.doc.Text = readText(e.Body)
	case disp != "attachment" && name == "" && ct == "text/html" && x.html == "":
		x.html = htmlText(io.LimitReader(e.Body, MaxRead))
	case name != "" && len(x.doc.Attachments) < maxNames:
		x.doc.Attachments = append(x.doc.Attachments, clip(strings.ToValidUTF8(name, ""), MaxName))
	}
}

// textBufs are the buffers text parts are read into, reused: indexing
// reads one message after another.
var textBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// readText reads at most MaxText bytes of a text part.
func readText(r io.Reader) string {
	b := textBufs.Get().(*bytes.Buffer)
	defer textBufs.Put(b)
	b.Reset()
	b.ReadFrom(io.LimitReader(r, MaxText))
	return strings.ToValidUTF8(b.String(), " ")
}

// htmlText is the text of an HTML document, without its scripts and
// styles, at most MaxText bytes.
func htmlText(r io.Reader) string {
	var sb strings.Builder
	z := html.NewTokenizer(r)
	skip := 0
	for sb.Len() < MaxText {
		switch z.Next() {
		case html.ErrorToken: // the end, or a document that cannot go on
			return clip(strings.ToValidUTF8(sb.String(), " "), MaxText)
		case html.StartTagToken:
			if n, _ := z.TagName(); string(n) == "script" || string(n) == "style" {
				skip++
			}
		case html.EndTagToken:
			if n, _ := z.TagName(); (string(n) == "script" || string(n) == "style") && skip > 0 {
				skip--
			}
		case html.TextToken:
			if skip == 0 {
				sb.Write(z.Text())
				sb.WriteByte(' ')
			}
		}
	}
	return clip(strings.ToValidUTF8(sb.String(), " "), MaxText)
}

// clip cuts s to at most n bytes, at a character boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	return strings.ToValidUTF8(s, "")
}

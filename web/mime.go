package web

// Reading a stored message for display: its header, its mailboxes with
// their display names, its text, whether it has HTML, its attachments and
// inline parts, and its links. The MIME walk is internal/mailview's, which
// the API's content endpoint shares; what is here only gathers what the
// message page shows, and knows nothing of HTTP.

import (
	"io"
	"strings"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	"github.com/outbox-mail/outbox/internal/mailview"
)

// Bounds on what a message page shows inline; the rest is streamed or
// left out, so a huge message costs no memory.
const (
	maxTextShown  = 256 << 10
	maxHTMLServed = 4 << 20
)

// content is what the message page shows of a stored body.
type content struct {
	Headers []mailview.Field
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

// mailbox is an address with its display name.
type mailbox struct{ Name, Address string }

type attachmentInfo struct {
	Index       int
	Filename    string
	ContentType string
	Size        int64
	// ContentID is the part's Content-ID without its angle brackets, by
	// which the HTML refers to it as "cid:…"; Inline says it is meant to
	// be shown within the HTML.
	ContentID string
	Inline    bool
}

// readContent reads a whole message for display. A body that breaks off
// or a part that cannot be read is reported in Problem.
func readContent(e *message.Entity) *content {
	c := &content{Headers: mailview.Fields(e.Header)}
	h := mail.Header{Header: e.Header}
	c.From, c.To, c.Cc, c.ReplyTo = mailboxes(h, "From"), mailboxes(h, "To"), mailboxes(h, "Cc"), mailboxes(h, "Reply-To")
	c.Date = clean(e.Header.Get("Date"))
	err := mailview.Walk(e, func(l *mailview.Leaf) (bool, error) {
		switch l.Kind {
		case mailview.Text:
			b, err := io.ReadAll(io.LimitReader(l.Body, maxTextShown+1))
			c.TextTruncated = len(b) > maxTextShown
			c.Text = strings.ToValidUTF8(string(b[:min(len(b), maxTextShown)]), "\uFFFD")
			return false, mailview.IgnoreCharset(err)
		case mailview.HTML:
			c.HasHTML = true
			links, err := htmlLinks(io.LimitReader(l.Body, maxHTMLServed))
			c.Links = append(c.Links, links...)
			return false, mailview.IgnoreCharset(err)
		case mailview.Part:
			n, err := io.Copy(io.Discard, l.Body)
			c.Attachments = append(c.Attachments, attachmentInfo{Index: l.Index, Filename: mailview.SafeFilename(l.Filename),
				ContentType: l.ContentType, Size: n, ContentID: l.ContentID, Inline: l.Inline()})
			return false, mailview.IgnoreCharset(err)
		}
		return false, nil
	})
	c.Links = append(c.Links, textLinks(c.Text)...)
	if err != nil {
		c.Problem = "Part of the message could not be read: " + err.Error()
	}
	return c
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
	if len(s) > mailview.MaxHeaderLen {
		s = strings.ToValidUTF8(s[:mailview.MaxHeaderLen], "") + "…"
	}
	return s
}

// Package message composes RFC 5322 / MIME messages as a stream.
//
// A Message is validated whole before its first byte is written, then
// written part by part: attachments are read from their io.Readers and
// encoded on the way to the io.Writer, so composing a message costs the
// same small, fixed memory whatever the size of its attachments.
package message

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"strings"
	"time"
	"unicode/utf8"
)

// Message is one email to compose. Only From and at least one recipient
// are required.
type Message struct {
	From    Address
	To      []Address
	Cc      []Address
	Bcc     []Address // envelope only: never written to the headers
	ReplyTo []Address
	Subject string
	Text    string // text/plain body
	HTML    string // text/html body; a text/plain twin is derived when Text is empty
	// Headers are extra header fields, written in order after the ones
	// the builder owns. A name may not be one of those (From, Subject,
	// Content-Type…).
	Headers     [][2]string
	Attachments []Attachment
	Date        time.Time // now, when zero
	MessageID   string    // "<id@domain>" or "id@domain"; generated when empty
	// Allow8Bit lets text bodies go as 8bit instead of quoted-printable or
	// base64; set it only when the server advertises 8BITMIME.
	Allow8Bit bool
}

// Attachment is a file sent with the message. With Inline set it is a
// resource the HTML body shows through "cid:" + ContentID.
type Attachment struct {
	Filename    string
	ContentType string    // guessed from Filename, then from the content, when empty
	Content     io.Reader // read once, while the message is written
	Inline      bool
	ContentID   string // for Inline; generated when empty
}

// ownedHeaders are the fields the builder writes itself; letting a
// custom header repeat one would produce a message whose meaning depends
// on which copy a reader believes.
var ownedHeaders = map[string]string{
	"from": "From", "to": "To", "cc": "Cc", "bcc": "Bcc", "reply-to": "ReplyTo",
	"subject": "Subject", "date": "Date", "message-id": "MessageID",
	"mime-version": "",
}

// Validate checks every field and returns a *FieldError for the first one
// that is wrong. WriteTo calls it before writing anything.
func (m *Message) Validate() error {
	if m.From == (Address{}) {
		return &FieldError{"from", errors.New("missing sender")}
	}
	if err := validateAddress(m.From); err != nil {
		return &FieldError{"from", err}
	}
	lists := []struct {
		name string
		as   []Address
	}{{"to", m.To}, {"cc", m.Cc}, {"bcc", m.Bcc}, {"reply_to", m.ReplyTo}}
	for _, l := range lists {
		for i, a := range l.as {
			if err := validateAddress(a); err != nil {
				return &FieldError{fmt.Sprintf("%s[%d]", l.name, i), err}
			}
		}
	}
	if len(m.To)+len(m.Cc)+len(m.Bcc) == 0 {
		return &FieldError{"to", errors.New("no recipients (to, cc or bcc)")}
	}
	if err := checkHeaderValue(m.Subject); err != nil {
		return &FieldError{"subject", err}
	}
	if err := m.validateBodies(); err != nil {
		return err
	}
	if err := m.validateHeaders(); err != nil {
		return err
	}
	if m.MessageID != "" {
		if err := checkMessageID(m.MessageID); err != nil {
			return &FieldError{"message_id", err}
		}
	}
	for i, a := range m.Attachments {
		if err := a.validate(); err != nil {
			return &FieldError{fmt.Sprintf("attachments[%d]", i), err}
		}
	}
	return nil
}

func (m *Message) validateBodies() error {
	if !utf8.ValidString(m.Text) {
		return &FieldError{"text", errInvalidUTF8}
	}
	if !utf8.ValidString(m.HTML) {
		return &FieldError{"html", errInvalidUTF8}
	}
	return nil
}

func (m *Message) validateHeaders() error {
	for i, h := range m.Headers {
		field := fmt.Sprintf("headers[%d]", i)
		name, value := h[0], h[1]
		if err := checkFieldName(name); err != nil {
			return &FieldError{field, err}
		}
		lower := strings.ToLower(name)
		if own, ok := ownedHeaders[lower]; ok || strings.HasPrefix(lower, "content-") {
			msg := fmt.Sprintf("%q is written by the message builder and cannot be set as a custom header", name)
			if own != "" {
				msg += fmt.Sprintf("; use the %s field", own)
			}
			return &FieldError{field, errors.New(msg)}
		}
		if err := checkHeaderValue(value); err != nil {
			return &FieldError{field, fmt.Errorf("value of %q %v", name, err)}
		}
		if isASCIIPrintable(value) {
			if _, err := rawHeader(name, value); err != nil {
				return &FieldError{field, fmt.Errorf("value of %q %v", name, err)}
			}
		}
	}
	return nil
}

// checkFieldName enforces RFC 5322 field names (printable ASCII but the
// colon), kept short enough that the name and a space fit one line.
func checkFieldName(name string) error {
	if name == "" {
		return errors.New("empty header name")
	}
	if strings.ContainsAny(name, "\r\n") {
		return fmt.Errorf("header name %q %v", name, errCRLF)
	}
	for i := 0; i < len(name); i++ {
		if name[i] < 33 || name[i] > 126 || name[i] == ':' {
			return fmt.Errorf("invalid header name %q", name)
		}
	}
	if len(name) > foldWidth-2 {
		return fmt.Errorf("header name %q longer than %d characters", name, foldWidth-2)
	}
	return nil
}

// checkMessageID accepts "id-left@id-right", with or without the angle
// brackets, made of printable ASCII without spaces.
func checkMessageID(id string) error {
	if err := checkHeaderValue(id); err != nil {
		return err
	}
	inner := strings.TrimSuffix(strings.TrimPrefix(id, "<"), ">")
	at := strings.LastIndexByte(inner, '@')
	if at <= 0 || at == len(inner)-1 || strings.ContainsAny(inner, "<> ") || len(id) > 900 {
		return fmt.Errorf("%q is not of the form <id@domain>", id)
	}
	for i := 0; i < len(inner); i++ {
		if inner[i] < 33 || inner[i] > 126 {
			return fmt.Errorf("%q: message ID must be printable ASCII", id)
		}
	}
	return nil
}

func (a *Attachment) validate() error {
	if a.Content == nil {
		return errors.New("no content (nil reader)")
	}
	if err := checkHeaderValue(a.Filename); err != nil {
		return fmt.Errorf("filename %v", err)
	}
	for _, r := range a.Filename {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("filename %q contains a control character", a.Filename)
		}
	}
	if a.ContentType != "" {
		if err := checkHeaderValue(a.ContentType); err != nil {
			return fmt.Errorf("content type %v", err)
		}
		_, params, err := mime.ParseMediaType(a.ContentType)
		if err != nil || !isASCII(a.ContentType) {
			return fmt.Errorf("invalid content type %q", a.ContentType)
		}
		// ParseMediaType decodes RFC 2231 values (k*=utf-8''%0D%0A…):
		// what is written is the decoded value, so that is what is checked.
		for k, v := range params {
			if err := checkParamValue(v); err != nil {
				return fmt.Errorf("content type parameter %q %v", k, err)
			}
		}
	}
	if a.ContentID != "" {
		if err := checkMessageID(a.ContentID); err != nil && !isCIDToken(a.ContentID) {
			return fmt.Errorf("content ID %v", err)
		}
	}
	return nil
}

// checkParamValue refuses a decoded MIME parameter value that could not be
// written back faithfully: line breaks, NUL and other control characters
// (tab aside), and bytes that are not UTF-8.
func checkParamValue(v string) error {
	if err := checkHeaderValue(v); err != nil {
		return err
	}
	for _, r := range v {
		if r < 0x20 && r != '\t' || r == 0x7f {
			return errors.New("contains a control character")
		}
	}
	return nil
}

// isCIDToken accepts a bare Content-ID such as "logo.png": the form HTML
// authors write after "cid:", written as <logo.png> so that it matches.
func isCIDToken(id string) bool {
	if id == "" || len(id) > 200 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if c < 33 || c > 126 || strings.IndexByte("<>@\"\\()[],;:", c) >= 0 {
			return false
		}
	}
	return true
}

// Envelope returns the SMTP envelope: the sender and every To, Cc and Bcc
// recipient once, with domains in lower-case A-labels.
func (m *Message) Envelope() (from string, recipients []string) {
	seen := map[string]bool{}
	for _, l := range [][]Address{m.To, m.Cc, m.Bcc} {
		for _, a := range l {
			e := a.envelope()
			if !seen[e] {
				seen[e] = true
				recipients = append(recipients, e)
			}
		}
	}
	return m.From.envelope(), recipients
}

// NeedsSMTPUTF8 reports whether an envelope address has a non-ASCII local
// part: such a message can only go to a server offering SMTPUTF8.
func (m *Message) NeedsSMTPUTF8() bool {
	from, rcpts := m.Envelope()
	for _, e := range append(rcpts, from) {
		if !isASCII(e) {
			return true
		}
	}
	return false
}

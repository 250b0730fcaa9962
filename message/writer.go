package message

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"io"
	"mime"
	"sort"
	"strings"
	"time"
)

// node is one MIME entity of the tree being written: a multipart with
// children, or a leaf that writes its own header fields and body (a leaf
// decides its Content-Type only when it sees the first bytes of its
// content).
type node struct {
	multipart string // "multipart/mixed"…, or "" for a leaf
	params    string // extra Content-Type parameters of a multipart
	kids      []*node
	leaf      func(w *bufio.Writer) error
}

// WriteTo validates m, then writes it to w as an RFC 5322 message with
// CRLF line endings, reading attachment contents as it goes. If
// validation fails nothing is written.
func (m *Message) WriteTo(w io.Writer) (int64, error) {
	if err := m.Validate(); err != nil {
		return 0, err
	}
	cw := &countWriter{w: w}
	bw := bufio.NewWriterSize(cw, 32<<10)
	err := m.writeHeader(bw)
	if err == nil {
		err = writeNode(bw, m.tree())
	}
	if ferr := bw.Flush(); err == nil {
		err = ferr
	}
	return cw.n, err
}

// writeHeader writes the message's own fields, up to but excluding the
// Content-* fields of the top entity.
func (m *Message) writeHeader(w *bufio.Writer) error {
	date := m.Date
	if date.IsZero() {
		date = time.Now()
	}
	id := m.MessageID
	if id == "" {
		id = randomHex(16) + "@" + domainOf(m.From)
	}
	lines := []string{
		"Date: " + date.Format(time.RFC1123Z) + "\r\n",
		"Message-ID: <" + strings.Trim(id, "<>") + ">\r\n",
		addressHeader("From", []Address{m.From}),
		addressHeader("Reply-To", m.ReplyTo),
		addressHeader("To", m.To),
		addressHeader("Cc", m.Cc),
	}
	if m.Subject != "" {
		s, _ := encodeHeader("Subject", m.Subject) // validated already
		lines = append(lines, s)
	}
	lines = append(lines, "MIME-Version: 1.0\r\n")
	for _, h := range m.Headers {
		var s string
		if isASCIIPrintable(h[1]) {
			s, _ = rawHeader(h[0], h[1])
		} else {
			s, _ = encodeHeader(h[0], h[1])
		}
		lines = append(lines, s)
	}
	for _, l := range lines {
		if _, err := w.WriteString(l); err != nil {
			return err
		}
	}
	return nil
}

// addressHeader renders an address list field, or "" when it is empty.
func addressHeader(name string, list []Address) string {
	if len(list) == 0 {
		return ""
	}
	f := newFolder(name, foldWidth)
	for i, a := range list {
		suffix := ","
		if i == len(list)-1 {
			suffix = ""
		}
		a.fold(f, suffix)
	}
	return f.String() + "\r\n"
}

// tree arranges the parts with no needless wrapper:
// mixed( related( alternative(text, html), inline… ), attachment… ).
func (m *Message) tree() *node {
	text := m.Text
	if text == "" && m.HTML != "" {
		text = htmlToText(m.HTML)
	}
	var body *node
	if text != "" || m.HTML != "" || len(m.Attachments) == 0 {
		body = m.textNode("text/plain", text)
	}
	if m.HTML != "" {
		body = &node{multipart: "multipart/alternative", kids: []*node{body, m.textNode("text/html", m.HTML)}}
	}
	var related, mixed []*node
	for i := range m.Attachments {
		a := &m.Attachments[i]
		n := &node{leaf: a.writer(m)}
		if a.Inline && m.HTML != "" {
			related = append(related, n)
		} else {
			mixed = append(mixed, n)
		}
	}
	if len(related) > 0 {
		body = &node{multipart: "multipart/related", params: `type="multipart/alternative"`,
			kids: append([]*node{body}, related...)}
	}
	if len(mixed) > 0 {
		kids := mixed
		if body != nil {
			kids = append([]*node{body}, mixed...)
		}
		body = &node{multipart: "multipart/mixed", kids: kids}
	}
	return body
}

func (m *Message) textNode(ctype, s string) *node {
	s = normText(s)
	enc := chooseEncoding(s, m.Allow8Bit)
	return &node{leaf: func(w *bufio.Writer) error {
		w.WriteString("Content-Type: " + ctype + "; charset=utf-8\r\n")
		w.WriteString("Content-Transfer-Encoding: " + enc + "\r\n\r\n")
		return writeText(w, s, enc)
	}}
}

// writeNode writes an entity: a leaf through its own writer, a multipart
// as its header fields and each child between boundary delimiters.
func writeNode(w *bufio.Writer, n *node) error {
	if n.multipart == "" {
		return n.leaf(w)
	}
	// "=_" cannot occur in quoted-printable or base64 output, and the
	// random part makes a clash with 7bit text practically impossible.
	boundary := "=_outbox_" + randomHex(12)
	f := newFolder("Content-Type", foldWidth)
	f.token(n.multipart + ";")
	if n.params != "" {
		f.token(n.params + ";")
	}
	f.token(`boundary="` + boundary + `"`)
	w.WriteString(f.String() + "\r\n\r\n")
	for i, k := range n.kids {
		if i > 0 {
			w.WriteString("\r\n")
		}
		w.WriteString("--" + boundary + "\r\n")
		if err := writeNode(w, k); err != nil {
			return err
		}
	}
	_, err := w.WriteString("\r\n--" + boundary + "--\r\n")
	return err
}

// writer returns the leaf writer of an attachment. Its type is settled
// only then: sniffing needs the first 512 bytes, which a bufio.Reader
// peeks without consuming, so the content still streams in one pass.
func (a *Attachment) writer(m *Message) func(w *bufio.Writer) error {
	return func(w *bufio.Writer) error {
		br := bufio.NewReaderSize(a.Content, 4096)
		ctype, params := a.mediaType(br)
		if a.Filename != "" {
			params = append(params, nameParam(a.Filename))
		}
		w.WriteString(paramHeader("Content-Type", ctype, params))
		disp, dparams := "attachment", [][]string(nil)
		if a.Inline {
			disp = "inline"
		}
		if a.Filename != "" {
			dparams = paramTokens("filename", a.Filename)
		}
		w.WriteString(paramHeader("Content-Disposition", disp, dparams))
		if a.Inline || a.ContentID != "" {
			w.WriteString("Content-ID: <" + a.contentID(m) + ">\r\n")
		}
		w.WriteString("Content-Transfer-Encoding: base64\r\n\r\n")
		enc := newBase64Writer(w)
		if _, err := br.WriteTo(enc); err != nil {
			return err
		}
		return enc.Close()
	}
}

// mediaType returns the attachment's type and its parameters rendered as
// "k=v" tokens: as given, else from the file name and the content (sniff).
func (a *Attachment) mediaType(br *bufio.Reader) (string, [][]string) {
	ct := a.ContentType
	if ct == "" {
		ct = sniff(a.Filename, a.Content, br)
	}
	t, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return "application/octet-stream", nil
	}
	keys := make([]string, 0, len(params))
	for k := range params {
		if k != "name" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var out [][]string
	for _, k := range keys {
		v := params[k]
		if checkParamValue(v) != nil {
			continue // refused by validate; never written
		}
		if isASCIIPrintable(v) && !strings.Contains(v, "=?") {
			out = append(out, []string{k + "=" + quoteString(v)})
			continue
		}
		// Not ASCII: RFC 2231 percent-encoded UTF-8, as for filenames.
		out = append(out, paramTokens(k, v)...)
	}
	return t, out
}

// contentID is the given Content-ID without brackets, or a fresh one.
func (a *Attachment) contentID(m *Message) string {
	if a.ContentID != "" {
		return strings.Trim(a.ContentID, "<>")
	}
	return randomHex(12) + "@" + domainOf(m.From)
}

// nameParam is the Content-Type name= parameter old clients read instead
// of RFC 2231 filename*: plain when short ASCII, RFC 2047 words otherwise
// (inside a quoted string, as those clients expect).
func nameParam(filename string) []string {
	if len(filename) <= 60 && isASCIIPrintable(filename) && !strings.Contains(filename, "\t") &&
		!strings.Contains(filename, "=?") {
		return []string{"name=" + quoteString(filename)}
	}
	return encodedParam("name", filename)
}

// paramHeader renders "Name: value; p1; p2" folded between parameters
// and, for the name= twin, between its encoded words.
func paramHeader(name, value string, params [][]string) string {
	f := newFolder(name, foldWidth)
	if len(params) == 0 {
		f.token(value)
		return f.String() + "\r\n"
	}
	f.token(value + ";")
	for i, p := range params {
		sep := ";"
		if i == len(params)-1 {
			sep = ""
		}
		for j, w := range p {
			if j == len(p)-1 {
				w += sep
			}
			f.put(w, strings.Contains(w, "=?"))
		}
	}
	return f.String() + "\r\n"
}

// domainOf is the sender's domain in ASCII, for generated identifiers.
func domainOf(a Address) string {
	e := a.envelope()
	return e[strings.LastIndexByte(e, '@')+1:]
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// countWriter counts what reaches the caller's writer, for WriteTo.
type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

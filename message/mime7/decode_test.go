package mime7

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"maps"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"net/textproto"
	"slices"
	"strings"
	"testing"

	gomessage "github.com/emersion/go-message"
)

// content is what a message decodes to: each leaf's media type and
// decoded bytes, in order, with the headers that describe it. Two
// messages with equal content show the same to a reader.
type content struct {
	headers []string // every header field but Content-Transfer-Encoding and MIME-Version, unfolded
	leaves  []string // "type: decoded bytes"
}

func (c content) String() string {
	return fmt.Sprintf("headers %q\nleaves %q", c.headers, c.leaves)
}

// decodeStd walks raw with net/mail, mime/multipart, mime/quotedprintable
// and encoding/base64 only.
func decodeStd(raw []byte) (content, error) {
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return content{}, err
	}
	var c content
	err = c.walkStd(textproto.MIMEHeader(msg.Header), msg.Body, false, rawHeader(raw))
	return c, err
}

func (c *content) walkStd(h textproto.MIMEHeader, body io.Reader, digest bool, hdr string) error {
	c.headers = append(c.headers, describeHeader(hdr)...)
	def := "text/plain"
	if digest {
		def = "message/rfc822"
	}
	ct, params := def, map[string]string{}
	if v := h.Get("Content-Type"); v != "" {
		var err error
		if ct, params, err = mime.ParseMediaType(v); err != nil {
			ct = "text/plain"
		}
	}
	switch {
	case strings.HasPrefix(ct, "multipart/"):
		mr := multipart.NewReader(body, params["boundary"])
		for {
			p, err := mr.NextRawPart()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
			ph, _ := io.ReadAll(p) // the part's body; its header is in p.Header
			if err := c.walkStd(p.Header, bytes.NewReader(ph), ct == "multipart/digest", headerText(p.Header)); err != nil {
				return err
			}
		}
	case ct == "message/rfc822":
		inner, err := io.ReadAll(body)
		if err != nil {
			return err
		}
		msg, err := mail.ReadMessage(bytes.NewReader(inner))
		if err != nil {
			return err
		}
		return c.walkStd(textproto.MIMEHeader(msg.Header), msg.Body, false, rawHeader(inner))
	}
	var r io.Reader = body
	switch strings.ToLower(strings.TrimSpace(h.Get("Content-Transfer-Encoding"))) {
	case "base64":
		r = base64.NewDecoder(base64.StdEncoding, &dropWhite{r: body})
	case "quoted-printable":
		r = quotedprintable.NewReader(body)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	c.leaves = append(c.leaves, ct+": "+string(b))
	return nil
}

// dropWhite removes what base64 decoders must ignore: CR, LF, spaces
// and bytes outside the alphabet (RFC 2045 §6.8).
type dropWhite struct{ r io.Reader }

func (d *dropWhite) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	j := 0
	for _, c := range p[:n] {
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '+' || c == '/' || c == '=' {
			p[j] = c
			j++
		}
	}
	return j, err
}

// decodeGoMessage walks raw with emersion/go-message.
func decodeGoMessage(raw []byte) (content, error) {
	e, err := gomessage.Read(bytes.NewReader(raw))
	if err != nil && !gomessage.IsUnknownCharset(err) && !gomessage.IsUnknownEncoding(err) {
		return content{}, err
	}
	var c content
	err = c.walkGo(e, rawHeader(raw))
	return c, err
}

func (c *content) walkGo(e *gomessage.Entity, hdr string) error {
	c.headers = append(c.headers, describeHeader(hdr)...)
	if mr := e.MultipartReader(); mr != nil {
		for {
			p, err := mr.NextPart()
			if err == io.EOF {
				return nil
			}
			if err != nil && !gomessage.IsUnknownCharset(err) {
				return err
			}
			if err := c.walkGo(p, headerFields(p.Header)); err != nil {
				return err
			}
		}
	}
	ct, _, err := e.Header.ContentType()
	if err != nil || ct == "" {
		ct = "text/plain"
	}
	b, err := io.ReadAll(e.Body)
	if err != nil {
		return err
	}
	if ct == "message/rfc822" {
		inner, err := gomessage.Read(bytes.NewReader(b))
		if err != nil && !gomessage.IsUnknownCharset(err) {
			return err
		}
		return c.walkGo(inner, rawHeader(b))
	}
	c.leaves = append(c.leaves, ct+": "+string(b))
	return nil
}

// rawHeader is the header block at the start of raw, or all of it.
func rawHeader(raw []byte) string {
	br := bufio.NewReader(bytes.NewReader(raw))
	var b strings.Builder
	for {
		l, err := br.ReadString('\n')
		if strings.TrimRight(l, "\r\n") == "" || err != nil {
			b.WriteString(l)
			return b.String()
		}
		b.WriteString(l)
	}
}

func headerText(h textproto.MIMEHeader) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(h)) {
		for _, v := range h[k] {
			b.WriteString(k + ": " + v + "\r\n")
		}
	}
	return b.String()
}

func headerFields(h gomessage.Header) string {
	var b strings.Builder
	f := h.Fields()
	for f.Next() {
		b.WriteString(f.Key() + ": " + f.Value() + "\r\n")
	}
	return b.String()
}

// describeHeader lists the unfolded fields of a header block, lower-cased
// names, leaving out the two the downgrade may change.
func describeHeader(hdr string) []string {
	var out []string
	for _, l := range strings.Split(strings.ReplaceAll(strings.ReplaceAll(hdr, "\r\n", "\n"), "\n ", " "), "\n") {
		l = strings.ReplaceAll(l, "\n\t", "\t")
		name, value, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		name = strings.ToLower(strings.TrimSpace(name))
		if name == "content-transfer-encoding" || name == "mime-version" {
			continue
		}
		out = append(out, name+":"+strings.TrimSpace(value))
	}
	return out
}

// check7bit fails unless raw is 7-bit with CRLF lines of at most 998
// octets, and every quoted-printable or base64 line at most 76.
func check7bit(t testing.TB, raw []byte, eightOK bool) {
	t.Helper()
	for i, l := range bytes.Split(raw, crlf) {
		if len(l) > maxLine {
			t.Fatalf("line %d is %d octets", i, len(l))
		}
		if bytes.ContainsAny(l, "\r\n") {
			t.Fatalf("line %d has a bare CR or LF: %.60q", i, l)
		}
		if !eightOK && eightBit(l) {
			t.Fatalf("line %d has 8-bit bytes: %.60q", i, l)
		}
		if hasNUL(l) {
			t.Fatalf("line %d has a NUL byte", i)
		}
	}
}

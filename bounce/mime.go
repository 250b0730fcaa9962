package bounce

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"strings"
)

// parser walks one report as a stream.
type parser struct {
	lr     *limitReader
	rep    Report
	status bool   // a delivery-status part was read
	text   []byte // the start of the first text/plain part, for plain bounces
	top    fields
}

// topFields are the message header fields the parser looks at.
var topFields = map[string]bool{
	"content-type": true, "content-transfer-encoding": true, "from": true,
	"subject": true, "x-failed-recipients": true,
}

// maxText is how much of a plain bounce's text is searched for a status.
const maxText = 64 << 10

func (p *parser) parse(br *bufio.Reader) (*Report, error) {
	top, eof, err := readBlock(br, func(n string) bool { return topFields[n] })
	if err != nil {
		return nil, readErr("message header", err)
	}
	if eof && len(top) == 0 {
		return nil, malformed("no header")
	}
	p.top = top
	found, err := p.entity(top, br, 0)
	if err != nil {
		return nil, err
	}
	if !found {
		return p.plain()
	}
	return &p.rep, p.check()
}

// entity reads one MIME entity's body (its header h already read) and
// reports whether it held a multipart/report.
func (p *parser) entity(h fields, body io.Reader, depth int) (bool, error) {
	mt, params := mediaType(h.get("content-type"))
	switch {
	case mt == "multipart/report":
		return true, p.report(params, body)
	case strings.HasPrefix(mt, "multipart/") && depth < maxDepth:
		return p.multipart(params, body, depth)
	case mt == "text/plain" && p.text == nil:
		buf, err := io.ReadAll(io.LimitReader(decode(body, h.get("content-transfer-encoding")), maxText))
		p.text = buf
		if err != nil {
			return false, readErr("text part", err)
		}
	}
	_, err := io.Copy(io.Discard, body)
	return false, readErr("body", err)
}

// multipart looks into the parts of a multipart other than a report, for
// a report wrapped in it (some forwarders do that) or a text to read.
func (p *parser) multipart(params map[string]string, body io.Reader, depth int) (bool, error) {
	if params["boundary"] == "" {
		return false, malformed("multipart without a boundary")
	}
	cw := newCloseWatch(body, params["boundary"])
	mr := multipart.NewReader(cw, params["boundary"])
	found := false
	for {
		part, err := mr.NextRawPart()
		if err == io.EOF {
			return found, cw.check()
		}
		if err != nil {
			return false, readErr("MIME structure", err)
		}
		if found {
			if _, err := io.Copy(io.Discard, part); err != nil {
				return false, readErr("MIME part", err)
			}
			continue
		}
		found, err = p.entity(partFields(part), part, depth+1)
		if err != nil {
			return false, err
		}
	}
}

// report reads the parts of a multipart/report.
func (p *parser) report(params map[string]string, body io.Reader) error {
	switch rt := strings.ToLower(params["report-type"]); rt {
	case "delivery-status":
		p.rep.Kind = KindDSN
	case "feedback-report":
		p.rep.Kind = KindFeedback
	default:
		return notReport("a multipart/report of type %q (want delivery-status or feedback-report)", rt)
	}
	if params["boundary"] == "" {
		return malformed("multipart/report without a boundary")
	}
	cw := newCloseWatch(body, params["boundary"])
	mr := multipart.NewReader(cw, params["boundary"])
	for {
		part, err := mr.NextRawPart()
		if err == io.EOF {
			return cw.check()
		}
		if err != nil {
			return readErr("MIME structure", err)
		}
		h := partFields(part)
		r := decode(part, h.get("content-transfer-encoding"))
		mt, _ := mediaType(h.get("content-type"))
		switch {
		case (mt == "message/delivery-status" || mt == "message/global-delivery-status") && p.rep.Kind == KindDSN && !p.status:
			p.status = true
			err = p.deliveryStatus(r)
		case mt == "message/feedback-report" && p.rep.Kind == KindFeedback && p.rep.Feedback == nil:
			err = p.feedback(r)
		case originalTypes[mt]:
			err = p.original(r)
		}
		if err == nil {
			_, err = io.Copy(io.Discard, part)
			err = readErr("MIME part", err)
		}
		if err != nil {
			return err
		}
	}
}

// originalTypes hold the returned message or its header.
var originalTypes = map[string]bool{
	"message/rfc822": true, "message/global": true, "text/rfc822-headers": true,
	"message/rfc822-headers": true, "message/global-headers": true,
}

// check makes sure a report had the part that makes it one.
func (p *parser) check() error {
	switch {
	case p.rep.Kind == KindDSN && !p.status:
		return malformed("a delivery-status report without a message/delivery-status part")
	case p.rep.Kind == KindDSN && len(p.rep.Recipients) == 0:
		return malformed("the message/delivery-status part names no recipient")
	case p.rep.Kind == KindFeedback && p.rep.Feedback == nil:
		return malformed("a feedback report without a message/feedback-report part")
	}
	return nil
}

// partFields returns a part's header as fields.
func partFields(part *multipart.Part) fields {
	var fs fields
	for k, vs := range part.Header {
		for _, v := range vs {
			fs = append(fs, field{strings.ToLower(k), strings.TrimSpace(v)})
		}
	}
	return fs
}

// mediaType returns the lowercase media type of a Content-Type value
// (text/plain when absent or unreadable, as RFC 2045 says) and its
// parameters.
func mediaType(v string) (string, map[string]string) {
	if v == "" {
		return "text/plain", nil
	}
	mt, params, err := mime.ParseMediaType(v)
	if err != nil && !errors.Is(err, mime.ErrInvalidMediaParameter) {
		return "text/plain", nil
	}
	return mt, params
}

// decode undoes a part's transfer encoding; message parts ought to be
// 7bit or 8bit, but some MTAs encode them anyway.
func decode(r io.Reader, cte string) io.Reader {
	switch strings.ToLower(strings.TrimSpace(cte)) {
	case "base64":
		return base64.NewDecoder(base64.StdEncoding, &skipSpace{r: r})
	case "quoted-printable":
		return quotedprintable.NewReader(r)
	}
	return r
}

// skipSpace drops the line breaks and white space of base64 text, which
// encoding/base64 would otherwise take for corruption.
type skipSpace struct{ r io.Reader }

func (s *skipSpace) Read(p []byte) (int, error) {
	for {
		n, err := s.r.Read(p)
		k := 0
		for _, b := range p[:n] {
			if b != '\r' && b != '\n' && b != ' ' && b != '\t' {
				p[k] = b
				k++
			}
		}
		if k > 0 || err != nil {
			return k, err
		}
	}
}

// readErr turns an input error into a report error saying where it was
// met; the limit's error passes through (Parse reports it).
func readErr(where string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrTooLarge):
		return err
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		return malformed("%s: truncated (the input ends inside the MIME structure)", where)
	case errors.Is(err, errLongLine) || errors.Is(err, errLongBlock):
		return malformed("%s: %v", where, err)
	}
	var ce base64.CorruptInputError
	if errors.As(err, &ce) {
		return malformed("%s: bad base64", where)
	}
	// What is left comes from the MIME readers (the source's own errors
	// are told apart by Parse).
	return malformed("%s: %v", where, err)
}

func notReport(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrNotReport}, args...)...)
}

// closeWatch watches the bytes of a multipart body go by for its closing
// delimiter: mime/multipart answers io.EOF, as at a proper end, when the
// input stops right after a boundary line, so its io.EOF alone does not
// tell a whole multipart from a truncated one.
type closeWatch struct {
	r    io.Reader
	pat  []byte
	tail []byte // the last len(pat)-1 bytes seen
	join []byte // scratch for tail and the next bytes
	seen bool
}

func newCloseWatch(r io.Reader, boundary string) *closeWatch {
	return &closeWatch{r: r, pat: []byte("\n--" + boundary + "--")}
}

func (c *closeWatch) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if !c.seen && n > 0 {
		k := len(c.pat) - 1
		// The delimiter may straddle two reads: look at the old tail
		// joined to the new head, then at the new bytes.
		c.join = append(append(c.join[:0], c.tail...), p[:min(n, k)]...)
		c.seen = bytes.Contains(c.join, c.pat) || bytes.Contains(p[:n], c.pat)
		if n >= k {
			c.tail = append(c.tail[:0], p[n-k:n]...)
		} else {
			c.tail = append(c.tail[:0], c.join[max(0, len(c.join)-k):]...)
		}
	}
	return n, err
}

// check is called at multipart's io.EOF.
func (c *closeWatch) check() error {
	if !c.seen {
		return malformed("truncated: the multipart ends before its closing boundary")
	}
	return nil
}

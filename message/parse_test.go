package message

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"regexp"
	"strings"
	"testing"

	gomail "github.com/emersion/go-message/mail"
)

// leaf is one decoded body part, as an independent parser saw it.
type leaf struct {
	ctype    string // media type without parameters
	filename string // from Content-Disposition (RFC 2231 decoded)
	name     string // Content-Type name=, RFC 2047 decoded
	disp     string
	cid      string
	data     string
}

// parsed is a message as the standard library reads it.
type parsed struct {
	header    mail.Header
	rawHeader string
	structure string
	leaves    []leaf
}

var dec = &mime.WordDecoder{}

// parseStd reads raw with net/mail and mime/multipart only, checking
// line lengths on the way: every line ≤ 998 octets, header lines ≤ 78,
// lines of encoded bodies ≤ 76.
func parseStd(t *testing.T, raw []byte) *parsed {
	t.Helper()
	checkLines(t, raw)
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("net/mail: %v", err)
	}
	p := &parsed{header: msg.Header}
	p.rawHeader = string(raw[:bytes.Index(raw, []byte("\r\n\r\n"))+2])
	checkHeaderLines(t, p.rawHeader)
	p.structure = p.walk(t, textprotoHeader(msg.Header), msg.Body)
	return p
}

type header interface{ Get(string) string }

type textprotoHeader mail.Header

func (h textprotoHeader) Get(k string) string { return mail.Header(h).Get(k) }

func (p *parsed) walk(t *testing.T, h header, body io.Reader) string {
	t.Helper()
	ct, params, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil {
		t.Fatalf("Content-Type %q: %v", h.Get("Content-Type"), err)
	}
	if strings.HasPrefix(ct, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		var kids []string
		for {
			part, err := mr.NextRawPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("multipart: %v", err)
			}
			kids = append(kids, p.walk(t, part.Header, part))
		}
		return strings.TrimPrefix(ct, "multipart/") + "(" + strings.Join(kids, ",") + ")"
	}
	raw, err := io.ReadAll(body)
	if err != nil {
		t.Fatal(err)
	}
	l := leaf{ctype: ct, cid: h.Get("Content-ID"), data: decodeBody(t, h.Get("Content-Transfer-Encoding"), raw)}
	if n, ok := params["name"]; ok {
		if l.name, err = dec.DecodeHeader(n); err != nil {
			t.Errorf("name=%q: %v", n, err)
		}
	}
	if d := h.Get("Content-Disposition"); d != "" {
		var dp map[string]string
		if l.disp, dp, err = mime.ParseMediaType(d); err != nil {
			t.Fatalf("Content-Disposition %q: %v", d, err)
		}
		// Mail readers decode RFC 2047 words in a filename too (go-message
		// and Python's email do): outbox writes a filename that looks like
		// an encoded word as one that decodes to it.
		if l.filename, err = dec.DecodeHeader(dp["filename"]); err != nil {
			t.Errorf("filename=%q: %v", dp["filename"], err)
		}
	}
	p.leaves = append(p.leaves, l)
	return ct
}

func decodeBody(t *testing.T, cte string, raw []byte) string {
	t.Helper()
	var r io.Reader = bytes.NewReader(raw)
	switch strings.ToLower(cte) {
	case "base64":
		for _, l := range strings.Split(string(raw), "\r\n") {
			if len(l) > 76 {
				t.Errorf("base64 line of %d octets", len(l))
			}
		}
		r = base64.NewDecoder(base64.StdEncoding, r)
	case "quoted-printable":
		for _, l := range strings.Split(string(raw), "\r\n") {
			if len(l) > 76 {
				t.Errorf("quoted-printable line of %d octets", len(l))
			}
		}
		r = quotedprintable.NewReader(r)
	case "7bit", "8bit":
		for i, c := range raw {
			if cte == "7bit" && c >= 0x80 || c == 0 {
				t.Fatalf("byte %#x at %d in a %s body", c, i, cte)
			}
		}
	default:
		t.Fatalf("unexpected Content-Transfer-Encoding %q", cte)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("%s: %v", cte, err)
	}
	return string(b)
}

func checkLines(t *testing.T, raw []byte) {
	t.Helper()
	for i, l := range bytes.Split(raw, []byte("\r\n")) {
		if len(l) > maxLineLen {
			t.Errorf("line %d is %d octets", i, len(l))
		}
		if bytes.ContainsAny(l, "\r\n") {
			t.Errorf("line %d has a bare CR or LF: %q", i, l)
		}
	}
}

// encodedWord matches an RFC 2047 encoded word.
var encodedWord = regexp.MustCompile(`=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=`)

// checkHeaderLines checks a header block's lines: 78 columns at most
// (unless a single token cannot be broken), 76 for a line that holds an
// encoded word (RFC 2047 §2), and no field folded right after its colon.
func checkHeaderLines(t *testing.T, block string) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(block, "\r\n"), "\r\n")
	for i, l := range lines {
		if encodedWord.MatchString(l) && len(l) > ewLineWidth && !longNameLine(l) {
			t.Errorf("line with an encoded word of %d columns: %q", len(l), l)
		} else if len(l) > foldWidth && !unbreakable(l) {
			t.Errorf("header line of %d columns: %q", len(l), l)
		}
		folded := i+1 < len(lines) && strings.HasPrefix(lines[i+1], " ")
		if folded && !strings.HasPrefix(l, " ") && strings.HasSuffix(strings.TrimRight(l, " "), ":") {
			t.Errorf("field folded right after its colon: %q / %q", l, lines[i+1])
		}
	}
}

// longNameLine reports the first line of a field whose name leaves no
// room within 76 columns for an encoded word: it carries the name and one
// word of a single character, the least the encoder can put there.
func longNameLine(l string) bool {
	name, value, ok := strings.Cut(l, ": ")
	if !ok || strings.HasPrefix(l, " ") || len(name)+2+wordOverhead+4 <= ewLineWidth {
		return false
	}
	w, _ := dec.Decode(strings.Fields(value)[0])
	return clusterLen(w) == len(w)
}

// parseGoMessage reads raw with emersion/go-message's mail reader and
// returns the leaves it finds and the decoded Subject.
func parseGoMessage(t *testing.T, raw []byte) (subject string, to []*mail.Address, leaves []leaf) {
	t.Helper()
	mr, err := gomail.CreateReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("go-message: %v", err)
	}
	if subject, err = mr.Header.Subject(); err != nil {
		t.Fatalf("go-message subject: %v", err)
	}
	if to, err = mr.Header.AddressList("To"); err != nil {
		t.Fatalf("go-message To: %v", err)
	}
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("go-message part: %v", err)
		}
		data, err := io.ReadAll(p.Body)
		if err != nil {
			t.Fatalf("go-message body: %v", err)
		}
		l := leaf{data: string(data)}
		switch h := p.Header.(type) {
		case *gomail.InlineHeader:
			l.ctype, _, _ = h.ContentType()
			l.disp, _, _ = h.ContentDisposition()
			l.cid = h.Get("Content-ID")
			_, dp, _ := h.ContentDisposition()
			l.filename = dp["filename"]
		case *gomail.AttachmentHeader:
			l.ctype, _, _ = h.ContentType()
			l.disp, _, _ = h.ContentDisposition()
			l.cid = h.Get("Content-ID")
			if l.filename, err = h.Filename(); err != nil {
				t.Fatalf("go-message filename: %v", err)
			}
		default:
			t.Fatalf("go-message: unexpected header %T", h)
		}
		leaves = append(leaves, l)
	}
	return subject, to, leaves
}

// compose writes m and fails the test on error.
func compose(t testing.TB, m *Message) []byte {
	t.Helper()
	var b bytes.Buffer
	n, err := m.WriteTo(&b)
	if err != nil {
		t.Fatalf("WriteTo: %v", err)
	}
	if n != int64(b.Len()) {
		t.Fatalf("WriteTo returned %d, wrote %d", n, b.Len())
	}
	return b.Bytes()
}

func headerBlock(raw []byte) string {
	i := bytes.Index(raw, []byte("\r\n\r\n"))
	if i < 0 {
		return string(raw)
	}
	return string(raw[:i])
}

// unfoldedHeaders lists the header fields of raw's top block, unfolded.
func unfoldedHeaders(raw []byte) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(headerBlock(raw)))
	for sc.Scan() {
		l := strings.TrimRight(sc.Text(), "\r")
		if strings.HasPrefix(l, " ") && len(out) > 0 {
			out[len(out)-1] += l
			continue
		}
		out = append(out, l)
	}
	return out
}

func describe(ls []leaf) string {
	var b strings.Builder
	for _, l := range ls {
		fmt.Fprintf(&b, "[%s %q %d bytes] ", l.ctype, l.filename, len(l.data))
	}
	return b.String()
}

// unbreakable reports a header line that holds a single token (after the
// field name, if any): longer than 78 columns only because nothing in it
// may be folded.
func unbreakable(l string) bool {
	if i := strings.IndexByte(l, ':'); i > 0 && !strings.HasPrefix(l, " ") {
		l = l[i+1:]
	}
	return !strings.Contains(strings.TrimSpace(l), " ")
}

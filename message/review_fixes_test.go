package message

import (
	"bytes"
	"errors"
	"mime"
	"net/mail"
	"runtime"
	"strings"
	"testing"
)

// writeMessage writes m and returns the output, failing on error.
func writeMessage(t *testing.T, m *Message) string {
	t.Helper()
	var out bytes.Buffer
	if _, err := m.WriteTo(&out); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

// attachmentContentType returns the Content-Type field of the attachment
// named a.txt in raw, unfolded.
func attachmentContentType(t *testing.T, raw string) string {
	t.Helper()
	i := strings.Index(raw, "\r\n\r\n--")
	for _, part := range strings.Split(raw[i:], "\r\n--") {
		if !strings.Contains(part, `filename="a.txt"`) {
			continue
		}
		h := part[:strings.Index(part, "\r\n\r\n")]
		h = strings.ReplaceAll(h, "\r\n ", " ")
		for _, l := range strings.Split(h, "\r\n") {
			if v, ok := strings.CutPrefix(l, "Content-Type: "); ok {
				return v
			}
		}
	}
	t.Fatalf("no attachment Content-Type in:\n%s", raw)
	return ""
}

// Decoded RFC 2231 parameter values are what is written, so they are what
// must be checked: a percent-encoded CRLF must not become a header line.
func TestAttachmentContentTypeDecodedParamsChecked(t *testing.T) {
	for _, ct := range []string{
		"text/plain; charset*=utf-8''x%0D%0AX-Injected%3A%20yes%0D%0A%0D%0Afake",
		"text/plain; charset*=utf-8''x%0Ay",
		"text/plain; charset*=utf-8''x%00y",
		"text/plain; charset*0*=utf-8''a; charset*1*=%0D%0AX-Injected%3A%20yes",
	} {
		m := validMessage()
		m.Attachments[0].ContentType = ct
		var out bytes.Buffer
		n, err := m.WriteTo(&out)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != "attachments[0]" {
			t.Errorf("%q: error %v, want a FieldError naming attachments[0]", ct, err)
		}
		if n != 0 || out.Len() != 0 {
			t.Errorf("%q: %d bytes written despite the error:\n%s", ct, out.Len(), out.String())
		}
	}
}

func TestAttachmentContentTypeParamsWritten(t *testing.T) {
	m := validMessage()
	m.Attachments[0].ContentType = "text/plain; charset=utf-8"
	ct := attachmentContentType(t, writeMessage(t, m))
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != "text/plain" || params["charset"] != "utf-8" {
		t.Fatalf("Content-Type %q parses to %q %v %v", ct, mt, params, err)
	}

	// A non-ASCII value goes back out as RFC 2231, never as raw 8-bit.
	m = validMessage()
	m.Attachments[0].ContentType = "text/plain; charset=utf-8; title*=utf-8''%C3%A9t%C3%A9%20%E2%82%AC"
	ct = attachmentContentType(t, writeMessage(t, m))
	if !isASCII(ct) {
		t.Fatalf("Content-Type has 8-bit bytes: %q", ct)
	}
	mt, params, err = mime.ParseMediaType(ct)
	if err != nil || mt != "text/plain" || params["title"] != "été €" || params["charset"] != "utf-8" {
		t.Fatalf("Content-Type %q parses to %q %v %v", ct, mt, params, err)
	}
}

func TestEnvelopeQuotesLocalPart(t *testing.T) {
	a, err := ParseAddress(`"john doe"@example.com`)
	if err != nil {
		t.Fatal(err)
	}
	hostile, err := ParseAddress(`"x> NOTIFY=NEVER"@example.com`)
	if err != nil {
		t.Fatal(err)
	}
	m := validMessage()
	m.To = []Address{a, hostile}
	// The same mailbox written by hand in quoted form: one envelope entry,
	// and not quoted twice.
	m.Cc = []Address{{"", `"john doe"@EXAMPLE.com`}}
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	_, rcpts := m.Envelope()
	want := []string{`"john doe"@example.com`, `"x> NOTIFY=NEVER"@example.com`}
	if strings.Join(rcpts, "|") != strings.Join(want, "|") {
		t.Fatalf("recipients %q, want %q", rcpts, want)
	}
	raw := writeMessage(t, m)
	msg, err := mail.ReadMessage(strings.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	cc, err := msg.Header.AddressList("Cc")
	if err != nil || len(cc) != 1 || !strings.EqualFold(cc[0].Address, "john doe@example.com") {
		t.Fatalf("Cc %q parses to %v %v", msg.Header.Get("Cc"), cc, err)
	}
	if strings.Contains(raw, `\"`) {
		t.Fatalf("a local part was quoted twice:\n%s", raw)
	}
}

func TestQuotedLocalPartForms(t *testing.T) {
	// A local part holding a double quote of its own cannot be told from a
	// quoted one in Email: it is refused in both ways of giving it.
	if a, err := ParseAddress(`"a\"b"@example.com`); err == nil {
		t.Errorf("ParseAddress accepted %#v", a)
	}
	if a, err := ParseAddress(`"\"ab\""@example.com`); err == nil {
		t.Errorf("ParseAddress accepted %#v", a)
	}
	for _, email := range []string{`a"b@example.com`, `"ab"c@example.com`, `"a"b"@example.com`, `"ab\"@example.com`, `""@example.com`} {
		m := validMessage()
		m.To[0] = Address{"", email}
		var fe *FieldError
		if err := m.Validate(); !errors.As(err, &fe) || fe.Field != "to[0]" {
			t.Errorf("%q: error %v, want a FieldError naming to[0]", email, err)
		}
	}
	m := validMessage()
	m.To[0] = Address{"", `"a\\b c"@example.com`}
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	if _, rcpts := m.Envelope(); len(rcpts) != 1 || rcpts[0] != `"a\\b c"@example.com` {
		t.Fatalf("recipients %q", rcpts)
	}
}

// allocatedBytes is how many bytes f allocates.
func allocatedBytes(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

func TestHTMLToTextLinkTextLinear(t *testing.T) {
	input := func(n int) string { return "<a href='http://x'>" + strings.Repeat("ab<i>", n) }
	var small, large uint64
	small = allocatedBytes(func() { htmlToText(input(5000)) })
	large = allocatedBytes(func() { htmlToText(input(20000)) })
	if large > 8*small {
		t.Fatalf("4x the input allocates %.1fx the memory (%d → %d bytes): not linear", float64(large)/float64(small), small, large)
	}

	big := input(2<<20/5) + "</a>" // 2 MB
	var out string
	if got := allocatedBytes(func() { out = htmlToText(big) }); got > 64*uint64(len(big)) {
		t.Fatalf("%d bytes of input allocate %d bytes", len(big), got)
	}
	if !strings.HasPrefix(out, "abababab") || !strings.HasSuffix(out, "ab (http://x)\n") {
		t.Fatalf("output %q…%q", out[:min(20, len(out))], out[max(0, len(out)-20):])
	}
}

// Collecting only as much link text as the comparison needs must not
// change which links get their target written out.
func TestHTMLToTextLinkComparison(t *testing.T) {
	tests := []struct{ in, want string }{
		{`<a href="http://example.com/x">  http://example.com/x  </a>`, "http://example.com/x\n"},
		{`<a href="http://example.com/x"><b>http://</b>example.com/<i>x</i></a>`, "http://example.com/x\n"},
		{`<a href="mailto:a@b.c">a@b.c</a>`, "a@b.c\n"},
		{`<a href="http://x">http://xy</a>`, "http://xy (http://x)\n"},
		{`<a href="http://x">http://x y</a>`, "http://x y (http://x)\n"},
		{`<a href="http://x">see</a>`, "see (http://x)\n"},
		{`<a href="http://x">  </a>`, "http://x\n"},
		{`<pre><a href="abc">abc   </a></pre>`, "abc\n"},
		{`<pre><a href="abc">abc   d</a></pre>`, "abc   d(abc)\n"},
		{`<a href="ab">aé</a>`, "aé (ab)\n"},
	}
	for _, tt := range tests {
		if got := htmlToText(tt.in); got != tt.want {
			t.Errorf("htmlToText(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestCustomHeaderSpaceRunsLineLimit(t *testing.T) {
	// Runs of spaces are no fold point, so words joined by them that pass
	// 998 octets cannot be written losslessly: the field is refused.
	m := validMessage()
	m.Headers = [][2]string{{"X-Long", strings.Repeat("abcdefghij  ", 150)}}
	var out bytes.Buffer
	n, err := m.WriteTo(&out)
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "headers[0]" || !strings.Contains(err.Error(), errTooLong.Error()) {
		t.Fatalf("error %v, want a FieldError naming headers[0] for a line over 998 octets", err)
	}
	if n != 0 || out.Len() != 0 {
		t.Fatalf("%d bytes written despite the error", out.Len())
	}

	// The limit is exact: "X-Long: ab  " + k octets is one line of 12+k.
	if _, err := rawHeader("X-Long", "ab  "+strings.Repeat("c", 986)); err != nil {
		t.Fatalf("998-octet line refused: %v", err)
	}
	if _, err := rawHeader("X-Long", "ab  "+strings.Repeat("c", 987)); !errors.Is(err, errTooLong) {
		t.Fatalf("999-octet line: error %v, want errTooLong", err)
	}

	for _, v := range []string{
		strings.TrimSpace(strings.Repeat("abcdefghij  ", 80)), // one line, under 998
		strings.Repeat("abcdefghij  klm ", 100) + "end",       // foldable at the single spaces
		"lead  " + strings.Repeat("x", 900) + "  tail",
	} {
		m := validMessage()
		m.Headers = [][2]string{{"X-Long", v}}
		raw := writeMessage(t, m)
		foldable := !strings.Contains(v, "  ") || strings.Contains(v, "klm ")
		for _, l := range strings.Split(headerBlock([]byte(raw)), "\r\n") {
			if len(l) > maxLineLen {
				t.Fatalf("line of %d octets: %q", len(l), l)
			}
			if foldable && len(l) > foldWidth && !strings.Contains(l, "  ") {
				t.Fatalf("foldable line of %d columns: %q", len(l), l)
			}
		}
		msg, err := mail.ReadMessage(strings.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		if got := msg.Header.Get("X-Long"); got != v {
			t.Fatalf("X-Long unfolds to %q, want %q", got, v)
		}
	}
}

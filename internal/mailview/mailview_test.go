package mailview

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/emersion/go-message"
)

func TestSafeFilename(t *testing.T) {
	for in, want := range map[string]string{
		"../../etc/passwd": "passwd", `..\..\boot.ini`: "boot.ini", "..": "attachment", "": "attachment",
		"a\x00b\r\n.txt": "ab.txt", `quo"te.pdf`: "quote.pdf", ".hidden": "hidden", "report 2024.pdf": "report 2024.pdf",
		"bad\xffutf8.txt": "badutf8.txt", strings.Repeat("é", 300): strings.Repeat("é", 200),
	} {
		if got := SafeFilename(in); got != want {
			t.Errorf("SafeFilename(%q) = %q, want %q", in, got, want)
		}
	}
}

// related is a message with a text and an HTML body, an inline image the
// HTML refers to, and two attachments, one of them text/plain.
const related = "From: a@example.com\r\nTo: b@example.com\r\nSubject: =?utf-8?q?Caf=C3=A9?=\r\n" +
	"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=M\r\n\r\n" +
	"--M\r\nContent-Type: multipart/related; boundary=R\r\n\r\n" +
	"--R\r\nContent-Type: multipart/alternative; boundary=A\r\n\r\n" +
	"--A\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nhello\r\n" +
	"--A\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>hello <img src=\"cid:logo@x\"></p>\r\n" +
	"--A--\r\n" +
	"--R\r\nContent-Type: image/png\r\nContent-ID: <logo@x>\r\nContent-Disposition: inline\r\n" +
	"Content-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n" +
	"--R--\r\n" +
	"--M\r\nContent-Type: text/plain; name=notes.txt\r\nContent-Disposition: attachment; filename=notes.txt\r\n\r\nsome notes\r\n" +
	"--M\r\nContent-Type: application/pdf\r\nContent-ID: <doc@x>\r\nContent-Disposition: attachment; filename=\"../a.pdf\"\r\n\r\n%PDF\r\n" +
	"--M--\r\n"

func TestWalkClassifiesAndNumbers(t *testing.T) {
	e, err := message.Read(strings.NewReader(related))
	if err != nil {
		t.Fatal(err)
	}
	type seen struct {
		kind        Kind
		index       int
		ctype, name string
		cid         string
		inline      bool
		body        string
	}
	var got []seen
	err = Walk(e, func(l *Leaf) (bool, error) {
		b, err := io.ReadAll(l.Body)
		got = append(got, seen{l.Kind, l.Index, l.ContentType, l.Filename, l.ContentID, l.Inline(), string(b)})
		return false, err
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []seen{
		{Text, 0, "text/plain", "", "", false, "hello"},
		{HTML, 0, "text/html", "", "", false, `<p>hello <img src="cid:logo@x"></p>`},
		{Part, 0, "image/png", "", "logo@x", true, "\x89PNG\r\n\x1a\n"},
		{Part, 1, "text/plain", "notes.txt", "", false, "some notes"},
		{Part, 2, "application/pdf", "../a.pdf", "doc@x", false, "%PDF"},
	}
	if len(got) != len(want) {
		t.Fatalf("walk saw %d leaves, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("leaf %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestWalkStopsAndBounds(t *testing.T) {
	e, _ := message.Read(strings.NewReader(related))
	n := 0
	if err := Walk(e, func(l *Leaf) (bool, error) { n++; return l.Kind == HTML, nil }); err != nil || n != 2 {
		t.Fatalf("walk with stop at the HTML part: %d leaves, %v", n, err)
	}
	var b strings.Builder
	b.WriteString("Content-Type: multipart/mixed; boundary=M\r\n\r\n")
	for range MaxParts + 5 {
		b.WriteString("--M\r\nContent-Type: text/plain\r\n\r\nx\r\n")
	}
	b.WriteString("--M--\r\n")
	e, _ = message.Read(strings.NewReader(b.String()))
	n = 0
	err := Walk(e, func(*Leaf) (bool, error) { n++; return false, nil })
	if !errors.Is(err, ErrTooComplex) || n >= MaxParts {
		t.Fatalf("walk of %d parts: %d leaves, %v; want ErrTooComplex before %d", MaxParts+5, n, err, MaxParts)
	}
}

func TestFieldsDecodeAndBound(t *testing.T) {
	var b strings.Builder
	b.WriteString("Subject: =?utf-8?q?Caf=C3=A9?=\r\nX-Long: " + strings.Repeat("é", MaxHeaderLen) + "\r\n")
	for range MaxHeaders + 10 {
		b.WriteString("X-Many: 1\r\n")
	}
	b.WriteString("\r\nbody")
	e, err := message.Read(strings.NewReader(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	fs := Fields(e.Header)
	if len(fs) != MaxHeaders {
		t.Errorf("%d fields, want the bound %d", len(fs), MaxHeaders)
	}
	if fs[0] != (Field{"Subject", "Café"}) {
		t.Errorf("first field %+v, want the decoded subject", fs[0])
	}
	long := fs[1].Value
	if !strings.HasSuffix(long, "…") || len(long) > MaxHeaderLen+len("…") || !strings.HasPrefix(long, "éé") ||
		strings.ContainsRune(long, '\uFFFD') {
		t.Errorf("long field not cut cleanly at a rune: %d bytes, ends %q", len(long), long[len(long)-8:])
	}
}

func FuzzWalk(f *testing.F) {
	f.Add([]byte(related))
	f.Add([]byte("Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n\r\n--x--"))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := message.Read(strings.NewReader(string(data)))
		if err != nil && !message.IsUnknownCharset(err) {
			return
		}
		Fields(e.Header)
		last := -1
		_ = Walk(e, func(l *Leaf) (bool, error) {
			if l.Kind == Part {
				if l.Index != last+1 {
					t.Fatalf("part numbered %d after %d", l.Index, last)
				}
				last = l.Index
			}
			if name := SafeFilename(l.Filename); name == "" || strings.ContainsAny(name, "/\\\"\r\n\x00") {
				t.Fatalf("unsafe file name %q from %q", name, l.Filename)
			}
			_, err := io.Copy(io.Discard, l.Body)
			return false, IgnoreCharset(err)
		})
	})
}

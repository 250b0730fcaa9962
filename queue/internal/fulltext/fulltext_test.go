package fulltext

import (
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestWords(t *testing.T) {
	for in, want := range map[string][]string{
		"Hello, World!":             {"hello", "world"},
		"Ann's café":                {"ann", "s", "cafe"},
		"shop@example.com":          {"shop", "example", "com"},
		"ZÜRICH naïve Ærø":          {"zurich", "naive", "ærø"},
		"Straße":                    {"straße"},
		"日本語 テキスト":                  {"日本語", "テキスト"},
		"한국어":                       {"한국어"},
		"e\u0301te\u0301":           {"ete"}, // combining accents, decomposed
		"order #12345-A":            {"order", "12345", "a"},
		"":                          nil,
		"—…!?":                      nil,
		strings.Repeat("x", 65):     nil,
		strings.Repeat("y", 64):     {strings.Repeat("y", 64)},
		"tab\tnew\nline\x00nul":     {"tab", "new", "line", "nul"},
		"\xff\xfebroken \xc3 utf-8": {"broken", "utf", "8"},
	} {
		if got := Words(nil, in); !slices.Equal(got, want) {
			t.Errorf("Words(%q) = %q, want %q", in, got, want)
		}
	}
	if got := Unique([]string{"a", "b", "a", "c", "b"}); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Errorf("Unique = %q", got)
	}
	if got := string(AppendWords([]byte("x "), "Hello, Wörld")); got != "x hello world " {
		t.Errorf("AppendWords = %q", got)
	}
}

func TestExtract(t *testing.T) {
	raw := "From: =?iso-8859-1?q?J=F6rg?= <jorg@example.de>, plain@example.org\r\n" +
		"To: undisclosed-recipients:;\r\n" +
		"Cc: broken <<<\r\n" +
		"Subject: =?utf-8?b?w5xiZXJ3ZWlzdW5n?=\r\n" +
		"Content-Type: multipart/mixed; boundary=X\r\n\r\n" +
		"--X\r\nContent-Type: text/html\r\n\r\n<b>Bold</b> <script>no()</script>text\r\n" +
		"--X\r\nContent-Type: image/png\r\nContent-Disposition: inline; filename=\"logo.png\"\r\n\r\niVBOR\r\n--X--\r\n"
	d := Extract(strings.NewReader(raw))
	if d.Subject != "Überweisung" {
		t.Errorf("subject %q", d.Subject)
	}
	want := []Mailbox{{"from", "Jörg", "jorg@example.de"}, {"from", "", "plain@example.org"}}
	if !slices.Equal(d.Mailboxes, want) {
		t.Errorf("mailboxes %+v, want %+v", d.Mailboxes, want)
	}
	if w := Words(nil, d.Text); !slices.Equal(w, []string{"bold", "text"}) {
		t.Errorf("html text %q → %q", d.Text, w)
	}
	if !slices.Equal(d.Attachments, []string{"logo.png"}) {
		t.Errorf("attachments %q", d.Attachments)
	}
	// No header block at all, and a huge text part: bounded.
	d = Extract(strings.NewReader("\r\n" + strings.Repeat("word ", MaxRead)))
	if len(d.Text) != MaxText || d.Subject != "" || d.Mailboxes != nil {
		t.Errorf("headerless: %d bytes of text, subject %q, mailboxes %v", len(d.Text), d.Subject, d.Mailboxes)
	}
}

// FuzzExtract: any input gives a document within the bounds, in valid
// UTF-8, without a panic.
func FuzzExtract(f *testing.F) {
	f.Add("Subject: x\r\n\r\nbody")
	f.Add("Content-Type: multipart/alternative; boundary=a\r\n\r\n--a\r\nContent-Type: text/html\r\n\r\n<p>x</p>\r\n--a--\r\n")
	f.Add("From: \"A\" <a@b>\r\nTo: =?utf-8?q?=FF?= <c@d>\r\n\r\n")
	f.Fuzz(func(t *testing.T, raw string) {
		d := Extract(strings.NewReader(raw))
		if len(d.Text) > MaxText || len(d.Mailboxes) > MaxMailboxes || !utf8.ValidString(d.Text) || !utf8.ValidString(d.Subject) {
			t.Fatalf("out of bounds: %d bytes of text, %d mailboxes", len(d.Text), len(d.Mailboxes))
		}
		for _, m := range d.Mailboxes {
			if len(m.Name) > MaxName || !utf8.ValidString(m.Name) || !utf8.ValidString(m.Address) {
				t.Fatalf("mailbox %+v", m)
			}
		}
	})
}

// FuzzWords: words are never empty, never longer than MaxWord, valid
// UTF-8 without separators, and splitting them again changes nothing.
func FuzzWords(f *testing.F) {
	f.Add("Ann's café, Zürich")
	f.Add("e\u0301\u0301x")
	f.Fuzz(func(t *testing.T, s string) {
		words := Words(nil, s)
		for _, w := range words {
			if w == "" || len(w) > MaxWord || !utf8.ValidString(w) || strings.ContainsAny(w, " \t\r\n") {
				t.Fatalf("word %q of %q", w, s)
			}
		}
		if again := Words(nil, strings.Join(words, " ")); !slices.Equal(again, words) {
			t.Fatalf("words of %q are %q, split again %q", s, words, again)
		}
	})
}

// BenchmarkExtract measures reading a 2 KiB message for the index, and
// splitting its text into words.
func BenchmarkExtract(b *testing.B) {
	var msg strings.Builder
	msg.WriteString("From: Shop Support <support@shop.example>\r\nTo: Customer 7 <customer7@example.org>\r\n" +
		"Subject: Your order 7 has shipped\r\nDate: Mon, 2 Dec 2024 10:00:00 +0000\r\nMessage-ID: <7@shop.example>\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n")
	for msg.Len() < 2048 {
		msg.WriteString("parcel delivery tracking number warehouse invoice customer account address street city.\r\n")
	}
	raw := msg.String()
	b.SetBytes(int64(len(raw)))
	b.Run("extract", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			Extract(strings.NewReader(raw))
		}
	})
	d := Extract(strings.NewReader(raw))
	b.Run("words", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 4096)
		for b.Loop() {
			buf = AppendWords(buf[:0], d.Text)
		}
	})
}

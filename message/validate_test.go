package message

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func validMessage() *Message {
	return &Message{
		From:        Address{"Sender", "sender@example.com"},
		To:          []Address{{"Rcpt", "rcpt@example.net"}},
		Subject:     "ok",
		Text:        "ok",
		Attachments: []Attachment{{Filename: "a.txt", Content: strings.NewReader("a")}},
	}
}

// TestInjectionRejected puts a line break into every field a caller can
// fill and checks that validation names that field and nothing is written.
func TestInjectionRejected(t *testing.T) {
	const evil = "x\r\nBcc: victim@example.com"
	tests := []struct {
		field string
		edit  func(m *Message)
	}{
		{"from", func(m *Message) { m.From.Name = evil }},
		{"from", func(m *Message) { m.From.Email = "a@example.com\r\nX: y" }},
		{"to[0]", func(m *Message) { m.To[0].Name = evil }},
		{"to[1]", func(m *Message) { m.To = append(m.To, Address{"", "b@example.com\nX: y"}) }},
		{"cc[0]", func(m *Message) { m.Cc = []Address{{evil, "c@example.com"}} }},
		{"bcc[0]", func(m *Message) { m.Bcc = []Address{{"", "c@example.com\r"}} }},
		{"reply_to[0]", func(m *Message) { m.ReplyTo = []Address{{evil, "r@example.com"}} }},
		{"subject", func(m *Message) { m.Subject = evil }},
		{"subject", func(m *Message) { m.Subject = "nul\x00" }},
		{"headers[0]", func(m *Message) { m.Headers = [][2]string{{"X-Evil\r\nBcc", "v"}} }},
		{"headers[0]", func(m *Message) { m.Headers = [][2]string{{"X-Evil", evil}} }},
		{"headers[0]", func(m *Message) { m.Headers = [][2]string{{"X-Evil", "a\nb"}} }},
		{"headers[0]", func(m *Message) { m.Headers = [][2]string{{"X Evil", "v"}} }},
		{"headers[0]", func(m *Message) { m.Headers = [][2]string{{"X:Evil", "v"}} }},
		{"message_id", func(m *Message) { m.MessageID = "<a@b>\r\nBcc: x@y" }},
		{"attachments[0]", func(m *Message) { m.Attachments[0].Filename = "a\r\n.txt" }},
		{"attachments[0]", func(m *Message) { m.Attachments[0].Filename = "a\x00.txt" }},
		{"attachments[0]", func(m *Message) { m.Attachments[0].ContentType = "text/plain\r\nBcc: x@y" }},
		{"attachments[0]", func(m *Message) { m.Attachments[0].ContentID = "<a@b>\r\nX: y" }},
	}
	for _, tt := range tests {
		m := validMessage()
		tt.edit(m)
		var out bytes.Buffer
		n, err := m.WriteTo(&out)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != tt.field {
			t.Errorf("%s: error %v, want a FieldError naming %s", tt.field, err, tt.field)
		}
		if n != 0 || out.Len() != 0 {
			t.Errorf("%s: %d bytes written despite the error", tt.field, out.Len())
		}
	}
}

func TestOwnedHeadersRejected(t *testing.T) {
	for _, name := range []string{"From", "to", "CC", "Bcc", "Subject", "Date", "Message-ID", "MIME-Version",
		"Content-Type", "content-transfer-encoding", "Reply-To"} {
		m := validMessage()
		m.Headers = [][2]string{{"X-Fine", "ok"}, {name, "value"}}
		err := m.Validate()
		if err == nil || !strings.Contains(err.Error(), "headers[1]") || !strings.Contains(err.Error(), "cannot be set") {
			t.Errorf("custom header %q: error %v", name, err)
		}
	}
}

func TestValidateRequired(t *testing.T) {
	tests := []struct {
		edit func(m *Message)
		want string
	}{
		{func(m *Message) { m.From = Address{} }, "from: missing sender"},
		{func(m *Message) { m.To = nil }, "to: no recipients"},
		{func(m *Message) { m.Text = "\xff" }, "text: is not valid UTF-8"},
		{func(m *Message) { m.HTML = "\xff" }, "html: is not valid UTF-8"},
		{func(m *Message) { m.Attachments[0].Content = nil }, "attachments[0]: no content"},
		{func(m *Message) { m.Attachments[0].ContentType = "not a type" }, "attachments[0]: invalid content type"},
		{func(m *Message) { m.MessageID = "no-at-sign" }, "message_id:"},
	}
	for _, tt := range tests {
		m := validMessage()
		tt.edit(m)
		if err := m.Validate(); err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("error %v, want prefix %q", err, tt.want)
		}
	}
	m := validMessage()
	m.To, m.Bcc = nil, []Address{{"", "only-bcc@example.com"}}
	if err := m.Validate(); err != nil {
		t.Errorf("a Bcc-only message is valid: %v", err)
	}
}

func TestGivenMessageIDAndGuessedTypes(t *testing.T) {
	m := validMessage()
	m.MessageID = "custom.1@example.com"
	m.Attachments = []Attachment{
		{Filename: "photo.png", Content: strings.NewReader("x")},        // by extension
		{Filename: "noext", Content: strings.NewReader("%PDF-1.7 ...")}, // sniffed
		{Filename: "", Content: strings.NewReader("<html><body>hi")},    // sniffed text is only ever text/plain
		{Filename: "data.unknownext", Content: bytes.NewReader([]byte{0, 1, 2, 3})},
	}
	raw := compose(t, m)
	p := parseStd(t, raw)
	if got := p.header.Get("Message-ID"); got != "<custom.1@example.com>" {
		t.Errorf("Message-ID %q", got)
	}
	want := []string{"text/plain", "image/png", "application/pdf", "text/plain", "application/octet-stream"}
	if len(p.leaves) != len(want) {
		t.Fatalf("parts %s", describe(p.leaves))
	}
	for i, w := range want {
		if p.leaves[i].ctype != w {
			t.Errorf("part %d type %q, want %q", i, p.leaves[i].ctype, w)
		}
	}
}

func TestTransferEncodingChoice(t *testing.T) {
	tests := []struct {
		text  string
		allow bool
		want  string
	}{
		{"plain ascii\r\n", false, enc7bit},
		{"Grüße aus Köln, wie geht es dir?\r\n", false, encQP},
		{"Grüße\r\n", true, enc8bit},
		{"你好世界你好世界\r\n", false, encBase64},
		{"你好世界你好世界\r\n", true, enc8bit},
		{strings.Repeat("a", 999) + "\r\n", false, encQP},
		{strings.Repeat("a", 998) + "\r\n", false, enc7bit},
		{"nul \x00 byte in a longer line of text\r\n", true, encQP},
		{string(randomBytes(100, 3)), false, encBase64},
	}
	for _, tt := range tests {
		if got := chooseEncoding(tt.text, tt.allow); got != tt.want {
			t.Errorf("chooseEncoding(%.30q, %v) = %s, want %s", tt.text, tt.allow, got, tt.want)
		}
	}
}

func TestBase64Writer(t *testing.T) {
	for _, n := range []int{0, 1, 2, 3, 56, 57, 58, 114, 1000, 100_000} {
		data := randomBytes(n, uint64(n))
		var out bytes.Buffer
		w := newBase64Writer(&out)
		// Uneven writes exercise the partial-line buffer.
		for rest := data; len(rest) > 0; {
			k := min(len(rest), 1+len(rest)%37)
			if _, err := w.Write(rest[:k]); err != nil {
				t.Fatal(err)
			}
			rest = rest[k:]
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		got := decodeBody(t, "base64", out.Bytes())
		if got != string(data) {
			t.Errorf("n=%d: round trip differs", n)
		}
		for _, l := range strings.Split(strings.TrimSuffix(out.String(), "\r\n"), "\r\n") {
			if n > 0 && (len(l) == 0 || len(l) > 76) {
				t.Errorf("n=%d: line of %d", n, len(l))
			}
		}
	}
}

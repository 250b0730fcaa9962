package message

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

// FuzzComposeRoundTrip composes a message from arbitrary display names,
// subject, filename and text, then reads it back with net/mail +
// mime/multipart and with go-message: whatever Validate accepts must come
// back exactly (text with its line ends normalised), within the line
// limits parseStd checks.
func FuzzComposeRoundTrip(f *testing.F) {
	f.Add("Jörg Müller", longDE, "Überweisung.pdf", "Grüße\n")
	f.Add(longJA, "【重要】"+longJA, "請求書 2026年.pdf", "本文")
	f.Add(fakeEW, fakeEW, fakeEW+".txt", "x")
	f.Add(strings.Repeat(family, 4), strings.Repeat(combine, 20), strings.Repeat("e\u0301", 30), "")
	f.Add(`"quoted" \ name`, "  spaced  subject ", "a\tb.txt", ".\r\n.. dots\r\n")
	f.Add("Doe, Jane", strings.Repeat("x", 120), "", strings.Repeat("long line ", 120))
	f.Fuzz(func(t *testing.T, name, subject, filename, text string) {
		m := &Message{
			From:    Address{name, "sender@example.com"},
			To:      []Address{{name, "rcpt@example.net"}},
			Subject: subject, Text: text,
			Date: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC),
		}
		if filename != "" {
			m.Attachments = []Attachment{{Filename: filename, Content: strings.NewReader(text)}}
		}
		var buf bytes.Buffer
		if _, err := m.WriteTo(&buf); err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("WriteTo: %v", err)
			}
			return // refused with the field named: nothing to read back
		}
		raw := buf.Bytes()
		p := parseStd(t, raw)
		if got, err := dec.DecodeHeader(p.header.Get("Subject")); err != nil || got != subject {
			t.Fatalf("net/mail Subject %q (%v), want %q", got, err, subject)
		}
		from, err := p.header.AddressList("From")
		if err != nil || len(from) != 1 || from[0].Name != name {
			t.Fatalf("net/mail From %v (%v), want name %q; header %q", from, err, name, p.header.Get("From"))
		}
		gsubj, to, gl := parseGoMessage(t, raw)
		if gsubj != subject || len(to) != 1 || to[0].Name != name {
			t.Fatalf("go-message Subject %q To %v, want %q, name %q", gsubj, to, subject, name)
		}
		var want []leaf // what (rtCase).wantLeaves would say
		if text != "" || filename == "" {
			want = append(want, leaf{ctype: "text/plain", data: normText(text)})
		}
		if filename != "" {
			want = append(want, leaf{filename: filename, data: text, disp: "attachment"})
		}
		compareLeaves(t, "net/mail", p.leaves, want, true)
		compareLeaves(t, "go-message", gl, want, false)
	})
}

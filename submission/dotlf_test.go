package submission

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/outbox-mail/outbox/internal/smtpsink"
	"github.com/outbox-mail/outbox/smtp"
)

// rawData sends DATA and then wire exactly as given (no dot-stuffing
// added), then the end of data, and returns the stored bytes after the
// Received header.
func rawData(t *testing.T, f *fixture, wire string) string {
	t.Helper()
	c := f.dial()
	c.must("EHLO client.example", 250)
	c.must("MAIL FROM:<a@example.com>", 250)
	c.must("RCPT TO:<b@example.com>", 250)
	c.must("DATA", 354)
	io.WriteString(c.conn, wire+"\r\n.\r\n")
	code, reply := c.reply()
	if code != 250 {
		t.Fatalf("DATA: %d %s", code, reply)
	}
	_, body := f.message(queuedID(t, reply))
	_, rest := splitReceived(t, body)
	return string(rest)
}

// A line is a line whatever its ending: the dot a client stuffs after a
// bare LF is removed as go-smtp removes the one after CRLF, once; bare CR
// ends no line; a lone dot after a bare LF ends nothing either.
func TestBareLFDotStuffing(t *testing.T) {
	tests := []struct{ name, wire, want string }{
		{"bare LF", "Subject: lf\n\n..one dot\n...two dots\nplain\n", "Subject: lf\n\n.one dot\n..two dots\nplain\n"},
		{"CRLF", "Subject: crlf\r\n\r\n..one dot\r\n...two dots\r\nplain", "Subject: crlf\r\n\r\n.one dot\r\n..two dots\r\nplain"},
		{"mixed", "Subject: mixed\r\n\n..lf\r\n..crlf\n...lf", "Subject: mixed\r\n\n.lf\r\n.crlf\n..lf"},
		{"CR CR LF", "Subject: cr\r\n\r\nx\r\r\n..y", "Subject: cr\r\n\r\nx\r\r\n.y"},
		{"bare CR", "Subject: cr\r\n\r\nx\r..y", "Subject: cr\r\n\r\nx\r..y"},
		{"lone dot after LF", "Subject: smuggle\r\n\r\nx\n.\r\nMAIL FROM:<evil@example.com>\r\n", "Subject: smuggle\r\n\r\nx\n\r\nMAIL FROM:<evil@example.com>\r\n"},
	}
	f := newFixture(t, func(c *Config) { c.AllowNoAuthOnLoopback = true; c.Users = nil })
	for _, tt := range tests {
		got := rawData(t, f, dated+tt.wire)
		if want := dated + tt.want + "\r\n"; got != want {
			t.Errorf("%s: stored %q, want %q", tt.name, got, want)
		}
	}
	if n := f.stored(); n != int64(len(tests)) {
		t.Errorf("%d messages stored, want %d: a message was split", n, len(tests))
	}
}

// What was sent with bare LF and dot-stuffing reaches the next hop with
// CRLF and the same single dots, as it would have with CRLF.
func TestBareLFDotsRelayed(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.AllowNoAuthOnLoopback = true; c.Users = nil })
	lf := rawData(t, f, dated+"Subject: lf\n\n..one dot\n...two dots\nplain\n")
	crlf := rawData(t, f, dated+"Subject: lf\r\n\r\n..one dot\r\n...two dots\r\nplain\r\n")
	sink, err := smtpsink.Start(smtpsink.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := smtp.Dial(ctx, sink.Addr(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, body := range []string{lf, crlf} {
		if _, err := c.Send(ctx, &smtp.Envelope{From: "a@example.com", Recipients: []string{"b@example.com"}}, strings.NewReader(body)); err != nil {
			t.Fatal(err)
		}
	}
	got := sink.Received()
	want := dated + "Subject: lf\r\n\r\n.one dot\r\n..two dots\r\nplain\r\n\r\n"
	if len(got) != 2 {
		t.Fatalf("sink got %d messages, want 2", len(got))
	}
	for i, m := range got {
		if string(m.Data) != want {
			t.Errorf("message %d relayed as %q, want %q", i, m.Data, want)
		}
	}
}

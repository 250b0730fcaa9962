package submission

import (
	"slices"
	"strings"
	"testing"
)

// submitLoopback sends msg (CRLF lines) over a loopback session without
// AUTH to rcpts and returns the stored message's envelope recipients,
// subject and the bytes stored after the Received header.
func submitLoopback(t *testing.T, msg string, rcpts ...string) (got []string, subject, rest string) {
	t.Helper()
	f := newFixture(t, func(c *Config) { c.AllowNoAuthOnLoopback = true; c.Users = nil })
	c := f.dial()
	c.must("EHLO client.example", 250)
	c.must("MAIL FROM:<sender@example.com>", 250)
	for _, r := range rcpts {
		c.must("RCPT TO:<"+r+">", 250)
	}
	code, reply := c.data(msg)
	if code != 250 {
		t.Fatalf("DATA: %d %s", code, reply)
	}
	m, body := f.message(queuedID(t, reply))
	hdr, after := splitReceived(t, body)
	if !strings.HasPrefix(hdr, "Received: from client.example ([127.0.0.1])\r\n") {
		t.Errorf("Received header %q", hdr)
	}
	for _, r := range m.Recipients {
		got = append(got, r.Address)
	}
	slices.Sort(got)
	return got, m.Subject, string(after)
}

// Bcc and Resent-Bcc fields, folded ones included, are removed from the
// header block of a submitted message; every other byte is stored as sent,
// and the Bcc recipient, given in RCPT, stays in the envelope.
func TestSubmissionStripsBcc(t *testing.T) {
	parts := []struct {
		text string
		kept bool
	}{
		{dated, true},
		{"From: sender@example.com\r\n", true},
		{"To: to@example.com\r\n", true},
		{"Bcc: hidden@example.com,\r\n\tOther Hidden\r\n <other@example.com>\r\n", false},
		{"Subject: the plan\r\n", true},
		{"Resent-Bcc: resent-hidden@example.com\r\n", false},
		{"X-Not-Bcc: shown@example.com\r\n", true},
		{"bcc : lower@example.com\r\n  ,more@example.com\r\n", false},
		{"Resent-Bcc:\r\n", false},
		{"Bcc-Like: stays\r\n", true},
		{"\r\n", true},
		{"Bcc: this is body text, not a header\r\n", true},
		{".leading dot\r\n", true},
		{" Resent-Bcc: also body\r\nlast line\r\n", true},
	}
	var msg, want strings.Builder
	for _, p := range parts {
		msg.WriteString(p.text)
		if p.kept {
			want.WriteString(p.text)
		}
	}
	rcpts, subject, rest := submitLoopback(t, msg.String(), "to@example.com", "hidden@example.com")
	if rest != want.String() {
		t.Errorf("stored message:\n got %q\nwant %q", rest, want.String())
	}
	for _, leak := range []string{"hidden@", "other@", "lower@", "more@"} {
		if strings.Contains(rest, leak) {
			t.Errorf("stored message reveals %s", leak)
		}
	}
	if w := []string{"hidden@example.com", "to@example.com"}; !slices.Equal(rcpts, w) {
		t.Errorf("recipients %q, want %q", rcpts, w)
	}
	if subject != "the plan" {
		t.Errorf("Subject %q", subject)
	}
}

// A message without the empty line that ends its header block is all
// header: stored as sent, but for its Bcc field.
func TestSubmissionNoBodySeparator(t *testing.T) {
	msg := dated + "Subject: no body\r\nTo: to@example.com\r\n"
	_, subject, rest := submitLoopback(t, msg, "to@example.com")
	if rest != msg || subject != "no body" {
		t.Errorf("stored %q, Subject %q; want %q as sent", rest, subject, msg)
	}
	_, subject, rest = submitLoopback(t, msg+"Bcc: hidden@example.com\r\n", "to@example.com")
	if rest != msg || subject != "no body" {
		t.Errorf("stored %q, Subject %q; want %q", rest, subject, msg)
	}
}

// A header block longer than what is kept in memory is stored as sent,
// and its Subject is listed however far down it comes; a Bcc field there
// is removed all the same.
func TestSubmissionOversizedHeaderBlock(t *testing.T) {
	var hdr strings.Builder
	hdr.WriteString(dated)
	for i := 0; hdr.Len() <= headerMem+1000; i++ {
		hdr.WriteString("X-Filler: " + strings.Repeat("x", 900) + "\r\n")
	}
	hdr.WriteString("Subject: far down\r\n")
	body := "\r\nBcc: body text\r\nend\r\n"
	msg := hdr.String() + body
	_, subject, rest := submitLoopback(t, msg, "to@example.com")
	if rest != msg || subject != "far down" {
		t.Errorf("stored %d bytes (equal %v), Subject %q; want the %d bytes sent, Subject \"far down\"",
			len(rest), rest == msg, subject, len(msg))
	}
	_, _, rest = submitLoopback(t, hdr.String()+"Bcc: hidden@example.com,\r\n more@example.com\r\n"+body, "to@example.com")
	if rest != msg {
		t.Errorf("stored %d bytes (equal %v), want the %d bytes sent less Bcc; reveals Bcc: %v",
			len(rest), rest == msg, len(msg), strings.Contains(rest, "hidden@"))
	}
}

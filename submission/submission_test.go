package submission

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"maps"
	"net/smtp"
	"slices"
	"strings"
	"testing"

	"github.com/outbox-mail/outbox/queue"
)

// A message sent with Go's net/smtp over STARTTLS and AUTH PLAIN is stored
// byte for byte after the Received header, with its envelope and tags, and
// the final reply names its queue id.
func TestSubmitWithNetSMTP(t *testing.T) {
	f := newFixture(t, nil)
	body := dated + "From: sender@example.com\r\nTo: one@example.com\r\n" +
		"Subject: =?UTF-8?B?" + base64.StdEncoding.EncodeToString([]byte("Grüße")) + "?= from\r\n" +
		" a folded line\r\n\r\n" +
		".a line that starts with a dot\r\n..two dots\r\nlast line\r\n"
	qid := sendNetSMTP(t, f, body, "one@example.com", "two@example.org", "one@EXAMPLE.com")

	m, stored := f.message(qid)
	hdr, rest := splitReceived(t, stored)
	if string(rest) != body {
		t.Errorf("stored body differs:\n got %q\nwant %q", rest, body)
	}
	// net/smtp gives SMTPUTF8 whenever it is offered: RFC 6531's UTF8SMTPSA.
	for _, want := range []string{"from client.example ([127.0.0.1])", "by mx.outbox.test", "with UTF8SMTPSA id "} {
		if !strings.Contains(hdr, want) {
			t.Errorf("Received header %q lacks %q", hdr, want)
		}
	}
	if m.From != "sender@example.com" {
		t.Errorf("From = %q", m.From)
	}
	var rcpts []string
	for _, r := range m.Recipients {
		rcpts = append(rcpts, r.Address)
	}
	slices.Sort(rcpts)
	if want := []string{"one@example.com", "two@example.org"}; !slices.Equal(rcpts, want) {
		t.Errorf("recipients = %q, want %q (duplicate removed)", rcpts, want)
	}
	if m.Subject != "Grüße from a folded line" {
		t.Errorf("Subject = %q", m.Subject)
	}
	// net/smtp gives BODY=8BITMIME and SMTPUTF8 whenever they are offered;
	// they are typed flags, and the tags only name the user.
	want := map[string]string{"user": testUser}
	if !maps.Equal(m.Tags, want) || m.Source != queue.SourceSMTP || !m.EightBit || !m.SMTPUTF8 {
		t.Errorf("tags = %v source %q 8bit %v utf8 %v, want %v smtp true true", m.Tags, m.Source, m.EightBit, m.SMTPUTF8, want)
	}
	if strings.Contains(f.logs.String(), testPass) {
		t.Error("the password appears in the logs")
	}
}

// sendNetSMTP submits body with net/smtp over STARTTLS and AUTH PLAIN,
// checking the extensions offered, and returns the queue id from the reply.
func sendNetSMTP(t *testing.T, f *fixture, body string, rcpts ...string) string {
	t.Helper()
	c, err := smtp.Dial(f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("client.example"); err != nil {
		t.Fatal(err)
	}
	if err := c.StartTLS(f.clientTLS()); err != nil {
		t.Fatalf("STARTTLS: %v", err)
	}
	if ok, params := c.Extension("AUTH"); !ok || !strings.Contains(params, "PLAIN") {
		t.Fatalf("AUTH PLAIN not advertised after STARTTLS: %q", params)
	}
	if ok, size := c.Extension("SIZE"); !ok || size != fmt.Sprint(DefaultMaxMessageSize) {
		t.Fatalf("SIZE = %q, want %d", size, DefaultMaxMessageSize)
	}
	for _, ext := range []string{"PIPELINING", "8BITMIME", "SMTPUTF8", "CHUNKING"} {
		if ok, _ := c.Extension(ext); !ok {
			t.Errorf("%s not advertised", ext)
		}
	}
	if err := c.Auth(smtp.PlainAuth("", testUser, testPass, "127.0.0.1")); err != nil {
		t.Fatalf("AUTH: %v", err)
	}
	if err := c.Mail("sender@example.com"); err != nil {
		t.Fatal(err)
	}
	for _, rcpt := range rcpts {
		if err := c.Rcpt(rcpt); err != nil {
			t.Fatalf("RCPT %s: %v", rcpt, err)
		}
	}
	// net/smtp's Data hides the final reply text, so DATA goes through its
	// own textproto connection to see the id.
	id, err := c.Text.Cmd("DATA")
	if err != nil {
		t.Fatal(err)
	}
	c.Text.StartResponse(id)
	_, _, err = c.Text.ReadResponse(354)
	c.Text.EndResponse(id)
	if err != nil {
		t.Fatal(err)
	}
	w := c.Text.DotWriter()
	io.WriteString(w, body)
	w.Close()
	_, msg, err := c.Text.ReadResponse(250)
	if err != nil {
		t.Fatalf("final reply: %v", err)
	}
	if err := c.Quit(); err != nil {
		t.Fatalf("QUIT: %v", err)
	}
	return queuedID(t, msg)
}

// AUTH LOGIN works, and loopback allows it without TLS.
func TestAuthLoginOnLoopback(t *testing.T) {
	f := newFixture(t, nil)
	c := f.dial()
	caps := c.must("EHLO client.example", 250)
	if !strings.Contains(caps, "AUTH PLAIN LOGIN") {
		t.Fatalf("AUTH not advertised on loopback: %q", caps)
	}
	b64 := base64.StdEncoding.EncodeToString
	if msg := c.must("AUTH LOGIN", 334); msg != b64([]byte("Username:")) {
		t.Fatalf("first challenge %q", msg)
	}
	if msg := c.must(b64([]byte(testUser)), 334); msg != b64([]byte("Password:")) {
		t.Fatalf("second challenge %q", msg)
	}
	c.must(b64([]byte(testPass)), 235)
	c.must("MAIL FROM:<>", 250)
	c.must("RCPT TO:<bob@example.com>", 250)
	code, msg := c.data("Subject: hi\r\n\r\nhello\r\n")
	if code != 250 {
		t.Fatalf("DATA: %d %s", code, msg)
	}
	m, body := f.message(queuedID(t, msg))
	hdr, _ := splitReceived(t, body)
	if m.From != "" || !strings.Contains(hdr, "with ESMTPA ") || m.Tags["user"] != testUser {
		t.Errorf("From %q, Received %q, tags %v", m.From, hdr, m.Tags)
	}
}

// BDAT chunks are stored as sent: no dot-unstuffing, bare LF kept.
func TestBDATSubmission(t *testing.T) {
	f := newFixture(t, nil)
	c := f.dial()
	c.must("EHLO client.example", 250)
	c.must(authPlain(testUser, testPass), 235)
	chunks := []string{
		dated + "Subject: chunked\r\n\r\n.leading dot stays\r\n\n..two dots stay too\n",
		"bare\nLF and a final line without CRLF",
	}
	// Pipelined: MAIL, RCPT and the first chunk in one write.
	io.WriteString(c.conn, "MAIL FROM:<a@example.com> BODY=8BITMIME\r\nRCPT TO:<b@example.com>\r\n"+
		fmt.Sprintf("BDAT %d\r\n%s", len(chunks[0]), chunks[0]))
	c.expect(250)
	c.expect(250)
	if msg := c.expect(250); !strings.Contains(msg, "Continue") {
		t.Fatalf("first chunk reply %q", msg)
	}
	io.WriteString(c.conn, fmt.Sprintf("BDAT %d LAST\r\n%s", len(chunks[1]), chunks[1]))
	msg := c.expect(250)
	m, body := f.message(queuedID(t, msg))
	_, rest := splitReceived(t, body)
	if want := strings.Join(chunks, ""); string(rest) != want {
		t.Errorf("stored %q, want %q", rest, want)
	}
	if m.Subject != "chunked" || !m.EightBit {
		t.Errorf("Subject %q, 8bit %v", m.Subject, m.EightBit)
	}
	c.must("NOOP", 250)
}

// With AllowNoAuthOnLoopback, a loopback client submits without AUTH; the
// tags carry no user, and 8BITMIME and SMTPUTF8 are recorded.
func TestLoopbackWithoutAuth(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.AllowNoAuthOnLoopback = true; c.Users = nil })
	if !f.srv.OpenOnLoopback() {
		t.Error("OpenOnLoopback = false")
	}
	c := f.dial()
	caps := c.must("EHLO client.example", 250)
	if strings.Contains(caps, "AUTH") {
		t.Errorf("AUTH advertised with no users: %q", caps)
	}
	c.must("MAIL FROM:<grüße@exämple.com> BODY=8BITMIME SMTPUTF8", 250)
	c.must("RCPT TO:<empfänger@exämple.com>", 250)
	code, msg := c.data("Subject: Grüße\r\n\r\nbody\r\n")
	if code != 250 {
		t.Fatalf("DATA: %d %s", code, msg)
	}
	m, body := f.message(queuedID(t, msg))
	hdr, _ := splitReceived(t, body)
	if len(m.Tags) != 0 || m.Source != queue.SourceSMTP || !m.EightBit || !m.SMTPUTF8 {
		t.Errorf("tags %v source %q 8bit %v utf8 %v, want none, smtp, true, true", m.Tags, m.Source, m.EightBit, m.SMTPUTF8)
	}
	if m.From != "grüße@exämple.com" || m.Subject != "Grüße" || !strings.Contains(hdr, "with UTF8SMTP id") {
		t.Errorf("From %q, Subject %q, Received %q", m.From, m.Subject, hdr)
	}
}

// A HELO name with characters that could end or extend the header line is
// sanitised before it goes into the Received header.
func TestReceivedSanitisesHelo(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.AllowNoAuthOnLoopback = true })
	c := f.dial()
	c.must("EHLO evil\rBcc:(victim)", 250)
	c.must("MAIL FROM:<a@example.com>", 250)
	c.must("RCPT TO:<b@example.com>", 250)
	_, msg := c.data("Subject: x\r\n\r\nx\r\n")
	_, body := f.message(queuedID(t, msg))
	hdr, _ := splitReceived(t, body)
	if !strings.HasPrefix(hdr, "Received: from evil_Bcc:_victim_ ([127.0.0.1])\r\n") {
		t.Errorf("Received header %q", hdr)
	}
	if bytes.Count([]byte(hdr), []byte("\r")) != 3 {
		t.Errorf("Received header has stray CRs: %q", hdr)
	}
}

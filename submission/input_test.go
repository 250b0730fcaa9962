package submission

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/outbox-mail/outbox/queue"
	"github.com/outbox-mail/outbox/queue/sqlite"
)

// Bad envelopes get a clear 5xx naming the problem; nothing is stored and
// the session goes on serving.
func TestBadEnvelope(t *testing.T) {
	f := newFixture(t, nil)
	c := f.dial()
	c.must("EHLO client.example", 250)
	c.must(authPlain(testUser, testPass), 235)
	mails := []struct {
		line, want string
	}{
		{"MAIL FROM:<a@example.com\rBcc: x@example.net>", "501 "},
		{"MAIL FROM:<a@exam\rple.com>", "553 5.1.7 Invalid sender address: the address contains a control character"},
		{"MAIL FROM:<no-domain>", "501 "},
		{"MAIL FROM:<a@-bad-.example>", "553 5.1.7 Invalid sender address: a domain label starts or ends"},
		{"MAIL FROM:<a@exa_mple.com>", "553 5.1.7 Invalid sender address: the domain has a character"},
		{"MAIL FROM:<a@example..com>", "553 5.1.7 Invalid sender address: the domain has an empty label"},
		{"MAIL FROM:<grüße@example.com>", "553 5.6.7 Invalid sender address: the address has non-ASCII"},
		{"MAIL FROM:<a@[300.1.1.1]>", "553 5.1.7 Invalid sender address: the address literal"},
		{"MAIL FROM:<a@example.com> SIZE=abc", "501 "},
	}
	for _, m := range mails {
		code, msg := c.cmd(m.line)
		if got := fmt.Sprintf("%d %s", code, msg); !strings.HasPrefix(got, m.want) {
			t.Errorf("%q: reply %q, want prefix %q", m.line, got, m.want)
		}
	}
	// A bare LF ends the command line: both halves are refused, and the
	// second is not taken for a header or another command's argument.
	io.WriteString(c.conn, "MAIL FROM:<a@exam\nBcc: ple.com>\r\n")
	if code, msg := c.reply(); code != 501 {
		t.Errorf("first half of a split MAIL: %d %s", code, msg)
	}
	if code, msg := c.reply(); code != 500 {
		t.Errorf("second half of a split MAIL: %d %s", code, msg)
	}
	c.must("MAIL FROM:<a@example.com>", 250)
	rcpts := []struct {
		line, want string
	}{
		{"RCPT TO:<b@exam\rple.com>", "553 5.1.3 Invalid recipient address: the address contains a control character"},
		{"RCPT TO:<b@[IPv6:zz::1]>", "553 5.1.3 Invalid recipient address: the IPv6 address literal"},
		{"RCPT TO:<empfänger@example.com>", "553 5.6.7 Invalid recipient address: the address has non-ASCII"},
		{"RCPT TO:<b@" + strings.Repeat("x", 64) + ".com>", "553 5.1.3 Invalid recipient address: a domain label is longer"},
		{"RCPT TO:<>", "501 "},
	}
	for _, r := range rcpts {
		code, msg := c.cmd(r.line)
		if got := fmt.Sprintf("%d %s", code, msg); !strings.HasPrefix(got, r.want) {
			t.Errorf("%q: reply %q, want prefix %q", r.line, got, r.want)
		}
	}
	if code, msg := c.cmd("DATA"); code/100 != 5 {
		t.Errorf("DATA with no valid recipient: %d %s", code, msg)
	}
	c.must("RSET", 250)
	c.must("NOOP", 250)
	if n := f.stored(); n != 0 {
		t.Errorf("%d messages stored", n)
	}
}

// Recipients beyond MaxRecipients get 452 4.5.3; duplicates do not make a
// second recipient.
func TestTooManyRecipients(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.MaxRecipients = 3 })
	c := f.dial()
	caps := c.must("EHLO client.example", 250)
	if !strings.Contains(caps, "LIMITS RCPTMAX=3") {
		t.Errorf("EHLO does not advertise the limit: %q", caps)
	}
	c.must(authPlain(testUser, testPass), 235)
	c.must("MAIL FROM:<a@example.com>", 250)
	for i := range 3 {
		c.must(fmt.Sprintf("RCPT TO:<r%d@example.com>", i), 250)
	}
	if msg := c.must("RCPT TO:<r3@example.com>", 452); !strings.HasPrefix(msg, "4.5.3 ") {
		t.Errorf("reply text %q, want 4.5.3", msg)
	}
	c.must("RSET", 250)
	if n := f.stored(); n != 0 {
		t.Errorf("%d messages stored", n)
	}
	// The session still works, and a repeated recipient is kept once.
	c.must("MAIL FROM:<a@example.com>", 250)
	c.must("RCPT TO:<r@example.com>", 250)
	c.must("RCPT TO:<r@Example.COM>", 250)
	code, msg := c.data("Subject: x\r\n\r\nx\r\n")
	if code != 250 {
		t.Fatalf("DATA: %d %s", code, msg)
	}
	if m, _ := f.message(queuedID(t, msg)); len(m.Recipients) != 1 {
		t.Errorf("recipients %v, want one", m.Recipients)
	}
}

// Oversize messages, announced by SIZE or only found in the data, DATA or
// BDAT, get 552 5.3.4 and leave nothing stored; the session goes on.
func TestOversizeMessage(t *testing.T) {
	const limit = 100 << 10 // above the 64 KiB header peek
	f := newFixture(t, func(c *Config) { c.MaxMessageSize = limit })
	c := f.dial()
	caps := c.must("EHLO client.example", 250)
	if !strings.Contains(caps, fmt.Sprintf("SIZE %d", limit)) {
		t.Errorf("EHLO does not advertise SIZE %d: %q", limit, caps)
	}
	c.must(authPlain(testUser, testPass), 235)
	if msg := c.must(fmt.Sprintf("MAIL FROM:<a@example.com> SIZE=%d", limit+1), 552); !strings.HasPrefix(msg, "5.3.4 ") {
		t.Errorf("SIZE too large: %q", msg)
	}
	big := "Subject: big\r\n\r\n" + strings.Repeat(strings.Repeat("x", 98)+"\r\n", limit/100+10)
	c.must("MAIL FROM:<a@example.com>", 250)
	c.must("RCPT TO:<b@example.com>", 250)
	if code, msg := c.data(big); code != 552 || !strings.HasPrefix(msg, "5.3.4 ") {
		t.Errorf("oversize DATA: %d %s, want 552 5.3.4", code, msg)
	}
	c.must("MAIL FROM:<a@example.com>", 250)
	c.must("RCPT TO:<b@example.com>", 250)
	io.WriteString(c.conn, fmt.Sprintf("BDAT %d LAST\r\n%s", len(big), big))
	if msg := c.expect(552); !strings.HasPrefix(msg, "5.3.4 ") {
		t.Errorf("oversize BDAT: %q", msg)
	}
	c.must("NOOP", 250)
	if n := f.stored(); n != 0 {
		t.Fatalf("%d messages stored after oversize submissions", n)
	}
	c.must("MAIL FROM:<a@example.com>", 250)
	c.must("RCPT TO:<b@example.com>", 250)
	if code, msg := c.data("Subject: small\r\n\r\nfits\r\n"); code != 250 {
		t.Fatalf("small message after oversize ones: %d %s", code, msg)
	}
	if n := f.stored(); n != 1 {
		t.Errorf("%d messages stored, want 1", n)
	}
}

// A line longer than go-smtp's limit is refused for good (not 4xx, which
// would make the client retry forever) and nothing is stored.
func TestLongLineRefused(t *testing.T) {
	f := newFixture(t, nil)
	c := f.dial()
	c.must("EHLO client.example", 250)
	c.must(authPlain(testUser, testPass), 235)
	c.must("MAIL FROM:<a@example.com>", 250)
	c.must("RCPT TO:<b@example.com>", 250)
	code, msg := c.data("Subject: long\r\n\r\n" + strings.Repeat("z", 3000) + "\r\n")
	if code != 554 || !strings.Contains(msg, "line longer than") {
		t.Errorf("long line: %d %s, want 554", code, msg)
	}
	if n := f.stored(); n != 0 {
		t.Errorf("%d messages stored", n)
	}
}

// A store that cannot take the message gives 451 4.3.0, so the client
// keeps it and tries again; nothing is stored.
func TestStoreFailure(t *testing.T) {
	f := newFixture(t, nil)
	c := f.dial()
	c.must("EHLO client.example", 250)
	c.must(authPlain(testUser, testPass), 235)
	f.store.Close()
	c.must("MAIL FROM:<a@example.com>", 250)
	c.must("RCPT TO:<b@example.com>", 250)
	code, msg := c.data("Subject: x\r\n\r\nx\r\n")
	if code != 451 || !strings.HasPrefix(msg, "4.3.0 ") {
		t.Errorf("DATA into a closed store: %d %s, want 451 4.3.0", code, msg)
	}
	c.must("NOOP", 250)
	st, err := sqlite.Open(f.dbPath, sqlite.Options{Queue: queue.Options{Logger: slog.New(slog.DiscardHandler)}})
	if err != nil {
		t.Fatal(err)
	}
	f.store = st // closed again by the fixture's cleanup
	if n := f.stored(); n != 0 {
		t.Errorf("%d messages stored", n)
	}
}

// Shutdown closes idle connections at once and returns; Serve returns nil.
func TestShutdownClosesIdle(t *testing.T) {
	f := newFixture(t, nil)
	c := f.dial()
	c.must("EHLO client.example", 250)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := f.srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Shutdown took %v with only an idle client", d)
	}
	c.conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.text.ReadLine(); err == nil {
		t.Error("idle connection still open after Shutdown")
	}
	select {
	case err := <-f.served:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
		f.served <- nil // for the fixture's cleanup
	case <-time.After(2 * time.Second):
		t.Error("Serve did not return after Shutdown")
	}
}

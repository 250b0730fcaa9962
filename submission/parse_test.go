package submission

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestSubjectOf(t *testing.T) {
	tests := []struct{ raw, want string }{
		{" hello", "hello"},
		{" one two\tthree ", "one two three"},
		{" =?ISO-8859-1?Q?caf=E9?= au lait", "café au lait"},
		{" =?KOI8-R?B?8NLJ18XU?=", "Привет"},
		{" a\x1bb", "a?b"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := subjectOf(tt.raw); got != tt.want {
			t.Errorf("subjectOf(%q) = %q, want %q", tt.raw, got, tt.want)
		}
	}
}

func TestCheckAddress(t *testing.T) {
	tests := []struct {
		in, want string
		utf8     bool
		bad      bool
	}{
		{in: "a@example.com", want: "a@example.com"},
		{in: "first.last+tag@sub.example.co", want: "first.last+tag@sub.example.co"},
		{in: "john doe@example.com", want: `"john doe"@example.com`}, // go-smtp unquoted it
		{in: `a"b@example.com`, want: `"a\"b"@example.com`},
		{in: "a@[192.0.2.1]", want: "a@[192.0.2.1]"},
		{in: "a@[IPv6:2001:db8::1]", want: "a@[IPv6:2001:db8::1]"},
		{in: "ü@bücher.example", want: "ü@bücher.example", utf8: true},
		{in: "ü@bücher.example", bad: true},
		{in: "a@b\r.com", bad: true},
		{in: "a@", bad: true},
		{in: "a@.example", bad: true},
		{in: "a@[192.0.2.1", bad: true},
		{in: "a@[IPv6:192.0.2.1]", bad: true},
		{in: strings.Repeat("l", 65) + "@example.com", bad: true},
		{in: "a@" + strings.Repeat("d.", 130) + "com", bad: true},
	}
	for _, tt := range tests {
		got, err := checkAddress(tt.in, tt.utf8, false)
		if tt.bad {
			if err == nil {
				t.Errorf("checkAddress(%q) = %q, want an error", tt.in, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("checkAddress(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	if _, err := checkAddress("", false, true); err != nil {
		t.Errorf("null sender refused: %v", err)
	}
	if _, err := checkAddress("", false, false); err == nil {
		t.Error("empty recipient accepted")
	}
}

// A quoted local part arrives unquoted from go-smtp and is stored quoted.
func TestQuotedLocalPartStored(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.AllowNoAuthOnLoopback = true })
	c := f.dial()
	c.must("EHLO client.example", 250)
	c.must(`MAIL FROM:<"sender name"@example.com>`, 250)
	c.must(`RCPT TO:<"quoted\"rcpt"@example.com>`, 250)
	_, msg := c.data("Subject: q\r\n\r\nq\r\n")
	m, _ := f.message(queuedID(t, msg))
	if m.From != `"sender name"@example.com` || m.Recipients[0].Address != `"quoted\"rcpt"@example.com` {
		t.Errorf("From %q, recipient %q", m.From, m.Recipients[0].Address)
	}
}

// After three failed attempts a session may not try again, even with the
// right password.
func TestAuthFailureLimit(t *testing.T) {
	f := newFixture(t, nil)
	c := f.dial()
	c.must("EHLO client.example", 250)
	for range maxAuthFailures {
		c.must(authPlain(testUser, "guess"), 535)
	}
	c.must(authPlain(testUser, testPass), 454)
	c.must("MAIL FROM:<a@example.com>", 530)
}

// Shutdown lets a transaction under way finish with its 250, then closes
// that connection; a new connection is refused.
func TestShutdownDrainsBusy(t *testing.T) {
	f := newFixture(t, nil)
	c := f.dial()
	c.must("EHLO client.example", 250)
	c.must(authPlain(testUser, testPass), 235)
	c.must("MAIL FROM:<a@example.com>", 250)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- f.srv.Shutdown(ctx) }()
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned %v with a transaction under way", err)
	case <-time.After(200 * time.Millisecond):
	}
	c.must("RCPT TO:<b@example.com>", 250)
	code, msg := c.data("Subject: last\r\n\r\nin flight\r\n")
	if code != 250 {
		t.Fatalf("DATA during shutdown: %d %s", code, msg)
	}
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if n := f.stored(); n != 1 {
		t.Errorf("%d messages stored, want 1", n)
	}
	c.conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.text.ReadLine(); err == nil {
		t.Error("connection still open after its transaction and Shutdown")
	}
}

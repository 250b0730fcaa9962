package submission

import (
	"net"
	"net/smtp"
	"strings"
	"testing"
)

// notLoopback makes the server treat loopback test connections as remote,
// so the non-loopback rules are tested without leaving loopback.
func notLoopback(c *Config) {
	c.isLoopback = func(local, remote net.Addr) bool { return false }
}

// Without AUTH, MAIL is refused with 530 and nothing after it is accepted.
func TestUnauthenticatedRefused(t *testing.T) {
	f := newFixture(t, nil)
	c := f.dial()
	c.must("EHLO client.example", 250)
	if msg := c.must("MAIL FROM:<a@example.com>", 530); msg != "5.7.0 Authentication required" {
		t.Errorf("MAIL reply text %q", msg)
	}
	if code, msg := c.cmd("RCPT TO:<victim@example.net>"); code/100 != 5 {
		t.Errorf("RCPT after refused MAIL: %d %s", code, msg)
	}
	if code, msg := c.cmd("DATA"); code/100 != 5 {
		t.Errorf("DATA after refused MAIL: %d %s", code, msg)
	}
	c.must("NOOP", 250)
	if n := f.stored(); n != 0 {
		t.Errorf("%d messages stored", n)
	}
}

// A wrong password gets 535 5.7.8; the attempt is logged with the user but
// without the password, and the session still cannot send.
func TestWrongPasswordRefused(t *testing.T) {
	f := newFixture(t, nil)
	// net/smtp quits after a failed AUTH, so each attempt dials anew.
	auth := func(user, pass string) error {
		c, err := smtp.Dial(f.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.StartTLS(f.clientTLS()); err != nil {
			t.Fatal(err)
		}
		return c.Auth(smtp.PlainAuth("", user, pass, "127.0.0.1"))
	}
	const wrong = "not-the-password-xyzzy"
	err := auth(testUser, wrong)
	if err == nil || !strings.Contains(err.Error(), "535") || !strings.Contains(err.Error(), "5.7.8") {
		t.Fatalf("AUTH with a wrong password: %v, want 535 5.7.8", err)
	}
	if err := auth("mallory", testPass); err == nil || !strings.Contains(err.Error(), "535") {
		t.Fatalf("AUTH as an unknown user: %v, want 535", err)
	}
	c := f.dial()
	c.must("EHLO client.example", 250)
	c.must(authPlain(testUser, wrong), 535)
	c.must("MAIL FROM:<a@example.com>", 530)
	logs := f.logs.String()
	if strings.Contains(logs, wrong) || strings.Contains(logs, testPass) {
		t.Errorf("a password appears in the logs:\n%s", logs)
	}
	if !strings.Contains(logs, "authentication failed") || !strings.Contains(logs, "user=mallory") {
		t.Errorf("failed attempts not logged with the user name:\n%s", logs)
	}
	if n := f.stored(); n != 0 {
		t.Errorf("%d messages stored", n)
	}
}

// On a non-loopback connection AUTH is neither offered nor accepted before
// STARTTLS; after STARTTLS it is both.
func TestAuthNeedsTLSOffLoopback(t *testing.T) {
	f := newFixture(t, notLoopback)
	c := f.dial()
	caps := c.must("EHLO client.example", 250)
	if strings.Contains(caps, "AUTH") || !strings.Contains(caps, "STARTTLS") {
		t.Fatalf("EHLO before TLS: %q, want STARTTLS and no AUTH", caps)
	}
	if code, msg := c.cmd(authPlain(testUser, testPass)); code != 538 {
		t.Fatalf("AUTH before STARTTLS: %d %s, want 538", code, msg)
	}
	c.must("MAIL FROM:<a@example.com>", 530)
	c.startTLS(f.clientTLS())
	caps = c.must("EHLO client.example", 250)
	if !strings.Contains(caps, "AUTH PLAIN LOGIN") {
		t.Fatalf("EHLO after TLS: %q, want AUTH", caps)
	}
	c.must(authPlain(testUser, testPass), 235)
	c.must("MAIL FROM:<a@example.com>", 250)
	c.must("RCPT TO:<b@example.com>", 250)
	code, msg := c.data("Subject: over TLS\r\n\r\nx\r\n")
	if code != 250 {
		t.Fatalf("DATA: %d %s", code, msg)
	}
	if n := f.stored(); n != 1 {
		t.Errorf("%d messages stored, want 1", n)
	}
}

// AllowNoAuthOnLoopback does not open a non-loopback connection.
func TestNoAuthModeOnlyOnLoopback(t *testing.T) {
	f := newFixture(t, func(c *Config) {
		notLoopback(c)
		c.AllowNoAuthOnLoopback = true
	})
	c := f.dial()
	c.must("EHLO client.example", 250)
	c.must("MAIL FROM:<a@example.com>", 530)
	c.startTLS(f.clientTLS())
	c.must("EHLO client.example", 250)
	c.must("MAIL FROM:<a@example.com>", 530)
	if n := f.stored(); n != 0 {
		t.Errorf("%d messages stored", n)
	}
}

// The default loopback decision needs both ends on loopback.
func TestLoopbackPair(t *testing.T) {
	lo4 := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 2525}
	lo6 := &net.TCPAddr{IP: net.IPv6loopback, Port: 2525}
	remote := &net.TCPAddr{IP: net.IPv4(192, 0, 2, 7), Port: 40000}
	tests := []struct {
		local, remote net.Addr
		want          bool
	}{
		{lo4, lo4, true},
		{lo6, lo6, true},
		{lo4, remote, false},
		{remote, lo4, false},
		{&net.UnixAddr{Name: "/tmp/s", Net: "unix"}, lo4, false},
	}
	for _, tt := range tests {
		if got := loopbackPair(tt.local, tt.remote); got != tt.want {
			t.Errorf("loopbackPair(%v, %v) = %v, want %v", tt.local, tt.remote, got, tt.want)
		}
	}
}

package main_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/smtp"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/outbox-mail/outbox/client"
	"github.com/outbox-mail/outbox/internal/testenv"
)

// resetMessage is a password-reset mail as an application's mailer
// writes it: with Date and Message-ID, so that the daemon adds nothing
// but its Received field.
func resetMessage(to, link string) []byte {
	return []byte(strings.ReplaceAll(`Date: Mon, 02 Jun 2025 10:00:00 +0000
Message-ID: <reset-`+hex.EncodeToString([]byte(to))+`@shop.example>
From: Shop <no-reply@shop.example>
To: Ann <`+to+`>
Subject: Reset your password
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="b1"

--b1
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 7bit

Hello Ann,

Reset your password at `+link+`
It expires in an hour.
--b1
Content-Type: text/html; charset=utf-8
Content-Transfer-Encoding: 7bit

<p>Hello Ann,</p><p><a href="`+link+`">Reset your password</a>. It expires in an hour.</p>
--b1--
`, "\n", "\r\n"))
}

// pythonSend is smtplib as an application's test suite in Python uses
// it: plain SMTP to a loopback capture server without authentication.
const pythonSend = `import smtplib, sys
host, port, sender, rcpt, path = sys.argv[1:6]
with open(path, "rb") as f:
    msg = f.read()
with smtplib.SMTP(host, int(port), timeout=30) as s:
    refused = s.sendmail(sender, [rcpt], msg)
    assert not refused, refused
`

// python3 returns the interpreter, or "" after saying how to install it;
// in CI (CI set) a missing interpreter fails the test.
func python3(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"python3", "/root/.pyenv/shims/python3", "/usr/bin/python3"} {
		if path, err := exec.LookPath(p); err == nil {
			if exec.Command(path, "-c", "import smtplib").Run() == nil {
				return path
			}
		}
	}
	const msg = "python3 with smtplib not found: the capture workflow test submits with it (apt-get install python3)"
	if testenv.InCI() {
		t.Fatal(msg)
	}
	return ""
}

// submitPlain sends msg with Go's net/smtp, as a Go application would,
// over plain SMTP to the loopback capture server.
func submitPlain(t *testing.T, addr, from, to string, msg []byte) {
	t.Helper()
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("app.test"); err != nil {
		t.Fatal(err)
	}
	sendOn(t, c, from, []string{to}, msg)
}

// received matches the one Received field the submission listener
// prepends: a first line and its folded continuations.
var received = regexp.MustCompile(`^Received: [^\r\n]*\r\n(?:[ \t][^\r\n]*\r\n)*`)

// TestCaptureWorkflowEndToEnd is the CI use of outbox in place of a mail
// catcher, exactly as an application's test suite runs it: the built
// 'outbox serve' with its defaults (capture, loopback, no credentials);
// a password-reset mail submitted over SMTP from Python's smtplib and
// from Go; each waited for through the API (client package and CLI),
// its reset link read from its content, its raw bytes compared with what
// was submitted; and a bulk delete that empties the inbox.
func TestCaptureWorkflowEndToEnd(t *testing.T) {
	py := python3(t)
	dir := t.TempDir()
	d := launchDaemon(t, exec.Command(binary, "serve", "--http", "127.0.0.1:0", "--smtp", "127.0.0.1:0",
		"--db", "sqlite:"+filepath.Join(dir, "outbox.db")))
	baseURL := "http://" + d.httpAddr
	c, err := client.New(baseURL, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	host, port, _ := strings.Cut(d.smtpAddr, ":")

	type sent struct {
		to, link string
		msg      []byte
	}
	var mails []sent
	for _, via := range []string{"python", "go"} {
		to := "ann-" + via + "@example.org"
		link := "https://shop.example/reset?token=" + rand.Text()
		s := sent{to: to, link: link, msg: resetMessage(to, link)}
		switch {
		case via == "go":
			submitPlain(t, d.smtpAddr, "no-reply@shop.example", to, s.msg)
		case py == "":
			t.Log("python3 with smtplib not found: only Go submits (apt-get install python3)")
			continue
		default:
			path := filepath.Join(dir, "reset.eml")
			if err := os.WriteFile(path, s.msg, 0o600); err != nil {
				t.Fatal(err)
			}
			out, err := exec.CommandContext(ctx, py, "-c", pythonSend, host, port, "no-reply@shop.example", to, path).CombinedOutput()
			if err != nil {
				t.Fatalf("smtplib: %v\n%s\n%s", err, out, d.logs)
			}
		}
		mails = append(mails, s)
	}

	// Each mail is waited for with the client package and with the CLI,
	// as a Go test and a shell step of a CI job would; both find it.
	ids := map[string]bool{}
	var lastID string
	for _, s := range mails {
		m, err := c.Wait(ctx, client.ListOptions{To: s.to, Subject: "Reset your password", Status: client.StatusDelivered}, 30*time.Second)
		if err != nil {
			t.Fatalf("Wait for %s: %v\n%s", s.to, err, d.logs)
		}
		out, err := exec.CommandContext(ctx, binary, "queue", "wait", "--url", baseURL, "--to", s.to,
			"--subject", "Reset your password", "--status", "delivered", "--timeout", "30s").Output()
		if err != nil || strings.TrimSpace(string(out)) != m.ID {
			t.Fatalf("outbox queue wait --to %s: %v, %q; the client found %s\n%s", s.to, err, out, m.ID, d.logs)
		}
		ids[m.ID], lastID = true, m.ID
		checkCaptured(t, ctx, c, m.ID, s.to, s.link, s.msg)
	}
	if len(ids) != len(mails) {
		t.Fatalf("the waits found %v for %d mails", ids, len(mails))
	}
	last := mails[len(mails)-1]

	// The CLI's raw view is the same bytes.
	out, err := exec.CommandContext(ctx, binary, "queue", "show", lastID, "--raw", "--url", baseURL).Output()
	if err != nil || !bytes.HasSuffix(out, last.msg) || !received.Match(out) {
		t.Errorf("outbox queue show --raw: %v, %d bytes", err, len(out))
	}

	n, err := c.DeleteMatching(ctx, client.DeleteFilter{})
	if err != nil || n != len(mails) {
		t.Fatalf("bulk delete: %d, %v", n, err)
	}
	if page, err := c.List(ctx, client.ListOptions{}); err != nil || len(page.Messages) != 0 {
		t.Fatalf("the inbox is not empty after the bulk delete: %+v, %v", page, err)
	}
	if _, err := c.Content(ctx, lastID); !client.IsNotFound(err) {
		t.Errorf("content of a deleted message: %v, want 404", err)
	}
	if out, err := exec.CommandContext(ctx, binary, "queue", "delete", "--all", "--url", baseURL).Output(); err != nil ||
		string(out) != "deleted 0 messages\n" {
		t.Errorf("outbox queue delete --all on an empty inbox: %v, %q", err, out)
	}
}

// checkCaptured reads a captured message through the API: its content
// names the recipient and holds the reset link, and its raw bytes are
// the submitted ones after the Received field the daemon added.
func checkCaptured(t *testing.T, ctx context.Context, c *client.Client, id, to, link string, submitted []byte) {
	t.Helper()
	content, err := c.Content(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(content.To) != 1 || content.To[0] != (client.Address{Name: "Ann", Address: to}) ||
		content.From == nil || content.From.Address != "no-reply@shop.example" || content.Subject != "Reset your password" {
		t.Errorf("content of %s: from %+v, to %+v, subject %q", id, content.From, content.To, content.Subject)
	}
	var reset string
	for _, l := range content.Links {
		if strings.HasPrefix(l, "https://shop.example/reset?") {
			reset = l
			break
		}
	}
	if reset != link || len(content.Links) != 1 || !strings.Contains(content.Text, link) {
		t.Errorf("reset link of %s: %q from links %q, want %q", id, reset, content.Links, link)
	}
	rc, err := c.Raw(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	added := received.Find(raw)
	if added == nil {
		t.Fatalf("raw %s does not start with the daemon's Received field: %.200q", id, raw)
	}
	if rest := raw[len(added):]; !bytes.Equal(rest, submitted) {
		t.Errorf("raw %s after its Received field differs from what was submitted:\n got %q\nwant %q",
			id, firstDiff(rest, submitted), firstDiff(submitted, rest))
	}
}

// firstDiff is a's text from shortly before where it stops matching b.
func firstDiff(a, b []byte) string {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	from := max(0, i-20)
	return fmt.Sprintf("…%s", a[from:min(len(a), i+40)])
}

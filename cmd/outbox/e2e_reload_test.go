package main_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/smtp"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/outbox-mail/outbox/internal/smtpsink"
	"github.com/outbox-mail/outbox/queue"
)

const (
	oldToken = "reload-old-token-0123456789"
	newToken = "reload-new-token-9876543210"
)

// writeConfig writes a config file as an operator would, private.
func writeConfig(t *testing.T, path string, v any) {
	t.Helper()
	var data []byte
	switch v := v.(type) {
	case string:
		data = []byte(v)
	default:
		var err error
		if data, err = json.MarshalIndent(v, "", "  "); err != nil {
			t.Fatal(err)
		}
	}
	// Through a rename, as editors and config management do, so the
	// daemon never reads half a file.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// reload sends SIGHUP and waits for the log line that ends the reload:
// "configuration reloaded" or "reload refused". It returns the log
// written since.
func (d *daemonProc) reload(t *testing.T) string {
	t.Helper()
	before := len(d.logs.String())
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	for range 1000 {
		logs := d.logs.String()[before:]
		if strings.Contains(logs, "configuration reloaded") || strings.Contains(logs, "reload refused") {
			return logs
		}
		select {
		case err := <-d.done:
			t.Fatalf("outbox serve exited on SIGHUP: %v\n%s", err, d.logs)
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("no reload logged after SIGHUP:\n%s", d.logs.String()[before:])
	return ""
}

// status is the HTTP status of GET /v1/messages with token.
func (d *daemonProc) status(t *testing.T, token string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+d.httpAddr+"/v1/messages", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// submitOn submits one message over an SMTP session already open and
// leaves it open.
func submitOn(t *testing.T, c *smtp.Client, to, subject string) {
	t.Helper()
	if err := c.Mail("app@example.test"); err != nil {
		t.Fatalf("MAIL on the open session: %v", err)
	}
	if err := c.Rcpt(to); err != nil {
		t.Fatalf("RCPT on the open session: %v", err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(w, "From: app@example.test\r\nTo: %s\r\nSubject: %s\r\n\r\nHello.\r\n", to, subject)
	if err := w.Close(); err != nil {
		t.Fatalf("DATA on the open session: %v", err)
	}
}

// receivedSubjects lists the subjects a sink has received.
func receivedSubjects(s *smtpsink.Sink) string {
	var out []string
	for _, r := range s.Received() {
		for _, line := range strings.Split(string(r.Data), "\r\n") {
			if v, ok := strings.CutPrefix(line, "Subject: "); ok {
				out = append(out, v)
			}
		}
	}
	return strings.Join(out, ",")
}

// waitSubjects waits until sink has received exactly want (in any order
// of arrival, compared as given).
func waitSubjects(t *testing.T, s *smtpsink.Sink, want string) {
	t.Helper()
	for range 1000 {
		if receivedSubjects(s) == want {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("sink %s received %q, want %q", s.Addr(), receivedSubjects(s), want)
}

// TestReloadOnSIGHUP rotates the API token and changes a route in the
// config file of a running daemon: after SIGHUP the old token is refused
// and the new one accepted, an SMTP session opened before the reload
// goes on submitting, mail to the domain goes to its new relay, and a
// broken config is refused with the one in force kept.
func TestReloadOnSIGHUP(t *testing.T) {
	relayA, relayB := startSink(t, smtpsink.Options{}), startSink(t, smtpsink.Options{})
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "outbox.json")
	config := func(token string, relay *smtpsink.Sink) map[string]any {
		return map[string]any{
			"api_token": []string{token},
			"smtp_user": []string{smtpUser + ":" + smtpPass},
			"routes":    []map[string]any{{"domain": "a.test", "target": "smtp://" + relay.Addr() + "?starttls=off"}},
		}
	}
	writeConfig(t, cfgFile, config(oldToken, relayA))
	d := launchDaemon(t, exec.Command(binary, daemonArgs(dir, "--config", cfgFile)...))

	if code := d.status(t, oldToken); code != 200 {
		t.Fatalf("old token before the reload: HTTP %d", code)
	}
	// A session opened, authenticated and used before the reload.
	c := smtpFrom(t, "127.0.0.1", d.smtpAddr)
	defer c.Close()
	if err := c.Auth(smtp.PlainAuth("", smtpUser, smtpPass, "127.0.0.1")); err != nil {
		t.Fatal(err)
	}
	submitOn(t, c, "x@a.test", "before")
	waitSubjects(t, relayA, "before")

	writeConfig(t, cfgFile, config(newToken, relayB))
	logs := d.reload(t)
	if !strings.Contains(logs, "configuration reloaded") {
		t.Fatalf("reload not done:\n%s", logs)
	}
	for _, want := range []string{"api tokens: 1 added, 1 removed", "routes: a.test relay:" + relayA.Addr() + " → relay:" + relayB.Addr()} {
		if !strings.Contains(logs, want) {
			t.Errorf("the reload's log lacks %q:\n%s", want, logs)
		}
	}
	if code := d.status(t, oldToken); code != http.StatusUnauthorized {
		t.Errorf("old token after the reload: HTTP %d, want 401", code)
	}
	if code := d.status(t, newToken); code != 200 {
		t.Errorf("new token after the reload: HTTP %d, want 200", code)
	}
	// The session opened before the reload is still there and still
	// allowed: its user did not change.
	submitOn(t, c, "y@a.test", "after")
	waitSubjects(t, relayB, "after")

	// A broken file, then a file that parses but does not check: both
	// refused, the configuration in force stays.
	for _, bad := range []string{
		`{"api_token": ["` + oldToken + `"], "routes": [`,
		`{"api_token": ["short"], "smtp_user": ["app:pw"]}`,
		`{"api_token": ["` + oldToken + `"], "routes": [{"domain": "a.test", "target": "pop3://nowhere"}]}`,
	} {
		writeConfig(t, cfgFile, bad)
		logs := d.reload(t)
		if !strings.Contains(logs, "reload refused") || strings.Contains(logs, "configuration reloaded") {
			t.Errorf("config %s: not refused:\n%s", bad, logs)
		}
		if code := d.status(t, newToken); code != 200 {
			t.Errorf("after refusing %s: the token in force gets HTTP %d", bad, code)
		}
		if code := d.status(t, oldToken); code != http.StatusUnauthorized {
			t.Errorf("after refusing %s: the file's token gets HTTP %d", bad, code)
		}
	}
	submitOn(t, c, "z@a.test", "still-b")
	waitSubjects(t, relayB, "after,still-b")
	if err := c.Quit(); err != nil {
		t.Errorf("QUIT on the session opened before the reloads: %v", err)
	}
	if got := receivedSubjects(relayA); got != "before" {
		t.Errorf("the old relay got %q after the reload", got)
	}
	for _, secret := range []string{oldToken, newToken, smtpPass} {
		if strings.Contains(d.logs.String(), secret) {
			t.Errorf("the log shows a secret (%s…)", secret[:6])
		}
	}
}

// TestReloadKeepsFlagsAndSaysWhatNeedsARestart checks the precedence: a
// token given as a flag stays the only one whatever the file says, and a
// setting a reload cannot change is named in the log and left as it was.
func TestReloadKeepsFlagsAndSaysWhatNeedsARestart(t *testing.T) {
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "outbox.json")
	writeConfig(t, cfgFile, map[string]any{"api_token": []string{oldToken}, "max_message_size": "1MiB"})
	d := launchDaemon(t, exec.Command(binary, daemonArgs(dir, "--config", cfgFile, "--api-token", testToken)...))
	writeConfig(t, cfgFile, map[string]any{"api_token": []string{newToken}, "max_message_size": "2MiB", "log_level": "debug"})
	logs := d.reload(t)
	if !strings.Contains(logs, "configuration reloaded") || !strings.Contains(logs, "--max-message-size") ||
		!strings.Contains(logs, "next start") || !strings.Contains(logs, "log level: info → debug") {
		t.Errorf("reload log:\n%s", logs)
	}
	if strings.Contains(logs, "api tokens") {
		t.Errorf("the file's tokens were taken over the flag's:\n%s", logs)
	}
	if code := d.status(t, testToken); code != 200 {
		t.Errorf("the flag's token: HTTP %d", code)
	}
	for _, tok := range []string{oldToken, newToken} {
		if code := d.status(t, tok); code != http.StatusUnauthorized {
			t.Errorf("a file token with a flag token given: HTTP %d", code)
		}
	}
	// The limit in force is still the first file's 1 MiB.
	big := strings.Repeat("x", 1500<<10)
	code := d.api("POST", "/v1/messages/raw?from=a@example.test&to=b@example.test", "message/rfc822",
		strings.NewReader("Subject: big\r\n\r\n"+big), nil)
	if code != http.StatusRequestEntityTooLarge {
		t.Errorf("a 1.5 MiB message after the reload: HTTP %d, want 413 (the limit needs a restart)", code)
	}
	var out struct{ ID string }
	if code := d.api("POST", "/v1/messages/raw?from=a@example.test&to=b@example.test", "message/rfc822",
		strings.NewReader("Subject: small\r\n\r\nHi.\r\n"), &out); code != http.StatusAccepted {
		t.Fatalf("small message: HTTP %d", code)
	}
	d.waitStatus(out.ID, queue.StatusDelivered)
}

package main_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/smtp"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// scrapeMetrics reads the daemon's /metrics with the API token.
func (d *daemonProc) scrapeMetrics(t *testing.T) string {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+d.httpAddr+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("/metrics: HTTP %d", resp.StatusCode)
	}
	return string(body)
}

func sample(text, series string) float64 {
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindStringSubmatch(text)
	if m == nil {
		return -1
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}

// TestOperatorMetricsFromTheDaemon scrapes a running daemon after
// refusals, failed logins and failing webhooks.
func TestOperatorMetricsFromTheDaemon(t *testing.T) {
	var posts atomic.Int64
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		posts.Add(1)
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
	}))
	defer hook.Close()
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "outbox.json")
	writeConfig(t, cfgFile, `{"webhooks": [{"url": "`+hook.URL+`", "secret": "s3cret-hook"}]}`)
	d := launchDaemon(t, exec.Command(binary, daemonArgs(dir, "--config", cfgFile, "--api-token", testToken,
		"--smtp-user", smtpUser+":"+smtpPass)...))

	// A wrong password, and MAIL without authentication.
	c := smtpFrom(t, "127.0.0.1", d.smtpAddr)
	if err := c.Auth(smtp.PlainAuth("", smtpUser, "wrong", "127.0.0.1")); err == nil {
		t.Fatal("a wrong password was accepted")
	}
	c.Close() // net/smtp closes after a failed AUTH anyway
	c = smtpFrom(t, "127.0.0.1", d.smtpAddr)
	if err := c.Mail("app@example.test"); err == nil || !strings.Contains(err.Error(), "530") {
		t.Fatalf("MAIL without authentication: %v, want 530", err)
	}
	c.Close()
	// One message delivered (its webhook fails), one due in an hour.
	var out struct{ ID string }
	if code := d.api("POST", "/v1/messages/raw?from=a@example.test&to=b@example.test", "message/rfc822",
		strings.NewReader("Subject: now\r\n\r\nHi.\r\n"), &out); code != http.StatusAccepted {
		t.Fatalf("enqueue: HTTP %d", code)
	}
	if code := d.api("POST", "/v1/messages", "application/json", strings.NewReader(`{"from": "a@example.test",
		"to": ["c@example.test"], "subject": "later", "text": "x", "send_at": "`+time.Now().Add(time.Hour).UTC().Format(time.RFC3339)+`"}`), &out); code != http.StatusAccepted {
		t.Fatalf("enqueue later: HTTP %d", code)
	}
	var text string
	for range 500 {
		text = d.scrapeMetrics(t)
		if sample(text, `outbox_webhook_posts_total{result="failed"}`) >= 1 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	build := `outbox_build_info{commit="`
	if !strings.Contains(text, build) || !strings.Contains(text, `goversion="`+runtime.Version()+`"`) {
		t.Errorf("no build info for %s in:\n%s", runtime.Version(), grepLines(text, "outbox_build_info"))
	}
	for series, least := range map[string]float64{
		`outbox_submission_auth_failures_total{reason="bad_credentials"}`: 1,
		`outbox_submission_rejections_total{reason="auth_required"}`:      1,
		`outbox_webhook_posts_total{result="failed"}`:                     1,
		`outbox_webhook_events{state="waiting"}`:                          1,
		`outbox_queue_oldest_waiting_seconds`:                             0.001,
	} {
		if got := sample(text, series); got < least {
			t.Errorf("%s = %v, want at least %v", series, got, least)
		}
	}
	if got := sample(text, `outbox_webhook_posts_total{result="delivered"}`); got != 0 || posts.Load() < 1 {
		t.Errorf("delivered posts %v with an endpoint that always fails (%d posts)", got, posts.Load())
	}
}

func grepLines(text, prefix string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

package main_test

import (
	"bytes"
	"fmt"
	"net/http"
	"net/smtp"
	"strings"
	"testing"
	"time"

	"github.com/outbox-mail/outbox/api"
	"github.com/outbox-mail/outbox/internal/smtpsink"
	"github.com/outbox-mail/outbox/queue"
)

// submitSMTP sends raw through the daemon's submission port with Go's
// net/smtp: STARTTLS, then AUTH PLAIN.
func submitSMTP(t *testing.T, addr, from string, to []string, raw []byte) {
	t.Helper()
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.StartTLS(insecureTLS); err != nil {
		t.Fatalf("STARTTLS: %v", err)
	}
	if err := c.Auth(smtp.PlainAuth("", smtpUser, smtpPass, "127.0.0.1")); err != nil {
		t.Fatalf("AUTH: %v", err)
	}
	sendOn(t, c, from, to, raw)
}

// sendOn runs one mail transaction of raw on c and quits.
func sendOn(t *testing.T, c *smtp.Client, from string, to []string, raw []byte) {
	t.Helper()
	if err := c.Mail(from); err != nil {
		t.Fatal(err)
	}
	for _, r := range to {
		if err := c.Rcpt(r); err != nil {
			t.Fatal(err)
		}
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(raw); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("final dot: %v", err)
	}
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}
}

func TestSubmissionAndAPIArriveByteExact(t *testing.T) {
	sink := startSink(t, smtpsink.Options{})
	d := startDaemon(t, t.TempDir(), "--relay", "smtp://"+sink.Addr()+"?starttls=off")

	raw := []byte("From: App <app@example.test>\r\nTo: ann@example.test\r\nSubject: via SMTP\r\n" +
		"Message-ID: <e2e-1@example.test>\r\n\r\nHello over SMTP.\r\n.leading dot\r\n")
	submitSMTP(t, d.smtpAddr, "app@example.test", []string{"ann@example.test"}, raw)

	var accepted struct{ ID, Status string }
	code := d.api("POST", "/v1/messages", "application/json", strings.NewReader(
		`{"from":"App <app@example.test>","to":["bob@example.test"],"subject":"via API","text":"Hello over HTTP."}`), &accepted)
	if code != 202 || accepted.Status != "queued" || accepted.ID == "" {
		t.Fatalf("POST /v1/messages: %d %+v", code, accepted)
	}
	if n := sink.WaitFor(2, 20*time.Second); n != 2 {
		t.Fatalf("sink received %d messages, want 2\n%s", n, d.logs)
	}
	var viaSMTP, viaAPI *smtpsink.Received
	for _, r := range sink.Received() {
		r := r
		switch {
		case bytes.Contains(r.Data, []byte("Subject: via SMTP")):
			viaSMTP = &r
		case bytes.Contains(r.Data, []byte("Subject: via API")):
			viaAPI = &r
		}
	}
	if viaSMTP == nil || viaAPI == nil {
		t.Fatalf("sink lacks a message: %+v", sink.Received())
	}
	if !bytes.HasPrefix(viaSMTP.Data, []byte("Received: ")) || !bytes.HasSuffix(viaSMTP.Data, raw) {
		t.Errorf("SMTP submission not relayed byte-exact after its Received header:\n%q", viaSMTP.Data)
	}
	if viaSMTP.From != "app@example.test" || strings.Join(viaSMTP.To, ",") != "ann@example.test" {
		t.Errorf("SMTP envelope %s → %v", viaSMTP.From, viaSMTP.To)
	}
	if !bytes.Contains(viaAPI.Data, []byte("Hello over HTTP.")) || strings.Join(viaAPI.To, ",") != "bob@example.test" {
		t.Errorf("API message relayed as %q to %v", viaAPI.Data, viaAPI.To)
	}
	m := d.waitStatus(accepted.ID, queue.StatusDelivered)
	if m.Recipients[0].Code != 250 || !strings.Contains(m.Recipients[0].Text, "queued") {
		t.Errorf("status does not carry the sink's reply: %+v", m.Recipients[0])
	}
	var list struct {
		Messages []api.Message `json:"messages"`
	}
	d.api("GET", "/v1/messages?status=delivered", "", nil, &list)
	if len(list.Messages) != 2 {
		t.Errorf("%d delivered messages listed, want 2", len(list.Messages))
	}
	// The dashboard shares the port: without a session it sends to login.
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.Get("http://" + d.httpAddr + "/messages")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/login") {
		t.Errorf("dashboard without a session: %d %s, want a redirect to /login", resp.StatusCode, resp.Header.Get("Location"))
	}
	if code := d.api("GET", "/metrics", "", nil, nil); code != 200 {
		t.Errorf("/metrics with the token: HTTP %d", code)
	}
	if logs := d.logs.String(); strings.Contains(logs, smtpPass) || strings.Contains(logs, testToken) {
		t.Error("a secret appears in the daemon's logs")
	}
}

func TestOpenRelayRefused(t *testing.T) {
	d := startDaemon(t, t.TempDir())
	c, err := smtp.Dial(d.smtpAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Mail("spammer@example.test"); err == nil || !strings.Contains(err.Error(), "530") {
		t.Fatalf("unauthenticated MAIL: %v, want 530", err)
	}
	if err := c.Rcpt("victim@example.test"); err == nil {
		t.Fatal("unauthenticated RCPT accepted")
	}
	c2, err := smtp.Dial(d.smtpAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if err := c2.StartTLS(insecureTLS); err != nil {
		t.Fatal(err)
	}
	if err := c2.Auth(smtp.PlainAuth("", smtpUser, "wrong", "127.0.0.1")); err == nil || !strings.Contains(err.Error(), "535") {
		t.Fatalf("wrong password: %v, want 535", err)
	}
}

func TestBadInputLeavesDaemonServing(t *testing.T) {
	d := startDaemon(t, t.TempDir(), "--max-message-size", "512KiB")
	many := make([]string, 10000)
	for i := range many {
		many[i] = fmt.Sprintf(`"r%d@e.test"`, i)
	}
	cases := []struct {
		name, body string
		status     int
		field      string
	}{
		{"malformed JSON", `{"from": "a@example.test",`, 400, ""},
		{"wrong type", `{"from":"a@example.test","to":"b@example.test","subject":5,"text":"x"}`, 400, "subject"},
		{"header injection", `{"from":"a@example.test","to":["b@example.test"],"subject":"x\r\nBcc: v@example.test","text":"x"}`, 422, "subject"},
		{"invalid address", `{"from":"a@example.test","to":["not an address"],"text":"x"}`, 422, "to[0]"},
		{"unknown template", `{"from":"a@example.test","to":["b@example.test"],"template":{"name":"nope"}}`, 422, "template.name"},
		{"10,000 recipients", `{"from":"a@example.test","to":[` + strings.Join(many, ",") + `],"text":"x"}`, 422, "to"},
		{"oversize", `{"from":"a@example.test","to":["b@example.test"],"text":"` + strings.Repeat("x", 600<<10) + `"}`, 413, ""},
	}
	for _, tc := range cases {
		var e struct{ Error, Field string }
		code := d.api("POST", "/v1/messages", "application/json", strings.NewReader(tc.body), &e)
		if code != tc.status || e.Error == "" || e.Field != tc.field {
			t.Errorf("%s: HTTP %d %+v, want %d with field %q", tc.name, code, e, tc.status, tc.field)
		}
	}
	var counts struct {
		Messages []api.Message `json:"messages"`
	}
	if code := d.api("GET", "/v1/messages", "", nil, &counts); code != 200 || len(counts.Messages) != 0 {
		t.Errorf("after bad input: HTTP %d, %d messages stored", code, len(counts.Messages))
	}
	if code := d.api("GET", "/healthz", "", nil, nil); code != 200 {
		t.Errorf("daemon not serving after bad input: %d", code)
	}
}

package webhook_test

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/outbox-mail/outbox/webhook"
)

func signed(secret string, ts time.Time, body string) http.Header {
	h := http.Header{}
	h.Set("Outbox-Timestamp", strconv.FormatInt(ts.Unix(), 10))
	h.Set("Outbox-Signature", webhook.Sign(secret, ts.Unix(), []byte(body)))
	return h
}

func TestVerify(t *testing.T) {
	const body = `{"id":"e1","type":"delivered"}`
	now := time.Now()
	rotated := signed("k", now, body)
	rotated.Set("Outbox-Signature", webhook.Sign("old", now.Unix(), []byte(body))+", "+rotated.Get("Outbox-Signature"))
	retimed := signed("k", now.Add(-time.Hour), body)
	retimed.Set("Outbox-Timestamp", strconv.FormatInt(now.Unix(), 10))
	tests := []struct {
		name   string
		secret string
		header http.Header
		body   string
		want   error
	}{
		{"valid", "k", signed("k", now, body), body, nil},
		{"rotated secrets, one matches", "k", rotated, body, nil},
		{"wrong secret", "other", signed("k", now, body), body, webhook.ErrBadSignature},
		{"tampered body", "k", signed("k", now, body), strings.Replace(body, "delivered", "failed", 1), webhook.ErrBadSignature},
		{"timestamp changed", "k", retimed, body, webhook.ErrBadSignature},
		{"old timestamp", "k", signed("k", now.Add(-10*time.Minute), body), body, webhook.ErrStaleTimestamp},
		{"future timestamp", "k", signed("k", now.Add(10*time.Minute), body), body, webhook.ErrStaleTimestamp},
		{"no headers", "k", http.Header{}, body, webhook.ErrNoSignature},
		{"no v1", "k", http.Header{"Outbox-Timestamp": {"1"}, "Outbox-Signature": {"v0=00"}}, body, webhook.ErrNoSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := webhook.Verify(tt.secret, tt.header, []byte(tt.body), 5*time.Minute)
			if !errors.Is(err, tt.want) {
				t.Errorf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestSignFormat(t *testing.T) {
	// HMAC-SHA256("key", "1700000000.{}"), computed independently with
	// openssl dgst -sha256 -hmac key.
	const want = "v1=9d713ed406bb7076d4123f0dc2c39d2df5c654ed4b0cd56b52c8b4c940bd63ae"
	if got := webhook.Sign("key", 1700000000, []byte("{}")); got != want {
		t.Fatalf("Sign = %q, want %q", got, want)
	}
}

func TestBackoff(t *testing.T) {
	var p webhook.RetryPolicy // defaults: 10s doubling, at most 1h
	want := []time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second, 80 * time.Second}
	for i, w := range want {
		if got := p.Backoff(i + 1); got != w {
			t.Errorf("Backoff(%d) = %v, want %v", i+1, got, w)
		}
	}
	if got := p.Backoff(20); got != time.Hour {
		t.Errorf("Backoff(20) = %v, want the 1h cap", got)
	}
	if got := p.Backoff(1000); got != time.Hour {
		t.Errorf("Backoff(1000) = %v, want the 1h cap", got)
	}
}

func TestNewValidation(t *testing.T) {
	st := newStore(t)
	tests := []struct {
		name string
		eps  []webhook.Endpoint
		want string
	}{
		{"ftp scheme", []webhook.Endpoint{{URL: "ftp://h/x", Secret: "s"}}, `endpoint 0 (ftp://h/x): URL scheme "ftp" is not http or https`},
		{"no host", []webhook.Endpoint{{URL: "http:///x", Secret: "s"}}, "endpoint 0 (http:///x): URL has no host"},
		{"relative", []webhook.Endpoint{{URL: "/hook", Secret: "s"}}, "is not http or https"},
		{"empty URL", []webhook.Endpoint{{Secret: "s"}}, "endpoint 0 (): URL is empty"},
		{"empty secret", []webhook.Endpoint{{URL: "https://ok.test/a", Secret: "s"}, {URL: "https://h.test/b"}},
			"endpoint 1 (https://h.test/b): secret is empty"},
		{"unknown type", []webhook.Endpoint{{URL: "https://h.test/", Secret: "s", Events: []string{"opened"}}},
			`unknown event type "opened"`},
		{"duplicate", []webhook.Endpoint{{URL: "https://h.test/", Secret: "a"}, {URL: "https://h.test/", Secret: "b"}},
			"endpoint 1 (https://h.test/): URL is listed twice"},
		{"password hidden", []webhook.Endpoint{{URL: "https://u:hunter2@h.test/?token=t0k", Secret: ""}},
			"endpoint 0 (https://u:xxxxx@h.test/?redacted): secret is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := webhook.New(webhook.Config{Store: st, Endpoints: tt.eps})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New = %v, want an error containing %q", err, tt.want)
			}
		})
	}
	if _, err := webhook.New(webhook.Config{}); err == nil {
		t.Error("New without a store succeeded")
	}
	if _, err := webhook.New(webhook.Config{Store: st, Endpoints: []webhook.Endpoint{
		{URL: "http://127.0.0.1:9/h", Secret: "s", Events: []string{"failed"}}}}); err != nil {
		t.Errorf("New with a valid endpoint: %v", err)
	}
}

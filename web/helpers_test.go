package web

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"
	"github.com/outbox-mail/outbox"
	"github.com/outbox-mail/outbox/api"
	"github.com/outbox-mail/outbox/delivery"
	"github.com/outbox-mail/outbox/internal/smtpsink"
	"github.com/outbox-mail/outbox/queue"
	"github.com/outbox-mail/outbox/queue/sqlite"
	"github.com/outbox-mail/outbox/smtp"
)

const testToken = "test-token-0123456789abcdef"

// stack is the real daemon stack on a loopback httptest server: a SQLite
// store, a client delivering to an SMTP sink, the API and the dashboard,
// mounted as serve.go mounts them.
type stack struct {
	srv    *httptest.Server
	store  *sqlite.Store
	client *outbox.Client
	sink   *smtpsink.Sink
	// fixed makes the sink accept slow@ (451 until then).
	fixed atomic.Bool
	// pwned counts requests to /pwned*: only a script or an injected
	// element from a malicious message would make them.
	pwned atomic.Int64
	// edit adjusts the dashboard's Config before it starts.
	edit func(*Config)
}

// sinkRcpt scripts the sink: slow@ is deferred until fixed, bad@ fails.
func (s *stack) sinkRcpt(to string) error {
	switch {
	case strings.HasPrefix(to, "slow@") && !s.fixed.Load():
		return &gosmtp.SMTPError{Code: 451, EnhancedCode: gosmtp.EnhancedCode{4, 3, 0}, Message: "try again later"}
	case strings.HasPrefix(to, "bad@"):
		return &gosmtp.SMTPError{Code: 550, EnhancedCode: gosmtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
	}
	return nil
}

// newStack starts the stack; capture delivers to the capture transport
// instead of the sink.
func newStack(t testing.TB, tokens []string, capture bool) *stack {
	t.Helper()
	return newStackWith(t, tokens, capture, nil)
}

// newStackWith is newStack with the dashboard's Config adjusted by edit.
func newStackWith(t testing.TB, tokens []string, capture bool, edit func(*Config)) *stack {
	t.Helper()
	s := &stack{edit: edit}
	sink, err := smtpsink.Start(smtpsink.Options{Rcpt: s.sinkRcpt})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sink.Stop() })
	s.sink = sink
	s.store, err = sqlite.Open(filepath.Join(t.TempDir(), "outbox.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.store.Close() })
	var tr delivery.Transport = delivery.Capture{}
	if !capture {
		relay, err := smtp.ParseRelayURL("smtp://" + sink.Addr() + "?starttls=off")
		if err != nil {
			t.Fatal(err)
		}
		r := delivery.NewSMTPRelay(relay, nil, smtp.PoolOptions{})
		t.Cleanup(func() { r.Close() })
		tr = r
	}
	// An hour's retry delay keeps a deferred message deferred until the
	// test presses "retry now".
	s.client, err = outbox.New(outbox.Config{Store: s.store, Transport: tr,
		Retry: delivery.RetryPolicy{Initial: time.Hour, Max: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.client.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.client.Shutdown(ctx)
	})
	s.srv = httptest.NewServer(s.mux(t, tokens))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *stack) mux(t testing.TB, tokens []string) http.Handler {
	apiH, err := api.New(api.Config{Client: s.client, Tokens: tokens})
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Client: s.client, Tokens: tokens, Refresh: 300 * time.Millisecond,
		// Screenshots and live checks must show the state, not a cached one.
		InsightsTTL: -1}
	if s.edit != nil {
		s.edit(&cfg)
	}
	webH, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/v1/", apiH)
	mux.Handle("/healthz", apiH)
	mux.Handle("/readyz", apiH)
	mux.Handle("/", webH)
	mux.HandleFunc("/pwned", func(w http.ResponseWriter, r *http.Request) { s.pwned.Add(1) })
	mux.HandleFunc("/pwned-img", func(w http.ResponseWriter, r *http.Request) { s.pwned.Add(1) })
	return mux
}

// send submits a message through the API and returns its id.
func (s *stack) send(t testing.TB, body string) string {
	t.Helper()
	req, _ := http.NewRequest("POST", s.srv.URL+"/v1/messages", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+testToken)
	req.Header.Set("Content-Type", "application/json")
	return s.submit(t, req)
}

// sendRaw submits a ready RFC 5322 message through the API.
func (s *stack) sendRaw(t testing.TB, raw string) string {
	t.Helper()
	req, _ := http.NewRequest("POST", s.srv.URL+"/v1/messages/raw", strings.NewReader(raw))
	req.Header.Set("Authorization", "Bearer "+testToken)
	req.Header.Set("Content-Type", "message/rfc822")
	return s.submit(t, req)
}

func (s *stack) submit(t testing.TB, req *http.Request) string {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("submit: %d %s", resp.StatusCode, b)
	}
	var out struct{ ID string }
	if err := json.Unmarshal(b, &out); err != nil || out.ID == "" {
		t.Fatalf("submit: %s: %v", b, err)
	}
	return out.ID
}

// waitStatus polls the store until the message has status want.
func (s *stack) waitStatus(t testing.TB, id string, want queue.Status) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		m, err := s.store.Get(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if m.Status == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("message %s is %s, want %s: %+v", id, m.Status, want, m.Recipients)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// maliciousRaw is a message built to attack the dashboard: a script in its
// HTML, markup in its subject, and a path in its attachment's name.
const maliciousRaw = "From: Mallory <mallory@example.com>\r\n" +
	"To: ok@example.org\r\n" +
	"Subject: <img src=/pwned-img onerror=\"alert(1)\">\r\n" +
	"MIME-Version: 1.0\r\n" +
	"Content-Type: multipart/mixed; boundary=BOUND\r\n" +
	"\r\n" +
	"--BOUND\r\n" +
	"Content-Type: multipart/alternative; boundary=ALT\r\n" +
	"\r\n" +
	"--ALT\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\n" +
	"\r\n" +
	"Plain <script>alert(2)</script> text.\r\n" +
	"--ALT\r\n" +
	"Content-Type: text/html; charset=utf-8\r\n" +
	"\r\n" +
	"<html><body><h1 style=\"color:#b00\">Hello from the HTML part</h1>" +
	"<script>alert(3);window.top.__pwned=1;fetch('/pwned')</script>" +
	"<img src=\"/pwned-img\"><img src=\"http://127.0.0.1:9/remote.png\"></body></html>\r\n" +
	"--ALT--\r\n" +
	"--BOUND\r\n" +
	"Content-Type: text/html; name=\"evil.html\"\r\n" +
	"Content-Disposition: attachment; filename=\"../../etc/pass\x01wd.html\"\r\n" +
	"\r\n" +
	"<script>alert(4)</script>\r\n" +
	"--BOUND--\r\n"

package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outbox-mail/outbox"
	"github.com/outbox-mail/outbox/queue"
	"github.com/outbox-mail/outbox/queue/sqlite"
	"github.com/outbox-mail/outbox/templates"
)

// env is one API server over a real SQLite store and outbox client.
type env struct {
	t      *testing.T
	srv    *httptest.Server
	h      *Handler
	client *outbox.Client
	store  queue.Store
	token  string
}

// setup starts an API server. With deliver set, the client's workers run
// (with the default capture transport) and deliver what is queued.
func setup(t *testing.T, cfg Config, deliver bool) *env {
	t.Helper()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "outbox.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ob, err := outbox.New(outbox.Config{Store: st, PollInterval: 50 * time.Millisecond,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if deliver {
		if err := ob.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			ob.Shutdown(ctx)
		})
	}
	cfg.Client = ob
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Templates == nil {
		cfg.Templates = templates.Builtin()
	}
	h, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	e := &env{t: t, srv: srv, h: h, client: ob, store: st}
	if len(cfg.Tokens) > 0 {
		e.token = cfg.Tokens[0]
	}
	return e
}

// response is a decoded API answer.
type response struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r *response) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decoding %s: %v", r.Body, err)
	}
}

// apiErr decodes an error answer.
func (r *response) apiErr(t *testing.T) apiError {
	t.Helper()
	var e apiError
	r.decode(t, &e)
	if e.Msg == "" {
		t.Fatalf("error answer without an error sentence: %s", r.Body)
	}
	return e
}

// do sends a request with the env's token and returns the answer.
func (e *env) do(method, path string, body io.Reader, header ...string) *response {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, e.srv.URL+path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	if e.token != "" {
		req.Header.Set("Authorization", "Bearer "+e.token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return &response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

func (e *env) postJSON(v any, header ...string) *response {
	e.t.Helper()
	var body []byte
	switch v := v.(type) {
	case string:
		body = []byte(v)
	default:
		var err error
		if body, err = json.Marshal(v); err != nil {
			e.t.Fatal(err)
		}
	}
	return e.do("POST", "/v1/messages", bytes.NewReader(body), append([]string{"Content-Type", "application/json"}, header...)...)
}

// send posts a message and requires a 202, returning the id.
func (e *env) send(v any, header ...string) string {
	e.t.Helper()
	r := e.postJSON(v, header...)
	if r.Status != http.StatusAccepted {
		e.t.Fatalf("POST /v1/messages: %d %s", r.Status, r.Body)
	}
	var a accepted
	r.decode(e.t, &a)
	if a.ID == "" || a.Status != "queued" {
		e.t.Fatalf("unexpected 202 body %s", r.Body)
	}
	return a.ID
}

// total counts the messages in the store.
func (e *env) total() int64 {
	e.t.Helper()
	counts, err := e.store.Counts(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	var n int64
	for _, c := range counts {
		n += c
	}
	return n
}

// getView reads a message through the API.
func (e *env) getView(id string) Message {
	e.t.Helper()
	r := e.do("GET", "/v1/messages/"+id, nil)
	if r.Status != http.StatusOK {
		e.t.Fatalf("GET %s: %d %s", id, r.Status, r.Body)
	}
	var v Message
	r.decode(e.t, &v)
	return v
}

// waitStatus polls until message id has status want, or fails.
func (e *env) waitStatus(id string, want queue.Status) Message {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		v := e.getView(id)
		if v.Status == want {
			return v
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("message %s still %s, want %s", id, v.Status, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func simple(to ...string) map[string]any {
	if len(to) == 0 {
		to = []string{"bob@example.com"}
	}
	return map[string]any{"from": "Alice <alice@example.com>", "to": to,
		"subject": "Hello", "text": "Hi Bob."}
}

func lines(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }

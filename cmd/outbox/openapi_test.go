package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outbox-mail/outbox/api"
	"github.com/outbox-mail/outbox/internal/openapitest"
	"github.com/outbox-mail/outbox/unsubscribe"
)

const openapiToken = "openapi-token-0123456789"

// TestOpenAPIDescribesTheDaemon is the daemon's half of the OpenAPI check
// (the API handler's is api.TestOpenAPIMatchesHandlers): every pattern
// the daemon mounts beside the API handler, or serves in front of its
// mux (the one-click unsubscribe links), is described, each described
// operation reaches the handler that serves it, and every status of the
// operations the daemon serves itself (x-outbox-served-by: daemon, such
// as /metrics and /u/{token}) is produced by its real handler chain.
func TestOpenAPIDescribesTheDaemon(t *testing.T) {
	dir := t.TempDir()
	cfg, err := parseServeConfig([]string{"--http", "127.0.0.1:0", "--smtp", "off",
		"--db", "sqlite:" + filepath.Join(dir, "outbox.db"), "--api-token", openapiToken,
		"--public-url", "https://mail.shop.test"})
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.prepare(); err != nil {
		t.Fatal(err)
	}
	d, err := newService(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.store.Close(); d.hard.release() })
	spec, err := openapitest.Parse(api.OpenAPI())
	if err != nil {
		t.Fatal(err)
	}
	checkDaemonRoutes(t, d, spec)

	srv := httptest.NewServer(d.httpServer.Handler)
	t.Cleanup(srv.Close)
	cov := spec.NewCoverage()
	record := func(method, path string, resp *http.Response, body []byte) {
		t.Helper()
		op := spec.Find(method, path)
		if op == nil {
			t.Errorf("a call of %s %s, which api/openapi.json does not describe", method, path)
			return
		}
		cov.Record(op, resp.StatusCode, spec.CheckResponse(op, resp.StatusCode, resp.Header, body))
	}
	closeStore := unsubscribeCalls(t, d, srv, record)
	metricsCalls(t, d, srv, record)
	closeStore()
	for _, msg := range cov.Errors() {
		t.Error(msg)
	}
	for _, m := range cov.Missing(func(op *openapitest.Operation) bool { return op.ServedBy == "daemon" }) {
		t.Errorf("api/openapi.json lists %s, served by the daemon, but TestOpenAPIDescribesTheDaemon does not produce it: add a call", m)
	}
}

// checkDaemonRoutes checks the daemon's routes against the description:
// the patterns of its mux other than the API handler's and the
// dashboard's, and what it answers in front of the mux.
func checkDaemonRoutes(t *testing.T, d *service, spec *openapitest.Spec) {
	// What the daemon answers before its mux is seen: a request that
	// the front of the handler chain does not pass on to next.
	var reached bool
	front := d.withUnsubscribe(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { reached = true }))
	inFront := func(req *http.Request) bool {
		reached = false
		front.ServeHTTP(httptest.NewRecorder(), req)
		return !reached
	}
	var apiHandler http.Handler
	var own []string
	for _, r := range d.mux.routes {
		if h, ok := r.handler.(*api.Handler); ok {
			apiHandler = h
			continue
		}
		own = append(own, r.pattern)
	}
	if apiHandler == nil {
		t.Fatal("the daemon mounts no API handler")
	}
	if !inFront(httptest.NewRequest("GET", "/u/probe", nil)) {
		t.Fatal("with --public-url, the daemon does not answer /u/ itself")
	}
	own = append(own, "/u/")
	// "/" is the dashboard, which is pages, not API.
	for _, r := range spec.Undescribed(own, "/") {
		t.Errorf("the daemon serves %s beside the API handler, but api/openapi.json does not describe it: add the operation with \"x-outbox-served-by\": \"daemon\"", r)
	}
	for _, op := range spec.Operations() {
		req := httptest.NewRequest(op.Method, strings.NewReplacer("{id}", "x", "{n}", "0", "{token}", "t", "{address}", "a@b").Replace(op.Path), nil)
		h, pattern := d.mux.Handler(req)
		if inFront(req) {
			h, pattern = nil, "in front of the mux"
		}
		switch {
		case op.ServedBy == "" && h != apiHandler:
			t.Errorf("%s is the API handler's, but the daemon routes it to %q", op.Key(), pattern)
		case op.ServedBy == "daemon" && (h == apiHandler || pattern == "/"):
			t.Errorf("%s is marked x-outbox-served-by daemon, but the daemon has no route of its own for it (%q)", op.Key(), pattern)
		case op.ServedBy != "" && op.ServedBy != "daemon":
			t.Errorf("%s: x-outbox-served-by %q; want daemon or nothing", op.Key(), op.ServedBy)
		}
	}
}

// daemonCall makes one request of the daemon's real handler chain.
func daemonCall(t *testing.T, srv *httptest.Server, method, path, token, contentType string, body io.Reader) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

type recordFunc func(method, path string, resp *http.Response, body []byte)

// metricsCalls produces the statuses of GET /metrics.
func metricsCalls(t *testing.T, d *service, srv *httptest.Server, record recordFunc) {
	for _, c := range []struct {
		token string
		want  int
		block bool
	}{{openapiToken, 200, false}, {"", 401, false}, {openapiToken, 429, true}} {
		if c.block {
			// The daemon's own throttle, told of enough wrong tokens from
			// the test's address to refuse it.
			for range 25 {
				d.hard.throttle.Failed(netip.MustParseAddr("127.0.0.1"), "api", "")
			}
		}
		resp, body := daemonCall(t, srv, "GET", "/metrics", c.token, "", nil)
		if resp.StatusCode != c.want {
			t.Errorf("GET /metrics: %d %.200s, want %d", resp.StatusCode, body, c.want)
			continue
		}
		if c.want == 200 && !strings.Contains(string(body), "outbox_") {
			t.Errorf("GET /metrics has no outbox metric: %.300s", body)
		}
		record("GET", "/metrics", resp, body)
	}
}

// unsubscribeCalls produces the statuses of GET and POST /u/{token}
// with tokens the daemon made, checking what each changed. The 503 needs
// the store closed: it returns the function that does so and makes that
// call.
func unsubscribeCalls(t *testing.T, d *service, srv *httptest.Server, record recordFunc) (closeStore func()) {
	tokens := d.deliver.engine.Unsubscribe.Tokens
	token := func(addr string) string {
		tok, err := tokens.Token(unsubscribe.Subscription{Domain: "shop.test", Address: addr, Issued: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	suppressed := func(addr string) bool {
		_, err := d.store.LookupSuppression(context.Background(), addr, "shop.test")
		return err == nil
	}
	ann, bob := token("ann@dest.test"), token("bob@dest.test")
	forged := ann[:len(ann)-4] + "AAAA"
	form := "application/x-www-form-urlencoded"
	var multi bytes.Buffer
	mw := multipart.NewWriter(&multi)
	mw.WriteField("List-Unsubscribe", "One-Click")
	mw.Close()
	const op = "/u/{token}"
	for _, c := range []struct {
		method, tok, ct, body string
		want                  int
		page                  string // what the answer's page must say
		after                 []bool // ann, bob suppressed after
	}{
		{"GET", ann, "", "", 200, "ann@dest.test", []bool{false, false}},
		{"GET", forged, "", "", 404, "not valid", []bool{false, false}},
		{"POST", ann, form, "List-Unsubscribe=Yes", 400, "RFC 8058", []bool{false, false}},
		{"POST", forged, form, unsubscribe.PostValue, 404, "not valid", []bool{false, false}},
		{"POST", ann, form, unsubscribe.PostValue, 200, "will get no more mail", []bool{true, false}},
		{"POST", bob, mw.FormDataContentType(), multi.String(), 200, "bob@dest.test", []bool{true, true}},
	} {
		resp, body := daemonCall(t, srv, c.method, "/u/"+c.tok, "", c.ct, strings.NewReader(c.body))
		if resp.StatusCode != c.want || !strings.Contains(string(body), c.page) {
			t.Errorf("%s /u/…: %d %.300s, want %d with %q", c.method, resp.StatusCode, body, c.want, c.page)
			continue
		}
		if a, b := suppressed("ann@dest.test"), suppressed("bob@dest.test"); a != c.after[0] || b != c.after[1] {
			t.Errorf("%s /u/… %d: ann, bob suppressed %v, %v; want %v", c.method, c.want, a, b, c.after)
		}
		record(c.method, op, resp, body)
	}
	return func() {
		d.store.Close()
		resp, body := daemonCall(t, srv, "POST", "/u/"+token("cy@dest.test"), "", form, strings.NewReader(unsubscribe.PostValue))
		if resp.StatusCode != 503 {
			t.Errorf("POST /u/… with the store closed: %d %.300s, want 503", resp.StatusCode, body)
			return
		}
		record("POST", op, resp, body)
	}
}

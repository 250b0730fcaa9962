package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	"github.com/outbox-mail/outbox/api"
	"github.com/outbox-mail/outbox/internal/openapitest"
)

const openapiToken = "openapi-token-0123456789"

// TestOpenAPIDescribesTheDaemon is the daemon's half of the OpenAPI check
// (the API handler's is api.TestOpenAPIMatchesHandlers): every pattern
// the daemon mounts beside the API handler is described, each described
// operation reaches the handler that serves it, and every status of the
// operations the daemon serves itself (x-outbox-served-by: daemon, such
// as /metrics) is produced by its real handler chain.
func TestOpenAPIDescribesTheDaemon(t *testing.T) {
	dir := t.TempDir()
	cfg, err := parseServeConfig([]string{"--http", "127.0.0.1:0", "--smtp", "off",
		"--db", "sqlite:" + filepath.Join(dir, "outbox.db"), "--api-token", openapiToken})
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

	// The patterns mounted beside the API handler must be described;
	// "/" is the dashboard, which is pages, not API.
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
	for _, r := range spec.Undescribed(own, "/") {
		t.Errorf("the daemon serves %s beside the API handler, but api/openapi.json does not describe it: add the operation with \"x-outbox-served-by\": \"daemon\"", r)
	}
	for _, op := range spec.Operations() {
		req := httptest.NewRequest(op.Method, strings.NewReplacer("{id}", "x", "{n}", "0", "{token}", "t", "{address}", "a@b").Replace(op.Path), nil)
		h, pattern := d.mux.Handler(req)
		switch {
		case op.ServedBy == "" && h != apiHandler:
			t.Errorf("%s is the API handler's, but the daemon routes it to %q", op.Key(), pattern)
		case op.ServedBy == "daemon" && (h == apiHandler || pattern == "/"):
			t.Errorf("%s is marked x-outbox-served-by daemon, but the daemon has no route of its own for it (%q)", op.Key(), pattern)
		case op.ServedBy != "" && op.ServedBy != "daemon":
			t.Errorf("%s: x-outbox-served-by %q; want daemon or nothing", op.Key(), op.ServedBy)
		}
	}

	srv := httptest.NewServer(d.httpServer.Handler)
	t.Cleanup(srv.Close)
	cov := spec.NewCoverage()
	get := func(path, token string) (*http.Response, []byte) {
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, body
	}
	metricsOp := spec.Find("GET", "/metrics")
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
		resp, body := get("/metrics", c.token)
		if resp.StatusCode != c.want {
			t.Errorf("GET /metrics: %d %.200s, want %d", resp.StatusCode, body, c.want)
			continue
		}
		if c.want == 200 && !strings.Contains(string(body), "outbox_") {
			t.Errorf("GET /metrics has no outbox metric: %.300s", body)
		}
		cov.Record(metricsOp, resp.StatusCode, spec.CheckResponse(metricsOp, resp.StatusCode, resp.Header, body))
	}
	for _, msg := range cov.Errors() {
		t.Error(msg)
	}
	for _, m := range cov.Missing(func(op *openapitest.Operation) bool { return op.ServedBy == "daemon" }) {
		t.Errorf("api/openapi.json lists %s, served by the daemon, but TestOpenAPIDescribesTheDaemon does not produce it: add a call", m)
	}
}

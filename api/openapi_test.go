package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/outbox-mail/outbox/internal/openapitest"
	"github.com/outbox-mail/outbox/internal/testenv"
	"github.com/outbox-mail/outbox/internal/throttle"
	"github.com/outbox-mail/outbox/queue"
)

const contractToken = "contract-token-0123456789"

// apiCall is one request of the contract test and the status it must get.
type apiCall struct {
	op     string // the operation, "GET /v1/messages/{id}"
	want   int
	path   string // the concrete path and query
	body   string
	header []string // name, value, …
}

func (c apiCall) method() string { m, _, _ := strings.Cut(c.op, " "); return m }

// send makes the call on e (with e's token unless token says otherwise)
// and returns the answer.
func (e *env) call(c apiCall, token string) (*http.Response, []byte) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, c.method(), e.srv.URL+c.path, strings.NewReader(c.body))
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(c.header); i += 2 {
		req.Header.Set(c.header[i], c.header[i+1])
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", c.method(), c.path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp, body
}

func mustJSON(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// contractCalls are the operation-specific calls, in an order that keeps
// each message in the state the next call needs. Statuses every secured
// operation has (401, 403, 429, 503) are exercised for each by
// TestOpenAPIMatchesHandlers itself, from the first successful call.
func contractCalls(t *testing.T, e *env) []apiCall {
	delivered := e.send(resetMail([]byte("%PDF terms"), []byte("\x89PNG logo")))
	e.waitStatus(delivered, queue.StatusDelivered)
	later := map[string]any{"from": "a@example.com", "to": []string{"b@example.com"}, "subject": "later",
		"text": "x", "send_at": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)}
	queued, toCancel := e.send(later), e.send(later)
	json := []string{"Content-Type", "application/json"}
	raw := "From: a@example.com\r\nTo: b@example.com\r\nSubject: raw\r\n\r\nbody\r\n"
	big := strings.Repeat("x", int(e.h.cfg.MaxMessageSize)+1)
	m := "/v1/messages/"
	return append([]apiCall{
		{op: "GET /healthz", want: 200, path: "/healthz"},
		{op: "GET /readyz", want: 200, path: "/readyz"},
		{op: "GET /v1/openapi.json", want: 200, path: "/v1/openapi.json"},
		{op: "GET /v1/messages", want: 200, path: "/v1/messages?to=ann%40example.org&subject=R%C3%A9init&wait=5s&limit=10"},
		{op: "GET /v1/messages", want: 400, path: "/v1/messages?limit=0"},
		{op: "POST /v1/messages", want: 202, path: "/v1/messages", body: mustJSON(t, resetMail([]byte("a"), []byte("b"))),
			header: append(json, "Idempotency-Key", "contract-1")},
		{op: "POST /v1/messages", want: 400, path: "/v1/messages", body: `{"from":`, header: json},
		{op: "POST /v1/messages", want: 413, path: "/v1/messages", body: `{"text":"` + big + `"}`, header: json},
		{op: "POST /v1/messages", want: 415, path: "/v1/messages", body: `{}`, header: []string{"Content-Type", "text/plain"}},
		{op: "POST /v1/messages", want: 422, path: "/v1/messages", body: `{"from":"a@example.com","to":["not an address"],"text":"x"}`, header: json},
		{op: "POST /v1/messages/raw", want: 202, path: "/v1/messages/raw?send_at=" + url.QueryEscape(time.Now().Add(time.Hour).UTC().Format(time.RFC3339)), body: raw},
		{op: "POST /v1/messages/raw", want: 400, path: "/v1/messages/raw", body: ""},
		{op: "POST /v1/messages/raw", want: 413, path: "/v1/messages/raw", body: raw + big},
		{op: "POST /v1/messages/raw", want: 422, path: "/v1/messages/raw?to=b%40example.com", body: "Subject: no sender\r\n\r\nbody\r\n"},
		{op: "DELETE /v1/messages", want: 200, path: "/v1/messages?status=failed&before=" + url.QueryEscape(time.Now().UTC().Format(time.RFC3339))},
		{op: "DELETE /v1/messages", want: 400, path: "/v1/messages?status=queued"},
		{op: "POST /v1/messages/retry", want: 200, path: "/v1/messages/retry?status=deferred&route=relay&to=nobody"},
		{op: "POST /v1/messages/retry", want: 400, path: "/v1/messages/retry?status=delivered"},
		{op: "POST /v1/messages/cancel", want: 200, path: "/v1/messages/cancel?to=nobody%40example.org"},
		{op: "POST /v1/messages/cancel", want: 400, path: "/v1/messages/cancel"},
		{op: "GET /v1/messages/{id}", want: 200, path: m + delivered},
		{op: "GET /v1/messages/{id}", want: 404, path: m + "nope"},
		{op: "DELETE /v1/messages/{id}", want: 409, path: m + queued},
		{op: "DELETE /v1/messages/{id}", want: 404, path: m + "nope"},
		{op: "POST /v1/messages/{id}/retry", want: 200, path: m + queued + "/retry"},
		{op: "POST /v1/messages/{id}/retry", want: 400, path: m + queued + "/retry?include_failed=perhaps"},
		{op: "POST /v1/messages/{id}/retry", want: 404, path: m + "nope/retry"},
		{op: "POST /v1/messages/{id}/retry", want: 409, path: m + delivered + "/retry"},
		{op: "POST /v1/messages/{id}/cancel", want: 200, path: m + toCancel + "/cancel"},
		{op: "POST /v1/messages/{id}/cancel", want: 404, path: m + "nope/cancel"},
		{op: "POST /v1/messages/{id}/cancel", want: 409, path: m + delivered + "/cancel"},
		{op: "DELETE /v1/messages/{id}", want: 204, path: m + toCancel},
		{op: "GET /v1/messages/{id}/raw", want: 200, path: m + delivered + "/raw"},
		{op: "GET /v1/messages/{id}/raw", want: 404, path: m + "nope/raw"},
		{op: "GET /v1/messages/{id}/content", want: 200, path: m + delivered + "/content"},
		{op: "GET /v1/messages/{id}/content", want: 404, path: m + "nope/content"},
		{op: "GET /v1/messages/{id}/attachments/{n}", want: 200, path: m + delivered + "/attachments/0"},
		{op: "GET /v1/messages/{id}/attachments/{n}", want: 400, path: m + delivered + "/attachments/first"},
		{op: "GET /v1/messages/{id}/attachments/{n}", want: 404, path: m + delivered + "/attachments/99"},
	}, deliverabilityCalls(t, e, delivered)...)
}

// deliverabilityCalls are the calls of the suppression list and of the
// send request's deliverability fields. delivered, a delivered message,
// is given a recipient history first, so that GET /v1/messages/{id}
// answers one.
func deliverabilityCalls(t *testing.T, e *env, delivered string) []apiCall {
	ctx := context.Background()
	err := e.store.AddRecipientEvents(ctx, []queue.RecipientEvent{{MessageID: delivered, Address: "ann@example.org",
		Type: queue.HistoryDelayed, Code: 451, EnhancedCode: "4.4.7", Text: "still trying further on"}})
	if err != nil {
		t.Fatal(err)
	}
	// Entries of every kind the list shows: caused by a message, scoped,
	// expired.
	err = e.store.Suppress(ctx, []queue.Suppression{
		{Address: "gone@dest.test", Cause: queue.CauseBounced, MessageID: delivered, Reason: "550 5.1.1 no such user"},
		{Address: "old@dest.test", Scope: "shop.test", Cause: queue.CauseManual, ExpiresAt: time.Now().Add(-time.Hour)}})
	if err != nil {
		t.Fatal(err)
	}
	first, err := e.store.Suppressions(ctx, queue.SuppressionFilter{Limit: 1})
	if err != nil || first.Next == "" {
		t.Fatalf("a first page of one: %+v, %v", first, err)
	}
	json := []string{"Content-Type", "application/json"}
	exp := time.Now().Add(24 * time.Hour).UTC().Format(time.RFC3339)
	s := "/v1/suppressions"
	dsn := withFields(simple("gone@dest.test"), "dsn", map[string]any{"notify": []string{"failure", "delay"}, "ret": "hdrs",
		"envid": "order-42"}, "unsubscribe", false, "ignore_suppressions", true)
	never := withFields(simple(), "dsn", map[string]any{"notify": "never", "ret": "full"}, "unsubscribe", nil)
	return []apiCall{
		{op: "POST /v1/messages", want: 202, path: "/v1/messages", body: mustJSON(t, dsn), header: json},
		{op: "POST /v1/messages", want: 202, path: "/v1/messages", body: mustJSON(t, never), header: json},
		{op: "POST /v1/suppressions", want: 201, path: s, header: json,
			body: `{"address":"Ann@Dest.test","scope":"Shop.test","reason":"asked by phone","expires_at":"` + exp + `"}`},
		{op: "POST /v1/suppressions", want: 201, path: s, body: `{"address":"bob@dest.test"}`, header: json},
		{op: "POST /v1/suppressions", want: 400, path: s, body: `{"address":`, header: json},
		{op: "POST /v1/suppressions", want: 413, path: s, body: `{"address":"a@dest.test","reason":"` + strings.Repeat("x", 17<<10) + `"}`, header: json},
		{op: "POST /v1/suppressions", want: 415, path: s, body: `{"address":"a@dest.test"}`, header: []string{"Content-Type", "text/plain"}},
		{op: "POST /v1/suppressions", want: 422, path: s, body: `{"address":"Ann <ann@dest.test>"}`, header: json},
		{op: "GET /v1/suppressions", want: 200, path: s + "?address=DEST.test&limit=10"},
		{op: "GET /v1/suppressions", want: 200, path: s + "?limit=1&cursor=" + url.QueryEscape(first.Next)},
		{op: "GET /v1/suppressions", want: 400, path: s + "?limit=0"},
		{op: "GET /v1/suppressions", want: 400, path: s + "?cursor=not-ours"},
		{op: "DELETE /v1/suppressions/{address}", want: 204, path: s + "/ann@dest.test?scope=shop.test"},
		{op: "DELETE /v1/suppressions/{address}", want: 404, path: s + "/ann@dest.test?scope=shop.test"},
		{op: "DELETE /v1/suppressions/{address}", want: 204, path: s + "/BOB@dest.test"},
	}
}

// TestOpenAPIMatchesHandlers is the OpenAPI check of CI: every route the
// API handler serves is described, every operation described is served,
// and every status code listed is produced by a real request to a real
// server over a real store, its answer valid against the description.
// A route added without its description, or a status described that no
// call here produces, fails by name.
func TestOpenAPIMatchesHandlers(t *testing.T) {
	spec, err := openapitest.Parse(OpenAPI())
	if err != nil {
		t.Fatal(err)
	}
	e := setup(t, Config{Tokens: []string{contractToken}, MaxMessageSize: 256 << 10}, true)
	checkRoutes(t, spec, e.h.Routes())

	cov := spec.NewCoverage()
	first := map[string]apiCall{} // each operation's first successful call
	run := func(e *env, c apiCall, token string) {
		t.Helper()
		op := spec.Find(openapitest.PatternOperation(c.op))
		if op == nil {
			t.Errorf("case for %s, which api/openapi.json does not describe", c.op)
			return
		}
		checkQuery(t, spec, op, c.path)
		if ct := headerOf(c.header, "Content-Type"); c.want/100 == 2 && ct == "application/json" {
			if err := spec.CheckRequest(op, []byte(c.body)); err != nil {
				t.Errorf("the request sent is not valid against the description: %v", err)
			}
		}
		resp, body := e.call(c, token)
		if resp.StatusCode != c.want {
			t.Errorf("%s %s: %d %.300s, want %d", c.method(), c.path, resp.StatusCode, body, c.want)
			return
		}
		cov.Record(op, resp.StatusCode, spec.CheckResponse(op, resp.StatusCode, resp.Header, body))
	}
	for _, c := range contractCalls(t, e) {
		run(e, c, contractToken)
		if _, ok := first[c.op]; !ok && c.want/100 == 2 {
			first[c.op] = c
		}
	}
	exerciseCommon(t, spec, first, run)

	for _, msg := range cov.Errors() {
		t.Error(msg)
	}
	for _, m := range cov.Missing(func(op *openapitest.Operation) bool { return op.ServedBy == "" }) {
		t.Errorf("api/openapi.json lists %s, but no call of TestOpenAPIMatchesHandlers produced it: add one to contractCalls (or drop the status)", m)
	}
}

// exerciseCommon makes, from each operation's first successful call,
// the calls that give the statuses every operation may have: 401 without
// a token, 403 from another site's page, 429 from an address refused by
// the throttle, 503 with the store closed.
func exerciseCommon(t *testing.T, spec *openapitest.Spec, first map[string]apiCall, run func(*env, apiCall, string)) {
	e := setup(t, Config{Tokens: []string{contractToken}, MaxMessageSize: 256 << 10}, false)
	throttled := setup(t, Config{Tokens: []string{contractToken}, Throttle: throttle.New(throttle.Config{
		FreeFailures: 1, BlockAfter: 1, BlockFor: time.Hour})}, false)
	closed := setup(t, Config{Tokens: []string{contractToken}}, false)
	closed.store.Close()
	for i := 0; ; i++ {
		resp, _ := throttled.call(apiCall{op: "GET /v1/messages", path: "/v1/messages"}, "a-wrong-token-0123456789")
		if resp.StatusCode == http.StatusTooManyRequests {
			break
		}
		if i == 5 {
			t.Fatalf("wrong tokens are not refused by the throttle: %d", resp.StatusCode)
		}
	}
	for _, op := range spec.Operations() {
		c, ok := first[op.Key()]
		if op.ServedBy != "" || !ok {
			continue
		}
		for _, st := range op.Statuses {
			c := c
			c.want = st
			switch st {
			case 401:
				run(e, c, "")
			case 403:
				c.header = append(append([]string(nil), c.header...), "Sec-Fetch-Site", "cross-site")
				run(e, c, contractToken)
			case 429:
				run(throttled, c, contractToken)
			case 503:
				run(closed, c, contractToken)
			}
		}
	}
}

// checkRoutes compares the handler's routes with the description.
func checkRoutes(t *testing.T, spec *openapitest.Spec, routes []string) {
	for _, r := range spec.Undescribed(routes, "/") {
		t.Errorf("the API handler serves %s, but api/openapi.json does not describe it: add the operation", r)
	}
	served := map[string]bool{}
	for _, r := range routes {
		method, path := openapitest.PatternOperation(r)
		served[method+" "+path] = true
	}
	for _, op := range spec.Operations() {
		if op.ServedBy == "" && !served[op.Key()] {
			t.Errorf("api/openapi.json describes %s, but the API handler does not serve it (mark it x-outbox-served-by if the daemon does)", op.Key())
		}
	}
}

// checkQuery fails a call that uses a query parameter op does not list.
func checkQuery(t *testing.T, spec *openapitest.Spec, op *openapitest.Operation, path string) {
	t.Helper()
	u, err := url.Parse(path)
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for _, p := range spec.Params(op, "query") {
		documented[p] = true
	}
	for k := range u.Query() {
		if !documented[k] {
			t.Errorf("%s: the call uses the query parameter %q, which api/openapi.json does not list", op.Key(), k)
		}
	}
}

func headerOf(h []string, name string) string {
	for i := 0; i+1 < len(h); i += 2 {
		if strings.EqualFold(h[i], name) {
			return h[i+1]
		}
	}
	return ""
}

// TestOpenAPIServed: the description is served, without a token, as the
// embedded document.
func TestOpenAPIServed(t *testing.T) {
	e := setup(t, Config{Tokens: []string{contractToken}}, false)
	e.token = ""
	r := e.do("GET", "/v1/openapi.json", nil)
	if r.Status != 200 || !bytes.Equal(r.Body, OpenAPI()) || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("GET /v1/openapi.json: %d, %d bytes, %q", r.Status, len(r.Body), r.Header.Get("Content-Type"))
	}
}

// TestOpenAPIValidDocument has an independent validator check the
// document against the OpenAPI 3.1 schema (Python's
// openapi-spec-validator); without one it skips, and fails in CI.
func TestOpenAPIValidDocument(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil || exec.Command(py, "-c", "import openapi_spec_validator").Run() != nil {
		testenv.Missing(t, "openapi-spec-validator not installed (pip install openapi-spec-validator)")
	}
	cmd := exec.Command(py, "-c", `import json, sys
from openapi_spec_validator import validate
validate(json.load(sys.stdin))`)
	cmd.Stdin = bytes.NewReader(OpenAPI())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("openapi-spec-validator: %v\n%s", err, out)
	}
}

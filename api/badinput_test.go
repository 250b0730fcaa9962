package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// with returns simple() with fields replaced.
func with(kv ...any) map[string]any {
	m := simple()
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	return m
}

func att(kv ...any) map[string]any {
	a := map[string]any{"filename": "a.txt", "content": "aGVsbG8="}
	for i := 0; i+1 < len(kv); i += 2 {
		a[kv[i].(string)] = kv[i+1]
	}
	return with("attachments", []any{map[string]any{"filename": "ok.txt", "content": ""}, a})
}

func manyRecipients(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("user%d@example.com", i)
	}
	return out
}

func TestBadInput(t *testing.T) {
	const inj = "x@example.com\r\nBcc: victim@example.com"
	cases := []struct {
		name   string
		body   any
		status int
		field  string
	}{
		{"empty body", "", 400, ""},
		{"malformed JSON", `{"from": "a@example.com",, "to": []}`, 400, ""},
		{"truncated JSON", `{"from": "a@example.com", "to": [`, 400, ""},
		{"not an object", `[1, 2]`, 400, ""},
		{"trailing data", `{"from": "a@example.com", "to": ["b@example.com"]} {}`, 400, ""},
		{"unknown field", with("colour", "blue"), 400, "colour"},
		{"wrong type subject", with("subject", 42), 400, "subject"},
		{"wrong type to", with("to", 7), 400, "to"},
		{"wrong type to element", with("to", []any{1}), 400, "to"},
		{"wrong type header value", with("headers", map[string]any{"X-A": 1}), 400, "headers.X-A"},
		{"wrong type headers", with("headers", "X-A: 1"), 400, "headers"},
		{"wrong type inline", att("inline", "yes"), 400, "attachments[1].inline"},
		{"wrong type content", att("content", 12), 400, "attachments[1].content"},
		{"unknown attachment field", att("size", 12), 400, "attachments[1].size"},
		{"attachment not an object", with("attachments", []any{"x"}), 400, "attachments[0]"},
		{"attachments not an array", with("attachments", map[string]any{}), 400, "attachments"},
		{"unknown template field", with("template", map[string]any{"nmae": "contact"}), 400, "template.nmae"},
		{"wrong type template data", with("template", map[string]any{"name": "contact", "data": []int{1}}), 400, "template.data"},
		{"missing from", with("from", ""), 422, "from"},
		{"no recipients", with("to", []string{}), 422, "to"},
		{"invalid from", with("from", "not an address"), 422, "from"},
		{"invalid to", with("to", []string{"ok@example.com", "bad@@example.com"}), 422, "to[1]"},
		{"invalid cc", with("cc", []string{"a@"}), 422, "cc[0]"},
		{"invalid domain", with("to", []string{"a@exa mple.com"}), 422, "to[0]"},
		{"inject from", with("from", inj), 422, "from"},
		{"inject to", with("to", []string{"ok@example.com", inj}), 422, "to[1]"},
		{"inject cc", with("cc", []string{inj}), 422, "cc[0]"},
		{"inject bcc", with("bcc", []string{inj}), 422, "bcc[0]"},
		{"inject reply_to", with("reply_to", inj), 422, "reply_to[0]"},
		{"inject subject", with("subject", "Hi\r\nBcc: v@example.com"), 422, "subject"},
		{"inject subject LF", with("subject", "Hi\nX: y"), 422, "subject"},
		{"inject header key", with("headers", map[string]string{"X-A\r\nBcc": "v@example.com"}), 422, `headers."X-A\r\nBcc"`},
		{"inject header value", with("headers", map[string]string{"X-A": "1\r\nBcc: v@example.com"}), 422, "headers.X-A"},
		{"header owned", with("headers", map[string]string{"Subject": "x"}), 422, "headers.Subject"},
		{"header bad name", with("headers", map[string]string{"X A": "x"}), 422, `headers."X A"`},
		{"inject filename", att("filename", "a.txt\r\nContent-Type: text/html"), 422, "attachments[1].filename"},
		{"inject content_type", att("content_type", "text/plain\r\nX: y"), 422, "attachments[1].content_type"},
		{"bad content_type", att("content_type", "not a type"), 422, "attachments[1]"},
		{"invalid base64", att("content", "not base64!!"), 422, "attachments[1].content"},
		{"bad send_at", with("send_at", "tomorrow"), 422, "send_at"},
		{"unknown template", with("template", map[string]any{"name": "nope"}), 422, "template.name"},
		{"template without name", with("template", map[string]any{"data": map[string]any{}}), 422, "template.name"},
		{"missing template field", with("template", map[string]any{"name": "contact",
			"data": map[string]any{"sender_email": "a@example.com"}}), 422, "template.data.comment"},
		{"10000 recipients", with("to", manyRecipients(10000)), 422, "to"},
		{"oversize", with("text", strings.Repeat("x", 600<<10)), 413, ""},
	}
	e := setup(t, Config{MaxMessageSize: 512 << 10}, false)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.postJSON(c.body)
			if r.Status != c.status {
				t.Fatalf("status %d %s, want %d", r.Status, r.Body, c.status)
			}
			if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type %q", ct)
			}
			got := r.apiErr(t)
			if got.Field != c.field {
				t.Errorf("field %q, want %q (error %q)", got.Field, c.field, got.Msg)
			}
			if strings.ContainsAny(got.Msg, "\r\n") || !strings.HasSuffix(got.Msg, ".") {
				t.Errorf("error is not one clean sentence: %q", got.Msg)
			}
			if n := e.total(); n != 0 {
				t.Errorf("store holds %d messages after bad input", n)
			}
			// The server still answers the next request.
			if r := e.do("GET", "/healthz", nil); r.Status != http.StatusOK {
				t.Errorf("healthz after bad input: %d", r.Status)
			}
		})
	}
	e.send(simple())
	if n := e.total(); n != 1 {
		t.Errorf("good message after bad ones: store holds %d", n)
	}
}

func TestErrorPositions(t *testing.T) {
	e := setup(t, Config{}, false)
	r := e.postJSON(`{"from": "a@example.com",, "to": []}`)
	if msg := r.apiErr(t).Msg; !strings.Contains(msg, "at byte 26") {
		t.Errorf("malformed JSON error lacks its position: %q", msg)
	}
	r = e.postJSON(with("subject", 42))
	var body map[string]string
	if err := json.Unmarshal(r.Body, &body); err != nil || !strings.Contains(body["error"], "subject must be a string") {
		t.Errorf("type error: %s", r.Body)
	}
}

func TestMethodsAndNotFound(t *testing.T) {
	e := setup(t, Config{}, false)
	cases := []struct {
		method, path string
		status       int
	}{
		{"PUT", "/v1/messages", 405},
		{"PATCH", "/v1/messages/abc/content", 405},
		{"PUT", "/v1/messages/abc", 405},
		{"GET", "/v1/messages/abc/retry", 405},
		{"POST", "/healthz", 405},
		{"GET", "/v1/nothing", 404},
		{"GET", "/v1/messages/no-such-id", 404},
		{"POST", "/v1/messages/no-such-id/retry", 404},
		{"POST", "/v1/messages/no-such-id/cancel", 404},
	}
	for _, c := range cases {
		r := e.do(c.method, c.path, nil)
		if r.Status != c.status {
			t.Errorf("%s %s: %d %s, want %d", c.method, c.path, r.Status, r.Body, c.status)
			continue
		}
		r.apiErr(t)
		if c.status == 405 && r.Header.Get("Allow") == "" {
			t.Errorf("%s %s: 405 without Allow", c.method, c.path)
		}
	}
}

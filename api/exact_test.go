package api

import (
	"bytes"
	"context"
	"encoding/base64"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outbox-mail/outbox/internal/health"
	"github.com/outbox-mail/outbox/internal/throttle"
)

func TestContentTypeRequired(t *testing.T) {
	e := setup(t, Config{}, false)
	body := `{"from":"a@example.com","to":["b@example.com"],"text":"x"}`
	for ct, want := range map[string]int{
		"":                                  415,
		"text/plain":                        415,
		"application/x-www-form-urlencoded": 415,
		"application/json; charset=latin1":  415,
		"application/json":                  202,
		"application/json; charset=UTF-8":   202,
		"Application/JSON":                  202,
	} {
		req, _ := http.NewRequest("POST", e.srv.URL+"/v1/messages", strings.NewReader(body))
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("Content-Type %q: %d, want %d", ct, resp.StatusCode, want)
		}
	}
	if n := e.total(); n != 3 {
		t.Errorf("%d messages stored, want 3", n)
	}
}

// Invalid UTF-8, unpaired surrogates and repeated keys are refused with
// 400, naming the field, instead of being replaced or overwritten.
func TestJSONExactness(t *testing.T) {
	e := setup(t, Config{}, false)
	base := `"from":"a@example.com","to":["b@example.com"]`
	for _, c := range []struct {
		name, body, field string
	}{
		{"bad utf-8 subject", `{` + base + `,"subject":"caf` + "\xe9" + `"}`, "subject"},
		{"truncated utf-8", `{` + base + `,"text":"` + "\xe2\x82" + `"}`, "text"},
		{"overlong utf-8", `{` + base + `,"text":"` + "\xc0\xaf" + `"}`, "text"},
		{"utf-8 surrogate", `{` + base + `,"text":"` + "\xed\xa0\x80" + `"}`, "text"},
		{"bad utf-8 in to", `{"from":"a@example.com","to":["b@example.com","` + "\xff" + `@x"]}`, "to[1]"},
		{"bad utf-8 header value", `{` + base + `,"headers":{"X-A":"` + "\xfe" + `"}}`, "headers.X-A"},
		{"bad utf-8 key", `{` + base + `,"headers":{"X-` + "\xfe" + `":"v"}}`, "headers"},
		{"bad utf-8 filename", `{` + base + `,"attachments":[{"filename":"` + "\x80" + `","content":""}]}`, "attachments[0].filename"},
		{"bad utf-8 in content", `{` + base + `,"attachments":[{"filename":"a","content":"` + "\x80" + `"}]}`, "attachments[0].content"},
		{"bad utf-8 template data", `{` + base + `,"template":{"name":"contact","data":{"comment":"` + "\xff" + `"}}}`, "template.data.comment"},
		{"lone high surrogate", `{` + base + `,"subject":"\ud800x"}`, "subject"},
		{"lone low surrogate", `{` + base + `,"subject":"\udc00"}`, "subject"},
		{"duplicate top-level key", `{` + base + `,"subject":"a","subject":"b"}`, "subject"},
		{"duplicate escaped key", `{` + base + `,"subject":"a","\u0073ubject":"b"}`, "subject"},
		{"duplicate header", `{` + base + `,"headers":{"X-A":"1","X-A":"2"}}`, "headers.X-A"},
		{"duplicate attachment key", `{` + base + `,"attachments":[{"filename":"a","filename":"b"}]}`, "attachments[0].filename"},
		{"duplicate content", `{` + base + `,"attachments":[{"content":"","content":"aGk="}]}`, "attachments[0].content"},
		{"duplicate attachments", `{` + base + `,"attachments":[],"attachments":[]}`, "attachments"},
		{"duplicate template data key", `{` + base + `,"template":{"name":"contact","data":{"x":1,"x":2}}}`, "template.data.x"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := e.postJSON(c.body)
			if r.Status != 400 {
				t.Fatalf("%d %s, want 400", r.Status, r.Body)
			}
			if got := r.apiErr(t); got.Field != c.field {
				t.Fatalf("field %q, want %q (%s)", got.Field, c.field, got.Msg)
			}
		})
	}
	if n := e.total(); n != 0 {
		t.Errorf("%d messages stored", n)
	}
	// Valid escapes and multi-byte text still pass.
	id := e.send(`{` + base + `,"subject":"caf\u00e9 \ud83d\ude00 ` + "日本" + `","text":"\/ok"}`)
	if v := e.getView(id); v.Subject != "café 😀 日本" {
		t.Errorf("subject %q", v.Subject)
	}
}

// Attachment content is decoded as it streams: line breaks (raw or as
// JSON escapes) are allowed as encoding/base64 allows them, and padding in
// the middle is refused however the input is cut.
func TestStreamedBase64(t *testing.T) {
	e := setup(t, Config{}, false)
	data := bytes.Repeat([]byte("0123456789abcdef"), 20_000) // 320 KB: spills to a file
	enc := base64.StdEncoding.EncodeToString(data)
	var wrapped strings.Builder
	for i := 0; i < len(enc); i += 76 {
		wrapped.WriteString(enc[i:min(i+76, len(enc))] + `\r\n`)
	}
	body := `{"from":"a@example.com","to":["b@example.com"],"attachments":[{"filename":"d.bin","content":"` + wrapped.String() + `"}]}`
	id := e.send(body)
	if got := storedBody(t, e, id); !strings.Contains(got, enc[:76]) {
		t.Fatalf("stored message does not carry the attachment")
	}
	for name, content := range map[string]string{
		"padding then more": "aGk=aGk=",
		"padding later":     strings.Repeat("A", 20000) + "aGk=" + strings.Repeat("B", 20000),
		"not a quantum":     "aGk",
		"bad character":     "aG*=",
	} {
		r := e.postJSON(`{"from":"a@example.com","to":["b@example.com"],"attachments":[{"filename":"x","content":"` + content + `"}]}`)
		if r.Status != 422 || r.apiErr(t).Field != "attachments[0].content" {
			t.Errorf("%s: %d %s", name, r.Status, r.Body)
		}
	}
}

func TestCompositeAttachmentsRefused(t *testing.T) {
	e := setup(t, Config{}, false)
	for _, ct := range []string{"message/rfc822", "multipart/mixed; boundary=x", "Message/Partial"} {
		r := e.postJSON(att("content_type", ct))
		if r.Status != 422 || r.apiErr(t).Field != "attachments[1].content_type" || !strings.Contains(string(r.Body), "RFC 2045") {
			t.Errorf("content_type %q: %d %s", ct, r.Status, r.Body)
		}
	}
	if mt, _, _ := mime.ParseMediaType(mime.TypeByExtension(".eml")); strings.HasPrefix(mt, "message/") {
		if r := e.postJSON(att("filename", "forwarded.eml")); r.Status != 422 || r.apiErr(t).Field != "attachments[1].filename" {
			t.Errorf(".eml without content_type: %d %s", r.Status, r.Body)
		}
	}
	// Declared as a plain file, the same bytes go.
	e.send(att("filename", "forwarded.eml", "content_type", "application/octet-stream"))
	if n := e.total(); n != 1 {
		t.Errorf("%d messages stored, want 1", n)
	}
}

// Every field the Bcc filter removes gives recipients: "Bcc : x" with a
// space before the colon included.
func TestRawBccSpellings(t *testing.T) {
	e := setup(t, Config{}, false)
	msg := lines("From: alice@example.com\nTo : bob@example.com\nBcc : spaced@example.com\nbcc\t:tabbed@example.com,\n other@example.com\nBCC: upper@example.com\nSubject: hi\n\nbody\n")
	r := e.do("POST", "/v1/messages/raw", strings.NewReader(msg))
	if r.Status != http.StatusAccepted {
		t.Fatalf("raw: %d %s", r.Status, r.Body)
	}
	var a accepted
	r.decode(t, &a)
	var got []string
	for _, rc := range e.getView(a.ID).Recipients {
		got = append(got, rc.Address)
	}
	want := "bob@example.com spaced@example.com tabbed@example.com other@example.com upper@example.com"
	if strings.Join(got, " ") != want {
		t.Fatalf("recipients %q, want %q", got, want)
	}
	if body := storedBody(t, e, a.ID); strings.Contains(strings.ToLower(body), "bcc") {
		t.Fatalf("a Bcc field reached the stored message: %q", body)
	}
	r = e.do("POST", "/v1/messages/raw", strings.NewReader(lines("From: a@example.com\nTo: b@example.com\nBcc : not an address@@\n\nx\n")))
	if r.Status != 422 || r.apiErr(t).Field != "header.Bcc" {
		t.Fatalf("unparsable spaced Bcc: %d %s", r.Status, r.Body)
	}
}

// A request that would take the bytes in flight past the budget is
// answered 503 with Retry-After, and its charge is returned, so smaller
// requests go through after it.
func TestBytesInFlight(t *testing.T) {
	e := setup(t, Config{MaxBytesInFlight: 1 << 20}, false)
	h := e.srv.Config.Handler.(*Handler)
	big := with("text", strings.Repeat("x", 400<<10)) // charged three times: past 1 MiB
	r := e.postJSON(big)
	if r.Status != 503 || r.Header.Get("Retry-After") == "" {
		t.Fatalf("over budget: %d %s (Retry-After %q)", r.Status, r.Body, r.Header.Get("Retry-After"))
	}
	if n := h.mem.inFlight(); n != 0 {
		t.Fatalf("%d bytes still charged after the request ended", n)
	}
	// Attachments beyond their first 64 KiB are not charged: a 900 KB
	// attachment fits a 1 MiB budget.
	e.send(with("attachments", []any{map[string]any{"filename": "a.bin",
		"content": base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 900_000))}}))
	e.send(simple())
	if n := h.mem.inFlight(); n != 0 {
		t.Fatalf("%d bytes still charged", n)
	}
}

// dialFrom makes an HTTP client whose connections come from a chosen
// loopback address.
func clientFrom(src string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
}

func getWith(t *testing.T, c *http.Client, url, token string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

func TestTokenThrottle(t *testing.T) {
	var logs syncBuf
	th := throttle.New(throttle.Config{FreeFailures: 2, BlockAfter: 4, BaseDelay: time.Millisecond,
		MaxDelay: 2 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	const token = "a-token-of-enough-length"
	e := setup(t, Config{Tokens: []string{token}, Throttle: th}, false)
	attacker := clientFrom("127.0.0.1")
	var codes []int
	for i := range 6 {
		codes = append(codes, getWith(t, attacker, e.srv.URL+"/v1/messages", "wrong-token-"+string(rune('a'+i))).StatusCode)
	}
	want := []int{401, 401, 401, 401, 429, 429}
	for i := range want {
		if codes[i] != want[i] {
			t.Fatalf("replies %v, want %v", codes, want)
		}
	}
	if resp := getWith(t, attacker, e.srv.URL+"/v1/messages", "x"); resp.Header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	if resp := getWith(t, clientFrom("127.0.0.2"), e.srv.URL+"/v1/messages", token); resp.StatusCode != 200 {
		t.Fatalf("the right token from another address: %d", resp.StatusCode)
	}
	// No token at all is not a guess.
	resp, err := clientFrom("127.0.0.3").Get(e.srv.URL + "/v1/messages")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 || th.Blocked(mustAddr("127.0.0.3")) != 0 {
		t.Fatalf("no token: %d", resp.StatusCode)
	}
	th.Flush()
	if n := strings.Count(logs.String(), "auth: failed attempts"); n != 1 {
		t.Fatalf("%d summary lines:\n%s", n, logs.String())
	}
}

// /readyz follows the health checker: a failed commit is 503 with a JSON
// reason, and a probe that succeeds makes it ready again; store failures
// of a submission are 503 with Retry-After.
func TestReadyzFollowsHealth(t *testing.T) {
	e := setup(t, Config{}, false)
	hc := health.New(health.Config{Probe: e.store.(health.Prober), Logger: slog.New(slog.DiscardHandler)})
	h := e.srv.Config.Handler.(*Handler)
	h.cfg.Health = hc
	hc.Start()
	defer hc.Stop()
	if r := e.do("GET", "/readyz", nil); r.Status != 200 {
		t.Fatalf("readyz: %d %s", r.Status, r.Body)
	}
	hc.StoreFailed(context.DeadlineExceeded)
	// The failure kicks an immediate probe, which succeeds: ready again
	// within a probe. Poll, bounded.
	var r *response
	for range 200 {
		if r = e.do("GET", "/readyz", nil); r.Status == 200 {
			break
		}
		if !strings.Contains(string(r.Body), `"reason":"store_commit_failed"`) {
			t.Fatalf("unready body %s", r.Body)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if r.Status != 200 {
		t.Fatalf("readyz never recovered: %d %s", r.Status, r.Body)
	}
	e.store.Close()
	r = e.postJSON(simple())
	if r.Status != 503 || r.Header.Get("Retry-After") == "" {
		t.Fatalf("POST with a closed store: %d %s", r.Status, r.Body)
	}
	r = e.do("GET", "/readyz", nil)
	if r.Status != 503 || !strings.Contains(string(r.Body), `"reason":"store_`) {
		t.Fatalf("readyz after a failed commit on a closed store: %d %s", r.Status, r.Body)
	}
	if r := e.do("GET", "/healthz", nil); r.Status != 200 {
		t.Fatalf("healthz: %d", r.Status)
	}
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

// Of many large requests at once, the oldest waits for room and goes
// through while younger ones that do not fit are refused: they never all
// fail together.
func TestBudgetLetsTheOldestThrough(t *testing.T) {
	b := newBudget(10 << 20)
	old, err := b.admit()
	if err != nil {
		t.Fatal(err)
	}
	young, _ := b.admit()
	if err := young.take(6 << 20); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- old.take(8 << 20) }() // waits: only 4 MiB free
	select {
	case err := <-done:
		t.Fatalf("the oldest did not wait: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	if err := young.take(4 << 20); err != errBusy {
		t.Fatalf("a younger request past the budget: %v, want errBusy", err)
	}
	young.release()
	if err := <-done; err != nil {
		t.Fatalf("the oldest after the younger gave way: %v", err)
	}
	// Alone and still too large: refused rather than waiting for ever.
	if err := old.take(8 << 20); err != errBusy {
		t.Fatalf("the oldest alone past the budget: %v", err)
	}
	old.release()
	if b.inFlight() != 0 {
		t.Fatalf("%d bytes still charged", b.inFlight())
	}
}

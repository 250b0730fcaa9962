package api

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// onlyReader hides bytes.Reader's length, so the request is sent chunked,
// without a Content-Length.
type onlyReader struct{ io.Reader }

func TestChunkedBody(t *testing.T) {
	e := setup(t, Config{MaxMessageSize: 4096}, false)
	body := `{"from": "a@example.com", "to": ["b@example.com"], "text": "hi"}`
	r := e.do("POST", "/v1/messages", onlyReader{strings.NewReader(body)}, "Content-Type", "application/json")
	if r.Status != http.StatusAccepted {
		t.Fatalf("chunked: %d %s", r.Status, r.Body)
	}
	big := `{"from": "a@example.com", "to": ["b@example.com"], "text": "` + strings.Repeat("x", 5000) + `"}`
	r = e.do("POST", "/v1/messages", onlyReader{strings.NewReader(big)}, "Content-Type", "application/json")
	if r.Status != http.StatusRequestEntityTooLarge {
		t.Fatalf("chunked oversize: %d %s", r.Status, r.Body)
	}
	if n := e.total(); n != 1 {
		t.Errorf("store holds %d messages, want 1", n)
	}
}

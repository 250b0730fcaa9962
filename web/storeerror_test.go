package web

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestStoreTroubleIs503 closes the store under the dashboard: its pages
// answer 503 with Retry-After and a sentence, never 500 or the error.
func TestStoreTroubleIs503(t *testing.T) {
	s := newStack(t, nil, true)
	s.store.Close()
	for _, path := range []string{"/", "/messages", "/inbox", "/messages/01a23474-d544-7eb0-b6a1-a384d02cf5a8"} {
		resp, err := http.Get(s.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" ||
			!strings.Contains(string(body), "try again in a few seconds") || strings.Contains(string(body), "sql") {
			t.Errorf("GET %s with the store closed: %d, Retry-After %q, body %.200s", path, resp.StatusCode, resp.Header.Get("Retry-After"), body)
		}
	}
}

package web

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/outbox-mail/outbox/internal/throttle"
)

// Login guessing is refused with 429 after a few failures from one
// address, while the right token from another address logs in at once.
func TestLoginThrottle(t *testing.T) {
	s := newStack(t, []string{testToken}, true)
	th := throttle.New(throttle.Config{FreeFailures: 2, BlockAfter: 4, BaseDelay: time.Millisecond, MaxDelay: 2 * time.Millisecond})
	h, err := New(Config{Client: s.client, Tokens: []string{testToken}, Throttle: th})
	if err != nil {
		t.Fatal(err)
	}
	login := func(from, token string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("POST", "/login", strings.NewReader(url.Values{"token": {token}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.RemoteAddr = from + ":40000"
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	var codes []int
	for range 6 {
		codes = append(codes, login("192.0.2.7", "wrong-token-wrong").Code)
	}
	want := []int{401, 401, 401, 401, 429, 429}
	for i := range want {
		if codes[i] != want[i] {
			t.Fatalf("login replies %v, want %v", codes, want)
		}
	}
	rec := login("192.0.2.7", testToken)
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") == "" || !strings.Contains(rec.Body.String(), "Too many failed logins") {
		t.Fatalf("right token from the blocked address: %d %q", rec.Code, rec.Header().Get("Retry-After"))
	}
	if rec := login("198.51.100.1", testToken); rec.Code != http.StatusSeeOther {
		t.Fatalf("right token from another address: %d", rec.Code)
	}
}

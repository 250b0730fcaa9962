package api

import (
	"net/http"
	"strings"
	"testing"
)

// A web page on another site can make the operator's browser POST to a
// daemon on loopback without a CORS preflight; without a token, that would
// submit mail. Such requests are refused and store nothing.
func TestRefusesRequestsFromOtherSites(t *testing.T) {
	e := setup(t, Config{}, false)
	host := strings.TrimPrefix(e.srv.URL, "http://")
	for _, tc := range []struct {
		name   string
		header []string
	}{
		{"cross-site fetch", []string{"Sec-Fetch-Site", "cross-site", "Content-Type", "text/plain"}},
		{"same-site fetch", []string{"Sec-Fetch-Site", "same-site"}},
		{"foreign Origin", []string{"Origin", "https://evil.example"}},
		{"opaque Origin", []string{"Origin", "null"}},
	} {
		r := e.postJSON(simple("b@example.com"), tc.header...)
		if r.Status != http.StatusForbidden {
			t.Errorf("%s: HTTP %d %s, want 403", tc.name, r.Status, r.Body)
		}
	}
	if n := e.total(); n != 0 {
		t.Fatalf("%d messages stored from refused requests", n)
	}
	// Programs send no fetch metadata; a page of the API's own origin is
	// same-origin. Both are served.
	e.send(simple("b@example.com"))
	e.send(simple("b@example.com"), "Origin", "http://"+host, "Sec-Fetch-Site", "same-origin")
	if n := e.total(); n != 2 {
		t.Fatalf("%d messages stored, want 2", n)
	}
}

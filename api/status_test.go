package api

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/outbox-mail/outbox/internal/throttle"
	"github.com/outbox-mail/outbox/queue"
)

func TestListFilterAndPaging(t *testing.T) {
	e := setup(t, Config{}, false)
	later := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	ids := map[string]bool{}
	for i := range 23 {
		m := simple(fmt.Sprintf("r%d@example.com", i))
		m["subject"] = fmt.Sprintf("Number %d", i)
		m["send_at"] = later
		ids[e.send(m)] = true
	}
	// Cancel three, so that a status filter has something to tell apart.
	cancelled := map[string]bool{}
	for id := range ids {
		if len(cancelled) == 3 {
			break
		}
		if r := e.do("POST", "/v1/messages/"+id+"/cancel", nil); r.Status != http.StatusOK {
			t.Fatalf("cancel: %d %s", r.Status, r.Body)
		}
		cancelled[id] = true
	}

	listed, pages := e.listAll("status=queued&limit=7")
	seen := map[string]bool{}
	for _, m := range listed {
		if seen[m.ID] || !ids[m.ID] || cancelled[m.ID] || m.Status != queue.StatusQueued {
			t.Errorf("unexpected listing entry %s (%s), seen before: %v", m.ID, m.Status, seen[m.ID])
		}
		seen[m.ID] = true
	}
	if len(seen) != 20 || pages != 3 {
		t.Errorf("listed %d queued messages in %d pages, want 20 in 3", len(seen), pages)
	}

	var page ListPage
	r := e.do("GET", "/v1/messages?status=cancelled", nil)
	r.decode(t, &page)
	if len(page.Messages) != 3 || page.Messages[0].Recipients[0].Status != queue.RecipientFailed {
		t.Errorf("cancelled listing: %s", r.Body)
	}
	r = e.do("GET", "/v1/messages?recipient=r7%40&subject=Number", nil)
	r.decode(t, &page)
	if len(page.Messages) != 1 || page.Messages[0].Subject != "Number 7" {
		t.Errorf("recipient filter: %s", r.Body)
	}

	for _, q := range []struct{ query, field string }{
		{"status=lost", "status"}, {"limit=0", "limit"}, {"limit=abc", "limit"},
		{"limit=1001", "limit"}, {"cursor=%00garbage", "cursor"},
	} {
		r := e.do("GET", "/v1/messages?"+q.query, nil)
		if r.Status != http.StatusBadRequest || r.apiErr(t).Field != q.field {
			t.Errorf("%s: %d %s, want 400 naming %s", q.query, r.Status, r.Body, q.field)
		}
	}
}

// listAll follows next_cursor through every page of a listing.
func (e *env) listAll(query string) (all []Message, pages int) {
	e.t.Helper()
	cursor := ""
	for pages < 100 {
		r := e.do("GET", "/v1/messages?"+query+"&cursor="+url.QueryEscape(cursor), nil)
		if r.Status != http.StatusOK {
			e.t.Fatalf("list: %d %s", r.Status, r.Body)
		}
		var page ListPage
		r.decode(e.t, &page)
		pages++
		all = append(all, page.Messages...)
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
	}
	return all, pages
}

func TestRetryCancel(t *testing.T) {
	e := setup(t, Config{}, false)
	m := simple()
	m["send_at"] = time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	id := e.send(m)
	v := e.getView(id)
	if v.Status != queue.StatusQueued || v.NextAttemptAt == nil || v.NextAttemptAt.Before(time.Now().Add(50*time.Minute)) {
		t.Fatalf("scheduled message: %+v", v)
	}

	r := e.do("POST", "/v1/messages/"+id+"/retry", nil)
	if r.Status != http.StatusOK {
		t.Fatalf("retry queued: %d %s", r.Status, r.Body)
	}
	r.decode(t, &v)
	if v.ID != id || v.NextAttemptAt == nil || v.NextAttemptAt.After(time.Now().Add(time.Minute)) {
		t.Errorf("retry did not make the message due now: %s", r.Body)
	}
	if r := e.do("POST", "/v1/messages/"+id+"/retry?include_failed=maybe", nil); r.Status != http.StatusBadRequest {
		t.Errorf("bad include_failed: %d", r.Status)
	}

	r = e.do("POST", "/v1/messages/"+id+"/cancel", nil)
	if r.Status != http.StatusOK {
		t.Fatalf("cancel: %d %s", r.Status, r.Body)
	}
	r.decode(t, &v)
	if v.Status != queue.StatusCancelled {
		t.Errorf("after cancel: %s", r.Body)
	}
	for _, op := range []string{"cancel", "retry"} {
		r := e.do("POST", "/v1/messages/"+id+"/"+op, nil)
		if r.Status != http.StatusConflict {
			t.Errorf("%s of a cancelled message: %d %s, want 409", op, r.Status, r.Body)
		}
		r.apiErr(t)
	}
}

func TestAuth(t *testing.T) {
	// Wrong tokens here are not an attack: a throttle that lets them be
	// (see TestTokenThrottle for one that does not).
	lenient := throttle.New(throttle.Config{FreeFailures: 1000, BlockAfter: 1001})
	e := setup(t, Config{Tokens: []string{"s3cret-token", "other"}, Throttle: lenient}, false)
	e.token = ""
	for _, auth := range []string{"", "Bearer wrong", "Basic czNjcmV0LXRva2Vu", "Bearer s3cret-token-longer", "Bearer"} {
		var hdr []string
		if auth != "" {
			hdr = []string{"Authorization", auth}
		}
		for _, path := range []string{"/v1/messages", "/v1/messages/x"} {
			r := e.do("GET", path, nil, hdr...)
			if r.Status != http.StatusUnauthorized || !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("%q on %s: %d (WWW-Authenticate %q)", auth, path, r.Status, r.Header.Get("WWW-Authenticate"))
			}
		}
		r := e.postJSON(simple(), hdr...)
		if r.Status != http.StatusUnauthorized {
			t.Errorf("%q on POST: %d", auth, r.Status)
		}
	}
	if n := e.total(); n != 0 {
		t.Errorf("unauthenticated POSTs stored %d messages", n)
	}
	for _, tok := range []string{"s3cret-token", "other"} {
		r := e.do("GET", "/v1/messages", nil, "Authorization", "Bearer "+tok)
		if r.Status != http.StatusOK {
			t.Errorf("token %q: %d %s", tok, r.Status, r.Body)
		}
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		if r := e.do("GET", path, nil); r.Status != http.StatusOK {
			t.Errorf("%s without a token: %d", path, r.Status)
		}
	}
	if _, err := New(Config{Client: e.client, Tokens: []string{""}}); err == nil {
		t.Error("New accepted an empty token")
	}
}

func TestReadyz(t *testing.T) {
	e := setup(t, Config{}, false)
	if r := e.do("GET", "/readyz", nil); r.Status != http.StatusOK {
		t.Fatalf("readyz: %d %s", r.Status, r.Body)
	}
	if r := e.do("GET", "/healthz", nil); r.Status != http.StatusOK {
		t.Fatalf("healthz: %d %s", r.Status, r.Body)
	}
	e.store.Close()
	r := e.do("GET", "/readyz", nil)
	if r.Status != http.StatusServiceUnavailable || strings.Contains(string(r.Body), "closed") {
		t.Errorf("readyz with a closed store: %d %s", r.Status, r.Body)
	}
	if r := e.do("GET", "/healthz", nil); r.Status != http.StatusOK {
		t.Errorf("healthz with a closed store: %d", r.Status)
	}
	// A store failure during submission is the server's, and says nothing
	// of its cause.
	r = e.postJSON(simple())
	if r.Status < 500 || strings.Contains(string(r.Body), "queue") || strings.Contains(string(r.Body), "sqlite") {
		t.Errorf("POST with a closed store: %d %s", r.Status, r.Body)
	}
}

func TestPanicRecovered(t *testing.T) {
	var logs bytes.Buffer
	e := setup(t, Config{Logger: slog.New(slog.NewTextHandler(&logs, nil))}, false)
	h := e.srv.Config.Handler.(*Handler)
	h.mux.HandleFunc("GET /boom", func(http.ResponseWriter, *http.Request) { panic("boom") })
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/boom", nil))
	if rec.Code != http.StatusInternalServerError || strings.Contains(rec.Body.String(), "boom") {
		t.Errorf("panic answered %d %s", rec.Code, rec.Body)
	}
	if !strings.Contains(logs.String(), "boom") {
		t.Errorf("panic not logged: %s", logs.String())
	}
	if r := e.do("GET", "/healthz", nil); r.Status != http.StatusOK {
		t.Errorf("healthz after a panic: %d", r.Status)
	}
}

func TestLookupErrorMapping(t *testing.T) {
	h := &Handler{log: slog.New(slog.DiscardHandler)}
	cases := []struct {
		err    error
		status int
	}{
		{queue.ErrNotFound, 404},
		{fmt.Errorf("sqlite: retry: %w", queue.ErrFinal), 409},
		{fmt.Errorf("sqlite: retry: %w", queue.ErrSending), 409},
		{fmt.Errorf("sqlite: %w", queue.ErrClosed), 503},
		{fmt.Errorf("sqlite: disk I/O error at /var/lib/outbox"), 503},
	}
	for _, c := range cases {
		e := h.lookupError(c.err, "abc")
		if e.Status != c.status {
			t.Errorf("%v -> %d, want %d", c.err, e.Status, c.status)
		}
		if strings.Contains(e.Msg, "sqlite") || strings.Contains(e.Msg, "/var/lib") {
			t.Errorf("%v leaks into %q", c.err, e.Msg)
		}
	}
}

package web

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/outbox-mail/outbox/queue"
)

// TestSuppressionsPage: the page lists the entries with their cause and
// expiry, and adds and removes entries with CSRF-protected POSTs; a
// mistake in the form is shown and stores nothing; without a login or a
// CSRF token nothing changes.
func TestSuppressionsPage(t *testing.T) {
	s := newStack(t, []string{testToken}, false)
	ctx := context.Background()
	if err := s.store.Suppress(ctx, []queue.Suppression{{Address: "gone@example.org", Cause: queue.CauseBounced,
		Reason: "550 5.1.1 no such user", MessageID: "0190d5a0-0000-7000-8000-000000000000"}}); err != nil {
		t.Fatal(err)
	}
	c := client(t)
	if resp, _ := get(t, c, s.srv.URL+"/suppressions"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("without a login: %d", resp.StatusCode)
	}
	if resp, _ := post(t, c, s.srv.URL+"/suppressions", url.Values{"address": {"x@example.org"}}, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("POST without a login: %d", resp.StatusCode)
	}
	csrf := login(t, s, c)
	resp, body := get(t, c, s.srv.URL+"/suppressions")
	if resp.StatusCode != 200 || !strings.Contains(body, "gone@example.org") || !strings.Contains(body, "550 5.1.1 no such user") ||
		!strings.Contains(body, "bounced") || !strings.Contains(body, `href="/messages/0190d5a0-0000-7000-8000-000000000000"`) {
		t.Fatalf("page: %d\n%s", resp.StatusCode, body)
	}
	same := map[string]string{"Origin": s.srv.URL}
	if resp, _ := post(t, c, s.srv.URL+"/suppressions", url.Values{"address": {"x@example.org"}}, same); resp.StatusCode != http.StatusForbidden {
		t.Errorf("POST without the CSRF token: %d", resp.StatusCode)
	}
	expires := time.Now().Add(48 * time.Hour).UTC().Format(timeForm)
	resp, _ = post(t, c, s.srv.URL+"/suppressions", url.Values{"csrf": {csrf}, "address": {"Ann@Example.org"},
		"scope": {"shop.example"}, "reason": {"asked by phone"}, "expires": {expires}}, same)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("add: %d", resp.StatusCode)
	}
	got, err := s.store.LookupSuppression(ctx, "ann@example.org", "shop.example")
	if err != nil || got.Cause != queue.CauseManual || got.Reason != "asked by phone" || got.ExpiresAt.IsZero() {
		t.Fatalf("added: %+v, %v", got, err)
	}
	_, body = get(t, c, s.srv.URL+resp.Header.Get("Location"))
	if !strings.Contains(body, "Address added") || !strings.Contains(body, "shop.example") {
		t.Errorf("after adding:\n%s", body)
	}
	for _, bad := range []url.Values{{"address": {"not an address"}}, {"address": {"b@example.org"}, "expires": {"2001-01-01T00:00"}},
		{"address": {"b@example.org"}, "scope": {"a@b"}}} {
		bad.Set("csrf", csrf)
		resp, body := post(t, c, s.srv.URL+"/suppressions", bad, same)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, `class="error"`) {
			t.Errorf("bad form %v: %d", bad, resp.StatusCode)
		}
	}
	if _, err := s.store.LookupSuppression(ctx, "b@example.org", ""); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("a bad form stored an entry: %v", err)
	}
	resp, _ = post(t, c, s.srv.URL+"/suppressions/remove", url.Values{"csrf": {csrf}, "address": {"ann@example.org"},
		"scope": {"shop.example"}}, same)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("remove: %d", resp.StatusCode)
	}
	if _, err := s.store.LookupSuppression(ctx, "ann@example.org", "shop.example"); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("still suppressed after remove: %v", err)
	}
	if resp, _ := post(t, c, s.srv.URL+"/suppressions/remove", url.Values{"csrf": {csrf}, "address": {"ann@example.org"},
		"scope": {"shop.example"}}, same); resp.StatusCode != http.StatusNotFound {
		t.Errorf("second remove: %d", resp.StatusCode)
	}
}

// TestHistoryOnMessagePage: bounces and complaints learnt after sending
// are listed on the message's page.
func TestHistoryOnMessagePage(t *testing.T) {
	s := newStack(t, []string{testToken}, false)
	id := s.send(t, `{"from":"a@example.com","to":["ok@example.org"],"subject":"history","text":"x"}`)
	s.waitStatus(t, id, queue.StatusDelivered)
	if err := s.store.AddRecipientEvents(context.Background(), []queue.RecipientEvent{{MessageID: id, Address: "ok@example.org",
		Type: queue.HistoryBounced, Code: 550, EnhancedCode: "5.1.1", Text: "mailbox <b>gone</b>"}}); err != nil {
		t.Fatal(err)
	}
	c := client(t)
	login(t, s, c)
	_, body := get(t, c, s.srv.URL+"/messages/"+id)
	if !strings.Contains(body, "After sending") || !strings.Contains(body, "s-bounced") || !strings.Contains(body, "mailbox &lt;b&gt;gone&lt;/b&gt;") {
		t.Errorf("message page without its history:\n%s", body)
	}
}

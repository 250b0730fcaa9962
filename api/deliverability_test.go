package api

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/outbox-mail/outbox/feedback"
	"github.com/outbox-mail/outbox/queue"
	"github.com/outbox-mail/outbox/unsubscribe"
)

func withFields(m map[string]any, kv ...any) map[string]any {
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	return m
}

// TestDeliverabilityFields: dsn, unsubscribe and ignore_suppressions are
// stored as the message's typed flags; bad values are refused naming
// their field and store nothing.
func TestDeliverabilityFields(t *testing.T) {
	e := setup(t, Config{Unsubscribe: true}, false)
	ctx := context.Background()
	id := e.send(withFields(simple("a@example.com", "b@example.com"), "dsn", map[string]any{"notify": []string{"failure", "Delay"},
		"ret": "hdrs", "envid": "order-42"}, "unsubscribe", true, "ignore_suppressions", true))
	m, err := e.store.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if m.DSN != (queue.DSN{Return: queue.DSNReturnHeaders, EnvID: "order-42"}) || !m.Unsubscribe || !m.IgnoreSuppressions {
		t.Errorf("flags %+v", m.Flags)
	}
	for _, r := range m.Recipients {
		if !reflect.DeepEqual(r.DSN.Notify, []string{"FAILURE", "DELAY"}) {
			t.Errorf("%s: NOTIFY %v", r.Address, r.DSN.Notify)
		}
	}
	plain, _ := e.store.Get(ctx, e.send(simple()))
	if plain.Flags != (queue.Flags{}) {
		t.Errorf("a plain message has flags %+v", plain.Flags)
	}
	before := e.total()
	for field, body := range map[string]map[string]any{
		"dsn.ret":                  withFields(simple(), "dsn", map[string]any{"ret": "all"}),
		"dsn.notify":               withFields(simple(), "dsn", map[string]any{"notify": []string{"never", "failure"}}),
		"dsn.envid":                withFields(simple(), "dsn", map[string]any{"envid": "é"}),
		"dsn.nottify":              withFields(simple(), "dsn", map[string]any{"nottify": "failure"}),
		"unsubscribe":              withFields(simple(), "unsubscribe", "yes"),
		"headers.List-Unsubscribe": withFields(simple(), "unsubscribe", true, "headers", map[string]string{"List-Unsubscribe": "<https://x>"}),
	} {
		r := e.postJSON(body)
		if r.Status/100 != 4 || r.apiErr(t).Field != field {
			t.Errorf("%s: %d %s", field, r.Status, r.Body)
		}
	}
	off := setup(t, Config{}, false)
	if r := off.postJSON(withFields(simple(), "unsubscribe", true)); r.Status != 422 || !strings.Contains(string(r.Body), "--public-url") {
		t.Errorf("unsubscribe on a server without links: %d %s", r.Status, r.Body)
	}
	if e.total() != before || off.total() != 0 {
		t.Error("a refused request stored something")
	}
}

// TestSuppressionsAPI: add (with and without expiry and scope), list
// with a filter and by pages, remove; bad input is refused naming the
// field; a message to a suppressed address is accepted and its
// recipient suppressed.
func TestSuppressionsAPI(t *testing.T) {
	e := setup(t, Config{Tokens: []string{"api-token-0123456789"}}, false)
	post := func(body string) *response {
		return e.do("POST", "/v1/suppressions", strings.NewReader(body), "Content-Type", "application/json")
	}
	exp := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	for _, body := range []string{`{"address":"Gone@Dest.test","reason":"asked by phone"}`,
		`{"address":"temp@dest.test","expires_at":"` + exp + `"}`, `{"address":"news@dest.test","scope":"shop.test"}`} {
		if r := post(body); r.Status != http.StatusCreated {
			t.Fatalf("POST %s: %d %s", body, r.Status, r.Body)
		}
	}
	for body, field := range map[string]string{`{"address":""}`: "address", `{"address":"not an address"}`: "address",
		`{"address":"Ann <a@dest.test>"}`: "address", `{"address":"a@dest.test","expires_at":"2001-01-01T00:00:00Z"}`: "expires_at",
		`{"address":"a@dest.test","expires_at":"tomorrow"}`: "expires_at", `{"address":"a@dest.test","scope":"x@y"}`: "scope",
		`{"address":"a@dest.test","cause":"bounced"}`: "cause"} {
		if r := post(body); r.Status/100 != 4 || r.apiErr(t).Field != field {
			t.Errorf("POST %s: %d %s, want an error on %s", body, r.Status, r.Body, field)
		}
	}
	var page SuppressionPage
	r := e.do("GET", "/v1/suppressions?limit=2", nil)
	r.decode(t, &page)
	if r.Status != 200 || len(page.Suppressions) != 2 || page.NextCursor == "" || page.Suppressions[0].Address != "gone@dest.test" ||
		page.Suppressions[0].Reason != "asked by phone" || page.Suppressions[0].Cause != "manual" {
		t.Fatalf("first page: %d %s", r.Status, r.Body)
	}
	var rest SuppressionPage
	e.do("GET", "/v1/suppressions?limit=2&cursor="+url.QueryEscape(page.NextCursor), nil).decode(t, &rest)
	if len(rest.Suppressions) != 1 || rest.Suppressions[0].Address != "temp@dest.test" || rest.Suppressions[0].ExpiresAt == nil || rest.NextCursor != "" {
		t.Errorf("second page: %+v", rest)
	}
	var filtered SuppressionPage
	e.do("GET", "/v1/suppressions?address=news", nil).decode(t, &filtered)
	if len(filtered.Suppressions) != 1 || filtered.Suppressions[0].Scope != "shop.test" {
		t.Errorf("filtered: %+v", filtered)
	}
	for _, q := range []string{"?limit=0", "?cursor=%21%21", "?address=%0a"} {
		if r := e.do("GET", "/v1/suppressions"+q, nil); r.Status != 400 {
			t.Errorf("GET %s: %d %s", q, r.Status, r.Body)
		}
	}
	// Suppressed: accepted (202), but never sent.
	id := e.send(simple("gone@dest.test", "ok@dest.test"))
	v := e.getView(id)
	if v.Recipients[0].Status != queue.RecipientSuppressed || !strings.Contains(v.Recipients[0].Text, "asked by phone") {
		t.Errorf("recipient to a suppressed address: %+v", v.Recipients[0])
	}
	if r := e.do("DELETE", "/v1/suppressions/gone@dest.test", nil); r.Status != http.StatusNoContent {
		t.Errorf("DELETE: %d %s", r.Status, r.Body)
	}
	if r := e.do("DELETE", "/v1/suppressions/gone@dest.test", nil); r.Status != 404 || r.apiErr(t).Field != "address" {
		t.Errorf("second DELETE: %d %s", r.Status, r.Body)
	}
	if r := e.do("DELETE", "/v1/suppressions/news@dest.test?scope=shop.test", nil); r.Status != http.StatusNoContent {
		t.Errorf("DELETE with scope: %d %s", r.Status, r.Body)
	}
	e.token = ""
	if r := e.do("GET", "/v1/suppressions", nil); r.Status != 401 {
		t.Errorf("GET without a token: %d", r.Status)
	}
	if r := e.do("DELETE", "/v1/suppressions/temp@dest.test", nil); r.Status != 401 {
		t.Errorf("DELETE without a token: %d", r.Status)
	}
}

// TestHistoryInMessage: GET /v1/messages/{id} lists the recipients'
// history.
func TestHistoryInMessage(t *testing.T) {
	e := setup(t, Config{}, true)
	id := e.send(simple("a@example.com"))
	e.waitStatus(id, queue.StatusDelivered)
	err := e.store.AddRecipientEvents(context.Background(), []queue.RecipientEvent{
		{MessageID: id, Address: "a@example.com", Type: queue.HistoryDelayed, EnhancedCode: "4.2.1", Text: "mailbox busy"},
		{MessageID: id, Address: "a@example.com", Type: queue.HistoryBounced, Code: 550, EnhancedCode: "5.1.1", Text: "no such user"}})
	if err != nil {
		t.Fatal(err)
	}
	v := e.getView(id)
	if len(v.History) != 2 || v.History[0].Type != queue.HistoryDelayed || v.History[1].Code != 550 ||
		v.History[1].Recipient != "a@example.com" || v.History[1].At.IsZero() {
		t.Errorf("history %+v", v.History)
	}
	if v.Status != queue.StatusFailed || v.Recipients[0].Status != queue.RecipientBounced {
		t.Errorf("after the bounce: %s, %+v", v.Status, v.Recipients[0])
	}
}

// TestOneClickUnsubscribe: GET shows the address and a button and
// changes nothing; the RFC 8058 POST suppresses the address for the
// token's domain and answers 200; a changed token is 404; a POST without
// the form field is 400; no login is asked for.
func TestOneClickUnsubscribe(t *testing.T) {
	e := setup(t, Config{Tokens: []string{"api-token-0123456789"}}, false)
	secret := bytes.Repeat([]byte("u"), 32)
	tokens, _ := unsubscribe.New(secret)
	fb, err := feedback.New(feedback.Config{Store: e.store, Tokens: tokens, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(NewUnsubscribe(fb, slog.New(slog.DiscardHandler)))
	t.Cleanup(srv.Close)
	tok, _ := tokens.Token(unsubscribe.Subscription{Domain: "shop.test", Address: "ann@dest.test", Issued: time.Now()})
	link := srv.URL + "/u/" + tok
	suppressed := func() bool {
		_, err := e.store.LookupSuppression(context.Background(), "ann@dest.test", "shop.test")
		return err == nil
	}
	resp, err := http.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Contains(page, []byte("ann@dest.test")) || !bytes.Contains(page, []byte(`name="List-Unsubscribe" value="One-Click"`)) ||
		resp.Header.Get("Referrer-Policy") != "no-referrer" {
		t.Fatalf("GET: %d %s", resp.StatusCode, page)
	}
	if suppressed() {
		t.Fatal("GET changed something")
	}
	post := func(u, ct, body string) int {
		t.Helper()
		resp, err := http.Post(u, ct, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post(link, "application/x-www-form-urlencoded", "List-Unsubscribe=Yes"); code != 400 || suppressed() {
		t.Errorf("POST without One-Click: %d", code)
	}
	if code := post(srv.URL+"/u/"+tok[:len(tok)-3]+"AAA", "application/x-www-form-urlencoded", unsubscribe.PostValue); code != 404 {
		t.Errorf("POST with a changed token: %d", code)
	}
	if code := post(link, "application/x-www-form-urlencoded", unsubscribe.PostValue); code != 200 || !suppressed() {
		t.Fatalf("RFC 8058 POST: %d, suppressed %v", code, suppressed())
	}
	if _, err := e.store.LookupSuppression(context.Background(), "ann@dest.test", "other.test"); err == nil {
		t.Error("unsubscribing from shop.test stopped other senders")
	}
}

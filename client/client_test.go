package client_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/outbox-mail/outbox"
	"github.com/outbox-mail/outbox/api"
	"github.com/outbox-mail/outbox/client"
	"github.com/outbox-mail/outbox/queue"
	"github.com/outbox-mail/outbox/queue/sqlite"
)

const token = "client-test-token-0123456789"

// daemon is the API over a real SQLite store, delivering to capture
// unless deliver is false.
type daemon struct {
	srv   *httptest.Server
	store queue.Store
	ob    *outbox.Client
}

func start(t *testing.T, deliver bool) *daemon {
	t.Helper()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "outbox.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	changes := api.NewChanges()
	ob, err := outbox.New(outbox.Config{Store: st, Logger: slog.New(slog.DiscardHandler),
		OnEnqueue: func(string, queue.Source) { changes.Notify() },
		OnResult:  func(*queue.Claimed, *queue.Result) { changes.Notify() }})
	if err != nil {
		t.Fatal(err)
	}
	if deliver {
		if err := ob.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ob.Shutdown(context.Background()) })
	}
	h, err := api.New(api.Config{Client: ob, Tokens: []string{token}, Logger: slog.New(slog.DiscardHandler), Changes: changes})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &daemon{srv: srv, store: st, ob: ob}
}

func (d *daemon) client(t *testing.T) *client.Client {
	c, err := client.New(d.srv.URL+"/", client.Options{Token: token})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func reset(to string) *client.Email {
	return &client.Email{From: "Shop <shop@example.com>", To: []string{to}, Subject: "Reset your password",
		Text: "Follow https://shop.test/reset?t=1 to reset it.",
		HTML: `<a href="https://shop.test/reset?t=1">Reset</a> <img src="cid:logo">`,
		Attachments: []client.Attachment{{Filename: "terms.txt", ContentType: "text/plain", Content: []byte("the terms")},
			{Filename: "logo.png", ContentType: "image/png", Content: []byte("\x89PNG"), Inline: true, ContentID: "logo"}}}
}

// TestCaptureWorkflow is what an application's test does: send, wait for
// the mail, read its content and parts, then empty the inbox.
func TestCaptureWorkflow(t *testing.T) {
	ctx := t.Context()
	d := start(t, true)
	c := d.client(t)
	if err := c.Health(ctx); err != nil {
		t.Fatal(err)
	}
	if r, err := c.Ready(ctx); err != nil || !r.Ready {
		t.Fatalf("Ready = %+v, %v", r, err)
	}
	got := make(chan *client.Message, 1)
	go func() {
		m, err := c.Wait(ctx, client.ListOptions{To: "ann@example.org", Subject: "reset"}, 20*time.Second)
		if err != nil {
			t.Error(err)
		}
		got <- m
	}()
	id, err := c.Send(ctx, reset("Ann <ann@example.org>"), &client.SendOptions{IdempotencyKey: "reset-1"})
	if err != nil {
		t.Fatal(err)
	}
	if again, err := c.Send(ctx, reset("Ann <ann@example.org>"), &client.SendOptions{IdempotencyKey: "reset-1"}); err != nil || again != id {
		t.Errorf("a repeated idempotency key gave %q, %v; want %s", again, err, id)
	}
	if m := <-got; m == nil || m.ID != id {
		t.Fatalf("Wait gave %+v, want message %s", m, id)
	}
	content, err := c.Content(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(content.Links) != 1 || content.Links[0] != "https://shop.test/reset?t=1" || content.To[0].Name != "Ann" ||
		content.Header("subject") != "Reset your password" || len(content.Attachments) != 1 || len(content.Inline) != 1 {
		t.Fatalf("content %+v", content)
	}
	for _, p := range []client.Part{content.Attachments[0], content.Inline[0]} {
		dl, err := c.Attachment(ctx, id, p.Index)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(dl)
		dl.Close()
		sum := sha256.Sum256(b)
		if hex.EncodeToString(sum[:]) != p.SHA256 || dl.Filename != p.Name || dl.ContentType != p.ContentType {
			t.Errorf("part %d: %d bytes, name %q, type %q; listed %+v", p.Index, len(b), dl.Filename, dl.ContentType, p)
		}
	}
	rc, err := c.Raw(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Contains(raw, []byte("Subject: Reset your password\r\n")) {
		t.Errorf("raw message lacks its subject: %.300q", raw)
	}
	waitFinal(t, c, id)
	if n, err := c.DeleteMatching(ctx, client.DeleteFilter{}); err != nil || n != 1 {
		t.Fatalf("DeleteMatching = %d, %v", n, err)
	}
	if p, err := c.List(ctx, client.ListOptions{}); err != nil || len(p.Messages) != 0 {
		t.Fatalf("after emptying the inbox: %+v, %v", p, err)
	}
	if _, err := c.Wait(ctx, client.ListOptions{To: "ann@example.org"}, 200*time.Millisecond); !errors.Is(err, client.ErrTimeout) {
		t.Errorf("Wait on an empty inbox: %v, want ErrTimeout", err)
	}
}

func waitFinal(t *testing.T, c *client.Client, id string) *client.Message {
	t.Helper()
	for i := 0; ; i++ {
		m, err := c.Get(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		if m.Status.Final() {
			return m
		}
		if i > 1000 {
			t.Fatalf("message %s still %s", id, m.Status)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestSteeringAndErrors: the steering calls, bulk ones included, and the
// API's errors as *client.Error with status, sentence and field.
func TestSteeringAndErrors(t *testing.T) {
	ctx := t.Context()
	d := start(t, false)
	c := d.client(t)
	later := time.Now().Add(time.Hour)
	var ids []string
	for _, to := range []string{"a@x.test", "b@x.test", "c@y.test"} {
		m := reset(to)
		m.SendAt = later
		id, err := c.Send(ctx, m, nil)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	raw := "From: a@example.com\r\nTo: z@y.test\r\nSubject: raw\r\n\r\nhello\r\n"
	rawID, err := c.SendRaw(ctx, strings.NewReader(raw), client.Envelope{SendAt: later}, nil)
	if err != nil {
		t.Fatal(err)
	}
	p1, err := c.List(ctx, client.ListOptions{To: "@x.test", Limit: 1})
	if err != nil || len(p1.Messages) != 1 || p1.Messages[0].ID != ids[1] || p1.NextCursor == "" {
		t.Fatalf("first page %+v, %v", p1, err)
	}
	p2, err := c.List(ctx, client.ListOptions{To: "@x.test", Limit: 1, Cursor: p1.NextCursor})
	if err != nil || len(p2.Messages) != 1 || p2.Messages[0].ID != ids[0] {
		t.Fatalf("second page %+v, %v", p2, err)
	}
	if m, err := c.Retry(ctx, ids[0]); err != nil || m.ID != ids[0] || m.Status != client.StatusQueued {
		t.Errorf("Retry = %+v, %v", m, err)
	}
	if n, err := c.RetryMatching(ctx, client.Selection{Status: client.StatusQueued, To: "@y.test"}); err != nil || n != 2 {
		t.Errorf("RetryMatching = %d, %v; want 2", n, err)
	}
	if n, err := c.CancelMatching(ctx, client.Selection{To: "@x.test"}); err != nil || n != 2 {
		t.Errorf("CancelMatching = %d, %v; want 2", n, err)
	}
	if m, err := c.Cancel(ctx, rawID); err != nil || m.Status != client.StatusCancelled {
		t.Errorf("Cancel = %+v, %v", m, err)
	}
	if _, err := c.Requeue(ctx, rawID); !client.IsConflict(err) {
		t.Errorf("Requeue of a cancelled message: %v, want a conflict", err)
	}
	if err := c.Delete(ctx, ids[2]); !client.IsConflict(err) {
		t.Errorf("Delete of a waiting message: %v, want a conflict", err)
	}
	if err := c.Delete(ctx, rawID); err != nil {
		t.Errorf("Delete of a cancelled message: %v", err)
	}
	var e *client.Error
	if _, err := c.Get(ctx, rawID); !client.IsNotFound(err) || !errors.As(err, &e) || e.Field != "id" ||
		!strings.Contains(err.Error(), "(HTTP 404)") {
		t.Errorf("Get of a deleted message: %v", err)
	}
	_, err = c.Send(ctx, &client.Email{From: "a@example.com", To: []string{"not an address"}, Text: "x"}, nil)
	if !errors.As(err, &e) || e.StatusCode != 422 || e.Field != "to[0]" || e.Temporary() {
		t.Errorf("bad address: %#v", err)
	}
	if _, err := c.CancelMatching(ctx, client.Selection{}); !errors.As(err, &e) || e.StatusCode != 400 {
		t.Errorf("CancelMatching with no filter: %v, want 400", err)
	}
	anon, _ := client.New(d.srv.URL, client.Options{})
	if _, err := anon.List(ctx, client.ListOptions{}); !errors.As(err, &e) || e.StatusCode != 401 {
		t.Errorf("no token: %v, want 401", err)
	}
	if _, err := client.New("ftp://x", client.Options{}); err == nil {
		t.Error("New accepted an ftp URL")
	}
}

// TestTypesCoverTheAPI decodes the API's answers strictly into the
// client's types: a field the API adds and the client lacks fails here.
// The answers hold every optional field the store can give them: a
// message with a history, suppression entries scoped, expiring, expired
// and caused by a message.
func TestTypesCoverTheAPI(t *testing.T) {
	ctx := t.Context()
	d := start(t, true)
	c := d.client(t)
	id, err := c.Send(ctx, reset("ann@example.org"), nil)
	if err != nil {
		t.Fatal(err)
	}
	waitFinal(t, c, id)
	err = d.store.AddRecipientEvents(ctx, []queue.RecipientEvent{{MessageID: id, Address: "ann@example.org",
		Type: queue.HistoryDelayed, Code: 451, EnhancedCode: "4.4.7", Text: "still trying further on"}})
	if err != nil {
		t.Fatal(err)
	}
	err = d.store.Suppress(ctx, []queue.Suppression{
		{Address: "gone@dest.test", Cause: queue.CauseBounced, MessageID: id, Reason: "550 5.1.1 no such user"},
		{Address: "old@dest.test", Scope: "shop.test", ExpiresAt: time.Now().Add(-time.Hour)}})
	if err != nil {
		t.Fatal(err)
	}
	exp := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	for _, c := range []struct {
		method, path, body string
		v                  any
	}{
		{"GET", "/v1/messages/" + id, "", &client.Message{}},
		{"GET", "/v1/messages?limit=1", "", &client.ListPage{}},
		{"GET", "/v1/messages/" + id + "/content", "", &client.Content{}},
		{"POST", "/v1/suppressions", `{"address":"a@dest.test","scope":"shop.test","reason":"r","expires_at":"` + exp + `"}`, &client.Suppression{}},
		{"GET", "/v1/suppressions", "", &client.SuppressionPage{}},
		{"GET", "/v1/suppressions?limit=1", "", &client.SuppressionPage{}},
	} {
		req, _ := http.NewRequest(c.method, d.srv.URL+c.path, strings.NewReader(c.body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		dec := json.NewDecoder(resp.Body)
		dec.DisallowUnknownFields()
		if err := dec.Decode(c.v); err != nil || resp.StatusCode/100 != 2 {
			t.Errorf("%s %s (%d) does not decode strictly into %T: %v", c.method, c.path, resp.StatusCode, c.v, err)
		}
		resp.Body.Close()
	}
}

// TestEmailCoversTheSendRequest: every property of the send request the
// OpenAPI description lists is a field of client.Email (send_at aside,
// which Email holds as a time), so the client can say all the API
// takes; and a message using the deliverability fields is stored with
// them.
func TestEmailCoversTheSendRequest(t *testing.T) {
	var doc struct {
		Components struct {
			Schemas map[string]struct {
				Properties map[string]any `json:"properties"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(api.OpenAPI(), &doc); err != nil {
		t.Fatal(err)
	}
	props := doc.Components.Schemas["SendRequest"].Properties
	if len(props) == 0 {
		t.Fatal("the description has no SendRequest properties")
	}
	fields := map[string]bool{"send_at": true}
	et := reflect.TypeFor[client.Email]()
	for i := range et.NumField() {
		name, _, _ := strings.Cut(et.Field(i).Tag.Get("json"), ",")
		fields[name] = true
	}
	for p := range props {
		if !fields[p] {
			t.Errorf("the send request takes %q, which client.Email has no field for", p)
		}
	}

	ctx := t.Context()
	d := start(t, false)
	c := d.client(t)
	no := false
	m := reset("ann@example.org")
	m.DSN = &client.DSN{Notify: []string{"failure", "delay"}, Ret: "hdrs", EnvID: "order-42"}
	m.Unsubscribe, m.IgnoreSuppressions = &no, true
	id, err := c.Send(ctx, m, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := d.store.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if st.DSN != (queue.DSN{Return: queue.DSNReturnHeaders, EnvID: "order-42"}) || !st.IgnoreSuppressions || st.Unsubscribe ||
		!reflect.DeepEqual(st.Recipients[0].DSN.Notify, []string{"FAILURE", "DELAY"}) {
		t.Errorf("stored flags %+v, recipient DSN %+v", st.Flags, st.Recipients[0].DSN)
	}
	yes := true
	m.Unsubscribe = &yes // the test daemon makes no links
	var e *client.Error
	if _, err := c.Send(ctx, m, nil); !errors.As(err, &e) || e.StatusCode != 422 || e.Field != "unsubscribe" {
		t.Errorf("unsubscribe on a daemon without --public-url: %v, want 422 on unsubscribe", err)
	}
}

package api

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/http"
	"net/mail"
	"net/textproto"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/outbox-mail/outbox/queue"
)

func TestPostWithAttachmentIsStoredAndDelivered(t *testing.T) {
	e := setup(t, Config{}, true)
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)                                                  // where large attachments are spilled
	pdf := bytes.Repeat([]byte("%PDF-1.4 binary \x00\x01\xff data "), 20000) // > spillSize
	id := e.send(map[string]any{
		"from": "Alice <alice@example.com>", "to": []string{"bob@example.com"},
		"cc": []string{"carol@example.com"}, "bcc": []string{"dave@example.com"},
		"reply_to": "replies@example.com",
		"subject":  "Report", "text": "See attached.",
		"headers": map[string]string{"X-Campaign": "q3"},
		"attachments": []map[string]any{
			{"filename": "report.pdf", "content_type": "application/pdf",
				"content": base64.StdEncoding.EncodeToString(pdf)},
			{"filename": "small.txt", "content": base64.StdEncoding.EncodeToString([]byte("tiny"))},
		},
	})
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("temporary attachment files left behind: %v", left)
	}
	v := e.getView(id)
	if v.ID != id || v.Subject != "Report" || len(v.Recipients) != 3 {
		t.Fatalf("GET shows %+v", v)
	}
	parts := readStoredParts(t, e, id)
	if parts["report.pdf"] == nil || !bytes.Equal(parts["report.pdf"], pdf) {
		t.Errorf("stored report.pdf differs (%d bytes, want %d)", len(parts["report.pdf"]), len(pdf))
	}
	if string(parts["small.txt"]) != "tiny" {
		t.Errorf("stored small.txt = %q", parts["small.txt"])
	}

	v = e.waitStatus(id, queue.StatusDelivered)
	for _, r := range v.Recipients {
		if r.Status != queue.RecipientDelivered || r.Code != 250 || r.EnhancedCode == "" {
			t.Errorf("recipient %+v", r)
		}
	}
	if len(v.Attempts) == 0 || v.Attempts[0].Route != "capture" {
		t.Errorf("attempts = %+v", v.Attempts)
	}
}

// readStoredParts parses the stored body and returns attachments by name.
func readStoredParts(t *testing.T, e *env, id string) map[string][]byte {
	t.Helper()
	rc, err := e.store.OpenBody(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	msg, err := mail.ReadMessage(rc)
	if err != nil {
		t.Fatal(err)
	}
	if msg.Header.Get("Bcc") != "" {
		t.Error("stored message shows Bcc")
	}
	if msg.Header.Get("X-Campaign") != "q3" || msg.Header.Get("Reply-To") == "" {
		t.Errorf("stored headers: %v", msg.Header)
	}
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil || !strings.HasPrefix(mt, "multipart/") {
		t.Fatalf("Content-Type %q: %v", msg.Header.Get("Content-Type"), err)
	}
	out := map[string][]byte{}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if p.FileName() == "" {
			continue
		}
		if p.Header.Get("Content-Transfer-Encoding") != "base64" {
			t.Errorf("%s: encoding %q", p.FileName(), p.Header.Get("Content-Transfer-Encoding"))
		}
		b, err := io.ReadAll(base64.NewDecoder(base64.StdEncoding, p))
		if err != nil {
			t.Fatal(err)
		}
		out[p.FileName()] = b
	}
}

func TestIdempotencyKey(t *testing.T) {
	e := setup(t, Config{}, false)
	first := e.postJSON(simple(), "Idempotency-Key", "order-42")
	second := e.postJSON(simple(), "Idempotency-Key", "order-42")
	if first.Status != http.StatusAccepted || !bytes.Equal(first.Body, second.Body) {
		t.Fatalf("first %d %s, second %d %s", first.Status, first.Body, second.Status, second.Body)
	}
	if n := e.total(); n != 1 {
		t.Errorf("store holds %d messages, want 1", n)
	}
	e.send(simple(), "Idempotency-Key", "order-43")
	if n := e.total(); n != 2 {
		t.Errorf("store holds %d messages, want 2", n)
	}
}

func TestTemplateSubmission(t *testing.T) {
	e := setup(t, Config{}, false)
	id := e.send(map[string]any{
		"from": "site@example.com", "to": []string{"owner@example.com"},
		"template": map[string]any{"name": "contact", "data": map[string]any{
			"sender_name": "Eve", "sender_email": "eve@example.com",
			"comment": "<script>alert(1)</script>"}},
	})
	v := e.getView(id)
	if v.Subject != "Contact form: message from Eve" {
		t.Errorf("subject = %q", v.Subject)
	}
	parts := textParts(t, storedBody(t, e, id))
	if !strings.Contains(parts["text/html"], "&lt;script&gt;alert(1)&lt;/script&gt;") ||
		strings.Contains(parts["text/html"], "<script>") {
		t.Errorf("HTML part not escaped:\n%s", parts["text/html"])
	}
	if !strings.Contains(parts["text/plain"], "<script>alert(1)</script>") {
		t.Errorf("text part lacks the comment:\n%s", parts["text/plain"])
	}

	// An explicit subject wins over the template's.
	id = e.send(map[string]any{
		"from": "site@example.com", "to": []string{"owner@example.com"}, "subject": "Mine",
		"template": map[string]any{"name": "comment", "data": map[string]any{
			"sender_email": "a@example.com", "comment": "c", "post_url": "https://example.com/p"}},
	})
	if s := e.getView(id).Subject; s != "Mine" {
		t.Errorf("subject = %q, want the explicit one", s)
	}
}

func TestRawUpload(t *testing.T) {
	e := setup(t, Config{}, false)
	msg := lines("From: Alice <alice@example.com>\nTo: bob@example.com, Carol <carol@example.com>\n" +
		"Cc: dan@example.com\nBcc: secret@example.com,\n hidden@example.com\nSubject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\n\nHello.\n")
	r := e.do("POST", "/v1/messages/raw", strings.NewReader(msg), "Content-Type", "message/rfc822")
	if r.Status != http.StatusAccepted {
		t.Fatalf("raw from headers: %d %s", r.Status, r.Body)
	}
	var a accepted
	r.decode(t, &a)
	v := e.getView(a.ID)
	got := []string{}
	for _, rc := range v.Recipients {
		got = append(got, rc.Address)
	}
	want := "bob@example.com carol@example.com dan@example.com secret@example.com hidden@example.com"
	if strings.Join(got, " ") != want || v.From != "alice@example.com" || v.Subject != "Grüße" {
		t.Errorf("envelope %s -> %v, subject %q; want %s", v.From, got, v.Subject, want)
	}
	body := storedBody(t, e, a.ID)
	if strings.Contains(body, "Bcc") || strings.Contains(body, "hidden@") {
		t.Errorf("stored message keeps Bcc:\n%s", body)
	}
	if !strings.HasSuffix(body, "\r\n\r\nHello.\r\n") || !strings.Contains(body, "Cc: dan@example.com\r\nSubject:") {
		t.Errorf("stored message altered:\n%q", body)
	}

	r = e.do("POST", "/v1/messages/raw?from=bounce@example.com&to=x@example.com&to=y@example.com",
		strings.NewReader(msg))
	if r.Status != http.StatusAccepted {
		t.Fatalf("raw from query: %d %s", r.Status, r.Body)
	}
	r.decode(t, &a)
	v = e.getView(a.ID)
	if v.From != "bounce@example.com" || len(v.Recipients) != 2 || v.Recipients[1].Address != "y@example.com" {
		t.Errorf("query envelope: %+v", v)
	}

	// send_at and Idempotency-Key apply to raw uploads too.
	later := time.Now().Add(2 * time.Hour).UTC()
	path := "/v1/messages/raw?send_at=" + later.Format(time.RFC3339)
	r1 := e.do("POST", path, strings.NewReader(msg), "Idempotency-Key", "raw-1")
	r2 := e.do("POST", path, strings.NewReader(msg), "Idempotency-Key", "raw-1")
	if r1.Status != http.StatusAccepted || !bytes.Equal(r1.Body, r2.Body) {
		t.Fatalf("idempotent raw: %d %s / %d %s", r1.Status, r1.Body, r2.Status, r2.Body)
	}
	r1.decode(t, &a)
	if v := e.getView(a.ID); v.NextAttemptAt == nil || v.NextAttemptAt.Before(later.Add(-time.Minute)) {
		t.Errorf("send_at ignored: %+v", v.NextAttemptAt)
	}
	if n := e.total(); n != 3 {
		t.Errorf("store holds %d messages, want 3", n)
	}
}

// textParts returns the decoded text parts of a message by media type,
// descending into nested multiparts.
func textParts(t *testing.T, raw string) map[string]string {
	t.Helper()
	msg, err := mail.ReadMessage(strings.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	collectParts(t, textproto.MIMEHeader(msg.Header), msg.Body, out)
	return out
}

func collectParts(t *testing.T, h textproto.MIMEHeader, body io.Reader, out map[string]string) {
	t.Helper()
	mt, params, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil {
		t.Fatalf("Content-Type %q: %v", h.Get("Content-Type"), err)
	}
	if strings.HasPrefix(mt, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			p, err := mr.NextRawPart()
			if err == io.EOF {
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			collectParts(t, p.Header, p, out)
		}
	}
	switch strings.ToLower(h.Get("Content-Transfer-Encoding")) {
	case "base64":
		body = base64.NewDecoder(base64.StdEncoding, body)
	case "quoted-printable":
		body = quotedprintable.NewReader(body)
	}
	b, err := io.ReadAll(body)
	if err != nil {
		t.Fatal(err)
	}
	out[mt] = string(b)
}

func storedBody(t *testing.T, e *env, id string) string {
	t.Helper()
	rc, err := e.store.OpenBody(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestRawBadInput(t *testing.T) {
	e := setup(t, Config{MaxMessageSize: 4096}, false)
	cases := []struct {
		name, query, body string
		status            int
		field             string
	}{
		{"empty", "", "", 400, ""},
		{"no recipients", "", "From: a@example.com\r\nSubject: x\r\n\r\nbody", 422, "to"},
		{"no sender", "", "To: b@example.com\r\n\r\nbody", 422, "from"},
		{"bad to header", "", "From: a@example.com\r\nTo: not an address\r\n\r\nx", 422, "header.To"},
		{"bad query to", "?to=bad@", "From: a@example.com\r\n\r\nx", 422, "to[0]"},
		{"too large", "", "From: a@example.com\r\nTo: b@example.com\r\n\r\n" + strings.Repeat("x", 5000), 413, ""},
		{"body over limit in header", "?from=a@example.com&to=b@example.com", "X: " + strings.Repeat("y", 300<<10), 413, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.do("POST", "/v1/messages/raw"+c.query, strings.NewReader(c.body))
			if r.Status != c.status {
				t.Fatalf("status %d %s, want %d", r.Status, r.Body, c.status)
			}
			if got := r.apiErr(t); got.Field != c.field {
				t.Errorf("field %q, want %q (%s)", got.Field, c.field, got.Msg)
			}
			if n := e.total(); n != 0 {
				t.Errorf("store holds %d messages after bad input", n)
			}
		})
	}
}

func TestRawHeaderBlockBound(t *testing.T) {
	e := setup(t, Config{MaxMessageSize: 4 << 20}, false)
	body := "From: a@example.com\r\nTo: b@example.com\r\nX-Long: " + strings.Repeat("y", 300<<10) + "\r\n\r\nbody"
	r := e.do("POST", "/v1/messages/raw", strings.NewReader(body))
	if r.Status != http.StatusRequestEntityTooLarge || !strings.Contains(r.apiErr(t).Msg, "header block") {
		t.Fatalf("status %d %s, want 413 about the header block", r.Status, r.Body)
	}
	if n := e.total(); n != 0 {
		t.Errorf("store holds %d messages", n)
	}
	// A large body after a small header streams through.
	body = "From: a@example.com\r\nTo: b@example.com\r\nDate: Sun, 01 Mar 2026 12:00:00 +0000\r\nMessage-ID: <big@example.com>\r\n\r\n" +
		strings.Repeat("line of body text\r\n", 100000)
	r = e.do("POST", "/v1/messages/raw", strings.NewReader(body))
	if r.Status != http.StatusAccepted {
		t.Fatalf("large raw body: %d %s", r.Status, r.Body)
	}
	var a accepted
	r.decode(t, &a)
	if got := storedBody(t, e, a.ID); got != body {
		t.Errorf("stored body differs: %d bytes, want %d", len(got), len(body))
	}
}

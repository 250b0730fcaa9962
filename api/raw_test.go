package api

import (
	"net/http"
	"strings"
	"testing"
)

// A raw upload loses its Resent-Bcc fields as well as its Bcc ones, folded
// lines included; every other byte, body lines that look like Bcc fields
// among them, is stored as sent. Resent-Bcc does not give recipients, so
// with the envelope taken from the headers such a message is refused
// rather than its Resent-Bcc recipients silently dropped; with the
// envelope in the query it is accepted.
func TestRawStripsResentBcc(t *testing.T) {
	e := setup(t, Config{}, false)
	kept := lines("Date: Sun, 01 Mar 2026 12:00:00 +0000\nMessage-ID: <raw@example.com>\nFrom: alice@example.com\nTo: bob@example.com\nSubject: hi\n")
	msg := kept[:len(kept)-len(lines("Subject: hi\n"))] +
		lines("Resent-Bcc: resent-hidden@example.com,\n\tother-hidden@example.com\nSubject: hi\nBcc: hidden@example.com\n")
	body := lines("\nResent-Bcc: body text\nBcc: body text\n")
	r := e.do("POST", "/v1/messages/raw", strings.NewReader(msg+body), "Content-Type", "message/rfc822")
	if r.Status != http.StatusBadRequest || r.apiErr(t).Field != "header.Resent-Bcc" {
		t.Fatalf("Resent-Bcc with the envelope from headers: %d %s, want 400 naming header.Resent-Bcc", r.Status, r.Body)
	}
	if n := e.total(); n != 0 {
		t.Fatalf("%d messages stored", n)
	}
	r = e.do("POST", "/v1/messages/raw?to=bob@example.com&to=hidden@example.com", strings.NewReader(msg+body), "Content-Type", "message/rfc822")
	if r.Status != http.StatusAccepted {
		t.Fatalf("raw upload: %d %s", r.Status, r.Body)
	}
	var a accepted
	r.decode(t, &a)
	if got, want := storedBody(t, e, a.ID), kept+body; got != want {
		t.Errorf("stored %q, want %q", got, want)
	}
	var rcpts []string
	for _, rc := range e.getView(a.ID).Recipients {
		rcpts = append(rcpts, rc.Address)
	}
	if got := strings.Join(rcpts, " "); got != "bob@example.com hidden@example.com" {
		t.Errorf("recipients %s", got)
	}
}

package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outbox-mail/outbox/api"

	"github.com/outbox-mail/outbox/queue"
)

func TestQueueList(t *testing.T) {
	d := startDaemon(t)
	a := sendOne(t, "First message")
	b := sendOne(t, "Second message with a subject far too long to show whole in a table", "--to", "more@example.com")
	d.waitStatus(t, a, queue.StatusDelivered)
	d.waitStatus(t, b, queue.StatusDelivered)

	code, out, errOut := runOutbox(t, "queue", "list")
	if code != 0 || errOut != "" {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "ID") || !strings.Contains(lines[0], "NEXT ATTEMPT") {
		t.Fatalf("table:\n%s", out)
	}
	for _, want := range []string{a, b, "First message", "delivered", "rcpt@example.com +1", "sender@example.com", "…"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "next page") {
		t.Errorf("a single page offers a next one:\n%s", out)
	}

	code, out, _ = runOutbox(t, "queue", "list", "--json", "--status", "delivered")
	var page api.ListPage
	if err := json.Unmarshal([]byte(out), &page); code != 0 || err != nil || len(page.Messages) != 2 {
		t.Fatalf("--json: exit %d, %v, %d messages:\n%s", code, err, len(page.Messages), out)
	}
	code, out, _ = runOutbox(t, "queue", "list", "--status", "failed")
	if code != 0 || !strings.Contains(out, "(no messages)") {
		t.Errorf("--status failed: exit %d:\n%s", code, out)
	}
}

func TestQueueListPages(t *testing.T) {
	startDaemon(t)
	ids := map[string]bool{sendOne(t, "one"): true, sendOne(t, "two"): true}
	seen := map[string]bool{}
	args := []string{"queue", "list", "--limit", "1"}
	for page := 0; ; page++ {
		code, out, errOut := runOutbox(t, args...)
		if code != 0 || page > 2 {
			t.Fatalf("page %d: exit %d, stderr %q\n%s", page, code, errOut, out)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		for id := range ids {
			if strings.HasPrefix(lines[1], id+" ") {
				seen[id] = true
			}
		}
		last := lines[len(lines)-1]
		cmd, ok := strings.CutPrefix(last, "next page: outbox queue list --cursor ")
		if !ok {
			break
		}
		args = []string{"queue", "list", "--limit", "1", "--cursor", cmd}
	}
	if len(seen) != 2 {
		t.Errorf("pages showed %v of %v", seen, ids)
	}
}

func TestQueueShow(t *testing.T) {
	d := startDaemon(t)
	id := sendOne(t, "Show me", "--cc", "cc@example.net")
	d.waitStatus(t, id, queue.StatusDelivered)
	code, out, errOut := runOutbox(t, "queue", "show", id, "-v")
	if code != 0 || errOut != "" {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	for _, want := range []string{"ID:", id, "Status:", "delivered", "Subject:", "Show me",
		"ADDRESS", "ENHANCED", "rcpt@example.com", "cc@example.net", "250", "2.0.0", "Attempts:", "#1"} {
		if !strings.Contains(out, want) {
			t.Errorf("show lacks %q:\n%s", want, out)
		}
	}
	code, out, _ = runOutbox(t, "queue", "show", "--json", id)
	var m api.Message
	if err := json.Unmarshal([]byte(out), &m); code != 0 || err != nil || m.ID != id || len(m.Recipients) != 2 || m.Recipients[0].Code != 250 {
		t.Errorf("--json: exit %d, %v:\n%s", code, err, out)
	}
}

func TestQueueRetryDelivered(t *testing.T) {
	d := startDaemon(t)
	id := sendOne(t, "Done already")
	d.waitStatus(t, id, queue.StatusDelivered)
	code, out, errOut := runOutbox(t, "queue", "retry", id, "--include-failed")
	line := oneLine(t, errOut)
	if code != 1 || out != "" || !strings.Contains(line, "already final") || !strings.HasSuffix(line, "(HTTP 409)") {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out, line)
	}
}

func TestQueueCancelScheduled(t *testing.T) {
	d := startDaemon(t)
	later := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	id := sendOne(t, "Later", "--send-at", later)
	m := d.waitStatus(t, id, queue.StatusQueued)
	if m.NextAttemptAt.Before(time.Now().Add(50 * time.Minute)) {
		t.Errorf("next attempt %v, want about %s", m.NextAttemptAt, later)
	}
	code, out, errOut := runOutbox(t, "queue", "cancel", id)
	if code != 0 || errOut != "" || oneLine(t, out) != id+": cancelled" {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	d.waitStatus(t, id, queue.StatusCancelled)
	code, _, errOut = runOutbox(t, "queue", "cancel", id)
	if code != 1 || !strings.Contains(errOut, "HTTP 409") {
		t.Errorf("second cancel: exit %d, stderr %q", code, errOut)
	}
}

func TestQueueNotFound(t *testing.T) {
	startDaemon(t)
	for _, sub := range []string{"show", "retry", "cancel"} {
		code, out, errOut := runOutbox(t, "queue", sub, "no-such-id")
		line := oneLine(t, errOut)
		if code != 1 || out != "" || line != `outbox queue: message "no-such-id" not found (HTTP 404)` {
			t.Errorf("%s: exit %d, stdout %q, stderr %q", sub, code, out, line)
		}
	}
}

func TestQueueUsage(t *testing.T) {
	startDaemon(t)
	for _, args := range [][]string{
		{"queue"}, {"queue", "bogus"}, {"queue", "show"}, {"queue", "retry"},
		{"queue", "cancel", "a", "b"}, {"queue", "list", "--bogus"}, {"queue", "list", "extra"},
		{"queue", "list", "--limit", "many"},
	} {
		code, out, errOut := runOutbox(t, args...)
		if line := oneLine(t, errOut); code != 2 || out != "" || !strings.HasPrefix(line, "outbox queue: ") {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, out, line)
		}
	}
}

// TestQueueNeutralisesControls stores a message whose subject, sender
// and recipient carry terminal escape sequences, as a raw submission
// can, and checks that none reaches the output raw.
func TestQueueNeutralisesControls(t *testing.T) {
	d := startDaemon(t)
	evil := "\x1b]0;owned\a\x1b[2J\u009b31mRed"
	id, err := d.client.EnqueueRaw(context.Background(), queue.NewMessage{
		From: "sender@example.com", Recipients: []string{"rcpt@example.com"},
		Subject: evil, Body: strings.NewReader("Subject: x\r\n\r\nhi\r\n"),
		SendAt: time.Now().Add(time.Hour),
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"queue", "list"}, {"queue", "list", "--json"}, {"queue", "show", id}, {"queue", "show", id, "--json"},
	} {
		code, out, errOut := runOutbox(t, args...)
		if code != 0 || errOut != "" {
			t.Fatalf("%v: exit %d, stderr %q", args, code, errOut)
		}
		if strings.ContainsAny(out, "\x1b\a\u009b") {
			t.Errorf("%v: control characters reach the terminal: %q", args, out)
		}
		if !strings.Contains(out, "Red") {
			t.Errorf("%v: subject missing:\n%s", args, out)
		}
	}
	_, out, _ := runOutbox(t, "queue", "show", id, "--json")
	var m api.Message
	if err := json.Unmarshal([]byte(out), &m); err != nil || m.Subject != evil {
		t.Errorf("--json does not keep the subject: %v, %q", err, m.Subject)
	}
}

// An unknown --transcripts policy is a usage error naming the flag, before
// anything is opened.
func TestServeTranscriptsFlag(t *testing.T) {
	db := "sqlite:" + filepath.Join(t.TempDir(), "o.db")
	code, out, errOut := runOutbox(t, "serve", "--db", db, "--transcripts", "some", "--http", "127.0.0.1:0", "--smtp", "off")
	if line := oneLine(t, errOut); code != 2 || out != "" || !strings.Contains(line, "--transcripts") {
		t.Errorf("exit %d, stdout %q, stderr %q; want exit 2 naming --transcripts", code, out, line)
	}
}

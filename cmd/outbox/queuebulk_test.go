package main

import (
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/outbox-mail/outbox/client"
	"github.com/outbox-mail/outbox/queue"
)

type cliResult struct {
	code        int
	out, errOut string
}

// runAsync runs the CLI in the background, for a command that waits.
func runAsync(t *testing.T, args ...string) <-chan cliResult {
	done := make(chan cliResult, 1)
	go func() {
		code, out, errOut := runOutbox(t, args...)
		done <- cliResult{code, out, errOut}
	}()
	return done
}

func TestQueueWait(t *testing.T) {
	d := startDaemon(t)
	done := runAsync(t, "queue", "wait", "--to", "rcpt@example.com", "--subject", "reset", "--status", "delivered", "--timeout", "20s")
	sendOne(t, "Something else")
	id := sendOne(t, "Reset your password", "--text", "Go to https://shop.test/r?t=42 now.")
	r := <-done
	if r.code != 0 || r.errOut != "" || oneLine(t, r.out) != id {
		t.Fatalf("wait: exit %d, stdout %q, stderr %q; want %s", r.code, r.out, r.errOut, id)
	}
	d.waitStatus(t, id, queue.StatusDelivered)

	code, out, errOut := runOutbox(t, "queue", "wait", "--to", "rcpt@example.com", "--subject", "reset", "--json")
	var c client.Content
	if err := json.Unmarshal([]byte(out), &c); code != 0 || err != nil || c.ID != id || len(c.Links) != 1 || c.Links[0] != "https://shop.test/r?t=42" {
		t.Fatalf("wait --json: exit %d, %v, stderr %q:\n%s", code, err, errOut, out)
	}

	start := time.Now()
	code, out, errOut = runOutbox(t, "queue", "wait", "--to", "nobody@example.org", "--subject", "x", "--timeout", "300ms")
	if line := oneLine(t, errOut); code != 1 || out != "" || time.Since(start) < 300*time.Millisecond ||
		line != `outbox queue: no message to nobody@example.org with subject "x" arrived within 300ms` {
		t.Errorf("wait that times out: exit %d, stdout %q, stderr %q", code, out, line)
	}
}

func TestQueueShowRaw(t *testing.T) {
	d := startDaemon(t)
	id := sendOne(t, "Raw please")
	code, out, errOut := runOutbox(t, "queue", "show", id, "--raw")
	rc, err := d.store.OpenBody(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	stored, _ := io.ReadAll(rc)
	rc.Close()
	if code != 0 || errOut != "" || out != string(stored) {
		t.Errorf("show --raw: exit %d, stderr %q, %d bytes (stored %d)", code, errOut, len(out), len(stored))
	}
	if code, _, errOut := runOutbox(t, "queue", "show", "nope", "--raw"); code != 1 || !strings.Contains(errOut, `message "nope" not found`) {
		t.Errorf("show --raw of no message: exit %d, stderr %q", code, errOut)
	}
}

func TestQueueBulkSteerAndDelete(t *testing.T) {
	d := startDaemon(t)
	later := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	a := sendOne(t, "later a", "--send-at", later, "--to", "a@x.test")
	b := sendOne(t, "later b", "--send-at", later, "--to", "b@y.test")
	done := sendOne(t, "now")
	d.waitStatus(t, done, queue.StatusDelivered)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"queue", "retry", "--all-deferred"}, "retried 0 messages"},
		{[]string{"queue", "cancel", "--to", "@x.test"}, "cancelled 1 message"},
		{[]string{"queue", "delete", b}, ""},
		{[]string{"queue", "delete", a}, a + ": deleted"},
		{[]string{"queue", "cancel", "--all"}, "cancelled 1 message"},
		{[]string{"queue", "delete", "--all", "--status", "cancelled"}, "deleted 1 message"},
		{[]string{"queue", "delete", "--all"}, "deleted 1 message"},
	} {
		code, out, errOut := runOutbox(t, tc.args...)
		switch {
		case tc.want == "":
			if code != 1 || !strings.Contains(errOut, "cancel it first") || !strings.Contains(errOut, "HTTP 409") {
				t.Errorf("%v: exit %d, stderr %q; want the 409", tc.args, code, errOut)
			}
		case code != 0 || errOut != "" || oneLine(t, out) != tc.want:
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want %q", tc.args, code, out, errOut, tc.want)
		}
	}
	if n := d.count(t); n != 0 {
		t.Errorf("%d messages left", n)
	}
	for _, args := range [][]string{
		{"queue", "delete"}, {"queue", "delete", "--all", "x"}, {"queue", "retry", "id", "--all-deferred"},
		{"queue", "retry", "--all-deferred", "--status", "queued"}, {"queue", "cancel", "--before", "soon"},
		{"queue", "wait", "extra"}, {"queue", "show", "x", "--raw", "--json"},
	} {
		code, out, errOut := runOutbox(t, args...)
		if line := oneLine(t, errOut); code != 2 || out != "" || !strings.HasPrefix(line, "outbox queue: ") {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want a usage error", args, code, out, line)
		}
	}
}

package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"net/mail"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outbox-mail/outbox"
	"github.com/outbox-mail/outbox/api"
	"github.com/outbox-mail/outbox/queue"
	"github.com/outbox-mail/outbox/queue/sqlite"
)

// daemon is the real API handler over a real outbox and SQLite store,
// delivering with the capture transport, served on loopback.
type daemon struct {
	url    string
	client *outbox.Client
	store  queue.Store
}

// startDaemon starts a daemon and points OUTBOX_URL and OUTBOX_TOKEN at it.
func startDaemon(t *testing.T) *daemon {
	t.Helper()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "o.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	changes := api.NewChanges()
	c, err := outbox.New(outbox.Config{Store: st, PollInterval: 50 * time.Millisecond,
		Logger: slog.New(slog.DiscardHandler), OnResult: func(*queue.Claimed, *queue.Result) { changes.Notify() }})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c.Shutdown(ctx)
	})
	h, err := api.New(api.Config{Client: c, Tokens: []string{"tok"}, Logger: slog.New(slog.DiscardHandler), Changes: changes})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	t.Setenv("OUTBOX_URL", srv.URL)
	t.Setenv("OUTBOX_TOKEN", "tok")
	return &daemon{url: srv.URL, client: c, store: st}
}

// waitStatus waits until message id has status want.
func (d *daemon) waitStatus(t *testing.T, id string, want queue.Status) *queue.Message {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		m, err := d.store.Get(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if m.Status == want {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("message %s is %s, want %s", id, m.Status, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// count returns how many messages the store holds.
func (d *daemon) count(t *testing.T) int {
	t.Helper()
	page, err := d.store.List(context.Background(), queue.Filter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return len(page.Messages)
}

// oneLine checks that s is exactly one line and returns it without its end.
func oneLine(t *testing.T, s string) string {
	t.Helper()
	if strings.Count(s, "\n") != 1 || !strings.HasSuffix(s, "\n") {
		t.Fatalf("want one line, got %q", s)
	}
	return strings.TrimSuffix(s, "\n")
}

// sendOne submits a simple message and returns its id.
func sendOne(t *testing.T, subject string, extra ...string) string {
	t.Helper()
	args := append([]string{"send", "--from", "sender@example.com", "--to", "rcpt@example.com",
		"--subject", subject, "--text", "hello"}, extra...)
	code, out, errOut := runOutbox(t, args...)
	if code != 0 || errOut != "" {
		t.Fatalf("send: exit %d, stderr %q", code, errOut)
	}
	return oneLine(t, out)
}

func TestSendSubmits(t *testing.T) {
	d := startDaemon(t)
	code, out, errOut := runOutbox(t, "send", "--from", "Sender <sender@example.com>",
		"--to", "Alice <alice@example.com>", "--cc", "carol@example.net",
		"--bcc", "hidden@example.org", "--subject", "Submitted via the CLI",
		"--text", "Hello from the command line.")
	if code != 0 || errOut != "" {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	id := oneLine(t, out)
	m := d.waitStatus(t, id, queue.StatusDelivered)
	var rcpts []string
	for _, r := range m.Recipients {
		rcpts = append(rcpts, r.Address)
	}
	if got := strings.Join(rcpts, ","); got != "alice@example.com,carol@example.net,hidden@example.org" {
		t.Errorf("envelope recipients %s", got)
	}
	if m.From != "sender@example.com" {
		t.Errorf("envelope sender %q", m.From)
	}
	body, err := d.store.OpenBody(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	defer body.Close()
	msg, err := mail.ReadMessage(body)
	if err != nil {
		t.Fatal(err)
	}
	if s := msg.Header.Get("Subject"); s != "Submitted via the CLI" {
		t.Errorf("Subject %q", s)
	}
	if _, ok := msg.Header["Bcc"]; ok {
		t.Errorf("stored message has a Bcc header: %v", msg.Header["Bcc"])
	}
	text, _ := io.ReadAll(msg.Body)
	if strings.Contains(string(text), "hidden@") || strings.Contains(msg.Header.Get("To")+msg.Header.Get("Cc"), "hidden") {
		t.Error("the Bcc recipient shows in the stored message")
	}
	if !strings.Contains(string(text), "Hello from the command line.") {
		t.Errorf("body %q", text)
	}
}

func TestSendIdempotencyKey(t *testing.T) {
	d := startDaemon(t)
	first := sendOne(t, "once", "--idempotency-key", "order-42")
	second := sendOne(t, "once", "--idempotency-key", "order-42")
	if first != second {
		t.Errorf("ids %s and %s differ", first, second)
	}
	if n := d.count(t); n != 1 {
		t.Errorf("%d messages stored, want 1", n)
	}
}

func TestSendBadInputStoresNothing(t *testing.T) {
	d := startDaemon(t)
	for _, args := range [][]string{
		{"--to", "not an address"},
		{"--to", "rcpt@example.com", "--send-at", "tomorrow"},
		{"--to", "rcpt@example.com", "--print", "--idempotency-key", "k"},
	} {
		all := append([]string{"send", "--from", "sender@example.com", "--text", "x"}, args...)
		code, out, errOut := runOutbox(t, all...)
		if code != 2 || out != "" {
			t.Errorf("%v: exit %d, stdout %q", args, code, out)
		}
		if line := oneLine(t, errOut); !strings.HasPrefix(line, "outbox send: --") {
			t.Errorf("%v: stderr %q", args, line)
		}
	}
	if n := d.count(t); n != 0 {
		t.Errorf("%d messages stored", n)
	}
}

func TestWrongToken(t *testing.T) {
	d := startDaemon(t)
	t.Setenv("OUTBOX_TOKEN", "wrong")
	code, out, errOut := runOutbox(t, "send", "--from", "a@example.com", "--to", "b@example.com", "--text", "x")
	line := oneLine(t, errOut)
	if code != 1 || out != "" || !strings.Contains(line, "authentication failed") || !strings.Contains(line, "HTTP 401") {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out, line)
	}
	t.Setenv("OUTBOX_TOKEN", "")
	code, _, errOut = runOutbox(t, "queue", "list")
	if line := oneLine(t, errOut); code != 1 || !strings.Contains(line, "authentication required") {
		t.Errorf("no token: exit %d, stderr %q", code, line)
	}
	// --token overrides the environment.
	if code, _, errOut = runOutbox(t, "queue", "list", "--token", "tok"); code != 0 {
		t.Errorf("--token: exit %d, stderr %q", code, errOut)
	}
	if n := d.count(t); n != 0 {
		t.Errorf("%d messages stored", n)
	}
}

func TestDaemonNotRunning(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	ln.Close()
	t.Setenv("OUTBOX_URL", url)
	t.Setenv("OUTBOX_TOKEN", "tok")
	want := "cannot reach the outbox daemon at " + url + " (is 'outbox serve' running?)"
	for _, args := range [][]string{
		{"send", "--from", "a@example.com", "--to", "b@example.com", "--text", "x"},
		{"queue", "list"},
		{"queue", "show", "some-id"},
	} {
		code, out, errOut := runOutbox(t, args...)
		line := oneLine(t, errOut)
		if code != 1 || out != "" || !strings.HasSuffix(line, ": "+want) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, out, line)
		}
	}
}

func TestURLFlagOverridesEnv(t *testing.T) {
	d := startDaemon(t)
	t.Setenv("OUTBOX_URL", "http://127.0.0.1:1")
	code, out, errOut := runOutbox(t, "send", "--url", d.url+"/", "--from", "a@example.com",
		"--to", "b@example.com", "--text", "x")
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	d.waitStatus(t, oneLine(t, out), queue.StatusDelivered)
	code, _, errOut = runOutbox(t, "queue", "list", "--url", "ftp://example.com")
	if line := oneLine(t, errOut); code != 2 || !strings.Contains(line, "daemon URL") {
		t.Errorf("bad URL: exit %d, stderr %q", code, line)
	}
}

func TestClean(t *testing.T) {
	for in, want := range map[string]string{
		"plain\ttab":            "plain\ttab",
		"\x1b[31mred\x1b[0m":    "\uFFFD[31mred\uFFFD[0m",
		"bell\a nl\n cr\r":      "bell\uFFFD nl\uFFFD cr\uFFFD",
		"c1 \u009b2J del \x7f":  "c1 \uFFFD2J del \uFFFD",
		"bidi \u202eevil\u2069": "bidi \uFFFDevil\uFFFD",
		"bad \xff utf8":         "bad \uFFFD utf8",
		"张伟 é":                  "张伟 é",
	} {
		if got := clean(in); got != want {
			t.Errorf("clean(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestSubmitComposeFailure checks that a message whose composition fails
// part way (say, an attachment that cannot be read) is not stored, and
// that the composition's error is the one reported.
func TestSubmitComposeFailure(t *testing.T) {
	d := startDaemon(t)
	c, err := (&daemonOptions{}).client()
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.submit(context.Background(), submission{
		from: "a@example.com", to: []string{"b@example.com"},
		compose: func(w io.Writer) error {
			io.WriteString(w, "Subject: half\r\nFrom: a@example.com\r\n\r\n")
			io.WriteString(w, strings.Repeat("body line\r\n", 10000))
			return errors.New("reading report.pdf: input/output error")
		},
	})
	if err == nil || !strings.Contains(err.Error(), "input/output error") {
		t.Errorf("submit: %v", err)
	}
	if n := d.count(t); n != 0 {
		t.Errorf("%d messages stored from an aborted submission", n)
	}
}

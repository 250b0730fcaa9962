package queuetest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outbox-mail/outbox/queue"
)

func testRoundTrip(t *testing.T, s queue.Store) {
	body := "From: a@example.com\r\nSubject: Grüße\r\n\r\nHello\r\n.\r\n"
	sendAt := time.Now().Add(-time.Minute)
	expires := time.Now().Add(48 * time.Hour)
	before := time.Now()
	id := enqueue(t, s, queue.NewMessage{
		From:           "a@example.com",
		Recipients:     []string{"b@example.com", "c@example.org"},
		Subject:        "Grüße",
		Body:           strings.NewReader(body),
		SendAt:         sendAt,
		ExpiresAt:      expires,
		IdempotencyKey: "key-1",
		Tags:           map[string]string{"route": "relay", "source": "api"},
	})
	m := get(t, s, id)
	if m.ID != id || m.From != "a@example.com" || m.Subject != "Grüße" {
		t.Errorf("Get = id %q from %q subject %q", m.ID, m.From, m.Subject)
	}
	if m.Status != queue.StatusQueued || m.Attempts != 0 {
		t.Errorf("new message status %s attempts %d, want queued 0", m.Status, m.Attempts)
	}
	if m.Size != int64(len(body)) {
		t.Errorf("Size = %d, want %d", m.Size, len(body))
	}
	if m.IdempotencyKey != "key-1" {
		t.Errorf("IdempotencyKey = %q", m.IdempotencyKey)
	}
	if !reflect.DeepEqual(m.Tags, map[string]string{"route": "relay", "source": "api"}) {
		t.Errorf("Tags = %v", m.Tags)
	}
	if !near(m.NextAttemptAt, sendAt) || !near(m.ExpiresAt, expires) {
		t.Errorf("NextAttemptAt %v ExpiresAt %v, want %v %v", m.NextAttemptAt, m.ExpiresAt, sendAt, expires)
	}
	if m.CreatedAt.Before(before.Add(-2*time.Millisecond)) || m.CreatedAt.After(time.Now().Add(2*time.Millisecond)) {
		t.Errorf("CreatedAt %v not within the enqueue", m.CreatedAt)
	}
	if len(m.Recipients) != 2 || m.Recipients[0].Address != "b@example.com" || m.Recipients[1].Address != "c@example.org" {
		t.Fatalf("Recipients = %+v", m.Recipients)
	}
	for _, r := range m.Recipients {
		if r.Status != queue.RecipientPending || r.Attempts != 0 || r.Code != 0 {
			t.Errorf("new recipient %+v, want pending with no attempts", r)
		}
	}
	if got := readBody(t, s, id); string(got) != body {
		t.Errorf("body = %q, want %q", got, body)
	}
	// The default lifetime applies when ExpiresAt is zero.
	m2 := get(t, s, enqueue(t, s, newMsg("d@example.com")))
	if !m2.ExpiresAt.After(time.Now().Add(time.Hour)) {
		t.Errorf("default ExpiresAt %v is not in the future", m2.ExpiresAt)
	}
	if m2.NextAttemptAt.IsZero() || m2.NextAttemptAt.After(time.Now().Add(2*time.Millisecond)) {
		t.Errorf("NextAttemptAt of an unscheduled message = %v, want about now", m2.NextAttemptAt)
	}
}

func testLargeBody(t *testing.T, s queue.Store) {
	const size = 5 << 20
	id := enqueue(t, s, queue.NewMessage{
		From: "a@example.com", Recipients: []string{"b@example.com"},
		Body: &pattern{n: size},
	})
	if m := get(t, s, id); m.Size != size {
		t.Errorf("Size = %d, want %d", m.Size, size)
	}
	rc, err := s.OpenBody(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	same, err := sameStream(rc, &pattern{n: size})
	if err != nil {
		t.Fatalf("reading body: %v", err)
	}
	if !same {
		t.Fatal("stored 5 MiB body differs from what was enqueued")
	}
}

func testEmptyBody(t *testing.T, s queue.Store) {
	id := enqueue(t, s, queue.NewMessage{Recipients: []string{"b@example.com"}, Body: strings.NewReader("")})
	m := get(t, s, id)
	if m.Size != 0 || m.From != "" {
		t.Errorf("Size %d From %q, want 0 and the null sender", m.Size, m.From)
	}
	if b := readBody(t, s, id); len(b) != 0 {
		t.Errorf("body = %q, want empty", b)
	}
}

func testIdempotency(t *testing.T, s queue.Store) {
	m := newMsg("b@example.com")
	m.IdempotencyKey = "same"
	first := enqueue(t, s, m)
	m.Body = strings.NewReader("a different body")
	m.Recipients = []string{"other@example.com"}
	second := enqueue(t, s, m)
	if first != second {
		t.Fatalf("second enqueue with the same key gave %s, want %s", second, first)
	}
	got := get(t, s, first)
	if len(got.Recipients) != 1 || got.Recipients[0].Address != "b@example.com" {
		t.Errorf("second enqueue changed the message: %+v", got.Recipients)
	}
	if b := readBody(t, s, first); bytes.Contains(b, []byte("different")) {
		t.Error("second enqueue replaced the body")
	}
	m.IdempotencyKey = "other"
	if third := enqueue(t, s, m); third == first {
		t.Error("a different key returned the same id")
	}
	wantCount(t, s, queue.StatusQueued, 2)
}

func testIdempotencyConcurrent(t *testing.T, s queue.Store) {
	const n = 16
	got := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			m := newMsg("b@example.com")
			m.IdempotencyKey = "concurrent"
			got[i], errs[i] = s.Enqueue(context.Background(), m)
		})
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("Enqueue %d: %v", i, errs[i])
		}
		if got[i] != got[0] {
			t.Fatalf("concurrent enqueues with one key gave ids %s and %s", got[0], got[i])
		}
	}
	wantCount(t, s, queue.StatusQueued, 1)
}

func testValidation(t *testing.T, s queue.Store) {
	body := func() io.Reader { return strings.NewReader("x") }
	cases := map[string]queue.NewMessage{
		"no recipients":      {From: "a@example.com", Body: body()},
		"empty recipient":    {Recipients: []string{"b@example.com", ""}, Body: body()},
		"blank recipient":    {Recipients: []string{"  "}, Body: body()},
		"CRLF in recipient":  {Recipients: []string{"b@example.com\r\nRCPT TO:<x@y>"}, Body: body()},
		"LF in recipient":    {Recipients: []string{"b@example.com\n"}, Body: body()},
		"CR in sender":       {From: "a@example.com\r", Recipients: []string{"b@example.com"}, Body: body()},
		"nil body":           {Recipients: []string{"b@example.com"}},
		"expired on arrival": {Recipients: []string{"b@example.com"}, Body: body(), ExpiresAt: time.Now().Add(-time.Hour)},
	}
	for name, m := range cases {
		m.IdempotencyKey = "k-" + name
		id, err := s.Enqueue(context.Background(), m)
		if !errors.Is(err, queue.ErrInvalid) {
			t.Errorf("%s: Enqueue = %q, %v; want ErrInvalid", name, id, err)
		}
	}
	// The error names the field.
	_, err := s.Enqueue(context.Background(), queue.NewMessage{Recipients: []string{"ok@x", "bad\r\n@x"}, Body: body()})
	if err == nil || !strings.Contains(err.Error(), "Recipients[1]") {
		t.Errorf("error %v does not name Recipients[1]", err)
	}
	wantEmpty(t, s)
}

// failingReader returns some bytes then an error.
type failingReader struct{ n int }

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errors.New("client went away")
	}
	n := min(len(p), f.n)
	f.n -= n
	return n, nil
}

func testBodyReadError(t *testing.T, s queue.Store) {
	for _, n := range []int{10, 1 << 20} {
		m := newMsg("b@example.com")
		m.Body = &failingReader{n: n}
		if _, err := s.Enqueue(context.Background(), m); err == nil {
			t.Errorf("Enqueue with a body failing after %d bytes succeeded", n)
		}
	}
	wantEmpty(t, s)
}

func testScheduled(t *testing.T, s queue.Store) {
	m := newMsg("b@example.com")
	m.SendAt = time.Now().Add(time.Hour)
	id := enqueue(t, s, m)
	if c := claim(t, s, "w1", 10, time.Minute); len(c) != 0 {
		t.Fatalf("claimed %v before its send time", ids(c))
	}
	due, ok, err := s.NextDue(context.Background())
	if err != nil || !ok || !near(due, m.SendAt) {
		t.Fatalf("NextDue = %v %v %v, want %v", due, ok, err, m.SendAt)
	}
	// Retry overrides the schedule: due now.
	if err := s.Retry(context.Background(), id); err != nil {
		t.Fatalf("Retry: %v", err)
	}
	claimOne(t, s, "w1", id, time.Minute)
}

func testUnknownID(t *testing.T, s queue.Store) {
	ctx := context.Background()
	enqueue(t, s, newMsg("b@example.com"))
	const id = "0190d5a0-0000-7000-8000-000000000000"
	if _, err := s.Get(ctx, id); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("Get: %v, want ErrNotFound", err)
	}
	if _, err := s.Attempts(ctx, id); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("Attempts: %v, want ErrNotFound", err)
	}
	if _, err := s.OpenBody(ctx, id); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("OpenBody: %v, want ErrNotFound", err)
	}
	if err := s.Requeue(ctx, id); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("Retry: %v, want ErrNotFound", err)
	}
	if err := s.Cancel(ctx, id); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("Cancel: %v, want ErrNotFound", err)
	}
	// Ids come from URLs: bytes no database stores as text are not found,
	// never a database error.
	for _, bad := range []string{"not-a-uuid", "\x00", "\xff\xfe", "a\x00b"} {
		if _, err := s.Get(ctx, bad); !errors.Is(err, queue.ErrNotFound) {
			t.Errorf("Get(%q): %v, want ErrNotFound", bad, err)
		}
		if _, err := s.OpenBody(ctx, bad); !errors.Is(err, queue.ErrNotFound) {
			t.Errorf("OpenBody(%q): %v, want ErrNotFound", bad, err)
		}
		if err := s.Retry(ctx, bad); !errors.Is(err, queue.ErrNotFound) {
			t.Errorf("Retry(%q): %v, want ErrNotFound", bad, err)
		}
		if err := s.Cancel(ctx, bad); !errors.Is(err, queue.ErrNotFound) {
			t.Errorf("Cancel(%q): %v, want ErrNotFound", bad, err)
		}
	}
}

// testProbeWrite: the readiness probe commits again and again and changes
// nothing a reader sees; once the store is closed it says so.
func testProbeWrite(t *testing.T, s queue.Store) {
	ctx := context.Background()
	id := enqueue(t, s, newMsg("b@example.com"))
	for range 3 {
		if err := s.ProbeWrite(ctx); err != nil {
			t.Fatalf("ProbeWrite: %v", err)
		}
	}
	wantCount(t, s, queue.StatusQueued, 1)
	if m := get(t, s, id); m.Status != queue.StatusQueued {
		t.Fatalf("status %s after probes, want queued", m.Status)
	}
	s.Close()
	if err := s.ProbeWrite(ctx); !errors.Is(err, queue.ErrClosed) {
		t.Fatalf("ProbeWrite on a closed store: %v, want ErrClosed", err)
	}
}

func testClosed(t *testing.T, s queue.Store) {
	ctx := context.Background()
	id := enqueue(t, s, newMsg("b@example.com"))
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := s.Enqueue(ctx, newMsg("b@example.com")); !errors.Is(err, queue.ErrClosed) {
		t.Errorf("Enqueue after Close: %v, want ErrClosed", err)
	}
	if _, err := s.Get(ctx, id); !errors.Is(err, queue.ErrClosed) {
		t.Errorf("Get after Close: %v, want ErrClosed", err)
	}
	if _, err := s.Claim(ctx, "w", 1, time.Minute); !errors.Is(err, queue.ErrClosed) {
		t.Errorf("Claim after Close: %v, want ErrClosed", err)
	}
}

// wantCount checks the number of messages in one status.
func wantCount(t *testing.T, s queue.Store, st queue.Status, n int64) {
	t.Helper()
	c, err := s.Counts(context.Background())
	if err != nil {
		t.Fatalf("Counts: %v", err)
	}
	if c[st] != n {
		t.Fatalf("Counts[%s] = %d, want %d (all: %v)", st, c[st], n, c)
	}
}

// wantEmpty checks that the store holds no message at all.
func wantEmpty(t *testing.T, s queue.Store) {
	t.Helper()
	c, err := s.Counts(context.Background())
	if err != nil {
		t.Fatalf("Counts: %v", err)
	}
	for st, n := range c {
		if n != 0 {
			t.Errorf("store holds %d %s messages, want none", n, st)
		}
	}
	p, err := s.List(context.Background(), queue.Filter{})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if len(p.Messages) != 0 {
		t.Errorf("List shows %d messages, want none", len(p.Messages))
	}
}

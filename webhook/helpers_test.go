package webhook_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outbox-mail/outbox/internal/logbuf"
	"github.com/outbox-mail/outbox/queue"
	"github.com/outbox-mail/outbox/queue/sqlite"
	"github.com/outbox-mail/outbox/webhook"
)

// openStore opens a real SQLite store at path, closed when the test ends.
func openStore(t *testing.T, path string) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(path, sqlite.Options{})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func newStore(t *testing.T) *sqlite.Store {
	return openStore(t, filepath.Join(t.TempDir(), "outbox.db"))
}

// hit is one request a receiver got.
type hit struct {
	header http.Header
	body   []byte
	at     time.Time
	code   int // the status the receiver answered
}

// receiver is a webhook endpoint on loopback. status picks the response
// code for the n-th request (from 1).
type receiver struct {
	srv    *httptest.Server
	mu     sync.Mutex
	hits   []hit
	got    chan hit
	status func(n int, r *http.Request) int
}

func newReceiver(t *testing.T, status func(n int, r *http.Request) int) *receiver {
	t.Helper()
	rc := &receiver{got: make(chan hit, 100), status: status}
	rc.srv = httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	h := hit{header: r.Header.Clone(), body: body, at: time.Now()}
	rc.mu.Lock()
	rc.hits = append(rc.hits, h)
	n := len(rc.hits)
	rc.mu.Unlock()
	code := http.StatusOK
	if rc.status != nil {
		code = rc.status(n, r)
	}
	h.code = code
	w.WriteHeader(code)
	if code >= 300 {
		io.WriteString(w, "busy")
	}
	rc.got <- h
}

func (rc *receiver) count() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.hits)
}

// wait returns the next request, failing the test after 10s.
func (rc *receiver) wait(t *testing.T) hit {
	t.Helper()
	select {
	case h := <-rc.got:
		return h
	case <-time.After(10 * time.Second):
		t.Fatalf("receiver got no request within 10s (had %d)", rc.count())
		return hit{}
	}
}

// quiet asserts the receiver gets nothing more for d.
func (rc *receiver) quiet(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case h := <-rc.got:
		t.Fatalf("unexpected request: %s", h.body)
	case <-time.After(d):
	}
}

// finishCall is one FinishEvent a spyStore saw.
type finishCall struct {
	id        string
	delivered bool
	next      time.Time
	lastError string
	at        time.Time
}

// spyStore is the real store with ClaimEvents counted and FinishEvent
// recorded.
type spyStore struct {
	queue.Store
	claims   atomic.Int64
	mu       sync.Mutex
	finishes []finishCall
}

func (s *spyStore) ClaimEvents(ctx context.Context, owner string, limit int, lease time.Duration) ([]queue.Event, error) {
	s.claims.Add(1)
	return s.Store.ClaimEvents(ctx, owner, limit, lease)
}

func (s *spyStore) FinishEvent(ctx context.Context, owner, id string, delivered bool, next time.Time, lastError string) error {
	s.mu.Lock()
	s.finishes = append(s.finishes, finishCall{id, delivered, next, lastError, time.Now()})
	s.mu.Unlock()
	return s.Store.FinishEvent(ctx, owner, id, delivered, next, lastError)
}

func (s *spyStore) calls() []finishCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]finishCall(nil), s.finishes...)
}

// waitFinishes waits until the spy has seen n FinishEvent calls.
func (s *spyStore) waitFinishes(t *testing.T, n int) []finishCall {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if c := s.calls(); len(c) >= n {
			return c
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("saw %d FinishEvent calls, want %d", len(s.calls()), n)
	return nil
}

// fastRetry is a millisecond schedule so retries happen within a test.
var fastRetry = webhook.RetryPolicy{Initial: 50 * time.Millisecond, Max: time.Second}

// startDispatcher creates and starts a dispatcher, shut down at the end.
func startDispatcher(t *testing.T, cfg webhook.Config) *webhook.Dispatcher {
	t.Helper()
	d := newDispatcher(t, cfg)
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	return d
}

func newDispatcher(t *testing.T, cfg webhook.Config) *webhook.Dispatcher {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t, nil)
	}
	d, err := webhook.New(cfg)
	if err != nil {
		t.Fatalf("webhook.New: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		d.Shutdown(ctx)
	})
	return d
}

// testLogger logs at debug level to buf, or to the test log when buf is nil.
func testLogger(t *testing.T, buf *logbuf.Buffer) *slog.Logger {
	var w io.Writer = buf
	if buf == nil {
		w = tWriter{t}
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

// noneDue waits until the store holds no pending event.
func noneDue(t *testing.T, st queue.Store) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		_, ok, err := st.NextEventDue(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("events still pending after 10s")
}

func addEvent(t *testing.T, st queue.Store, endpoint, payload string) {
	t.Helper()
	err := st.AddEvents(context.Background(), []queue.NewEvent{{
		Endpoint: endpoint, Type: webhook.TypeDelivered, MessageID: "m1", Payload: []byte(payload)}})
	if err != nil {
		t.Fatal(err)
	}
}

// openStoreNoCleanup opens a store the test closes itself, to reopen it.
func openStoreNoCleanup(path string) (*sqlite.Store, error) {
	return sqlite.Open(path, sqlite.Options{})
}

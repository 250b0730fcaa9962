package webhook_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outbox-mail/outbox/internal/logbuf"
	"github.com/outbox-mail/outbox/webhook"
)

func TestRetryThenSuccess(t *testing.T) {
	st := &spyStore{Store: newStore(t)}
	rc := newReceiver(t, func(n int, _ *http.Request) int {
		if n <= 2 {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	const secret = "retry-secret-XYZ"
	logs := &logbuf.Buffer{}
	addEvent(t, st, rc.srv.URL, `{"id":"e1","type":"delivered"}`)
	startDispatcher(t, webhook.Config{Store: st, Retry: fastRetry, Logger: testLogger(t, logs),
		Endpoints: []webhook.Endpoint{{URL: rc.srv.URL, Secret: secret}}})

	h1, h2, h3 := rc.wait(t), rc.wait(t), rc.wait(t)
	calls := st.waitFinishes(t, 3)
	noneDue(t, st)
	rc.quiet(t, 200*time.Millisecond)

	// Backoff is 50ms, then 100ms; the store keeps milliseconds, so allow
	// one of rounding.
	if gap := h2.at.Sub(h1.at); gap < 49*time.Millisecond {
		t.Errorf("second POST %v after the first, want >= 50ms", gap)
	}
	if gap := h3.at.Sub(h2.at); gap < 99*time.Millisecond {
		t.Errorf("third POST %v after the second, want >= 100ms", gap)
	}
	for i, c := range calls[:2] {
		if c.delivered || c.next.IsZero() || c.lastError != "HTTP 503: busy" {
			t.Errorf("finish %d = %+v, want a retry with lastError %q", i, c, "HTTP 503: busy")
		}
	}
	if !calls[2].delivered {
		t.Errorf("third finish = %+v, want delivered", calls[2])
	}
	for _, h := range []hit{h1, h2, h3} {
		if err := webhook.Verify(secret, h.header, h.body, time.Minute); err != nil {
			t.Errorf("Verify: %v", err)
		}
		if got := h.header.Get("Outbox-Event-Id"); got != "e1" {
			t.Errorf("Outbox-Event-Id = %q, want the payload's id e1", got)
		}
	}
	if strings.Contains(logs.String(), secret) {
		t.Error("the secret appears in the logs")
	}
	if !strings.Contains(logs.String(), "will retry") {
		t.Errorf("no retry logged:\n%s", logs)
	}
}

func TestAbandonAfterMaxAttempts(t *testing.T) {
	st := &spyStore{Store: newStore(t)}
	rc := newReceiver(t, func(int, *http.Request) int { return http.StatusInternalServerError })
	addEvent(t, st, rc.srv.URL, `{"id":"e1"}`)
	retry := webhook.RetryPolicy{Initial: 10 * time.Millisecond, Max: 20 * time.Millisecond, MaxAttempts: 3}
	startDispatcher(t, webhook.Config{Store: st, Retry: retry,
		Endpoints: []webhook.Endpoint{{URL: rc.srv.URL, Secret: "s"}}})

	for range 3 {
		rc.wait(t)
	}
	calls := st.waitFinishes(t, 3)
	noneDue(t, st)
	rc.quiet(t, 300*time.Millisecond)
	last := calls[2]
	if last.delivered || !last.next.IsZero() || last.lastError != "HTTP 500: busy" {
		t.Errorf("last finish = %+v, want abandoned with HTTP 500", last)
	}
}

func TestAbandonPastMaxAge(t *testing.T) {
	st := &spyStore{Store: newStore(t)}
	rc := newReceiver(t, func(int, *http.Request) int { return http.StatusBadGateway })
	addEvent(t, st, rc.srv.URL, `{"id":"e1"}`)
	// The first retry would come an hour on, past a 1s MaxAge.
	retry := webhook.RetryPolicy{Initial: time.Hour, MaxAge: time.Second}
	startDispatcher(t, webhook.Config{Store: st, Retry: retry,
		Endpoints: []webhook.Endpoint{{URL: rc.srv.URL, Secret: "s"}}})
	rc.wait(t)
	calls := st.waitFinishes(t, 1)
	if !calls[0].next.IsZero() {
		t.Errorf("finish = %+v, want abandoned", calls[0])
	}
	noneDue(t, st)
}

func TestEndpointNoLongerConfigured(t *testing.T) {
	st := &spyStore{Store: newStore(t)}
	rc := newReceiver(t, nil)
	addEvent(t, st, "http://127.0.0.1:1/gone", `{"id":"e1"}`)
	startDispatcher(t, webhook.Config{Store: st,
		Endpoints: []webhook.Endpoint{{URL: rc.srv.URL, Secret: "s"}}})
	calls := st.waitFinishes(t, 1)
	if c := calls[0]; c.delivered || !c.next.IsZero() || c.lastError != "endpoint no longer configured" {
		t.Errorf("finish = %+v, want abandoned: endpoint no longer configured", c)
	}
	if rc.count() != 0 {
		t.Error("an event for an unconfigured endpoint was sent elsewhere")
	}
}

// TestRestartAfterFailure: events that failed before shutdown are sent by a
// new dispatcher on the reopened store once the receiver is up.
func TestRestartAfterFailure(t *testing.T) {
	path := filepath.Join(t.TempDir(), "outbox.db")
	var up atomic.Bool
	rc := newReceiver(t, func(int, *http.Request) int {
		if up.Load() {
			return http.StatusOK
		}
		return http.StatusInternalServerError
	})
	eps := []webhook.Endpoint{{URL: rc.srv.URL, Secret: "s"}}
	st1, err := openStoreNoCleanup(path)
	if err != nil {
		t.Fatal(err)
	}
	addEvent(t, st1, rc.srv.URL, `{"id":"e1"}`)
	addEvent(t, st1, rc.srv.URL, `{"id":"e2"}`)
	d1, err := webhook.New(webhook.Config{Store: st1, Endpoints: eps,
		Retry: webhook.RetryPolicy{Initial: 100 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	d1.Start()
	rc.wait(t)
	rc.wait(t)
	if err := d1.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	st1.Close()

	up.Store(true)
	st2 := openStore(t, path)
	startDispatcher(t, webhook.Config{Store: st2, Endpoints: eps,
		Retry: webhook.RetryPolicy{Initial: 100 * time.Millisecond}})
	ids := map[string]bool{}
	for len(ids) < 2 {
		if h := rc.wait(t); h.code == http.StatusOK {
			ids[h.header.Get("Outbox-Event-Id")] = true
		}
	}
	noneDue(t, st2)
}

// TestShutdownAbortsHangingPost: a POST still in flight when Shutdown runs
// out of time is made due at once, and the next dispatcher sends it.
func TestShutdownAbortsHangingPost(t *testing.T) {
	path := filepath.Join(t.TempDir(), "outbox.db")
	var hang atomic.Bool
	hang.Store(true)
	rc := newReceiver(t, func(_ int, r *http.Request) int {
		if hang.Load() {
			<-r.Context().Done() // until the dispatcher gives up
		}
		return http.StatusOK
	})
	eps := []webhook.Endpoint{{URL: rc.srv.URL, Secret: "s"}}
	st1, err := openStoreNoCleanup(path)
	if err != nil {
		t.Fatal(err)
	}
	addEvent(t, st1, rc.srv.URL, `{"id":"e1"}`)
	// An hour's lease: only "retry now" at shutdown makes it due again soon.
	d1, err := webhook.New(webhook.Config{Store: st1, Endpoints: eps, Lease: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	d1.Start()
	waitFor(t, func() bool { return rc.count() == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := d1.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown = %v, want deadline exceeded", err)
	}
	due, ok, err := st1.NextEventDue(context.Background())
	if err != nil || !ok || time.Until(due) > time.Second {
		t.Fatalf("after shutdown the event is due at %v (ok %v, err %v), want now", due, ok, err)
	}
	st1.Close()
	<-rc.got // the aborted request

	hang.Store(false)
	st2 := openStore(t, path)
	startDispatcher(t, webhook.Config{Store: st2, Endpoints: eps})
	if h := rc.wait(t); h.header.Get("Outbox-Event-Id") != "e1" {
		t.Errorf("resent event id = %q", h.header.Get("Outbox-Event-Id"))
	}
	noneDue(t, st2)
}

func TestIdleDoesNotSpin(t *testing.T) {
	st := &spyStore{Store: newStore(t)}
	rc := newReceiver(t, func(int, *http.Request) int { return http.StatusServiceUnavailable })
	// One event that fails and is due again only in an hour.
	addEvent(t, st, rc.srv.URL, `{"id":"e1"}`)
	startDispatcher(t, webhook.Config{Store: st, Retry: webhook.RetryPolicy{Initial: time.Hour},
		Endpoints: []webhook.Endpoint{{URL: rc.srv.URL, Secret: "s"}}})
	rc.wait(t)
	st.waitFinishes(t, 1)
	time.Sleep(20 * time.Millisecond) // let the loop settle after the retry's Notify
	before := st.claims.Load()
	time.Sleep(300 * time.Millisecond)
	if n := st.claims.Load() - before; n > 2 {
		t.Errorf("idle dispatcher claimed %d times in 300ms", n)
	}
}

func TestIdleEmptyStoreDoesNotSpin(t *testing.T) {
	st := &spyStore{Store: newStore(t)}
	rc := newReceiver(t, nil)
	d := startDispatcher(t, webhook.Config{Store: st,
		Endpoints: []webhook.Endpoint{{URL: rc.srv.URL, Secret: "s"}}})
	time.Sleep(300 * time.Millisecond)
	if n := st.claims.Load(); n > 2 {
		t.Errorf("idle dispatcher claimed %d times in 300ms", n)
	}
	// A Notify wakes it at once.
	addEvent(t, st, rc.srv.URL, `{"id":"e1"}`)
	d.Notify()
	select {
	case <-rc.got:
	case <-time.After(2 * time.Second):
		t.Fatal("Notify did not wake the dispatcher")
	}
}

func TestRedirectNotFollowed(t *testing.T) {
	st := &spyStore{Store: newStore(t)}
	elsewhere := newReceiver(t, nil)
	rc := httptest.NewServer(http.RedirectHandler(elsewhere.srv.URL, http.StatusFound))
	t.Cleanup(rc.Close)
	addEvent(t, st, rc.URL, `{"id":"e1"}`)
	startDispatcher(t, webhook.Config{Store: st, Retry: webhook.RetryPolicy{Initial: time.Hour},
		Endpoints: []webhook.Endpoint{{URL: rc.URL, Secret: "s"}}})
	calls := st.waitFinishes(t, 1)
	if c := calls[0]; c.delivered || !strings.HasPrefix(c.lastError, "HTTP 302") {
		t.Errorf("finish = %+v, want a retry after HTTP 302", c)
	}
	if elsewhere.count() != 0 {
		t.Error("the redirect was followed")
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

package api

import (
	"net/http"
	"net/url"
	"testing"
	"time"
)

// waiting reports whether a long poll is parked on the handler's Changes.
func (e *env) waiting() bool {
	c := e.h.changes
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.armed
}

// untilWaiting spins (bounded) until a long poll waits.
func (e *env) untilWaiting() {
	e.t.Helper()
	for i := 0; !e.waiting(); i++ {
		if i > 2000 {
			e.t.Fatal("the long poll never started waiting")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

type pollResult struct {
	r    *response
	took time.Duration
}

func (e *env) poll(query string) <-chan pollResult {
	done := make(chan pollResult, 1)
	go func() {
		start := time.Now()
		r := e.do("GET", "/v1/messages?"+query, nil)
		done <- pollResult{r, time.Since(start)}
	}()
	return done
}

// TestWaitWakesOnEnqueue: a long poll that finds nothing parks, and the
// enqueue of a matching message (not of another) answers it with that
// message, well before the wait would end. Its wait is shorter than the
// backstop re-query, so only the wake-up can find the message in time.
func TestWaitWakesOnEnqueue(t *testing.T) {
	e := setup(t, Config{}, true)
	wait := waitBackstop - time.Second
	done := e.poll("to=reset%40example.org&subject=Reset&wait=" + wait.String())
	e.untilWaiting()
	e.send(simple("other@example.org"))
	e.untilWaiting() // woken by the other message, found nothing, parked again
	msg := simple("Ann <reset@example.org>")
	msg["subject"] = "Reset your password"
	id := e.send(msg)
	res := <-done
	var page ListPage
	res.r.decode(t, &page)
	if res.r.Status != 200 || len(page.Messages) != 1 || page.Messages[0].ID != id {
		t.Fatalf("long poll: %d %s after %v, want message %s", res.r.Status, res.r.Body, res.took, id)
	}
}

// TestWaitEnds: a wait that finds nothing answers an empty page once it
// has passed, and Shutdown ends the waits in progress at once.
func TestWaitEnds(t *testing.T) {
	e := setup(t, Config{}, false)
	res := <-e.poll("to=nobody%40example.org&wait=300ms")
	var page ListPage
	res.r.decode(t, &page)
	if res.r.Status != 200 || len(page.Messages) != 0 || res.took < 300*time.Millisecond {
		t.Fatalf("wait with no match: %d %s after %v", res.r.Status, res.r.Body, res.took)
	}
	done := e.poll("to=nobody%40example.org&wait=60s")
	e.untilWaiting()
	e.h.Shutdown()
	select {
	case res := <-done:
		if res.r.Status != 200 {
			t.Fatalf("wait ended by Shutdown: %d %s", res.r.Status, res.r.Body)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Shutdown did not end the long poll")
	}
}

// TestWaitFindsExisting: a message already there answers at once, and
// to, since and until filter like recipient and the times they name.
func TestWaitFindsExisting(t *testing.T) {
	e := setup(t, Config{}, false)
	before := time.Now().Add(-time.Second)
	id := e.send(simple("ann@example.org"))
	for q, want := range map[string]int{
		"to=ANN%40example.org&wait=30s":                        1,
		"to=ann%40example.org&since=" + rfc(before):            1,
		"to=ann%40example.org&until=" + rfc(before):            0,
		"recipient=ann%40example.org&to=ann%40example.org":     1,
		"since=" + rfc(time.Now().Add(time.Hour)) + "&wait=0s": 0,
	} {
		r := e.do("GET", "/v1/messages?"+q, nil)
		var page ListPage
		r.decode(t, &page)
		if r.Status != 200 || len(page.Messages) != want || want == 1 && page.Messages[0].ID != id {
			t.Errorf("GET /v1/messages?%s: %d %s, want %d messages", q, r.Status, r.Body, want)
		}
	}
}

func rfc(t time.Time) string { return url.QueryEscape(t.UTC().Format(time.RFC3339Nano)) }

func TestWaitBadParams(t *testing.T) {
	e := setup(t, Config{}, false)
	for q, field := range map[string]string{
		"wait=61s": "wait", "wait=-1s": "wait", "wait=soon": "wait", "wait=5s&cursor=abc": "wait",
		"since=yesterday": "since", "until=2025-13-01T00:00:00Z": "until",
		"to=a%40x.test&recipient=b%40x.test": "to", "to=a%00b": "to",
	} {
		r := e.do("GET", "/v1/messages?"+q, nil)
		if r.Status != http.StatusBadRequest || r.apiErr(t).Field != field {
			t.Errorf("GET /v1/messages?%s: %d %s, want 400 naming %s", q, r.Status, r.Body, field)
		}
	}
	if r := e.do("GET", "/v1/messages?wait=90", nil); r.Status != 400 {
		t.Errorf("wait=90 (seconds, over the bound): %d", r.Status)
	}
}

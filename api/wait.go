package api

import (
	"context"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/outbox-mail/outbox/queue"
)

// Bounds of a long poll (GET /v1/messages?wait=…).
const (
	// MaxWait is the longest wait a listing may ask for.
	MaxWait = 60 * time.Second
	// waitBackstop re-runs a waiting listing this often even when no
	// change was heard of: a result committed by another node sharing a
	// PostgreSQL store sends no notification.
	waitBackstop = 5 * time.Second
	// minRequery spaces the re-runs of one waiting listing, so a burst
	// of changes costs each waiter a bounded number of queries.
	minRequery = 50 * time.Millisecond
)

// Changes wakes the long polls of GET /v1/messages?wait=… when messages
// may have been added or changed. The API notifies it of what it does
// itself; wire Notify to outbox.Config's OnEnqueue and OnResult hooks too,
// so that mail submitted over SMTP and delivery results wake them. A
// store shared between processes (queue.Watcher) wakes them as well.
// The zero value is not usable; call NewChanges.
type Changes struct {
	mu    sync.Mutex
	ch    chan struct{}
	armed bool
}

// NewChanges returns a Changes with nobody waiting.
func NewChanges() *Changes { return &Changes{ch: make(chan struct{})} }

// Notify wakes every long poll waiting now. It never blocks, costs a
// lock when nobody waits, and does nothing on a nil *Changes.
func (c *Changes) Notify() {
	if c == nil {
		return
	}
	c.mu.Lock()
	if c.armed {
		close(c.ch)
		c.ch, c.armed = make(chan struct{}), false
	}
	c.mu.Unlock()
}

// next returns a channel closed at the next Notify.
func (c *Changes) next() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.armed = true
	return c.ch
}

// Shutdown ends the long polls in progress at once, each answering with
// what it has (an empty page), and makes later ones answer at once: call
// it when the HTTP server shuts down (http.Server.RegisterOnShutdown),
// which would otherwise wait for them.
func (h *Handler) Shutdown() {
	h.closeOnce.Do(func() { close(h.closing) })
}

// waitParam parses ?wait=, a Go duration ("30s") or whole seconds ("30"),
// at most MaxWait; zero means do not wait.
func waitParam(q url.Values) (time.Duration, *apiError) {
	s := q.Get("wait")
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		n, nerr := strconv.Atoi(s)
		if nerr != nil {
			return 0, badRequest("wait", "wait must be a duration such as 30s, or a number of seconds")
		}
		d = time.Duration(n) * time.Second
	}
	if d < 0 || d > MaxWait {
		return 0, badRequest("wait", "wait must be from 0 to %s", MaxWait)
	}
	if d > 0 && q.Get("cursor") != "" {
		return 0, badRequest("wait", "wait cannot be combined with cursor: new messages come before the first page, not after a cursor")
	}
	return d, nil
}

// extraFilters reads the listing's parameters beyond the store's own
// names: to (the recipient filter under the name a test suite thinks
// of), since and until (RFC 3339).
func extraFilters(q url.Values, f *queue.Filter) *apiError {
	if to := q.Get("to"); to != "" {
		if f.Recipient != "" && f.Recipient != to {
			return badRequest("to", "to and recipient are the same filter; give one")
		}
		f.Recipient = to
	}
	for _, p := range []struct {
		name string
		t    *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if s := q.Get(p.name); s != "" {
			t, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				return badRequest(p.name, "%s must be an RFC 3339 time such as 2025-01-02T15:04:05Z", p.name)
			}
			*p.t = t
		}
	}
	return nil
}

// listWaiting lists f; with wait, until the page has a message or wait
// has passed. It re-runs the listing when a change is heard of (and every
// waitBackstop), never in a loop of its own.
func (h *Handler) listWaiting(ctx context.Context, f queue.Filter, wait time.Duration) (*queue.ListPage, error) {
	st := h.client.Store()
	if wait <= 0 {
		return st.List(ctx, f)
	}
	if w, ok := st.(queue.Watcher); ok {
		stop := w.Watch(h.changes.Notify)
		defer stop()
	}
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	for {
		// Armed before the query, so a change committed while it runs
		// is not missed.
		changed := h.changes.next()
		ran := time.Now()
		page, err := st.List(ctx, f)
		if err != nil || len(page.Messages) > 0 {
			return page, err
		}
		select {
		case <-changed:
		case <-time.After(waitBackstop):
		case <-deadline.C:
			return page, nil
		case <-h.closing:
			return page, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if pause := minRequery - time.Since(ran); pause > 0 {
			select {
			case <-time.After(pause):
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
	}
}

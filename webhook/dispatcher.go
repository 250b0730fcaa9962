package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/outbox-mail/outbox/internal/worker"
	"github.com/outbox-mail/outbox/queue"
)

// UserAgent is sent with every POST.
const UserAgent = "outbox-webhook/1"

// errorSnippet bounds how much of a failed response's body is kept as the
// event's last error: enough to read, too little to bloat the store.
const errorSnippet = 200

// Dispatcher POSTs stored events to their endpoints in the background.
type Dispatcher struct {
	cfg  Config
	log  *slog.Logger
	eps  atomic.Pointer[endpoints] // swapped by SetEndpoints
	pool *worker.Pool[queue.Event]
}

// New checks cfg and returns a Dispatcher. EventsFor and Cancelled work at
// once; call Start to begin sending.
func New(cfg Config) (*Dispatcher, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	d := &Dispatcher{
		cfg: cfg,
		log: cfg.Logger.With("component", "webhook"),
	}
	d.eps.Store(newEndpoints(cfg.Endpoints))
	d.cfg.Endpoints = nil // the list in force is d.eps, which SetEndpoints swaps
	wc := worker.Config[queue.Event]{Workers: cfg.Workers,
		Claim: func(ctx context.Context, limit int) ([]queue.Event, error) {
			return cfg.Store.ClaimEvents(ctx, cfg.Owner, limit, cfg.Lease)
		},
		NextDue: cfg.Store.NextEventDue, Handle: d.deliver, PollInterval: cfg.PollInterval,
		Logger: d.log, What: "claiming webhook events"}
	if w, ok := cfg.Store.(queue.Watcher); ok {
		// Another node's new events wake this one at once.
		wc.Watch = w.Watch
	}
	d.pool = worker.New(wc)
	return d, nil
}

// Start launches the loop that claims and sends due events.
func (d *Dispatcher) Start() error { return d.pool.Start() }

// Notify wakes an idle dispatcher: new events may be due. It never blocks.
func (d *Dispatcher) Notify() { d.pool.Notify() }

// Shutdown stops claiming and lets in-flight POSTs finish until ctx is
// done, then aborts them; an aborted event is made due again at once, so
// the next start sends it without waiting for its lease to lapse. It does
// not close the store.
func (d *Dispatcher) Shutdown(ctx context.Context) error { return d.pool.Shutdown(ctx) }

// deliver POSTs one claimed event and records the outcome. ctx is
// cancelled when Shutdown runs out of time.
func (d *Dispatcher) deliver(ctx context.Context, e queue.Event) {
	log := d.log.With("event", e.ID, "type", e.Type, "message", e.MessageID,
		"endpoint", redact(e.Endpoint), "attempt", e.Attempts)
	secret, ok := d.eps.Load().secrets[e.Endpoint]
	if !ok {
		log.Warn("abandoning webhook event: endpoint no longer configured")
		d.posted(PostAbandoned)
		d.finish(log, e, false, time.Time{}, "endpoint no longer configured")
		return
	}
	err := d.post(ctx, e, secret)
	switch {
	case err == nil:
		log.Debug("webhook event delivered")
		d.posted(PostDelivered)
		d.finish(log, e, true, time.Time{}, "")
	case ctx.Err() != nil:
		// Shutdown cut the POST short: due again at once, for the next start.
		log.Info("webhook POST interrupted by shutdown", "err", err)
		d.posted(PostInterrupted)
		d.finish(log, e, false, time.Now(), "interrupted by shutdown: "+err.Error())
	default:
		next := d.nextAttempt(e)
		if next.IsZero() {
			log.Warn("abandoning webhook event", "err", err)
			d.posted(PostAbandoned)
		} else {
			log.Info("webhook POST failed; will retry", "err", err, "next_attempt_at", next)
			d.posted(PostFailed)
		}
		d.finish(log, e, false, next, err.Error())
		// The loop may be asleep past this event's new due time.
		d.Notify()
	}
}

// nextAttempt returns when a failed event is tried again, or zero to
// abandon it.
func (d *Dispatcher) nextAttempt(e queue.Event) time.Time {
	p := d.cfg.Retry
	if e.Attempts >= p.MaxAttempts {
		return time.Time{}
	}
	next := time.Now().Add(p.Backoff(e.Attempts))
	if next.After(e.CreatedAt.Add(p.MaxAge)) {
		return time.Time{}
	}
	return next
}

// finish records an outcome. It does not use the POST's context, which
// Shutdown may have cancelled: the outcome must still be written.
func (d *Dispatcher) finish(log *slog.Logger, e queue.Event, delivered bool, next time.Time, lastError string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := d.cfg.Store.FinishEvent(ctx, d.cfg.Owner, e.ID, delivered, next, lastError)
	if errors.Is(err, queue.ErrLeaseLost) {
		// The lease lapsed mid-POST and another dispatcher may send it too;
		// receivers deduplicate on the event id.
		log.Warn("webhook event lease lost before its outcome was recorded")
	} else if err != nil {
		log.Error("recording webhook outcome", "err", err)
	}
}

// post sends one event; nil means the endpoint answered 2xx.
func (d *Dispatcher) post(ctx context.Context, e queue.Event, secret string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.Endpoint, bytes.NewReader(e.Payload))
	if err != nil {
		return fmt.Errorf("building request: %w", stripURL(err))
	}
	ts := time.Now().Unix()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", UserAgent)
	req.Header.Set(HeaderEventID, eventID(e))
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(HeaderSignature, Sign(secret, ts, e.Payload))
	resp, err := d.cfg.Client.Do(req)
	if err != nil {
		return stripURL(err)
	}
	defer resp.Body.Close()
	// Drain a little so the connection can be reused, never a whole
	// large or endless body.
	defer io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, errorSnippet))
	text := strings.TrimSpace(strings.ToValidUTF8(string(snippet), string(utf8.RuneError)))
	return fmt.Errorf("HTTP %d: %s", resp.StatusCode, text)
}

// stripURL drops the URL that *url.Error carries, which may hold a token
// in its query, since the error is logged and stored.
func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}

// eventID returns the id inside the payload, so header and body agree; the
// store's id stands in for a payload without one.
func eventID(e queue.Event) string {
	var p struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(e.Payload, &p) == nil && p.ID != "" {
		return p.ID
	}
	return e.ID
}

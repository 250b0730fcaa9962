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
	"sync"
	"time"
	"unicode/utf8"

	"github.com/outbox-mail/outbox/queue"
)

// UserAgent is sent with every POST.
const UserAgent = "outbox-webhook/1"

// errorSnippet bounds how much of a failed response's body is kept as the
// event's last error: enough to read, too little to bloat the store.
const errorSnippet = 200

// minWait floors an idle sleep, so a due time that a clock disagreement
// puts in the past cannot turn the loop into a busy poll.
const minWait = 20 * time.Millisecond

// Dispatcher POSTs stored events to their endpoints in the background.
type Dispatcher struct {
	cfg     Config
	log     *slog.Logger
	secrets map[string]string // endpoint URL → secret
	wake    chan struct{}
	stop    chan struct{} // closed: claim nothing more
	slots   chan struct{} // one token per free worker

	postCtx    context.Context // cancelled when Shutdown runs out of time
	cancelPost context.CancelFunc

	mu       sync.Mutex
	started  bool
	stopOnce sync.Once
	unwatch  func()
	loopDone chan struct{}
	posts    sync.WaitGroup
}

// New checks cfg and returns a Dispatcher. EventsFor and Cancelled work at
// once; call Start to begin sending.
func New(cfg Config) (*Dispatcher, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg.Endpoints = append([]Endpoint(nil), cfg.Endpoints...)
	d := &Dispatcher{
		cfg:      cfg,
		log:      cfg.Logger.With("component", "webhook"),
		secrets:  make(map[string]string, len(cfg.Endpoints)),
		wake:     make(chan struct{}, 1),
		stop:     make(chan struct{}),
		slots:    make(chan struct{}, cfg.Workers),
		loopDone: make(chan struct{}),
	}
	for _, ep := range cfg.Endpoints {
		d.secrets[ep.URL] = ep.Secret
	}
	for range cfg.Workers {
		d.slots <- struct{}{}
	}
	d.postCtx, d.cancelPost = context.WithCancel(context.Background())
	return d, nil
}

// Start launches the loop that claims and sends due events.
func (d *Dispatcher) Start() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.started {
		return errors.New("webhook: already started")
	}
	d.started = true
	if w, ok := d.cfg.Store.(queue.Watcher); ok {
		// Another node's new events wake this one at once.
		d.unwatch = w.Watch(d.Notify)
	}
	go d.loop()
	return nil
}

// Notify wakes an idle dispatcher: new events may be due. It never blocks.
func (d *Dispatcher) Notify() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Shutdown stops claiming and lets in-flight POSTs finish until ctx is
// done, then aborts them; an aborted event is made due again at once, so
// the next start sends it without waiting for its lease to lapse. It does
// not close the store.
func (d *Dispatcher) Shutdown(ctx context.Context) error {
	d.mu.Lock()
	started := d.started
	d.mu.Unlock()
	if !started {
		return nil
	}
	d.stopOnce.Do(func() {
		close(d.stop)
		if d.unwatch != nil {
			d.unwatch()
		}
	})
	<-d.loopDone
	idle := make(chan struct{})
	go func() { d.posts.Wait(); close(idle) }()
	var err error
	select {
	case <-idle:
	case <-ctx.Done():
		err = ctx.Err()
		d.cancelPost()
		<-idle
	}
	d.cancelPost()
	return err
}

// loop claims as many due events as there are free workers and sends each
// on its own goroutine; with nothing due it sleeps until the next due time.
func (d *Dispatcher) loop() {
	defer close(d.loopDone)
	for {
		n := d.acquire()
		if n == 0 {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		events, err := d.cfg.Store.ClaimEvents(ctx, d.cfg.Owner, n, d.cfg.Lease)
		cancel()
		if err != nil {
			d.log.Error("claiming webhook events", "err", err)
			events = nil
		}
		for _, e := range events {
			d.posts.Add(1)
			go d.deliver(e)
		}
		for range n - len(events) {
			d.slots <- struct{}{}
		}
		if err != nil {
			d.sleep(time.Second)
		} else if len(events) < n {
			d.sleep(d.untilDue())
		}
	}
}

// acquire takes at least one free worker slot, and any others free, and
// returns how many; 0 once stopping.
func (d *Dispatcher) acquire() int {
	select {
	case <-d.slots:
	case <-d.stop:
		return 0
	}
	n := 1
	for n < d.cfg.Workers {
		select {
		case <-d.slots:
			n++
			continue
		default:
		}
		break
	}
	if d.stopping() {
		for range n {
			d.slots <- struct{}{}
		}
		return 0
	}
	return n
}

// untilDue returns how long to sleep: until the store's next due event, at
// most PollInterval.
func (d *Dispatcher) untilDue() time.Duration {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	wait := d.cfg.PollInterval
	t, ok, err := d.cfg.Store.NextEventDue(ctx)
	if err != nil {
		d.log.Error("reading next webhook due time", "err", err)
		return wait
	}
	if ok {
		wait = min(wait, time.Until(t))
	}
	return max(wait, minWait)
}

// sleep waits for wait, a Notify or Shutdown, whichever comes first.
func (d *Dispatcher) sleep(wait time.Duration) {
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-d.wake:
	case <-t.C:
	case <-d.stop:
	}
}

func (d *Dispatcher) stopping() bool {
	select {
	case <-d.stop:
		return true
	default:
		return false
	}
}

// deliver POSTs one claimed event and records the outcome.
func (d *Dispatcher) deliver(e queue.Event) {
	defer d.posts.Done()
	defer func() { d.slots <- struct{}{} }()
	log := d.log.With("event", e.ID, "type", e.Type, "message", e.MessageID,
		"endpoint", redact(e.Endpoint), "attempt", e.Attempts)
	secret, ok := d.secrets[e.Endpoint]
	if !ok {
		log.Warn("abandoning webhook event: endpoint no longer configured")
		d.finish(log, e, false, time.Time{}, "endpoint no longer configured")
		return
	}
	err := d.post(e, secret)
	switch {
	case err == nil:
		log.Debug("webhook event delivered")
		d.finish(log, e, true, time.Time{}, "")
	case d.postCtx.Err() != nil:
		// Shutdown cut the POST short: due again at once, for the next start.
		log.Info("webhook POST interrupted by shutdown", "err", err)
		d.finish(log, e, false, time.Now(), "interrupted by shutdown: "+err.Error())
	default:
		next := d.nextAttempt(e)
		if next.IsZero() {
			log.Warn("abandoning webhook event", "err", err)
		} else {
			log.Info("webhook POST failed; will retry", "err", err, "next_attempt_at", next)
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

// finish records an outcome. It does not use postCtx, which Shutdown may
// have cancelled: the outcome must still be written.
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
func (d *Dispatcher) post(e queue.Event, secret string) error {
	req, err := http.NewRequestWithContext(d.postCtx, http.MethodPost, e.Endpoint, bytes.NewReader(e.Payload))
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

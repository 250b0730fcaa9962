package postgres

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// notifyChannel is the LISTEN/NOTIFY channel of every outbox store; the
// payload is the schema the work was made due in.
const notifyChannel = "outbox_due"

// Listener reconnection backoff bounds.
const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 10 * time.Second
	// readyWait bounds how long the first Watch waits for the listener to
	// be listening, so that a notification right after Watch is not lost.
	readyWait = 5 * time.Second
)

// Watch implements queue.Watcher: fn is called after any node commits an
// Enqueue, EnqueueTx, Retry or Release in this store's schema, and after
// the listener reconnects (notifications may have been missed while it
// was away). Calls to one fn never overlap and are coalesced: a burst of
// notifications while fn runs gives one more call. The first Watch starts
// a listener on a dedicated connection and waits (up to 5s) until it is
// listening. stop unsubscribes; after Close, fn is never called again.
func (s *Store) Watch(fn func()) (stop func()) {
	return s.watch.add(fn)
}

// watcher owns the listening connection and the subscribers it wakes.
type watcher struct {
	cfg *pgx.ConnConfig
	log *slog.Logger

	mu      sync.Mutex
	subs    map[int]chan struct{}
	next    int
	started bool
	closed  bool
	ready   chan struct{} // closed once the listener first listens
	cancel  context.CancelFunc
	done    chan struct{}
}

func newWatcher(cfg *pgx.ConnConfig, log *slog.Logger) *watcher {
	return &watcher{cfg: cfg, log: log, subs: make(map[int]chan struct{}),
		ready: make(chan struct{}), done: make(chan struct{})}
}

// add subscribes fn, starting the listener on first use.
func (w *watcher) add(fn func()) func() {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return func() {}
	}
	if !w.started {
		w.started = true
		ctx, cancel := context.WithCancel(context.Background())
		w.cancel = cancel
		go w.run(ctx)
	}
	key := w.next
	w.next++
	ch := make(chan struct{}, 1)
	w.subs[key] = ch
	w.mu.Unlock()
	// Each subscriber has its own goroutine, so a slow fn never blocks the
	// listener or the other subscribers.
	go func() {
		for range ch {
			fn()
		}
	}()
	select {
	case <-w.ready:
	case <-time.After(readyWait):
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			w.mu.Lock()
			defer w.mu.Unlock()
			if c, ok := w.subs[key]; ok {
				delete(w.subs, key)
				close(c)
			}
		})
	}
}

// fire wakes every subscriber without blocking: a subscriber already due
// a call keeps its one pending wake-up.
func (w *watcher) fire() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, ch := range w.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// run keeps a listening connection up until ctx ends, reconnecting with
// exponential backoff.
func (w *watcher) run(ctx context.Context) {
	defer close(w.done)
	backoff := minBackoff
	var readyOnce sync.Once
	for attempt := 1; ctx.Err() == nil; attempt++ {
		err := w.listen(ctx, func() {
			backoff = minBackoff
			readyOnce.Do(func() { close(w.ready) })
			// The first Watch waited for the first connection; any later
			// one may have missed notifications while it was down.
			if attempt > 1 {
				w.fire()
			}
		})
		if ctx.Err() != nil {
			return
		}
		w.log.Warn("postgres: notification listener lost its connection; reconnecting",
			"err", err, "backoff", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// listen connects, LISTENs, calls up once listening, then relays
// notifications for this schema until the connection fails or ctx ends.
func (w *watcher) listen(ctx context.Context, up func()) error {
	conn, err := pgx.ConnectConfig(ctx, w.cfg.Copy())
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	var schema string
	if err := conn.QueryRow(ctx, `SELECT coalesce(current_schema(), '')`).Scan(&schema); err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, `LISTEN `+notifyChannel); err != nil {
		return err
	}
	up()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		if n.Payload == schema {
			w.fire()
		}
	}
}

// close stops the listener and every subscriber.
func (w *watcher) close() {
	w.mu.Lock()
	w.closed = true
	started := w.started
	for k, ch := range w.subs {
		delete(w.subs, k)
		close(ch)
	}
	w.mu.Unlock()
	if started {
		w.cancel()
		<-w.done
	}
}

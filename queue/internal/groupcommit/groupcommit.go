// Package groupcommit is the group-commit loop both queue stores share: one
// writer goroutine takes every item waiting, up to the batch bounds, commits
// them in one transaction and answers each producer, so many concurrent
// enqueues pay for one durable commit instead of one each.
//
// The package knows nothing of SQL: the store supplies the commit, the
// size of an item and what to do with an item once it is answered.
package groupcommit

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// MaxLinger bounds how long the writer waits for producers it expects.
const MaxLinger = time.Millisecond

// Config is what a store plugs into a Writer.
type Config[T any] struct {
	// MaxItems and MaxBytes bound one batch; a batch is closed as soon as
	// it holds MaxItems items or Size adds up to MaxBytes.
	MaxItems int
	MaxBytes int64
	// Size is an item's weight against MaxBytes (its body size).
	Size func(T) int64
	// Commit writes batch in one transaction and returns each item's id,
	// in order. It is called from the writer goroutine only.
	Commit func(ctx context.Context, batch []T) ([]string, error)
	// Release is called once for every item, before its producer is
	// answered, whether it was committed, refused or never handed over;
	// stores free the item's spooled body there. Nil: nothing to free.
	Release func(T)
	// Wrap turns a commit error into the error a producer sees. Nil: as is.
	Wrap func(error) error
	// Closed is what Submit returns once Close has begun.
	Closed error
	// Logger hears of batches that failed and were retried item by item;
	// Name prefixes its messages ("sqlite").
	Logger *slog.Logger
	Name   string
}

// request is one Submit waiting for the writer's commit.
type request[T any] struct {
	item T
	done chan result
}

type result struct {
	id  string
	err error
}

// Writer runs the group-commit loop. Start it with Start, stop it with
// Close.
type Writer[T any] struct {
	cfg    Config[T]
	mu     sync.RWMutex // guards closed against sends on reqs
	closed atomic.Bool
	reqs   chan *request[T]
	done   sync.WaitGroup
}

// Start starts the writer goroutine. Zero bounds mean one item a batch.
func Start[T any](cfg Config[T]) *Writer[T] {
	cfg.MaxItems = max(cfg.MaxItems, 1)
	if cfg.Release == nil {
		cfg.Release = func(T) {}
	}
	if cfg.Wrap == nil {
		cfg.Wrap = func(err error) error { return err }
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	w := &Writer[T]{cfg: cfg, reqs: make(chan *request[T], cfg.MaxItems)}
	w.done.Add(1)
	go w.run()
	return w
}

// Submit hands item to the writer and returns once the commit that holds
// it has succeeded (its id) or failed. Once handed over, it waits for the
// commit even if the producer's context has ended, so that its answer is
// never a lie; callers check their context before. It returns
// cfg.Closed, without handing item over, once Close has begun. In
// every case item has been released when Submit returns.
func (w *Writer[T]) Submit(item T) (string, error) {
	req := &request[T]{item: item, done: make(chan result, 1)}
	w.mu.RLock()
	if w.closed.Load() {
		w.mu.RUnlock()
		w.cfg.Release(item)
		return "", w.cfg.Closed
	}
	w.reqs <- req
	w.mu.RUnlock()
	res := <-req.done
	return res.id, res.err
}

// Close lets the writer commit and answer what it has been handed, then
// stops it. Later Submits return cfg.Closed. Close is idempotent.
func (w *Writer[T]) Close() {
	w.mu.Lock()
	if !w.closed.Load() {
		w.closed.Store(true)
		close(w.reqs)
	}
	w.mu.Unlock()
	w.done.Wait()
}

// run is the loop: it takes every request waiting, up to the batch bounds,
// commits them in one transaction and answers them all.
func (w *Writer[T]) run() {
	defer w.done.Done()
	prev := 0
	for req := range w.reqs {
		batch := w.gather(req, prev)
		w.commitBatch(batch)
		prev = len(batch)
	}
}

// gather collects a batch starting with first. The producers answered by
// the last commit come back a moment later with their next message; taking
// only what is already queued would split them over two commits (two
// fsyncs), so while the batch is smaller than the last one the writer
// lingers briefly for them. With one producer it never waits.
func (w *Writer[T]) gather(first *request[T], prev int) []*request[T] {
	batch := []*request[T]{first}
	size := w.cfg.Size(first.item)
	var linger <-chan time.Time
	for len(batch) < w.cfg.MaxItems && size < w.cfg.MaxBytes {
		var r *request[T]
		var ok bool
		select {
		case r, ok = <-w.reqs:
		default:
			if len(batch) >= prev {
				return batch
			}
			if linger == nil {
				linger = time.After(MaxLinger)
			}
			select {
			case r, ok = <-w.reqs:
			case <-linger:
				return batch
			}
		}
		if !ok {
			return batch
		}
		batch = append(batch, r)
		size += w.cfg.Size(r.item)
	}
	return batch
}

// commitBatch commits batch in one transaction. If that fails, each item
// is retried in a transaction of its own so one bad message cannot sink the
// others.
func (w *Writer[T]) commitBatch(batch []*request[T]) {
	// Not the producers' contexts: a message handed to the writer is
	// committed or refused on its merits, never half-way by a cancel.
	ctx := context.Background()
	ids, err := w.cfg.Commit(ctx, items(batch))
	if err != nil && len(batch) > 1 {
		w.cfg.Logger.Warn(w.cfg.Name+": group commit failed; retrying messages one by one",
			"messages", len(batch), "err", err)
		for _, r := range batch {
			one, err := w.cfg.Commit(ctx, []T{r.item})
			if err != nil {
				w.answer(r, "", err)
				continue
			}
			w.answer(r, one[0], nil)
		}
		return
	}
	for i, r := range batch {
		if err != nil {
			w.answer(r, "", err)
			continue
		}
		w.answer(r, ids[i], nil)
	}
}

// answer releases r's item and then answers its producer, so the producer
// never returns while the item's resources are still held.
func (w *Writer[T]) answer(r *request[T], id string, err error) {
	w.cfg.Release(r.item)
	if err != nil {
		err = w.cfg.Wrap(err)
	}
	r.done <- result{id: id, err: err}
}

func items[T any](batch []*request[T]) []T {
	out := make([]T, len(batch))
	for i, r := range batch {
		out[i] = r.item
	}
	return out
}

// Package worker runs the claim loop that mail delivery and webhooks
// share: claim as many due items as there are free workers, handle each on
// a goroutine of its own, and with nothing due sleep until the store's next
// due time or a Notify, never polling in a busy loop. Shutdown stops
// claiming, lets handlers finish until its context ends, then cancels them.
package worker

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"
)

// minWait floors a sleep after a short claim, so a due time already past
// (a lease about to lapse, clocks that disagree) cannot spin the loop.
const minWait = 5 * time.Millisecond

// Config describes the items a Pool claims and how it handles them.
type Config[T any] struct {
	// Workers bounds how many items are handled at once (at least 1).
	Workers int
	// Claim leases up to limit due items.
	Claim func(ctx context.Context, limit int) ([]T, error)
	// NextDue returns when the next item becomes claimable; ok is false
	// when nothing is waiting.
	NextDue func(ctx context.Context) (t time.Time, ok bool, err error)
	// Handle processes one claimed item. Its ctx is cancelled when
	// Shutdown runs out of time; it must return soon after.
	Handle func(ctx context.Context, item T)
	// PollInterval bounds an idle sleep without a Notify; negative sleeps
	// until the next due time or a Notify, however long.
	PollInterval time.Duration
	// Watch, if set, subscribes to wake-ups from other processes sharing
	// the store; it returns the function that unsubscribes.
	Watch func(wake func()) (stop func())
	// Logger and What name the loop in logs, e.g. "claiming due messages".
	Logger *slog.Logger
	What   string
}

// Pool is a running claim loop and its workers.
type Pool[T any] struct {
	cfg     Config[T]
	wake    chan struct{}
	stop    chan struct{}
	slots   chan struct{}
	handled sync.WaitGroup

	handleCtx context.Context
	cancel    context.CancelFunc

	mu       sync.Mutex
	wakeAt   time.Time // earliest due time told by WakeAt, zero if none
	rewake   chan struct{}
	started  bool
	stopOnce sync.Once
	unwatch  func()
	loopDone chan struct{}
}

// New returns a Pool ready to Start.
func New[T any](cfg Config[T]) *Pool[T] {
	cfg.Workers = max(cfg.Workers, 1)
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	p := &Pool[T]{cfg: cfg, wake: make(chan struct{}, 1), rewake: make(chan struct{}, 1), stop: make(chan struct{}),
		slots: make(chan struct{}, cfg.Workers), loopDone: make(chan struct{})}
	for range cfg.Workers {
		p.slots <- struct{}{}
	}
	p.handleCtx, p.cancel = context.WithCancel(context.Background())
	return p
}

// Start launches the claim loop.
func (p *Pool[T]) Start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.started {
		return errors.New("worker: already started")
	}
	p.started = true
	if p.cfg.Watch != nil {
		p.unwatch = p.cfg.Watch(p.Notify)
	}
	go p.loop()
	return nil
}

// Notify wakes an idle loop: something may be due now. It never blocks.
func (p *Pool[T]) Notify() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// WakeAt tells the loop that something becomes due at t (a result just
// committed with its next attempt then), so an idle loop wakes for it
// rather than for a later due time or a poll. It never blocks.
func (p *Pool[T]) WakeAt(t time.Time) {
	p.mu.Lock()
	if p.wakeAt.IsZero() || t.Before(p.wakeAt) {
		p.wakeAt = t
	}
	p.mu.Unlock()
	select {
	case p.rewake <- struct{}{}:
	default:
	}
}

// takeWakeAt returns the pending WakeAt time, clearing it.
func (p *Pool[T]) takeWakeAt() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	t := p.wakeAt
	p.wakeAt = time.Time{}
	return t
}

// keepWakeAt puts back a WakeAt time not used yet, without a signal.
func (p *Pool[T]) keepWakeAt(t time.Time) {
	p.mu.Lock()
	if p.wakeAt.IsZero() || t.Before(p.wakeAt) {
		p.wakeAt = t
	}
	p.mu.Unlock()
}

// TryAcquire takes a free worker slot without waiting, for an item the
// caller will hand over with Run; false when none is free or the pool is
// stopping. Give an unused slot back with Unacquire.
func (p *Pool[T]) TryAcquire() bool {
	select {
	case <-p.stop:
		return false
	default:
	}
	select {
	case <-p.slots:
		return true
	default:
		return false
	}
}

// Unacquire gives back a slot taken with TryAcquire and not used.
func (p *Pool[T]) Unacquire() { p.slots <- struct{}{} }

// Run handles item on a slot taken with TryAcquire, exactly as a claimed
// item: Shutdown waits for it and cancels it when out of time.
func (p *Pool[T]) Run(item T) {
	p.handled.Add(1)
	go p.handle(item)
}

// Shutdown stops claiming and waits for the handlers until ctx is done;
// then it cancels their context and waits for them to return, and reports
// ctx's error. It is a no-op on a pool never started.
func (p *Pool[T]) Shutdown(ctx context.Context) error {
	p.mu.Lock()
	started := p.started
	p.mu.Unlock()
	if !started {
		return nil
	}
	p.stopOnce.Do(func() {
		close(p.stop)
		if p.unwatch != nil {
			p.unwatch()
		}
	})
	<-p.loopDone
	idle := make(chan struct{})
	go func() { p.handled.Wait(); close(idle) }()
	var err error
	select {
	case <-idle:
	case <-ctx.Done():
		err = ctx.Err()
		p.cancel()
		<-idle
	}
	p.cancel()
	return err
}

func (p *Pool[T]) loop() {
	defer close(p.loopDone)
	empty := 0 // claims in a row that found nothing
	for {
		n := p.acquire()
		if n == 0 {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		items, err := p.cfg.Claim(ctx, n)
		cancel()
		if err != nil {
			p.cfg.Logger.Error(p.cfg.What, "err", err)
			items = nil
		}
		p.start(items)
		switch {
		case err != nil:
			p.sleep(time.Second)
		case len(items) < n:
			wait := p.untilDue()
			if len(items) == 0 && wait >= 0 && wait <= minWait {
				// Nothing claimed though the store calls something due
				// already: a lease about to lapse, or a database clock
				// behind ours. Waiting longer each time keeps that from
				// turning into a poll.
				empty++
				wait = min(minWait<<min(empty, 8), time.Second)
			} else {
				empty = 0
			}
			p.sleep(wait)
		default:
			empty = 0
		}
	}
}

func (p *Pool[T]) handle(it T) { p.handleSlot(it, true) }

// handleSlot handles it, giving back its slot after when it holds one.
func (p *Pool[T]) handleSlot(it T, slot bool) {
	defer p.handled.Done()
	if slot {
		defer func() { p.slots <- struct{}{} }()
	}
	p.cfg.Handle(p.handleCtx, it)
}

// acquire waits for one free worker slot and takes it; it returns how
// many slots are free with it, or 0 once stopping. Only the first is
// taken: the others stay free for TryAcquire while the claim runs, and
// start takes them per item claimed.
func (p *Pool[T]) acquire() int {
	select {
	case <-p.slots:
	case <-p.stop:
		return 0
	}
	select {
	case <-p.stop:
		p.slots <- struct{}{}
		return 0
	default:
		return 1 + len(p.slots)
	}
}

// start handles claimed items: the first on the slot acquire took, each
// other on a slot taken now, waiting for one if a TryAcquire took it
// meanwhile. Once stopping it waits no more: the items are handled at
// once (Shutdown then bounds them), so a claimed item is never dropped.
func (p *Pool[T]) start(items []T) {
	if len(items) == 0 {
		p.slots <- struct{}{}
		return
	}
	for i, it := range items {
		slot := true
		if i > 0 {
			select {
			case <-p.slots:
			case <-p.stop:
				slot = false
			}
		}
		p.handled.Add(1)
		go p.handleSlot(it, slot)
	}
}

// untilDue is how long nothing will be due, bounded by PollInterval;
// negative means no timer at all.
func (p *Pool[T]) untilDue() time.Duration {
	wait := p.cfg.PollInterval
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	next, ok, err := p.cfg.NextDue(ctx)
	cancel()
	if err != nil {
		p.cfg.Logger.Error(p.cfg.What+": reading the next due time", "err", err)
		return time.Second
	}
	if ok {
		if until := time.Until(next); wait < 0 || until < wait {
			wait = until
		}
	}
	if t := p.takeWakeAt(); !t.IsZero() {
		ok = true
		if until := time.Until(t); wait < 0 || until < wait {
			wait = until
		}
	}
	if ok || wait >= 0 {
		wait = max(wait, minWait)
	}
	return wait
}

// sleep waits for d, a Notify, a WakeAt before then, or Shutdown; a
// negative d has no timer.
func (p *Pool[T]) sleep(d time.Duration) {
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	var deadline time.Time
	if d >= 0 {
		deadline = time.Now().Add(d)
		t.Reset(d)
	} else {
		t.Stop()
	}
	for {
		select {
		case <-p.wake:
			return
		case <-t.C:
			return
		case <-p.stop:
			return
		case <-p.rewake:
			at := p.takeWakeAt()
			if at.IsZero() {
				continue
			}
			if !deadline.IsZero() && !at.Before(deadline) {
				p.keepWakeAt(at) // for the next sleep
				continue
			}
			deadline = at
			t.Stop()
			t.Reset(max(time.Until(at), minWait))
		}
	}
}

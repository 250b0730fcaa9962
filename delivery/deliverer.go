package delivery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/outbox-mail/outbox/internal/worker"
	"github.com/outbox-mail/outbox/queue"
)

// Config configures a Deliverer. Store and Transport are required.
type Config struct {
	Store     queue.LeaseHolder
	Transport Transport
	// Workers is the number of messages sent concurrently (default 8).
	Workers int
	// Lease is how long a claim lasts before another worker may take the
	// message; it is renewed every Lease/3 while sending (default 2m).
	Lease time.Duration
	// Retry is the schedule after temporary failures.
	Retry RetryPolicy
	// Owner names this process in leases (default host-pid-time).
	Owner string
	// PollInterval bounds how long an idle deliverer sleeps without a
	// Notify. Only messages enqueued behind its back (EnqueueTx, another
	// process without LISTEN/NOTIFY) need it (default 10s; negative: sleep
	// until the next due time or a Notify, however long).
	PollInterval time.Duration
	// Events, if set, returns the webhook events of a result; they are
	// recorded in the same transaction as the result.
	Events func(c *queue.Claimed, r *queue.Result) []queue.NewEvent
	// OnResult, if set, is called after a result is committed.
	OnResult func(c *queue.Claimed, r *queue.Result)
	// Logger receives operational logs (default slog.Default()).
	Logger *slog.Logger
}

// Deliverer claims due messages and delivers them in the background.
type Deliverer struct {
	cfg     Config
	log     *slog.Logger
	pool    *worker.Pool[*queue.Claimed]
	results chan finished

	mu       sync.Mutex
	inflight map[string]bool // claimed and not yet committed
	started  bool
	// closeOnce lets Shutdown run twice (a deferred call and an explicit
	// one) without closing results twice.
	closeOnce sync.Once

	commitDone chan struct{}
	renewDone  chan struct{}
}

type finished struct {
	claimed   *queue.Claimed
	result    queue.Result
	committed chan struct{} // closed once the result is recorded (or given up)
}

// New checks cfg and returns a Deliverer ready to Start.
func New(cfg Config) (*Deliverer, error) {
	if cfg.Store == nil {
		return nil, errors.New("delivery: Config.Store is required")
	}
	if cfg.Transport == nil {
		return nil, errors.New("delivery: Config.Transport is required")
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 8
	}
	if cfg.Lease <= 0 {
		cfg.Lease = 2 * time.Minute
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 10 * time.Second
	}
	if cfg.Owner == "" {
		host, _ := os.Hostname()
		cfg.Owner = fmt.Sprintf("%s-%d-%d", host, os.Getpid(), time.Now().UnixNano())
	}
	cfg.Retry = cfg.Retry.withDefaults()
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	d := &Deliverer{
		cfg:        cfg,
		log:        log.With("component", "delivery"),
		results:    make(chan finished, cfg.Workers),
		inflight:   make(map[string]bool),
		commitDone: make(chan struct{}),
		renewDone:  make(chan struct{}),
	}
	wc := worker.Config[*queue.Claimed]{Workers: cfg.Workers, Claim: d.claim,
		NextDue: cfg.Store.NextDue, Handle: d.deliver, PollInterval: cfg.PollInterval,
		Logger: d.log, What: "claiming due messages"}
	if w, ok := cfg.Store.(queue.Watcher); ok {
		// Another node's enqueue wakes this one at once.
		wc.Watch = w.Watch
	}
	d.pool = worker.New(wc)
	return d, nil
}

// Owner returns the name this deliverer holds leases under.
func (d *Deliverer) Owner() string { return d.cfg.Owner }

// Start launches the claim loop, the committer and the lease renewer.
func (d *Deliverer) Start() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.started {
		return errors.New("delivery: already started")
	}
	d.started = true
	go d.commitLoop()
	go d.renewLoop()
	return d.pool.Start()
}

// Notify wakes an idle deliverer: something may be due now. It never blocks.
func (d *Deliverer) Notify() { d.pool.Notify() }

// Shutdown stops claiming, lets in-flight sends finish until ctx is done,
// then aborts the rest; their unacknowledged recipients are due again at
// once. Every result is committed and every lease released before it
// returns, so no message is left in sending.
func (d *Deliverer) Shutdown(ctx context.Context) error {
	d.mu.Lock()
	started := d.started
	d.mu.Unlock()
	if !started {
		return nil
	}
	err := d.pool.Shutdown(ctx)
	d.closeOnce.Do(func() { close(d.results) })
	<-d.commitDone
	<-d.renewDone
	d.releaseLeftovers()
	return err
}

// releaseLeftovers gives back leases whose results could not be committed.
func (d *Deliverer) releaseLeftovers() {
	d.mu.Lock()
	ids := make([]string, 0, len(d.inflight))
	for id := range d.inflight {
		ids = append(ids, id)
	}
	d.mu.Unlock()
	if len(ids) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.cfg.Store.Release(ctx, d.cfg.Owner, ids); err != nil {
		d.log.Error("releasing leases at shutdown", "messages", len(ids), "err", err)
	}
}

func (d *Deliverer) track(id string, on bool) {
	d.mu.Lock()
	if on {
		d.inflight[id] = true
	} else {
		delete(d.inflight, id)
	}
	d.mu.Unlock()
}

package delivery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/outbox-mail/outbox/internal/worker"
	"github.com/outbox-mail/outbox/queue"
)

// Config configures a Deliverer. Store is required, and Transport unless
// Routing is set.
type Config struct {
	Store Store
	// Transport carries all mail as one destination when Routing is nil
	// (a library's single relay, Capture, a transport of your own).
	Transport Transport
	// Routing, when set, routes each recipient to a destination of its
	// own (relays, MX host sets, capture); Transport is then unused.
	Routing *Routing
	// MaxConnections caps the sessions open at once over all destinations
	// (default 100).
	MaxConnections int
	// DestinationConnections is each destination's own cap (default 20,
	// Postfix's default_destination_concurrency_limit); a route's
	// MaxConnections overrides it.
	DestinationConnections int
	// Workers is the former name of MaxConnections, used when that is 0.
	Workers int
	// MaxInFlight bounds the messages claimed and not yet finished, waiting
	// for their destinations or being sent (default 2×MaxConnections, at
	// least 64).
	MaxInFlight int
	// MaxUncommitted bounds the deliveries started and not yet committed,
	// those under way included (default MaxConnections+64): a crash
	// repeats at most this many. Senders do not wait for their commits
	// while fewer are outstanding.
	MaxUncommitted int
	// Health says when a failing destination is backed off.
	Health HealthPolicy
	// StallAfter: when every session of a destination has been open this
	// long without one finishing, the mail waiting for it is deferred
	// instead of held, so a destination that hangs holds only its own
	// connections, never the engine's memory (default 2m; negative:
	// never).
	StallAfter time.Duration
	// Lease is how long a claim lasts before another worker may take the
	// message; it is renewed every Lease/3 while sending (default 2m).
	Lease time.Duration
	// Retry is the schedule after temporary failures.
	Retry RetryPolicy
	// Deliverability adds DKIM signatures, VERP return paths and
	// unsubscribe links to the mail as it is sent; the zero value adds
	// nothing.
	Deliverability Deliverability
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
	// OnOutcome, if set, is called for each recipient of a committed
	// result, with the route and destination it took (for metrics).
	OnOutcome func(o RecipientOutcome)
	// Logger receives operational logs and one info line per recipient
	// outcome (default slog.Default()).
	Logger *slog.Logger
}

// Deliverer claims due messages and delivers them in the background.
type Deliverer struct {
	cfg   Config
	log   *slog.Logger
	pool  *worker.Pool[*offered]
	sched *scheduler
	dirs  *directory
	dv    atomic.Pointer[Deliverability] // cfg.Deliverability, then SetDKIM's

	results chan finished

	mu       sync.Mutex
	inflight map[string]bool // claimed and not yet committed
	started  bool
	stopping bool // Shutdown has begun: no more Offers
	reserved int  // reservations not yet spent
	// closeOnce lets Shutdown run twice (a deferred call and an explicit
	// one) without closing results twice.
	closeOnce sync.Once

	commitDone chan struct{}
	renewDone  chan struct{}
}

// offered is a claimed message and, for an Offer, its body in memory.
type offered struct {
	c    *queue.Claimed
	body []byte
}

// finished is an attempt's result on its way to the store.
type finished struct {
	claimed *queue.Claimed
	result  queue.Result
	notes   map[string]recipientNote
	sent    int // parts started: the scheduler's uncommitted budget they hold
}

// New checks cfg and returns a Deliverer ready to Start.
func New(cfg Config) (*Deliverer, error) {
	if cfg.Store == nil {
		return nil, errors.New("delivery: Config.Store is required")
	}
	if cfg.Transport == nil && cfg.Routing == nil {
		return nil, errors.New("delivery: Config.Transport or Config.Routing is required")
	}
	cfg = withDefaults(cfg)
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	sched := newScheduler(cfg.MaxConnections, cfg.MaxUncommitted, cfg.StallAfter)
	dirs, err := newDirectory(&cfg, sched)
	if err != nil {
		return nil, err
	}
	d := &Deliverer{
		cfg: cfg, log: log.With("component", "delivery"), dirs: dirs,
		sched:      sched,
		results:    make(chan finished, cfg.MaxUncommitted),
		inflight:   make(map[string]bool),
		commitDone: make(chan struct{}),
		renewDone:  make(chan struct{}),
	}
	d.dv.Store(&d.cfg.Deliverability)
	wc := worker.Config[*offered]{Workers: cfg.MaxInFlight, Claim: d.claim,
		NextDue: cfg.Store.NextDue, Handle: d.deliver, PollInterval: cfg.PollInterval,
		Logger: d.log, What: "claiming due messages"}
	if w, ok := cfg.Store.(queue.Watcher); ok {
		// Another node's enqueue wakes this one at once.
		wc.Watch = w.Watch
	}
	d.pool = worker.New(wc)
	return d, nil
}

func withDefaults(cfg Config) Config {
	if cfg.MaxConnections <= 0 {
		cfg.MaxConnections = cfg.Workers
	}
	if cfg.MaxConnections <= 0 {
		cfg.MaxConnections = 100
	}
	if cfg.DestinationConnections <= 0 {
		cfg.DestinationConnections = 20
	}
	if cfg.MaxInFlight <= 0 {
		// Claims in batches big enough to be cheap even for few
		// connections; the stall rule keeps a hung destination from
		// holding them.
		cfg.MaxInFlight = max(2*cfg.MaxConnections, 64)
	}
	if cfg.MaxUncommitted <= 0 {
		// Every connection busy, and 64 more to carry the senders through
		// a commit's fsync (results share it); few enough that a crash
		// repeats little.
		cfg.MaxUncommitted = cfg.MaxConnections + 64
	}
	if cfg.Lease <= 0 {
		cfg.Lease = 2 * time.Minute
	}
	if cfg.StallAfter == 0 {
		cfg.StallAfter = 2 * time.Minute
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 10 * time.Second
	}
	if cfg.Owner == "" {
		host, _ := os.Hostname()
		cfg.Owner = fmt.Sprintf("%s-%d-%d", host, os.Getpid(), time.Now().UnixNano())
	}
	cfg.Retry = cfg.Retry.withDefaults()
	return cfg
}

// Owner returns the name this deliverer holds leases under.
func (d *Deliverer) Owner() string { return d.cfg.Owner }

// Lease returns how long its leases last unrenewed, the lease a message
// written for Offer must carry.
func (d *Deliverer) Lease() time.Duration { return d.cfg.Lease }

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
	d.stopping = true
	d.mu.Unlock()
	if !started {
		return nil
	}
	// Mail not yet under way is given back (its lease released below),
	// not sent: shutdown waits only for the sessions in progress.
	d.sched.stop(d.dirs.all())
	err := d.pool.Shutdown(ctx)
	d.closeOnce.Do(func() { close(d.results) })
	<-d.commitDone
	<-d.renewDone
	d.releaseLeftovers()
	d.dirs.close()
	return err
}

// releaseLeftovers gives back leases whose results could not be committed.
func (d *Deliverer) releaseLeftovers() {
	ids := d.inflightIDs()
	if len(ids) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.cfg.Store.Release(ctx, d.cfg.Owner, ids); err != nil {
		d.log.Error("releasing leases at shutdown", "messages", len(ids), "err", err)
	}
}

// inflightIDs returns the ids claimed and not yet committed.
func (d *Deliverer) inflightIDs() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	ids := make([]string, 0, len(d.inflight))
	for id := range d.inflight {
		ids = append(ids, id)
	}
	return ids
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

// claim leases up to limit due messages and tracks them for renewal.
func (d *Deliverer) claim(ctx context.Context, limit int) ([]*offered, error) {
	claimed, err := d.cfg.Store.Claim(ctx, d.cfg.Owner, limit, d.cfg.Lease)
	if err != nil {
		return nil, err
	}
	out := make([]*offered, len(claimed))
	for i := range claimed {
		out[i] = &offered{c: &claimed[i]}
		d.track(claimed[i].ID, true)
	}
	return out, nil
}

// deliver makes one attempt at a claimed message and hands its result to
// the committer without waiting for the commit. ctx is cancelled when
// shutdown runs out of time; the recipients the attempt could not finish
// are then due again at once.
func (d *Deliverer) deliver(ctx context.Context, o *offered) {
	f, unsent := d.attempt(ctx, o.c, o.body)
	if unsent {
		return // shutdown came first: its lease is released, no attempt recorded
	}
	d.results <- f
}

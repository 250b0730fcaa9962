// Package outbox is a durable mail queue with background SMTP delivery, to
// embed in a Go application: Enqueue returns as soon as the message is
// committed to disk, and workers deliver it with retries while the
// application goes on.
//
//	store, _ := sqlite.Open("outbox-data/outbox.db", sqlite.Options{})
//	ob, _ := outbox.New(outbox.Config{Store: store, Transport: relay})
//	ob.Start()
//	defer ob.Shutdown(ctx)
//	id, err := ob.Enqueue(ctx, &message.Message{...}, nil)
package outbox

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"time"

	"github.com/outbox-mail/outbox/delivery"
	"github.com/outbox-mail/outbox/message"
	"github.com/outbox-mail/outbox/queue"
)

// Config configures a Client. Store is required.
type Config struct {
	// Store keeps messages durably (queue/sqlite or queue/postgres).
	Store queue.Store
	// Transport delivers messages; nil means delivery.Capture, which keeps
	// mail in the store without sending it anywhere. Unused with Routing.
	Transport delivery.Transport
	// Routing, when set, routes each recipient to its destination: per
	// domain routes, relays, direct MX delivery (see package route).
	Routing *delivery.Routing
	// MaxConnections caps deliveries in progress over all destinations
	// (default 100); DestinationConnections caps each destination's
	// (default 20).
	MaxConnections, DestinationConnections int
	// Workers is the former name of MaxConnections, used when that is 0.
	Workers int
	// Retry is the schedule after temporary failures (Postfix's defaults).
	// How long a message is retried is the store's queue.Options.Lifetime.
	Retry delivery.RetryPolicy
	// Lease is how long a claim lasts without renewal (default 2m).
	Lease time.Duration
	// Deliverability adds DKIM signatures, per-recipient VERP return paths
	// and one-click unsubscribe links as mail is sent (see
	// delivery.Deliverability); the zero value adds nothing.
	Deliverability delivery.Deliverability
	// PollInterval bounds idle sleeps, for mail enqueued behind the
	// client's back, e.g. with EnqueueTx and no Notify (default 10s).
	PollInterval time.Duration
	// Events returns the webhook events of an attempt's result, to be
	// recorded with it (see package webhook).
	Events func(c *queue.Claimed, r *queue.Result) []queue.NewEvent
	// OnResult is called after each attempt's result is committed.
	OnResult func(c *queue.Claimed, r *queue.Result)
	// OnOutcome is called for each recipient of a committed result, with
	// the route it took (metrics.Metrics.Outcome counts them).
	OnOutcome func(o delivery.RecipientOutcome)
	// OnCancel is called after a message is cancelled, e.g. to record the
	// webhook events of the cancellation; its error is Cancel's.
	OnCancel func(ctx context.Context, m *queue.Message) error
	// OnEnqueue is called after a message is durably accepted, with where
	// it came from. It must not block.
	OnEnqueue func(id string, source queue.Source)
	// Logger receives operational logs (default slog.Default()).
	Logger *slog.Logger
}

// Client is an embedded outbox: a store and its delivery workers.
type Client struct {
	cfg       Config
	log       *slog.Logger
	deliverer *delivery.Deliverer
}

// EnqueueOptions are the optional settings of one enqueue.
type EnqueueOptions struct {
	// SendAt delays the first attempt until then.
	SendAt time.Time
	// IdempotencyKey makes a repeated enqueue return the first id.
	IdempotencyKey string
	// Tags are the caller's own labels, kept with the message and shown
	// back; nothing acts on them.
	Tags map[string]string
	// Source says where the message came from (default library).
	Source queue.Source
	// IgnoreSuppressions sends even to addresses on the suppression list
	// (and says so in the log).
	IgnoreSuppressions bool
	// Unsubscribe adds one-click unsubscribe fields naming each recipient
	// when the message is sent (with Config.Deliverability.Unsubscribe).
	Unsubscribe bool
	// DSN holds the RFC 3461 RET and ENVID; Notify, when set, is every
	// recipient's NOTIFY.
	DSN    queue.DSN
	Notify []string
}

// New returns a Client; call Start to begin delivering.
func New(cfg Config) (*Client, error) {
	if cfg.Store == nil {
		return nil, errors.New("outbox: Config.Store is required")
	}
	if cfg.Transport == nil {
		cfg.Transport = delivery.Capture{}
	}
	d, err := delivery.New(delivery.Config{
		Store: cfg.Store, Transport: cfg.Transport, Routing: cfg.Routing, Workers: cfg.Workers,
		MaxConnections: cfg.MaxConnections, DestinationConnections: cfg.DestinationConnections,
		Lease: cfg.Lease, Retry: cfg.Retry, PollInterval: cfg.PollInterval, Deliverability: cfg.Deliverability,
		Events: cfg.Events, OnResult: cfg.OnResult, OnOutcome: cfg.OnOutcome, Logger: cfg.Logger,
	})
	if err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Client{cfg: cfg, log: log, deliverer: d}, nil
}

// Start launches the delivery workers.
func (c *Client) Start() error { return c.deliverer.Start() }

// Shutdown stops claiming, waits for in-flight deliveries until ctx is
// done, then releases what is left so the next start resumes it at once.
// It does not close the store.
func (c *Client) Shutdown(ctx context.Context) error { return c.deliverer.Shutdown(ctx) }

// Notify wakes idle workers, e.g. after committing a transaction that used
// EnqueueTx.
func (c *Client) Notify() { c.deliverer.Notify() }

// Store returns the client's store, for listing and inspection.
func (c *Client) Store() queue.Store { return c.cfg.Store }

// Get returns a message with the fate of each recipient: its status,
// attempts and last SMTP reply.
func (c *Client) Get(ctx context.Context, id string) (*queue.Message, error) {
	return c.cfg.Store.Get(ctx, id)
}

// Retry makes a message with deferred or pending recipients due now.
func (c *Client) Retry(ctx context.Context, id string) error {
	if err := c.cfg.Store.Retry(ctx, id); err != nil {
		return err
	}
	c.deliverer.Notify()
	return nil
}

// Requeue tries a message's failed and bounced recipients again, due now.
func (c *Client) Requeue(ctx context.Context, id string) error {
	if err := c.cfg.Store.Requeue(ctx, id); err != nil {
		return err
	}
	c.deliverer.Notify()
	return nil
}

// Cancel stops delivery of a message that is not yet final.
func (c *Client) Cancel(ctx context.Context, id string) error {
	if err := c.cfg.Store.Cancel(ctx, id); err != nil {
		return err
	}
	if c.cfg.OnCancel == nil {
		return nil
	}
	m, err := c.cfg.Store.Get(ctx, id)
	if err != nil {
		return err
	}
	return c.cfg.OnCancel(ctx, m)
}

// Enqueue composes m and stores it; it returns the message id once the
// message is durable. Nothing is stored when m is invalid.
func (c *Client) Enqueue(ctx context.Context, m *message.Message, opts *EnqueueOptions) (string, error) {
	nm, finish, err := c.prepare(m, opts)
	if err != nil {
		return "", err
	}
	id, err := c.store(ctx, nm)
	if err = finish(err); err != nil {
		return "", err
	}
	return id, nil
}

// EnqueueRaw stores a ready RFC 5322 message with its envelope.
func (c *Client) EnqueueRaw(ctx context.Context, nm queue.NewMessage) (string, error) {
	return c.store(ctx, nm)
}

// store writes nm durably, and logs a message that goes past the
// suppression list.
func (c *Client) store(ctx context.Context, nm queue.NewMessage) (string, error) {
	id, err := c.write(ctx, nm)
	if err == nil && nm.IgnoreSuppressions {
		c.log.Info("message ignores the suppression list", "id", id, "recipients", len(nm.Recipients), "source", nm.Source)
	}
	return id, err
}

// write is store's write: when the deliverer has room, the message is
// written already leased to it, in the same commit, and handed over with
// the body the store held in memory: one write, no claim and no body
// read-back for fresh mail (a crash lets the lease lapse, and the message
// is claimed again like any other). Otherwise it is written queued for a
// claim to find.
func (c *Client) write(ctx context.Context, nm queue.NewMessage) (string, error) {
	if !c.deliverer.Reserve() {
		id, err := c.cfg.Store.Enqueue(ctx, nm)
		if err != nil {
			return "", err
		}
		c.accepted(id, nm.Source, true)
		return id, nil
	}
	e, err := c.cfg.Store.EnqueueLeased(ctx, nm, c.deliverer.Owner(), c.deliverer.Lease())
	if err != nil {
		c.deliverer.Unreserve()
		return "", err
	}
	if e.Claimed == nil {
		// Scheduled for later, final at once or a repeated key: nothing to
		// hand over, but the next due time may have moved.
		c.deliverer.Unreserve()
		c.accepted(e.ID, nm.Source, true)
		return e.ID, nil
	}
	if err := c.deliverer.Offer(e.Claimed, e.Body); err != nil {
		// Stopping: Offer gave the lease back, so the message is due at
		// once for whoever runs next. It is durable either way.
		c.log.Debug("fresh message left for a claim", "id", e.ID, "err", err)
	}
	c.accepted(e.ID, nm.Source, false)
	return e.ID, nil
}

// accepted wakes the workers when a message waits for a claim, and tells
// the OnEnqueue hook.
func (c *Client) accepted(id string, source queue.Source, wake bool) {
	if wake {
		c.deliverer.Notify()
	}
	if c.cfg.OnEnqueue != nil {
		if source == "" {
			source = queue.SourceLibrary
		}
		c.cfg.OnEnqueue(id, source)
	}
}

// prepare validates m and returns the queue message whose Body composes m
// as the store reads it. finish must be called with the store's error; it
// stops the composer and reports a composition failure first.
func (c *Client) prepare(m *message.Message, opts *EnqueueOptions) (queue.NewMessage, func(error) error, error) {
	if m == nil {
		return queue.NewMessage{}, nil, errors.New("outbox: nil message")
	}
	if err := m.Validate(); err != nil {
		return queue.NewMessage{}, nil, err
	}
	if opts == nil {
		opts = &EnqueueOptions{}
	}
	from, rcpts := m.Envelope()
	pr, pw := io.Pipe()
	composed := make(chan error, 1)
	go func() {
		_, err := m.WriteTo(pw)
		pw.CloseWithError(err)
		composed <- err
	}()
	nm := queue.NewMessage{
		From: from, Recipients: rcpts, Subject: m.Subject, Body: pr,
		SendAt: opts.SendAt, IdempotencyKey: opts.IdempotencyKey, Tags: opts.Tags,
		Source: opts.Source, Flags: queue.Flags{EightBit: m.Allow8Bit, SMTPUTF8: m.NeedsSMTPUTF8(),
			DSN: opts.DSN, IgnoreSuppressions: opts.IgnoreSuppressions, Unsubscribe: opts.Unsubscribe},
	}
	if len(opts.Notify) > 0 {
		nm.RecipientDSN = make([]queue.RecipientDSN, len(rcpts))
		for i := range nm.RecipientDSN {
			nm.RecipientDSN[i].Notify = opts.Notify
		}
	}
	finish := func(storeErr error) error {
		pr.CloseWithError(errStoreStopped)
		// The composer's own failure (an attachment that would not read)
		// explains a store error; the store stopping early does not.
		if err := <-composed; err != nil && storeErr != nil && !errors.Is(err, errStoreStopped) {
			return err
		}
		return storeErr
	}
	return nm, finish, nil
}

// errStoreStopped ends the composer when the store stops reading the body.
var errStoreStopped = errors.New("outbox: store stopped reading")

// TxClient is a Client whose store also writes within the application's
// own transactions of type TTx (*sql.Tx with queue/sqlite, pgx.Tx with
// queue/postgres), checked by the compiler: the transactional outbox.
type TxClient[TTx any] struct {
	*Client
	tx queue.TxProducer[TTx]
}

// TxStore is a store that can enqueue within transactions of type TTx:
// *sqlite.Store for *sql.Tx, *postgres.Store for pgx.Tx.
type TxStore[TTx any] interface {
	queue.Store
	queue.TxProducer[TTx]
}

// NewTx is New for a store that can enqueue within transactions of type
// TTx; cfg.Store is set to store.
func NewTx[TTx any](store TxStore[TTx], cfg Config) (*TxClient[TTx], error) {
	if store == nil {
		return nil, errors.New("outbox: NewTx needs a store")
	}
	cfg.Store = store
	c, err := New(cfg)
	if err != nil {
		return nil, err
	}
	return &TxClient[TTx]{Client: c, tx: store}, nil
}

// EnqueueTx composes m and stores it within the caller's transaction tx,
// in a savepoint, so the message exists if and only if tx commits and a
// failed EnqueueTx leaves tx usable. Call Notify after the commit to
// deliver at once (PostgreSQL's commit also wakes every node); otherwise
// delivery starts within PollInterval.
func (c *TxClient[TTx]) EnqueueTx(ctx context.Context, tx TTx, m *message.Message, opts *EnqueueOptions) (string, error) {
	nm, finish, err := c.prepare(m, opts)
	if err != nil {
		return "", err
	}
	id, err := c.tx.EnqueueTx(ctx, tx, nm)
	return id, finish(err)
}

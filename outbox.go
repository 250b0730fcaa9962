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
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/outbox-mail/outbox/delivery"
	"github.com/outbox-mail/outbox/message"
	"github.com/outbox-mail/outbox/queue"
)

// DefaultLifetime is how long delivery is attempted before a deferred
// recipient fails for good (Postfix's maximal_queue_lifetime is 5 days).
const DefaultLifetime = 120 * time.Hour

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
	Retry delivery.RetryPolicy
	// Lifetime bounds how long a message is retried (default 120h).
	Lifetime time.Duration
	// Lease is how long a claim lasts without renewal (default 2m).
	Lease time.Duration
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
	// OnEnqueue is called after a message is durably accepted, with its
	// tags (e.g. "source"). It must not block.
	OnEnqueue func(id string, tags map[string]string)
	// Logger receives operational logs (default slog.Default()).
	Logger *slog.Logger
}

// Client is an embedded outbox: a store and its delivery workers.
type Client struct {
	cfg       Config
	deliverer *delivery.Deliverer
}

// EnqueueOptions are the optional settings of one enqueue.
type EnqueueOptions struct {
	// SendAt delays the first attempt until then.
	SendAt time.Time
	// IdempotencyKey makes a repeated enqueue return the first id.
	IdempotencyKey string
	// Tags are kept with the message (e.g. "source": "signup").
	Tags map[string]string
}

// TxEnqueuer is implemented by stores that can enqueue within a caller's
// own database transaction: queue/sqlite with a *sql.Tx, queue/postgres
// with a pgx.Tx.
type TxEnqueuer[Tx any] interface {
	EnqueueTx(ctx context.Context, tx Tx, m queue.NewMessage) (string, error)
}

// New returns a Client; call Start to begin delivering.
func New(cfg Config) (*Client, error) {
	if cfg.Store == nil {
		return nil, errors.New("outbox: Config.Store is required")
	}
	if cfg.Transport == nil {
		cfg.Transport = delivery.Capture{}
	}
	if cfg.Lifetime <= 0 {
		cfg.Lifetime = DefaultLifetime
	}
	d, err := delivery.New(delivery.Config{
		Store: cfg.Store, Transport: cfg.Transport, Routing: cfg.Routing, Workers: cfg.Workers,
		MaxConnections: cfg.MaxConnections, DestinationConnections: cfg.DestinationConnections,
		Lease: cfg.Lease, Retry: cfg.Retry, PollInterval: cfg.PollInterval,
		Events: cfg.Events, OnResult: cfg.OnResult, OnOutcome: cfg.OnOutcome, Logger: cfg.Logger,
	})
	if err != nil {
		return nil, err
	}
	return &Client{cfg: cfg, deliverer: d}, nil
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

// Status returns a message with the fate of each recipient: its status,
// attempts and last SMTP reply.
func (c *Client) Status(ctx context.Context, id string) (*queue.Message, error) {
	return c.cfg.Store.Get(ctx, id)
}

// Retry makes a deferred message due now; with includeFailed, failed
// recipients are tried again too.
func (c *Client) Retry(ctx context.Context, id string, includeFailed bool) error {
	if err := c.cfg.Store.Retry(ctx, id, includeFailed); err != nil {
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
	id, err := c.cfg.Store.Enqueue(ctx, nm)
	if err = finish(err); err != nil {
		return "", err
	}
	c.accepted(id, nm.Tags)
	return id, nil
}

// EnqueueTx stores m within the caller's transaction tx, so the message
// exists if and only if tx commits (the transactional outbox). The store
// must support it (queue/sqlite does, on the database tx belongs to). Call
// Notify after the commit to deliver at once; otherwise delivery starts
// within PollInterval. For PostgreSQL's pgx.Tx use the function
// EnqueueInTx.
func (c *Client) EnqueueTx(ctx context.Context, tx *sql.Tx, m *message.Message, opts *EnqueueOptions) (string, error) {
	return EnqueueInTx(ctx, c, tx, m, opts)
}

// EnqueueInTx is Client.EnqueueTx for any transaction type the client's
// store accepts, e.g. a pgx.Tx with queue/postgres, whose commit also
// wakes the workers of every node.
func EnqueueInTx[Tx any](ctx context.Context, c *Client, tx Tx, m *message.Message, opts *EnqueueOptions) (string, error) {
	te, ok := c.cfg.Store.(TxEnqueuer[Tx])
	if !ok {
		return "", fmt.Errorf("outbox: this store cannot enqueue within a %T transaction", tx)
	}
	nm, finish, err := c.prepare(m, opts)
	if err != nil {
		return "", err
	}
	id, err := te.EnqueueTx(ctx, tx, nm)
	if err = finish(err); err != nil {
		return "", err
	}
	return id, nil
}

// EnqueueRaw stores a ready RFC 5322 message with its envelope.
func (c *Client) EnqueueRaw(ctx context.Context, nm queue.NewMessage) (string, error) {
	if nm.ExpiresAt.IsZero() {
		nm.ExpiresAt = lifetimeStart(nm.SendAt).Add(c.cfg.Lifetime)
	}
	id, err := c.cfg.Store.Enqueue(ctx, nm)
	if err != nil {
		return "", err
	}
	c.accepted(id, nm.Tags)
	return id, nil
}

// accepted wakes the workers and tells the OnEnqueue hook.
func (c *Client) accepted(id string, tags map[string]string) {
	c.deliverer.Notify()
	if c.cfg.OnEnqueue != nil {
		c.cfg.OnEnqueue(id, tags)
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
		SendAt: opts.SendAt, IdempotencyKey: opts.IdempotencyKey, Tags: tagsFor(m, opts.Tags),
		ExpiresAt: lifetimeStart(opts.SendAt).Add(c.cfg.Lifetime),
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

func tagsFor(m *message.Message, tags map[string]string) map[string]string {
	out := make(map[string]string, len(tags)+2)
	for k, v := range tags {
		out[k] = v
	}
	if m.Allow8Bit {
		out["body"] = "8bitmime"
	}
	if m.NeedsSMTPUTF8() {
		out["smtputf8"] = "1"
	}
	return out
}

func lifetimeStart(sendAt time.Time) time.Time {
	if now := time.Now(); sendAt.Before(now) {
		return now
	}
	return sendAt
}

// Package postgres is the multi-node queue store: every node of an outbox
// cluster opens the same PostgreSQL database and any node can deliver any
// message, because bodies live in the database too, in chunks.
//
// Enqueues are group-committed: a writer goroutine gathers every pending
// enqueue into one transaction, sends its statements in pgx batches (one
// round trip for many small messages) and acknowledges them all after one
// commit. Bodies are spooled to memory or a temporary file before they
// reach the writer, so a slow producer never holds a batch open.
//
// Claims select due rows with FOR UPDATE SKIP LOCKED inside the UPDATE that
// leases them, so claimers on many nodes never collide. Lease expiry, due
// times of unscheduled messages and creation times come from the database's
// clock (now()), so nodes whose clocks disagree still agree on which leases
// have lapsed. Times a caller supplies (SendAt, ExpiresAt, a result's
// NextAttemptAt, Purge's cutoff) are the caller's clock, compared with the
// database's: keep node clocks roughly in sync, as for any scheduled work.
//
// Enqueue, EnqueueTx, Retry and Release send a NOTIFY on the channel
// "outbox_due" in their transaction; Watch (queue.Watcher) listens on a
// dedicated connection, so idle workers on every node wake after the commit.
//
// All tables are prefixed "outbox_" so the schema can live in an
// application's own database beside its tables (see EnqueueTx and Migrate).
// The store works in whatever schema the connection's search_path selects.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/outbox-mail/outbox/queue"
	"github.com/outbox-mail/outbox/queue/internal/groupcommit"
	"github.com/outbox-mail/outbox/queue/internal/pending"
)

// Defaults for Options.
const (
	// DefaultLifetime is how long delivery is tried when a message gives no
	// ExpiresAt.
	DefaultLifetime = 120 * time.Hour
	// DefaultChunkSize is the size of the body chunks rows hold, and the
	// largest body kept in memory while it waits for the writer.
	DefaultChunkSize = 256 << 10
	// DefaultBatchMessages bounds how many enqueues share one commit.
	DefaultBatchMessages = 256
	// DefaultBatchBytes bounds the body bytes written by one commit, so a
	// batch of large messages does not keep the others waiting long.
	DefaultBatchBytes = 16 << 20
)

// Options configure Open. The zero value is usable.
type Options struct {
	// DefaultLifetime applies to messages without ExpiresAt (120h if zero).
	DefaultLifetime time.Duration
	// ChunkSize is the body chunk size in bytes (256 KiB if zero).
	ChunkSize int
	// BatchMessages and BatchBytes bound one group commit (256 messages and
	// 16 MiB of body if zero).
	BatchMessages int
	BatchBytes    int64
	// SpoolDir holds bodies too large for memory while they wait for the
	// writer (os.TempDir() if empty).
	SpoolDir string
	// Logger receives errors the store handles itself (nil: slog.Default).
	Logger *slog.Logger
}

// Store is a queue.Store backed by a PostgreSQL database shared by any
// number of processes.
type Store struct {
	opts Options
	pool *pgxpool.Pool
	log  *slog.Logger

	closed atomic.Bool
	intake pending.Config // validation and spooling before the writer
	writer *groupcommit.Writer[*pending.Message]
	buf    []byte // the writer's chunk buffer

	watch *watcher

	// purgeHook, when set by tests, runs while Housekeep holds its lock.
	purgeHook func()

	// commits and committed count group commits and the enqueues they
	// carried, for the benchmark's messages-per-commit figure.
	commits, committed atomic.Int64
}

var (
	_ queue.Store   = (*Store)(nil)
	_ queue.Watcher = (*Store)(nil)
)

// Open connects to the database at dsn (a PostgreSQL URL or key=value
// string), applies pending schema migrations and starts the writer.
func Open(ctx context.Context, dsn string, opts Options) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: parse dsn: %w", err)
	}
	opts = withDefaults(opts)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	if err := Migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	s := &Store{opts: opts, pool: pool, log: opts.Logger}
	s.watch = newWatcher(cfg.ConnConfig, opts.Logger)
	s.intake = intake
	s.intake.ChunkSize, s.intake.Dir = opts.ChunkSize, opts.SpoolDir
	s.buf = make([]byte, opts.ChunkSize)
	s.writer = groupcommit.Start(groupcommit.Config[*pending.Message]{
		MaxItems: opts.BatchMessages,
		MaxBytes: opts.BatchBytes,
		Size:     func(p *pending.Message) int64 { return p.Size },
		Commit:   s.insertBatch,
		Release:  (*pending.Message).Discard,
		Wrap:     func(err error) error { return s.wrap("enqueue", err) },
		Logger:   opts.Logger,
		Name:     "postgres",
	})
	return s, nil
}

func withDefaults(o Options) Options {
	if o.DefaultLifetime <= 0 {
		o.DefaultLifetime = DefaultLifetime
	}
	if o.ChunkSize <= 0 {
		o.ChunkSize = DefaultChunkSize
	}
	if o.BatchMessages <= 0 {
		o.BatchMessages = DefaultBatchMessages
	}
	if o.BatchBytes <= 0 {
		o.BatchBytes = DefaultBatchBytes
	}
	if o.SpoolDir == "" {
		o.SpoolDir = os.TempDir()
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Pool is the store's connection pool, for applications that want to run
// their own transactions (and EnqueueTx) on the same database.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Close lets the writer commit what it has been handed, stops it and any
// listener, and closes the pool. Later calls return queue.ErrClosed.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return queue.ErrClosed
	}
	s.writer.Close()
	s.watch.close()
	s.pool.Close()
	return nil
}

// check returns queue.ErrClosed once Close has begun.
func (s *Store) check() error {
	if s.closed.Load() {
		return queue.ErrClosed
	}
	return nil
}

// wrap names the operation in an error and passes the queue's sentinels
// through as they are; an error from a pool closed under a concurrent call
// becomes queue.ErrClosed.
func (s *Store) wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	if s.closed.Load() {
		return queue.ErrClosed
	}
	for _, sentinel := range []error{queue.ErrNotFound, queue.ErrFinal, queue.ErrSending,
		queue.ErrLeaseLost, queue.ErrInvalid, context.Canceled, context.DeadlineExceeded} {
		if errors.Is(err, sentinel) {
			return err
		}
	}
	return fmt.Errorf("postgres: %s: %w", op, err)
}

// rollback undoes tx unless it was committed; for use in defer.
func rollback(tx pgx.Tx) { _ = tx.Rollback(context.Background()) }

// closeQuietly closes c, for defers where the error carries no news.
func closeQuietly(c io.Closer) { _ = c.Close() }

// micros converts a duration to the microseconds interval arithmetic in
// SQL multiplies by.
func micros(d time.Duration) int64 { return d.Microseconds() }

// timeOrNil is nil for the zero time, so it is stored as NULL ("none").
func timeOrNil(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}

// deref is the zero time for a NULL timestamp.
func deref(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}

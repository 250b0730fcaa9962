// Package postgres is the multi-node queue store: the queue's rules
// (queue.Queue) over a driver for a PostgreSQL database that every node of
// an outbox cluster opens, so that any node can deliver any message:
// bodies live in the database too, in chunks.
//
// A transaction's statements are pipelined: writes whose results the rules
// do not need are queued and sent with the next statement that returns
// rows, or with the COMMIT, so that recording a batch of results costs two
// round trips (read the leases held, write everything and commit) and a
// group commit of small messages a few, whatever the batch's size. Every
// batch of rows is one statement (unnest of arrays); pgx prepares each
// statement once per connection and caches it.
//
// Claims select due rows with FOR NO KEY UPDATE SKIP LOCKED inside the UPDATE that
// leases them, so claimers on many nodes never collide. Lease expiry and
// the "now" that due times and leases are compared with come from the
// database's clock, so nodes whose clocks disagree still agree on which
// leases have lapsed. Times a caller supplies (SendAt, ExpiresAt, a
// result's NextAttemptAt, Purge's cutoff) and creation times are the
// node's clock: keep node clocks roughly in sync.
//
// Enqueues, EnqueueTx, Retry, Requeue and Release send a NOTIFY on the
// channel "outbox_due" in their transaction; Watch (queue.Watcher) listens
// on a dedicated connection, so idle workers on every node wake after the
// commit.
//
// All tables are prefixed "outbox_" so the schema can live in an
// application's own database beside its tables (see Migrate). The store
// works in whatever schema the connection's search_path selects.
package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/outbox-mail/outbox/queue"
)

// Options configure Open. The zero value is usable.
type Options struct {
	// Queue holds the queue's own settings (lifetime, transcripts, chunk
	// size, batch bounds, spool directory, logger).
	Queue queue.Options
}

// Store is the queue over a PostgreSQL database shared by any number of
// processes.
type Store struct {
	*queue.Queue[pgx.Tx]
	d     *pgDriver
	watch *watcher

	// purgeHook, when set by tests, runs while Housekeep holds its lock.
	purgeHook func()
}

var (
	_ queue.Store    = (*Store)(nil)
	_ queue.Watcher  = (*Store)(nil)
	_ queue.Insights = (*Store)(nil)
)

// pgDriver is the queue.Driver of one database.
type pgDriver struct {
	pool *pgxpool.Pool
}

// Open connects to the database at dsn (a PostgreSQL URL or key=value
// string), applies pending schema migrations and starts the writer.
func Open(ctx context.Context, dsn string, opts Options) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: parse dsn: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	if err := Migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	d := &pgDriver{pool: pool}
	q, err := queue.New[pgx.Tx]("postgres", d, opts.Queue)
	if err != nil {
		pool.Close()
		return nil, err
	}
	return &Store{Queue: q, d: d, watch: newWatcher(cfg.ConnConfig, q.Options().Logger)}, nil
}

// Pool is the store's connection pool, for applications that run their
// own transactions (and EnqueueTx) on the same database.
func (s *Store) Pool() *pgxpool.Pool { return s.d.pool }

// Close lets the writer commit what it has been handed, stops it and any
// listener, and closes the pool. Later calls return queue.ErrClosed.
func (s *Store) Close() error {
	err := s.Queue.Close()
	if err == nil {
		s.watch.close()
	}
	return err
}

// Close closes the pool.
func (d *pgDriver) Close() error {
	d.pool.Close()
	return nil
}

// Begin starts a transaction on a connection of the pool. BEGIN is sent
// with the transaction's first statement; a claim's commit does not wait
// for its WAL flush (synchronous_commit off), since losing it only makes
// its messages due again.
func (d *pgDriver) Begin(ctx context.Context, durable bool) (queue.Tx, error) {
	conn, err := d.pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	t := &pgTx{conn: conn, ex: conn, commit: "COMMIT", rollback: []string{"ROLLBACK"}}
	t.pending.Queue("BEGIN")
	if !durable {
		t.pending.Queue("SET LOCAL synchronous_commit TO OFF")
	}
	return t, nil
}

// Read starts a read-only REPEATABLE READ transaction: one snapshot.
func (d *pgDriver) Read(ctx context.Context) (queue.Tx, error) {
	conn, err := d.pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	t := &pgTx{conn: conn, ex: conn, commit: "COMMIT", rollback: []string{"ROLLBACK"}}
	t.pending.Queue("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
	return t, nil
}

// Savepoint starts a savepoint in an application's transaction.
func (d *pgDriver) Savepoint(ctx context.Context, tx pgx.Tx) (queue.Tx, error) {
	if tx == nil {
		return nil, fmt.Errorf("%w: EnqueueTx needs a transaction", queue.ErrInvalid)
	}
	t := &pgTx{ex: tx, commit: "RELEASE SAVEPOINT outbox_enqueue",
		rollback: []string{"ROLLBACK TO SAVEPOINT outbox_enqueue", "RELEASE SAVEPOINT outbox_enqueue"}}
	t.pending.Queue("SAVEPOINT outbox_enqueue")
	return t, nil
}

// executor is what *pgxpool.Conn and pgx.Tx share.
type executor interface {
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

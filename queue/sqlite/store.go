// Package sqlite is the embedded default queue store: the queue's rules
// (queue.Queue) over a driver for one SQLite database file in WAL mode,
// written by a single writer connection and read through a separate pool
// of read-only connections.
//
// Enqueues are group-committed: the queue's writer gathers every pending
// enqueue into one transaction and acknowledges them all after one durable
// commit (synchronous=FULL). Bodies are spooled before they reach the
// writer, so a slow producer never holds the write lock, and are stored in
// chunks in the same transaction as their message row. Every statement is
// prepared once per connection and reused; batches of rows go through one
// statement each, their rows bound as a VALUES list (values.go), not one
// statement per row.
//
// Layout: the database file at the path given to Open, its -wal and -shm
// files, and a spool directory beside it (path + ".spool"). Times are
// stored as unix milliseconds. WAL checkpoints run on a background
// connection, not inside enqueue commits.
package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/outbox-mail/outbox/queue"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// Options configure Open. The zero value is usable.
type Options struct {
	// Queue holds the queue's own settings (lifetime, transcripts, chunk
	// size, batch bounds, logger). Its SpoolDir is ignored: bodies spool
	// beside the database.
	Queue queue.Options
}

// Store is the queue over one SQLite database file.
type Store struct {
	*queue.Queue[*sql.Tx]
	d *sqliteDriver
}

var _ queue.Store = (*Store)(nil)
var _ queue.Insights = (*Store)(nil)

// sqliteDriver is the queue.Driver of one database file.
type sqliteDriver struct {
	wdb *sql.DB // the single writer connection
	rdb *sql.DB // read-only pool; WAL lets it read while wdb writes
	log *slog.Logger

	mu    sync.Mutex
	stmts map[*sql.DB]map[string]*sql.Stmt

	ckdb   *sql.DB // the checkpointer's own connection
	ckWake chan struct{}
	ckStop chan struct{}
	ckDone sync.WaitGroup
}

// Open opens (creating if needed) the database at path, applies pending
// schema migrations, removes spool files left by a previous run, and starts
// the writer.
func Open(path string, opts Options) (*Store, error) {
	if path == "" {
		return nil, errors.New("sqlite: database path is empty")
	}
	log := opts.Queue.Logger
	if log == nil {
		log = slog.Default()
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("sqlite: create database directory: %w", err)
	}
	spoolDir := path + ".spool"
	if err := resetSpool(spoolDir, log); err != nil {
		return nil, err
	}
	d, err := openDriver(path, log)
	if err != nil {
		return nil, err
	}
	qo := opts.Queue
	qo.SpoolDir, qo.Logger = spoolDir, log
	q, err := queue.New[*sql.Tx]("sqlite", d, qo)
	if err != nil {
		d.Close()
		return nil, err
	}
	return &Store{Queue: q, d: d}, nil
}

func openDriver(path string, log *slog.Logger) (*sqliteDriver, error) {
	d := &sqliteDriver{log: log, stmts: map[*sql.DB]map[string]*sql.Stmt{}}
	var err error
	// synchronous=FULL: a commit returns only after fsync, so an
	// acknowledged enqueue survives power loss. _txlock=immediate takes the
	// write lock at BEGIN, so no transaction fails half-way upgrading it.
	d.wdb, err = sql.Open("sqlite", dsn(path,
		"_pragma=journal_mode(WAL)", "_pragma=synchronous(FULL)", "_txlock=immediate", "_pragma=wal_autocheckpoint(0)",
		"_pragma=cache_size(-1024)"))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	// One connection that lives as long as the store, so each statement is
	// prepared on it once.
	d.wdb.SetMaxOpenConns(1)
	d.wdb.SetConnMaxIdleTime(0)
	if err := Migrate(context.Background(), d.wdb); err != nil {
		d.wdb.Close()
		return nil, err
	}
	// Readers keep a small page cache (512 KiB each, not SQLite's 2 MiB):
	// bodies stream through them chunk by chunk, and the operating
	// system's cache holds what was just written anyway.
	if d.rdb, err = sql.Open("sqlite", dsn(path, "_pragma=query_only(1)", "_pragma=cache_size(-512)")); err != nil {
		d.wdb.Close()
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	readers := max(4, runtime.GOMAXPROCS(0))
	d.rdb.SetMaxOpenConns(readers)
	d.rdb.SetMaxIdleConns(readers)
	if d.ckdb, err = sql.Open("sqlite", dsn(path, "_pragma=synchronous(FULL)", "_pragma=cache_size(-512)")); err != nil {
		d.rdb.Close()
		d.wdb.Close()
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	d.ckdb.SetMaxOpenConns(1)
	d.ckWake, d.ckStop = make(chan struct{}, 1), make(chan struct{})
	d.ckDone.Add(1)
	go d.checkpointer()
	return d, nil
}

// uriPathEscaper escapes what would end or garble the path of a SQLite URI
// filename: SQLite decodes %HH in it, and ? and # start its query and
// fragment.
var uriPathEscaper = strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23")

// dsn builds a modernc.org/sqlite DSN with the settings every connection
// needs plus extra.
func dsn(path string, extra ...string) string {
	d := "file:" + uriPathEscaper.Replace(path) + "?_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)"
	for _, e := range extra {
		d += "&" + e
	}
	return d
}

// resetSpool creates the spool directory and empties it: a spool file left
// behind belongs to an enqueue that was never acknowledged, so it is
// garbage. Removal is best-effort and never stops Open.
func resetSpool(dir string, log *slog.Logger) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("sqlite: create spool directory: %w", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("sqlite: read spool directory: %w", err)
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			log.Warn("sqlite: cannot remove leftover spool file", "err", err)
		}
	}
	return nil
}

// SpoolDir is the directory where bodies wait for the writer; it is emptied
// at Open.
func (s *Store) SpoolDir() string { return s.Queue.Options().SpoolDir }

// Close stops the queue's writer and closes the databases, folding the WAL
// into the database file. Later calls return queue.ErrClosed.
func (d *sqliteDriver) Close() error {
	close(d.ckStop)
	d.ckDone.Wait()
	// The final checkpoint needs no reader or writer in the way.
	rerr, werr := d.rdb.Close(), d.wdb.Close()
	return errors.Join(rerr, werr, d.finalCheckpoint(), d.ckdb.Close())
}

// cached returns query prepared on db, or nil the first time: a statement
// cannot be prepared on db while the caller's transaction holds the
// connection it needs (the writer has one), so a miss is prepared within
// the transaction and remembered, and prepare makes it a statement of db
// once the transaction has ended. From then on each connection prepares
// it once: database/sql keeps one per connection.
func (d *sqliteDriver) cached(db *sql.DB, query string) *sql.Stmt {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stmts[db][query]
}

// prepare makes queries statements of db; on failure they stay uncached.
func (d *sqliteDriver) prepare(db *sql.DB, queries []string) {
	for _, q := range queries {
		if d.cached(db, q) != nil {
			continue
		}
		st, err := db.Prepare(q)
		if err != nil {
			continue
		}
		d.mu.Lock()
		m := d.stmts[db]
		if m == nil {
			m = map[string]*sql.Stmt{}
			d.stmts[db] = m
		}
		if m[q] == nil {
			m[q] = st
		} else {
			st.Close()
		}
		d.mu.Unlock()
	}
}

// Begin starts a write transaction on the writer connection.
func (d *sqliteDriver) Begin(ctx context.Context, durable bool) (queue.Tx, error) {
	if !durable {
		tx, done, err := d.beginRelaxed(ctx)
		if err != nil {
			return nil, err
		}
		return &sqlTx{d: d, db: d.wdb, tx: tx, done: done}, nil
	}
	tx, err := d.wdb.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	return &sqlTx{d: d, db: d.wdb, tx: tx}, nil
}

// Read starts a read-only transaction on the read pool: one snapshot.
func (d *sqliteDriver) Read(ctx context.Context) (queue.Tx, error) {
	tx, err := d.rdb.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	return &sqlTx{d: d, db: d.rdb, tx: tx, read: true}, nil
}

// savepointName is the savepoint EnqueueTx writes in.
const savepointName = "outbox_enqueue"

// Savepoint starts a savepoint in an application's transaction, which may
// belong to another *sql.DB on the same file; its statements are prepared
// per use, since they run on the application's connection.
func (d *sqliteDriver) Savepoint(ctx context.Context, tx *sql.Tx) (queue.Tx, error) {
	if tx == nil {
		return nil, fmt.Errorf("%w: EnqueueTx needs a transaction", queue.ErrInvalid)
	}
	if _, err := tx.ExecContext(ctx, "SAVEPOINT "+savepointName); err != nil {
		return nil, err
	}
	return &sqlTx{d: d, tx: tx, savepoint: true}, nil
}

// sqlTx is a queue.Tx on a *sql.Tx.
type sqlTx struct {
	d  *sqliteDriver
	db *sql.DB // the store's database the statements are prepared on; nil for an application's tx
	tx *sql.Tx
	// done ends a relaxed transaction (see beginRelaxed).
	done      func()
	savepoint bool
	read      bool
	finished  bool
	missed    []string // statements to prepare on db once the transaction ends
}

// Commit commits the transaction, or releases the savepoint.
func (t *sqlTx) Commit(ctx context.Context) error {
	if t.finished {
		return errors.New("sqlite: transaction already finished")
	}
	t.finished = true
	if t.savepoint {
		_, err := t.tx.ExecContext(ctx, "RELEASE "+savepointName)
		return err
	}
	err := t.tx.Commit()
	t.end()
	if err == nil && !t.read {
		t.d.wrote()
	}
	return err
}

// Rollback undoes the transaction, or what was written since the
// savepoint; a no-op once finished.
func (t *sqlTx) Rollback(ctx context.Context) error {
	if t.finished {
		return nil
	}
	t.finished = true
	if t.savepoint {
		_, err := t.tx.ExecContext(ctx, "ROLLBACK TO "+savepointName+"; RELEASE "+savepointName)
		return err
	}
	err := t.tx.Rollback()
	t.end()
	return err
}

func (t *sqlTx) end() {
	if t.done != nil {
		t.done()
	}
	if len(t.missed) > 0 {
		t.d.prepare(t.db, t.missed)
	}
}

// prep returns query as a statement of this transaction, prepared once on
// each of the store's connections; nil when it is not (yet) cached, for
// the caller to run the query text within the transaction.
func (t *sqlTx) prep(ctx context.Context, query string) *sql.Stmt {
	if t.db == nil {
		return nil
	}
	if st := t.d.cached(t.db, query); st != nil {
		return t.tx.StmtContext(ctx, st)
	}
	if !slices.Contains(t.missed, query) {
		t.missed = append(t.missed, query)
	}
	return nil
}

func (t *sqlTx) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if st := t.prep(ctx, query); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return t.tx.ExecContext(ctx, query, args...)
}

func (t *sqlTx) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := t.prep(ctx, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return t.tx.QueryContext(ctx, query, args...)
}

// queryRow runs a query for one row; sql.ErrNoRows becomes
// queue.ErrNotFound.
func (t *sqlTx) queryRow(ctx context.Context, dst []any, query string, args ...any) error {
	rows, err := t.query(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return err
		}
		return queue.ErrNotFound
	}
	if err := rows.Scan(dst...); err != nil {
		return err
	}
	return rows.Close()
}

// discardConn makes database/sql drop conn instead of reusing it.
func discardConn(conn *sql.Conn) {
	_ = conn.Raw(func(any) error { return driver.ErrBadConn })
	conn.Close()
}

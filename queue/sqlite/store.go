// Package sqlite is the embedded default queue store: one SQLite database
// file in WAL mode, written by a single writer connection and read through a
// separate pool of read-only connections.
//
// Enqueues are group-committed: a writer goroutine gathers every pending
// enqueue into one transaction and acknowledges them all after one durable
// commit (synchronous=FULL). Bodies are spooled before they reach the writer,
// so a slow producer never holds the write lock, and are stored in chunks in
// the same transaction as their message row.
//
// Layout: the database file at the path given to Open, its -wal and -shm
// files, and a spool directory beside it (path + ".spool"). Times are stored
// as unix milliseconds. WAL checkpoints run on a background connection, not
// inside enqueue commits.
//
// The store records ExpiresAt but does not enforce it: giving up on a
// message that outlived it is the delivery workers' decision, reported
// through Complete like any other failure.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/outbox-mail/outbox/queue"
	"github.com/outbox-mail/outbox/queue/internal/groupcommit"
	"github.com/outbox-mail/outbox/queue/internal/pending"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
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
	// batch of large messages does not hold the writer for long.
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
	// Logger receives errors the store handles itself (nil: slog.Default).
	Logger *slog.Logger
}

// Store is a queue.Store backed by one SQLite database file.
type Store struct {
	opts     Options
	wdb      *sql.DB // the single writer connection
	rdb      *sql.DB // read-only pool; WAL lets it read while wdb writes
	spoolDir string
	log      *slog.Logger

	closed atomic.Bool
	intake pending.Config // validation and spooling before the writer
	writer *groupcommit.Writer[*pending.Message]
	buf    []byte // the writer's chunk buffer

	ckdb   *sql.DB // the checkpointer's own connection
	ckWake chan struct{}
	ckStop chan struct{}
	ckDone sync.WaitGroup

	// commits and committed count group commits and the enqueues they
	// carried, for the benchmark's messages-per-commit figure.
	commits, committed atomic.Int64
}

var _ queue.Store = (*Store)(nil)

// Open opens (creating if needed) the database at path, applies pending
// schema migrations, removes spool files left by a previous run, and starts
// the writer.
func Open(path string, opts Options) (*Store, error) {
	if path == "" {
		return nil, errors.New("sqlite: database path is empty")
	}
	opts = withDefaults(opts)
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("sqlite: create database directory: %w", err)
	}
	spoolDir := path + ".spool"
	if err := resetSpool(spoolDir, opts.Logger); err != nil {
		return nil, err
	}
	s := &Store{opts: opts, spoolDir: spoolDir, log: opts.Logger}
	var err error
	// synchronous=FULL: a commit returns only after fsync, so an
	// acknowledged enqueue survives power loss. _txlock=immediate takes the
	// write lock at BEGIN, so no transaction fails half-way upgrading it.
	s.wdb, err = sql.Open("sqlite", dsn(path,
		"_pragma=journal_mode(WAL)", "_pragma=synchronous(FULL)", "_txlock=immediate", "_pragma=wal_autocheckpoint(0)"))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	s.wdb.SetMaxOpenConns(1)
	s.wdb.SetConnMaxIdleTime(0)
	if err := Migrate(context.Background(), s.wdb); err != nil {
		s.wdb.Close()
		return nil, err
	}
	s.rdb, err = sql.Open("sqlite", dsn(path, "_pragma=query_only(1)"))
	if err != nil {
		s.wdb.Close()
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	readers := max(4, runtime.GOMAXPROCS(0))
	s.rdb.SetMaxOpenConns(readers)
	s.rdb.SetMaxIdleConns(readers)
	s.ckdb, err = sql.Open("sqlite", dsn(path, "_pragma=synchronous(FULL)"))
	if err != nil {
		s.rdb.Close()
		s.wdb.Close()
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	s.ckdb.SetMaxOpenConns(1)
	s.ckWake, s.ckStop = make(chan struct{}, 1), make(chan struct{})
	s.ckDone.Add(1)
	go s.checkpointer()
	s.intake = intake
	s.intake.ChunkSize, s.intake.Dir = opts.ChunkSize, spoolDir
	s.buf = make([]byte, opts.ChunkSize)
	s.writer = groupcommit.Start(groupcommit.Config[*pending.Message]{
		MaxItems: opts.BatchMessages,
		MaxBytes: opts.BatchBytes,
		Size:     func(p *pending.Message) int64 { return p.Size },
		Commit:   s.insertBatch,
		Release:  (*pending.Message).Discard,
		Wrap:     func(err error) error { return s.wrap("enqueue", err) },
		Logger:   opts.Logger,
		Name:     "sqlite",
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
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
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
// behind belongs to an enqueue that was never acknowledged, so it is garbage.
// A file that cannot be removed (another process opened the same database
// and is spooling into it, on a system that refuses to remove open files) is
// left alone: removal is best-effort and never stops Open.
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
func (s *Store) SpoolDir() string { return s.spoolDir }

// Close lets the writer commit what it has been handed, stops it and closes
// the databases. Later calls return queue.ErrClosed.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return queue.ErrClosed
	}
	s.writer.Close()
	close(s.ckStop)
	s.ckDone.Wait()
	// The final checkpoint needs no reader or writer in the way.
	rerr, werr := s.rdb.Close(), s.wdb.Close()
	return errors.Join(rerr, werr, s.finalCheckpoint(), s.ckdb.Close())
}

// check returns queue.ErrClosed once Close has begun.
func (s *Store) check() error {
	if s.closed.Load() {
		return queue.ErrClosed
	}
	return nil
}

// wrap names the operation in an error, and turns errors from a database
// closed under a concurrent call into queue.ErrClosed.
func (s *Store) wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	if s.closed.Load() && errors.Is(err, sql.ErrConnDone) ||
		s.closed.Load() && err.Error() == "sql: database is closed" {
		return queue.ErrClosed
	}
	for _, sentinel := range []error{queue.ErrNotFound, queue.ErrFinal, queue.ErrSending, queue.ErrLeaseLost, context.Canceled, context.DeadlineExceeded} {
		if errors.Is(err, sentinel) {
			return err
		}
	}
	return fmt.Errorf("sqlite: %s: %w", op, err)
}

// ms converts a time to the stored unix milliseconds; zero stays 0.
func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// fromMS converts stored unix milliseconds back; 0 is the zero time.
func fromMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v)
}

// rollback undoes tx unless it was committed; for use in defer.
func rollback(tx *sql.Tx) { _ = tx.Rollback() }

// closeQuietly closes c, for defers where the error carries no news.
func closeQuietly(c io.Closer) { _ = c.Close() }

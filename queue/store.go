package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/outbox-mail/outbox/queue/internal/groupcommit"
)

// TranscriptPolicy says which attempts keep their full SMTP transcript.
type TranscriptPolicy string

// Transcript policies. Every attempt keeps its summary (route, host,
// reply, times) whatever the policy.
const (
	// TranscriptsFailures keeps the transcripts of attempts that did not
	// deliver every recipient they reported on, and those asked for
	// (Attempt.KeepTranscript). The default.
	TranscriptsFailures TranscriptPolicy = "failures"
	// TranscriptsAll keeps every transcript.
	TranscriptsAll TranscriptPolicy = "all"
	// TranscriptsOff keeps none.
	TranscriptsOff TranscriptPolicy = "off"
)

// ParseTranscriptPolicy parses all, failures or off.
func ParseTranscriptPolicy(s string) (TranscriptPolicy, error) {
	switch p := TranscriptPolicy(s); p {
	case TranscriptsAll, TranscriptsFailures, TranscriptsOff:
		return p, nil
	}
	return "", fmt.Errorf("%w: transcripts %q: want all, failures or off", ErrInvalid, s)
}

// Defaults for Options.
const (
	// DefaultChunkSize is the size of the body chunks the store holds, and
	// the largest body kept in memory while it waits for the writer.
	DefaultChunkSize = 256 << 10
	// DefaultBatchMessages bounds how many enqueues share one commit.
	DefaultBatchMessages = 256
	// DefaultBatchBytes bounds the body bytes one commit writes, so a
	// batch of large messages does not keep the others waiting long.
	DefaultBatchBytes = 16 << 20
)

// Options configure a Queue. The zero value is usable.
type Options struct {
	// Lifetime is how long delivery is tried for messages without
	// ExpiresAt, from their first due time (DefaultLifetime if zero).
	Lifetime time.Duration
	// Transcripts says which attempts keep their transcript
	// (TranscriptsFailures if empty).
	Transcripts TranscriptPolicy
	// ChunkSize is the body chunk size in bytes (256 KiB if zero).
	ChunkSize int
	// BatchMessages and BatchBytes bound one group commit (256 messages
	// and 16 MiB of body if zero).
	BatchMessages int
	BatchBytes    int64
	// SpoolDir holds bodies too large for memory while they wait for the
	// writer (os.TempDir() if empty). Spool files are unlinked at once.
	SpoolDir string
	// Logger receives errors the queue handles itself (slog.Default if nil).
	Logger *slog.Logger
	// IndexInterval is how often the search indexer looks for messages
	// it was not handed: written by EnqueueTx or another node, or left by
	// a crash (DefaultIndexInterval if zero).
	IndexInterval time.Duration
	// Search says what the search index holds (SearchFull if empty).
	Search SearchMode
}

// SearchMode says what the search index holds: indexing is off the accept
// path, but on a busy node its CPU is shared with acceptance.
type SearchMode string

// Search modes.
const (
	// SearchFull indexes subject, addresses with display names,
	// attachment names and the text body.
	SearchFull SearchMode = "full"
	// SearchHeaders indexes all that but the text body: a fraction of
	// the cost for mail with bodies worth the name.
	SearchHeaders SearchMode = "headers"
	// SearchOff indexes nothing (a search is refused); messages keep
	// their mark, so turning it on later indexes them.
	SearchOff SearchMode = "off"
)

// ParseSearchMode checks a search mode's name.
func ParseSearchMode(s string) (SearchMode, error) {
	switch m := SearchMode(s); m {
	case SearchFull, SearchHeaders, SearchOff:
		return m, nil
	}
	return "", fmt.Errorf("%w: search %q: want full, headers or off", ErrInvalid, s)
}

func (o Options) withDefaults() (Options, error) {
	if o.Lifetime <= 0 {
		o.Lifetime = DefaultLifetime
	}
	if o.Transcripts == "" {
		o.Transcripts = TranscriptsFailures
	}
	if _, err := ParseTranscriptPolicy(string(o.Transcripts)); err != nil {
		return o, err
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
	if o.IndexInterval <= 0 {
		o.IndexInterval = DefaultIndexInterval
	}
	if o.Search == "" {
		o.Search = SearchFull
	}
	if _, err := ParseSearchMode(string(o.Search)); err != nil {
		return o, err
	}
	return o, nil
}

// Queue is the queue's rules over a Driver: it implements Store and
// TxProducer[TTx]. It is safe for concurrent use by many goroutines and,
// for shared databases, many processes.
type Queue[TTx any] struct {
	name   string
	d      Driver[TTx]
	opts   Options
	log    *slog.Logger
	closed atomic.Bool
	writer *groupcommit.Writer[*writeItem]
	buf    []byte // the writer's chunk buffer
	ix     indexer

	// commits and committed count group commits and the enqueues they
	// carried, for the benchmarks' messages-per-commit figure.
	commits, committed atomic.Int64
}

var _ Store = (*Queue[struct{}])(nil)

// New returns the queue over d and starts its group-commit writer; name
// prefixes its errors ("sqlite"). Close closes d.
func New[TTx any](name string, d Driver[TTx], opts Options) (*Queue[TTx], error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	q := &Queue[TTx]{name: name, d: d, opts: opts, log: opts.Logger, buf: make([]byte, opts.ChunkSize)}
	q.writer = groupcommit.Start(groupcommit.Config[*writeItem]{
		MaxItems: opts.BatchMessages,
		MaxBytes: opts.BatchBytes,
		Size:     (*writeItem).size,
		Commit:   q.commitBatch,
		Release:  (*writeItem).release,
		Closed:   ErrClosed,
		Logger:   opts.Logger,
		Name:     name,
	})
	if q.opts.Search != SearchOff {
		q.startIndexer()
	}
	return q, nil
}

// Options returns the queue's options, defaults filled in.
func (q *Queue[TTx]) Options() Options { return q.opts }

// CommitStats returns how many group commits ran and how many enqueues
// they carried.
func (q *Queue[TTx]) CommitStats() (commits, messages int64) {
	return q.commits.Load(), q.committed.Load()
}

// Close lets the writer commit what it has been handed, stops it and
// closes the driver. Later calls return ErrClosed.
func (q *Queue[TTx]) Close() error {
	if q.closed.Swap(true) {
		return ErrClosed
	}
	q.writer.Close()
	if q.opts.Search != SearchOff {
		q.stopIndexer()
	}
	return q.d.Close()
}

// check returns ErrClosed once Close has begun.
func (q *Queue[TTx]) check() error {
	if q.closed.Load() {
		return ErrClosed
	}
	return nil
}

// wrap names the operation in an error; an error from a driver closed
// under a concurrent call becomes ErrClosed. The queue's sentinels stay
// visible to errors.Is.
func (q *Queue[TTx]) wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	if q.closed.Load() {
		return ErrClosed
	}
	for _, s := range []error{ErrNotFound, ErrFinal, ErrNotFinal, ErrSending, ErrLeaseLost,
		ErrClosed, context.Canceled, context.DeadlineExceeded} {
		if errors.Is(err, s) {
			return err
		}
	}
	if errors.Is(err, ErrInvalid) {
		return fmt.Errorf("%s: %w", q.name, err)
	}
	return fmt.Errorf("%s: %s: %w", q.name, op, err)
}

// write runs fn in a write transaction and commits it.
func (q *Queue[TTx]) write(ctx context.Context, op string, durable bool, fn func(Tx) error) error {
	if err := q.check(); err != nil {
		return err
	}
	tx, err := q.d.Begin(ctx, durable)
	if err != nil {
		return q.wrap(op, err)
	}
	defer tx.Rollback(context.Background())
	if err := fn(tx); err != nil {
		return q.wrap(op, err)
	}
	return q.wrap(op, tx.Commit(ctx))
}

// ProbeWrite commits one durable write of the probe row.
func (q *Queue[TTx]) ProbeWrite(ctx context.Context) error {
	return q.write(ctx, "probe", true, func(tx Tx) error { return tx.Probe(ctx) })
}

// read runs fn in a read transaction.
func (q *Queue[TTx]) read(ctx context.Context, op string, fn func(Tx) error) error {
	if err := q.check(); err != nil {
		return err
	}
	tx, err := q.d.Read(ctx)
	if err != nil {
		return q.wrap(op, err)
	}
	defer tx.Rollback(context.Background())
	return q.wrap(op, fn(tx))
}

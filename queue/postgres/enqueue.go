package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/outbox-mail/outbox/queue"
	"github.com/outbox-mail/outbox/queue/internal/pending"
)

// intake prepares messages for EnqueueTx, which spools nothing; Open
// copies it with the store's settings. Spool files go to a directory the
// store may share with others, so they are unlinked at once.
var intake = pending.Config{Name: "postgres", Text: checkText, ChunkSize: DefaultChunkSize,
	Pattern: "outbox-body-*", Unlink: true}

// Enqueue validates m, spools its body, and hands it to the writer; it
// returns once the commit that holds it has succeeded (with PostgreSQL's
// default synchronous_commit=on, once it is on disk). After the hand-off it
// waits for the commit even if ctx ends, so that its answer is never a lie.
func (s *Store) Enqueue(ctx context.Context, m queue.NewMessage) (string, error) {
	if err := s.check(); err != nil {
		return "", err
	}
	p, err := s.intake.Accept(ctx, m, s.opts.DefaultLifetime)
	if err != nil {
		return "", err
	}
	return s.writer.Submit(p)
}

// checkText rejects what a PostgreSQL text column cannot hold (NUL bytes,
// invalid UTF-8) and header-breaking line ends where lines matter.
func checkText(field, v string, noLines bool) error {
	switch {
	case strings.IndexByte(v, 0) >= 0:
		return fmt.Errorf("%w: %s contains a NUL byte", queue.ErrInvalid, field)
	case !utf8.ValidString(v):
		return fmt.Errorf("%w: %s is not valid UTF-8", queue.ErrInvalid, field)
	case noLines && strings.ContainsAny(v, "\r\n"):
		return fmt.Errorf("%w: %s contains CR or LF", queue.ErrInvalid, field)
	}
	return nil
}

// storableID reports whether id could name a stored message. PostgreSQL
// refuses NUL bytes and invalid UTF-8 in text outright, so an id from a
// URL that has them is simply not found rather than a database error.
func storableID(id string) bool {
	return checkText("id", id, true) == nil
}

// insertSQL inserts a message, its recipients and (when the body fits one
// chunk) its body in one statement, unless the idempotency key is taken:
// then ON CONFLICT makes the whole statement insert nothing and return no
// row. An insert racing an uncommitted one with the same key waits for it.
const insertSQL = `
WITH m AS (
	INSERT INTO outbox_messages (id, sender, subject, status, created_at,
		updated_at, next_attempt_at, expires_at, idempotency_key, size, tags)
	VALUES ($1, $2, $3, 'queued', now(), now(), coalesce($4, now()),
		coalesce($5, now() + $6::interval), $7, $8, $9::jsonb)
	ON CONFLICT (idempotency_key) DO NOTHING
	RETURNING id
), r AS (
	INSERT INTO outbox_recipients (message_id, idx, address, status)
	SELECT m.id, a.ord - 1, a.addr, 'pending'
	FROM m, unnest($10::text[]) WITH ORDINALITY AS a(addr, ord)
), c AS (
	INSERT INTO outbox_body_chunks (message_id, seq, data)
	SELECT m.id, 0, $11::bytea FROM m WHERE length($11::bytea) > 0
)
SELECT id FROM m`

// insertArgs are insertSQL's arguments for p; inline is the body to store
// with the row (nil when it is streamed separately).
func insertArgs(p *pending.Message, inline []byte) []any {
	var key any
	if p.Msg.IdempotencyKey != "" {
		key = p.Msg.IdempotencyKey
	}
	return []any{p.ID, p.Msg.From, p.Msg.Subject, timeOrNil(p.Msg.SendAt),
		timeOrNil(p.Msg.ExpiresAt), p.Lifetime, key, max(p.Size, 0), p.Tags,
		p.Msg.Recipients, inline}
}

// existingSQL finds the message holding an idempotency key. As a statement
// of its own it takes a fresh snapshot, so it sees the concurrent commit
// that made insertSQL's ON CONFLICT fire.
const existingSQL = `SELECT id FROM outbox_messages WHERE idempotency_key = $1`

// notifySQL wakes every node's watchers once the transaction commits. The
// payload names the schema, so stores of other schemas sharing the
// database can ignore it.
const notifySQL = `SELECT pg_notify('` + notifyChannel + `', current_schema())`

// EnqueueTx is the transactional outbox: it writes m, its recipients and
// its body into the caller's transaction tx, on a database whose schema
// Migrate has created (in the schema tx's search_path selects). Nothing is
// visible until the caller commits, and a rollback leaves nothing behind;
// the commit also wakes every node's watchers. The body is streamed in
// chunks straight from m.Body. Messages without ExpiresAt get
// DefaultLifetime. The writes run inside a savepoint, so if EnqueueTx fails
// (bad input, a body that fails half-way) it leaves nothing of the message
// in tx and tx stays usable.
func EnqueueTx(ctx context.Context, tx pgx.Tx, m queue.NewMessage) (string, error) {
	return enqueueTx(ctx, tx, m, DefaultLifetime, DefaultChunkSize)
}

// EnqueueTx is the package's EnqueueTx with this store's default lifetime
// and chunk size, so that code holding a store can enqueue within a
// caller's transaction.
func (s *Store) EnqueueTx(ctx context.Context, tx pgx.Tx, m queue.NewMessage) (string, error) {
	return enqueueTx(ctx, tx, m, s.opts.DefaultLifetime, s.opts.ChunkSize)
}

func enqueueTx(ctx context.Context, tx pgx.Tx, m queue.NewMessage, lifetime time.Duration, chunk int) (string, error) {
	p, err := intake.Prepare(m, lifetime)
	if err != nil {
		return "", err
	}
	sp, err := tx.Begin(ctx) // a savepoint
	if err != nil {
		return "", fmt.Errorf("postgres: enqueue: %w", err)
	}
	defer rollback(sp) // to the savepoint; a no-op once released
	id, inserted, err := insertRow(ctx, sp, p, nil)
	if err != nil {
		return "", err
	}
	if inserted {
		n, err := writeChunks(ctx, sp, id, 0, m.Body, make([]byte, chunk))
		if err != nil {
			return "", fmt.Errorf("postgres: enqueue: %w", err)
		}
		if _, err := sp.Exec(ctx, `UPDATE outbox_messages SET size = $1 WHERE id = $2`, n, id); err != nil {
			return "", fmt.Errorf("postgres: enqueue: %w", err)
		}
		if _, err := sp.Exec(ctx, notifySQL); err != nil {
			return "", fmt.Errorf("postgres: enqueue: notify: %w", err)
		}
	}
	if err := sp.Commit(ctx); err != nil {
		return "", fmt.Errorf("postgres: enqueue: %w", err)
	}
	return id, nil
}

// insertRow runs insertSQL for p and, when its key was taken, finds the
// earlier message's id instead (inserted false).
func insertRow(ctx context.Context, tx pgx.Tx, p *pending.Message, inline []byte) (id string, inserted bool, err error) {
	err = tx.QueryRow(ctx, insertSQL, insertArgs(p, inline)...).Scan(&id)
	if err == nil {
		return id, true, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return "", false, fmt.Errorf("postgres: enqueue: %w", err)
	}
	if err := tx.QueryRow(ctx, existingSQL, p.Msg.IdempotencyKey).Scan(&id); err != nil {
		return "", false, fmt.Errorf("postgres: enqueue: find idempotency key: %w", err)
	}
	return id, false, nil
}

// writeChunks streams body into outbox_body_chunks one chunk at a time,
// starting at sequence number seq, and returns the bytes written.
func writeChunks(ctx context.Context, tx pgx.Tx, id string, seq int, body io.Reader, buf []byte) (int64, error) {
	var total int64
	for ; ; seq++ {
		n, err := io.ReadFull(body, buf)
		if n > 0 {
			_, err := tx.Exec(ctx, `INSERT INTO outbox_body_chunks (message_id, seq, data)
				VALUES ($1, $2, $3)`, id, seq, buf[:n])
			if err != nil {
				return total, err
			}
			total += int64(n)
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return total, nil
		}
		if err != nil {
			return total, fmt.Errorf("read body: %w", err)
		}
	}
}

package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/outbox-mail/outbox/queue"
	"github.com/outbox-mail/outbox/queue/internal/pending"
)

// intake prepares messages for EnqueueTx, which has no store and so no
// spool; Open copies it with the store's settings.
// Spool files are unlinked at once: another process may open the same
// database (an application using EnqueueTx, a test's second store) and
// sweep the spool directory at its Open while this one spools into it.
var intake = pending.Config{Name: "sqlite", ChunkSize: DefaultChunkSize, Pattern: "body-*", Unlink: true}

// Enqueue validates m, spools its body, and hands it to the writer; it
// returns once the commit that holds it is durable. After the hand-off it
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

// insertBatch inserts every message of batch in one committed transaction.
// It runs on the writer goroutine only, which alone uses s.buf.
func (s *Store) insertBatch(ctx context.Context, batch []*pending.Message) ([]string, error) {
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer rollback(tx)
	st, err := prepareInsert(ctx, tx)
	if err != nil {
		return nil, err
	}
	defer st.close()
	ids := make([]string, len(batch))
	for i, p := range batch {
		body, err := p.Body()
		if err != nil {
			return nil, err
		}
		if ids[i], err = st.insert(ctx, p, body, s.buf); err != nil {
			return nil, err
		}
	}
	if err := s.commit(tx); err != nil {
		return nil, err
	}
	s.commits.Add(1)
	s.committed.Add(int64(len(batch)))
	return ids, nil
}

// EnqueueTx is the transactional outbox: it writes m, its recipients and
// its body into the caller's transaction tx, on a database whose schema
// Migrate has created. Nothing is visible until the caller commits, and a
// rollback leaves nothing behind. The body is streamed in chunks straight
// from m.Body. Stores with the database open see the message once the
// caller commits; their workers find it at their next look at the queue.
func EnqueueTx(ctx context.Context, tx *sql.Tx, m queue.NewMessage) (string, error) {
	p, err := intake.Prepare(m, DefaultLifetime)
	if err != nil {
		return "", err
	}
	st, err := prepareInsert(ctx, tx)
	if err != nil {
		return "", fmt.Errorf("sqlite: enqueue: %w", err)
	}
	defer st.close()
	p.Size = -1 // unknown until streamed
	id, err := st.insert(ctx, p, m.Body, make([]byte, DefaultChunkSize))
	if err != nil {
		return "", fmt.Errorf("sqlite: enqueue: %w", err)
	}
	return id, nil
}

// insertStmts are the statements an insertion needs, prepared once per
// transaction rather than once per message.
type insertStmts struct {
	findKey, msg, rcpt, chunk, size *sql.Stmt
}

func prepareInsert(ctx context.Context, tx *sql.Tx) (*insertStmts, error) {
	st := &insertStmts{}
	for _, q := range []struct {
		dst **sql.Stmt
		sql string
	}{
		{&st.findKey, `SELECT id FROM messages WHERE idempotency_key = ?`},
		{&st.msg, `INSERT INTO messages (id, sender, subject, status, created_at,
			updated_at, next_attempt_at, expires_at, idempotency_key, size, tags)
			VALUES (?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?)`},
		{&st.rcpt, `INSERT INTO recipients (message_id, idx, address, status)
			VALUES (?, ?, ?, 'pending')`},
		{&st.chunk, `INSERT INTO body_chunks (message_id, seq, data) VALUES (?, ?, ?)`},
		{&st.size, `UPDATE messages SET size = ? WHERE id = ?`},
	} {
		stmt, err := tx.PrepareContext(ctx, q.sql)
		if err != nil {
			st.close()
			return nil, err
		}
		*q.dst = stmt
	}
	return st, nil
}

func (st *insertStmts) close() {
	for _, s := range []*sql.Stmt{st.findKey, st.msg, st.rcpt, st.chunk, st.size} {
		if s != nil {
			s.Close()
		}
	}
}

// insert writes one message unless its idempotency key is already taken, in
// which case it returns the earlier message's id and writes nothing. A
// p.Size below zero means the size is learnt from the body as it streams.
func (st *insertStmts) insert(ctx context.Context, p *pending.Message, body io.Reader, buf []byte) (string, error) {
	var key any
	if p.Msg.IdempotencyKey != "" {
		key = p.Msg.IdempotencyKey
		var existing string
		err := st.findKey.QueryRowContext(ctx, key).Scan(&existing)
		if err == nil {
			return existing, nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return "", err
		}
	}
	now, next, expires := times(p)
	_, err := st.msg.ExecContext(ctx, p.ID, p.Msg.From, p.Msg.Subject, now, now,
		next, expires, key, max(p.Size, 0), p.Tags)
	if err != nil {
		return "", err
	}
	for i, r := range p.Msg.Recipients {
		if _, err := st.rcpt.ExecContext(ctx, p.ID, i, r); err != nil {
			return "", err
		}
	}
	n, err := st.writeChunks(ctx, p.ID, body, buf)
	if err != nil {
		return "", err
	}
	if p.Size < 0 {
		_, err = st.size.ExecContext(ctx, n, p.ID)
	} else if n != p.Size {
		err = fmt.Errorf("body changed while stored: %d bytes, expected %d", n, p.Size)
	}
	if err != nil {
		return "", err
	}
	return p.ID, nil
}

// times are p's stored creation, first due and expiry times in unix
// milliseconds: due at once unless SendAt says otherwise, expiring after
// its lifetime unless ExpiresAt says otherwise.
func times(p *pending.Message) (now, next, expires int64) {
	now, next = p.Created.UnixMilli(), p.Created.UnixMilli()
	if !p.Msg.SendAt.IsZero() {
		next = p.Msg.SendAt.UnixMilli()
	}
	expires = p.Created.Add(p.Lifetime).UnixMilli()
	if !p.Msg.ExpiresAt.IsZero() {
		expires = p.Msg.ExpiresAt.UnixMilli()
	}
	return now, next, expires
}

// writeChunks streams body into body_chunks one chunk at a time.
func (st *insertStmts) writeChunks(ctx context.Context, id string, body io.Reader, buf []byte) (int64, error) {
	var total int64
	for seq := 0; ; seq++ {
		n, err := io.ReadFull(body, buf)
		if n > 0 {
			if _, err := st.chunk.ExecContext(ctx, id, seq, buf[:n]); err != nil {
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

// EnqueueTx is the package's EnqueueTx as a method, so that code holding a
// store (the outbox library's Client) can enqueue within a caller's
// transaction; the message gets this store's default lifetime.
func (s *Store) EnqueueTx(ctx context.Context, tx *sql.Tx, m queue.NewMessage) (string, error) {
	if m.ExpiresAt.IsZero() {
		m.ExpiresAt = time.Now().Add(s.opts.DefaultLifetime)
	}
	return EnqueueTx(ctx, tx, m)
}

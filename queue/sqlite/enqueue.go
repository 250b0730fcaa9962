package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/outbox-mail/outbox/queue"
)

// pending is a validated message ready for insertion, its body spooled.
type pending struct {
	id      string
	m       queue.NewMessage // Body is not used once spooled
	now     int64
	next    int64
	expires int64
	tags    string
	size    int64
	mem     []byte   // the body, when it fit in one chunk
	file    *os.File // the spooled body otherwise
}

// body returns a reader over the spooled body from its start; the writer
// may need it twice when a failed batch is retried message by message.
func (p *pending) body() (io.Reader, error) {
	if p.file == nil {
		return bytes.NewReader(p.mem), nil
	}
	if _, err := p.file.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	return p.file, nil
}

// discard removes the spool file, if any.
func (p *pending) discard() {
	if p.file != nil {
		p.file.Close()
		os.Remove(p.file.Name())
		p.file = nil
	}
}

// enqueueReq is one Enqueue waiting for the writer's commit.
type enqueueReq struct {
	p    *pending
	done chan enqueueResult
}

type enqueueResult struct {
	id  string
	err error
}

// Enqueue validates m, spools its body, and hands it to the writer; it
// returns once the commit that holds it is durable. After the hand-off it
// waits for the commit even if ctx ends, so that its answer is never a lie.
func (s *Store) Enqueue(ctx context.Context, m queue.NewMessage) (string, error) {
	if err := s.check(); err != nil {
		return "", err
	}
	p, err := prepare(m, s.opts.DefaultLifetime)
	if err != nil {
		return "", err
	}
	if err := s.spool(p, m.Body); err != nil {
		p.discard()
		return "", err
	}
	if err := ctx.Err(); err != nil {
		p.discard()
		return "", err
	}
	req := &enqueueReq{p: p, done: make(chan enqueueResult, 1)}
	s.mu.RLock()
	if s.closed.Load() {
		s.mu.RUnlock()
		p.discard()
		return "", queue.ErrClosed
	}
	s.reqs <- req
	s.mu.RUnlock()
	res := <-req.done
	return res.id, res.err
}

// validate rejects what no store can accept, naming the field.
func validate(m queue.NewMessage, now time.Time) error {
	if strings.ContainsAny(m.From, "\r\n") {
		return fmt.Errorf("%w: From contains CR or LF", queue.ErrInvalid)
	}
	if len(m.Recipients) == 0 {
		return fmt.Errorf("%w: Recipients is empty; at least one is required", queue.ErrInvalid)
	}
	for i, r := range m.Recipients {
		if strings.TrimSpace(r) == "" {
			return fmt.Errorf("%w: Recipients[%d] is empty", queue.ErrInvalid, i)
		}
		if strings.ContainsAny(r, "\r\n") {
			return fmt.Errorf("%w: Recipients[%d] contains CR or LF", queue.ErrInvalid, i)
		}
	}
	if m.Body == nil {
		return fmt.Errorf("%w: Body is nil", queue.ErrInvalid)
	}
	if !m.ExpiresAt.IsZero() && !m.ExpiresAt.After(now) {
		return fmt.Errorf("%w: ExpiresAt is in the past", queue.ErrInvalid)
	}
	return nil
}

// prepare validates m and fills in the id and the derived columns.
func prepare(m queue.NewMessage, lifetime time.Duration) (*pending, error) {
	now := time.Now()
	if err := validate(m, now); err != nil {
		return nil, err
	}
	tags := "{}"
	if len(m.Tags) > 0 {
		b, err := json.Marshal(m.Tags)
		if err != nil {
			return nil, fmt.Errorf("%w: Tags: %v", queue.ErrInvalid, err)
		}
		tags = string(b)
	}
	id, err := uuid.NewV7()
	if err != nil {
		return nil, fmt.Errorf("sqlite: new id: %w", err)
	}
	p := &pending{id: id.String(), m: m, now: now.UnixMilli(), next: now.UnixMilli(), tags: tags}
	p.m.Body = nil
	if !m.SendAt.IsZero() {
		p.next = m.SendAt.UnixMilli()
	}
	p.expires = now.Add(lifetime).UnixMilli()
	if !m.ExpiresAt.IsZero() {
		p.expires = m.ExpiresAt.UnixMilli()
	}
	return p, nil
}

// spool reads the body before the writer sees the message, so a slow
// producer never holds the write lock: in memory when it fits one chunk,
// else in a temporary file. The spool needs no fsync; durability comes
// from the commit that copies it into the database.
func (s *Store) spool(p *pending, body io.Reader) error {
	var buf bytes.Buffer
	n, err := io.CopyN(&buf, body, int64(s.opts.ChunkSize)+1)
	if errors.Is(err, io.EOF) {
		p.mem, p.size = buf.Bytes(), n
		return nil
	}
	if err != nil {
		return fmt.Errorf("sqlite: enqueue: read body: %w", err)
	}
	f, err := os.CreateTemp(s.spoolDir, "body-*")
	if err != nil {
		return fmt.Errorf("sqlite: enqueue: spool body: %w", err)
	}
	p.file = f
	if _, err := f.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("sqlite: enqueue: spool body: %w", err)
	}
	rest, err := io.Copy(f, body)
	if err != nil {
		return fmt.Errorf("sqlite: enqueue: read body: %w", err)
	}
	p.size = n + rest
	return nil
}

// writer is the group-commit loop: it takes every enqueue waiting, up to the
// batch bounds, commits them in one transaction and answers them all.
func (s *Store) writer() {
	defer s.writerW.Done()
	buf := make([]byte, s.opts.ChunkSize)
	prev := 0
	for req := range s.reqs {
		batch := s.gather(req, prev)
		s.commitBatch(batch, buf)
		prev = len(batch)
	}
}

// maxLinger bounds how long the writer waits for producers it expects.
const maxLinger = time.Millisecond

// gather collects a batch starting with first. The producers answered by
// the last commit come back a moment later with their next message; taking
// only what is already queued would split them over two commits (two
// fsyncs), so while the batch is smaller than the last one the writer
// lingers briefly for them. With one producer it never waits.
func (s *Store) gather(first *enqueueReq, prev int) []*enqueueReq {
	batch := []*enqueueReq{first}
	size := first.p.size
	var linger <-chan time.Time
	for len(batch) < s.opts.BatchMessages && size < s.opts.BatchBytes {
		var r *enqueueReq
		var ok bool
		select {
		case r, ok = <-s.reqs:
		default:
			if len(batch) >= prev {
				return batch
			}
			if linger == nil {
				linger = time.After(maxLinger)
			}
			select {
			case r, ok = <-s.reqs:
			case <-linger:
				return batch
			}
		}
		if !ok {
			return batch
		}
		batch = append(batch, r)
		size += r.p.size
	}
	return batch
}

// commitBatch writes batch in one transaction. If that fails, each message
// is retried in a transaction of its own so one bad message cannot sink the
// others.
func (s *Store) commitBatch(batch []*enqueueReq, buf []byte) {
	ctx := context.Background()
	ids, err := s.insertBatch(ctx, batch, buf)
	if err != nil && len(batch) > 1 {
		s.log.Warn("sqlite: group commit failed; retrying messages one by one",
			"messages", len(batch), "err", err)
		for _, r := range batch {
			one, err := s.insertBatch(ctx, []*enqueueReq{r}, buf)
			r.p.discard()
			if err != nil {
				r.done <- enqueueResult{err: s.wrap("enqueue", err)}
				continue
			}
			r.done <- enqueueResult{id: one[0]}
		}
		return
	}
	for i, r := range batch {
		r.p.discard()
		if err != nil {
			r.done <- enqueueResult{err: s.wrap("enqueue", err)}
			continue
		}
		r.done <- enqueueResult{id: ids[i]}
	}
}

// insertBatch inserts every message of batch in one committed transaction.
func (s *Store) insertBatch(ctx context.Context, batch []*enqueueReq, buf []byte) ([]string, error) {
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
	for i, r := range batch {
		body, err := r.p.body()
		if err != nil {
			return nil, err
		}
		if ids[i], err = st.insert(ctx, r.p, body, buf); err != nil {
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
	p, err := prepare(m, DefaultLifetime)
	if err != nil {
		return "", err
	}
	st, err := prepareInsert(ctx, tx)
	if err != nil {
		return "", fmt.Errorf("sqlite: enqueue: %w", err)
	}
	defer st.close()
	p.size = -1 // unknown until streamed
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
// p.size below zero means the size is learnt from the body as it streams.
func (st *insertStmts) insert(ctx context.Context, p *pending, body io.Reader, buf []byte) (string, error) {
	var key any
	if p.m.IdempotencyKey != "" {
		key = p.m.IdempotencyKey
		var existing string
		err := st.findKey.QueryRowContext(ctx, key).Scan(&existing)
		if err == nil {
			return existing, nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return "", err
		}
	}
	_, err := st.msg.ExecContext(ctx, p.id, p.m.From, p.m.Subject, p.now, p.now,
		p.next, p.expires, key, max(p.size, 0), p.tags)
	if err != nil {
		return "", err
	}
	for i, r := range p.m.Recipients {
		if _, err := st.rcpt.ExecContext(ctx, p.id, i, r); err != nil {
			return "", err
		}
	}
	n, err := st.writeChunks(ctx, p.id, body, buf)
	if err != nil {
		return "", err
	}
	if p.size < 0 {
		_, err = st.size.ExecContext(ctx, n, p.id)
	} else if n != p.size {
		err = fmt.Errorf("body changed while stored: %d bytes, expected %d", n, p.size)
	}
	if err != nil {
		return "", err
	}
	return p.id, nil
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

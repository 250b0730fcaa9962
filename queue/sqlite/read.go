package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/outbox-mail/outbox/queue"
	"github.com/outbox-mail/outbox/queue/internal/listpage"
)

// Get returns a message with all its recipients, read from the read pool.
func (s *Store) Get(ctx context.Context, id string) (*queue.Message, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	// One read transaction, so message and recipients are one snapshot.
	tx, err := s.rdb.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, s.wrap("get", err)
	}
	defer rollback(tx)
	m, err := scanMessage(tx.QueryRowContext(ctx, `SELECT `+msgCols+` FROM messages WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, queue.ErrNotFound
	}
	if err != nil {
		return nil, s.wrap("get", err)
	}
	rcpts, err := loadRecipients(ctx, tx, []string{id}, false)
	if err != nil {
		return nil, s.wrap("get", err)
	}
	m.Recipients = rcpts[id]
	return &m, nil
}

// Attempts returns a message's attempts, oldest first; ErrNotFound if the
// message does not exist.
func (s *Store) Attempts(ctx context.Context, id string) ([]queue.Attempt, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	tx, err := s.rdb.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, s.wrap("attempts", err)
	}
	defer rollback(tx)
	var one int
	err = tx.QueryRowContext(ctx, `SELECT 1 FROM messages WHERE id = ?`, id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, queue.ErrNotFound
	}
	if err != nil {
		return nil, s.wrap("attempts", err)
	}
	rows, err := tx.QueryContext(ctx, `SELECT number, started_at, finished_at, route,
		error, transcript FROM attempts WHERE message_id = ? ORDER BY number`, id)
	if err != nil {
		return nil, s.wrap("attempts", err)
	}
	defer rows.Close()
	var out []queue.Attempt
	for rows.Next() {
		var a queue.Attempt
		var started, finished int64
		if err := rows.Scan(&a.Number, &started, &finished, &a.Route, &a.Error, &a.Transcript); err != nil {
			return nil, s.wrap("attempts", err)
		}
		a.StartedAt, a.FinishedAt = fromMS(started), fromMS(finished)
		out = append(out, a)
	}
	return out, s.wrap("attempts", rows.Err())
}

// List returns messages matching f, newest first. The cursor is the last
// id of the previous page: ids are UUIDv7, so id order is creation order
// and paging by "id < cursor" never skips or repeats a message.
func (s *Store) List(ctx context.Context, f queue.Filter) (*queue.ListPage, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	where, args, err := listWhere(f)
	if err != nil {
		return nil, err
	}
	limit := listpage.Limit(f.Limit)
	tx, err := s.rdb.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, s.wrap("list", err)
	}
	defer rollback(tx)
	rows, err := tx.QueryContext(ctx, `SELECT `+msgCols+` FROM messages m`+where+
		` ORDER BY id DESC LIMIT ?`, append(args, limit+1)...)
	if err != nil {
		return nil, s.wrap("list", err)
	}
	var msgs []queue.Message
	for rows.Next() {
		m, err := scanMessage(rows)
		if err != nil {
			rows.Close()
			return nil, s.wrap("list", err)
		}
		msgs = append(msgs, m)
	}
	if err := rows.Err(); err != nil {
		return nil, s.wrap("list", err)
	}
	page := listpage.Cut(msgs, limit)
	ids := make([]string, len(page.Messages))
	for i, m := range page.Messages {
		ids[i] = m.ID
	}
	rcpts, err := loadRecipients(ctx, tx, ids, false)
	if err != nil {
		return nil, s.wrap("list", err)
	}
	for i := range page.Messages {
		page.Messages[i].Recipients = rcpts[page.Messages[i].ID]
	}
	return page, nil
}

// listWhere turns a filter into a WHERE clause and its arguments.
// Substring matches use instr on lowered text rather than LIKE, so a user's
// % or _ means itself.
func listWhere(f queue.Filter) (string, []any, error) {
	var conds []string
	var args []any
	if f.Status != "" {
		if !f.Status.Valid() {
			return "", nil, fmt.Errorf("%w: unknown status %q", queue.ErrInvalid, f.Status)
		}
		conds, args = append(conds, "status = ?"), append(args, string(f.Status))
	}
	if f.Recipient != "" {
		conds = append(conds, `EXISTS (SELECT 1 FROM recipients r WHERE r.message_id = m.id
			AND instr(lower(r.address), lower(?)) > 0)`)
		args = append(args, f.Recipient)
	}
	if f.From != "" {
		conds, args = append(conds, "instr(lower(sender), lower(?)) > 0"), append(args, f.From)
	}
	if f.Subject != "" {
		conds, args = append(conds, "instr(lower(subject), lower(?)) > 0"), append(args, f.Subject)
	}
	if !f.Since.IsZero() {
		conds, args = append(conds, "created_at >= ?"), append(args, f.Since.UnixMilli())
	}
	if !f.Until.IsZero() {
		conds, args = append(conds, "created_at < ?"), append(args, f.Until.UnixMilli())
	}
	if f.Cursor != "" {
		last, ok := listpage.After(f.Cursor)
		if !ok {
			return "", nil, fmt.Errorf("%w: malformed cursor", queue.ErrInvalid)
		}
		conds, args = append(conds, "id < ?"), append(args, last)
	}
	if len(conds) == 0 {
		return "", nil, nil
	}
	return " WHERE " + strings.Join(conds, " AND "), args, nil
}

// Counts returns the number of messages in each status present.
func (s *Store) Counts(ctx context.Context) (map[queue.Status]int64, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	rows, err := s.rdb.QueryContext(ctx, `SELECT status, COUNT(*) FROM messages GROUP BY status`)
	if err != nil {
		return nil, s.wrap("counts", err)
	}
	defer rows.Close()
	out := make(map[queue.Status]int64)
	for rows.Next() {
		var st string
		var n int64
		if err := rows.Scan(&st, &n); err != nil {
			return nil, s.wrap("counts", err)
		}
		out[queue.Status(st)] = n
	}
	return out, s.wrap("counts", rows.Err())
}

// OpenBody streams a message's body, fetching one chunk at a time so memory
// stays at one chunk whatever the body's size.
func (s *Store) OpenBody(ctx context.Context, id string) (io.ReadCloser, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	var size int64
	err := s.rdb.QueryRowContext(ctx, `SELECT size FROM messages WHERE id = ?`, id).Scan(&size)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, queue.ErrNotFound
	}
	if err != nil {
		return nil, s.wrap("open body", err)
	}
	return &bodyReader{s: s, ctx: ctx, id: id, size: size}, nil
}

// bodyReader reads body_chunks in seq order.
type bodyReader struct {
	s      *Store
	ctx    context.Context
	id     string
	size   int64
	read   int64
	seq    int
	cur    []byte
	closed bool
}

// Read implements io.Reader.
func (b *bodyReader) Read(p []byte) (int, error) {
	if b.closed {
		return 0, errors.New("sqlite: read of closed body")
	}
	for len(b.cur) == 0 {
		if b.read >= b.size {
			return 0, io.EOF
		}
		err := b.s.rdb.QueryRowContext(b.ctx, `SELECT data FROM body_chunks
			WHERE message_id = ? AND seq = ?`, b.id, b.seq).Scan(&b.cur)
		if errors.Is(err, sql.ErrNoRows) {
			return 0, fmt.Errorf("sqlite: body of %s ends at %d of %d bytes: %w", b.id, b.read, b.size, io.ErrUnexpectedEOF)
		}
		if err != nil {
			return 0, b.s.wrap("read body", err)
		}
		b.seq++
	}
	n := copy(p, b.cur)
	b.cur = b.cur[n:]
	b.read += int64(n)
	return n, nil
}

// Close implements io.Closer.
func (b *bodyReader) Close() error {
	b.closed, b.cur = true, nil
	return nil
}

// decodeTags parses the stored tags JSON; an empty object gives nil.
func decodeTags(s string) (map[string]string, error) {
	if s == "" || s == "{}" {
		return nil, nil
	}
	var m map[string]string
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil, fmt.Errorf("tags: %w", err)
	}
	return m, nil
}

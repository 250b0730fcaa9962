package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/outbox-mail/outbox/queue"
	"github.com/outbox-mail/outbox/queue/internal/listpage"
)

// readTx begins a read-only REPEATABLE READ transaction, so that a message
// and its recipients are read from one snapshot.
func (s *Store) readTx(ctx context.Context) (pgx.Tx, error) {
	return s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
}

// Get returns a message with all its recipients.
func (s *Store) Get(ctx context.Context, id string) (*queue.Message, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if !storableID(id) {
		return nil, queue.ErrNotFound
	}
	tx, err := s.readTx(ctx)
	if err != nil {
		return nil, s.wrap("get", err)
	}
	defer rollback(tx)
	m, err := scanMessage(tx.QueryRow(ctx, `SELECT `+msgCols+` FROM outbox_messages WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
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
	if !storableID(id) {
		return nil, queue.ErrNotFound
	}
	tx, err := s.readTx(ctx)
	if err != nil {
		return nil, s.wrap("attempts", err)
	}
	defer rollback(tx)
	var one int
	err = tx.QueryRow(ctx, `SELECT 1 FROM outbox_messages WHERE id = $1`, id).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, queue.ErrNotFound
	}
	if err != nil {
		return nil, s.wrap("attempts", err)
	}
	rows, err := tx.Query(ctx, `SELECT number, started_at, finished_at, route,
		error, transcript FROM outbox_attempts WHERE message_id = $1 ORDER BY number`, id)
	if err != nil {
		return nil, s.wrap("attempts", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (queue.Attempt, error) {
		var a queue.Attempt
		err := row.Scan(&a.Number, &a.StartedAt, &a.FinishedAt, &a.Route, &a.Error, &a.Transcript)
		return a, err
	})
	return out, s.wrap("attempts", err)
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
	tx, err := s.readTx(ctx)
	if err != nil {
		return nil, s.wrap("list", err)
	}
	defer rollback(tx)
	args = append(args, limit+1)
	rows, err := tx.Query(ctx, `SELECT `+msgCols+` FROM outbox_messages m`+where+
		fmt.Sprintf(` ORDER BY id DESC LIMIT $%d`, len(args)), args...)
	if err != nil {
		return nil, s.wrap("list", err)
	}
	msgs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (queue.Message, error) {
		return scanMessage(row)
	})
	if err != nil {
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
// Substring matches use strpos on lowered text rather than LIKE, so a
// user's % or _ means itself.
func listWhere(f queue.Filter) (string, []any, error) {
	var conds []string
	var args []any
	add := func(cond string, arg any) {
		args = append(args, arg)
		conds = append(conds, strings.ReplaceAll(cond, "$?", fmt.Sprintf("$%d", len(args))))
	}
	if f.Status != "" {
		if !f.Status.Valid() {
			return "", nil, fmt.Errorf("%w: Status: unknown status %q", queue.ErrInvalid, f.Status)
		}
		add("status = $?", string(f.Status))
	}
	for field, v := range map[string]string{"Recipient": f.Recipient, "From": f.From, "Subject": f.Subject} {
		if err := checkText(field, v, false); err != nil {
			return "", nil, err
		}
	}
	if f.Recipient != "" {
		add(`EXISTS (SELECT 1 FROM outbox_recipients r WHERE r.message_id = m.id
			AND strpos(lower(r.address), lower($?)) > 0)`, f.Recipient)
	}
	if f.From != "" {
		add("strpos(lower(sender), lower($?)) > 0", f.From)
	}
	if f.Subject != "" {
		add("strpos(lower(subject), lower($?)) > 0", f.Subject)
	}
	if !f.Since.IsZero() {
		add("created_at >= $?", f.Since)
	}
	if !f.Until.IsZero() {
		add("created_at < $?", f.Until)
	}
	if f.Cursor != "" {
		last, ok := listpage.After(f.Cursor)
		if !ok || checkText("Cursor", last, true) != nil {
			return "", nil, fmt.Errorf("%w: Cursor: malformed cursor", queue.ErrInvalid)
		}
		add("id < $?", last)
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
	rows, err := s.pool.Query(ctx, `SELECT status, count(*) FROM outbox_messages GROUP BY status`)
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

// OpenBody streams a message's body, fetching one chunk per query so that
// memory stays at one chunk whatever the body's size and no connection is
// held between reads.
func (s *Store) OpenBody(ctx context.Context, id string) (io.ReadCloser, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if !storableID(id) {
		return nil, queue.ErrNotFound
	}
	var size int64
	err := s.pool.QueryRow(ctx, `SELECT size FROM outbox_messages WHERE id = $1`, id).Scan(&size)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, queue.ErrNotFound
	}
	if err != nil {
		return nil, s.wrap("open body", err)
	}
	return &bodyReader{s: s, ctx: ctx, id: id, size: size}, nil
}

// bodyReader reads outbox_body_chunks in seq order.
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
		return 0, errors.New("postgres: read of closed body")
	}
	for len(b.cur) == 0 {
		if b.read >= b.size {
			return 0, io.EOF
		}
		err := b.s.pool.QueryRow(b.ctx, `SELECT data FROM outbox_body_chunks
			WHERE message_id = $1 AND seq = $2`, b.id, b.seq).Scan(&b.cur)
		if errors.Is(err, pgx.ErrNoRows) {
			return 0, fmt.Errorf("postgres: body of %s ends at %d of %d bytes: %w", b.id, b.read, b.size, io.ErrUnexpectedEOF)
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

package sqlite

import (
	"context"
	"database/sql"
	"strings"

	"time"

	"github.com/outbox-mail/outbox/queue"
)

// msgCols are the messages columns scanMessage reads, in order.
const msgCols = `id, sender, subject, status, size, attempts,
	coalesce(idempotency_key, ''), tags, created_at, updated_at,
	next_attempt_at, expires_at, source, eight_bit, smtputf8, dsn_ret, dsn_envid,
	ignore_suppressions, repairs, unsubscribe, long_lines`

// scanner is a *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

// readCols are what Message and List read: msgCols and the header's
// mailboxes from the search index, for "FROM messages m LEFT JOIN
// search_docs d ON d.message_id = m.id".
const readCols = msgCols + `, coalesce(d.mailboxes, '')`

// scanRead reads the readCols of one row.
func scanRead(sc scanner) (queue.Message, error) {
	var mb string
	m, err := scanMessage(sc, &mb)
	if err == nil {
		m.Mailboxes, err = queue.ParseMailboxes(mb)
	}
	return m, err
}

// scanMessage reads the msgCols of one row, then the extra destinations a
// query puts after them.
func scanMessage(sc scanner, extra ...any) (queue.Message, error) {
	var m queue.Message
	var status, tags, source, ret, repairs string
	var created, updated, next, expires int64
	err := sc.Scan(append([]any{&m.ID, &m.From, &m.Subject, &status, &m.Size, &m.Attempts,
		&m.IdempotencyKey, &tags, &created, &updated, &next, &expires, &source,
		&m.EightBit, &m.SMTPUTF8, &ret, &m.DSN.EnvID, &m.IgnoreSuppressions, &repairs, &m.Unsubscribe, &m.LongLines}, extra...)...)
	if err != nil {
		return m, err
	}
	m.Status, m.Source, m.DSN.Return = queue.Status(status), queue.Source(source), queue.DSNReturn(ret)
	m.CreatedAt, m.UpdatedAt = fromMS(created), fromMS(updated)
	m.NextAttemptAt, m.ExpiresAt = fromMS(next), fromMS(expires)
	m.Repairs = queue.ParseList(repairs)
	m.Tags, err = queue.ParseTags(m.ID, tags)
	return m, err
}

// Recipients reads the recipients of ids in envelope order.
func (t *sqlTx) Recipients(ctx context.Context, ids []string, openOnly bool) (map[string][]queue.Recipient, error) {
	out := make(map[string][]queue.Recipient, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	err := chunks(len(ids), func(lo, hi int) error {
		return t.recipients(ctx, ids[lo:hi], openOnly, out)
	})
	return out, err
}

// recipients reads the recipients of at most maxListRows ids into out.
func (t *sqlTx) recipients(ctx context.Context, ids []string, openOnly bool, out map[string][]queue.Recipient) error {
	args, in := inArgs(nil, ids)
	query := `SELECT message_id, idx, address, status, attempts, code, enhanced_code,		text, last_attempt_at, dsn_notify, dsn_orcpt FROM recipients
		WHERE message_id IN (` + in + `)`
	if openOnly {
		query += ` AND status IN ('pending', 'deferred')`
	}
	rows, err := t.query(ctx, query+` ORDER BY message_id, idx`, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id, status, notify string
		var last int64
		var r queue.Recipient
		if err := rows.Scan(&id, &r.Idx, &r.Address, &status, &r.Attempts, &r.Code,
			&r.EnhancedCode, &r.Text, &last, &notify, &r.DSN.ORcpt); err != nil {
			return err
		}
		r.Status, r.LastAttemptAt, r.DSN.Notify = queue.RecipientStatus(status), fromMS(last), queue.ParseList(notify)
		out[id] = append(out[id], r)
	}
	return rows.Err()
}

// Message reads one message.
func (t *sqlTx) Message(ctx context.Context, id string) (*queue.Message, error) {
	rows, err := t.query(ctx, `SELECT `+readCols+` FROM messages m
		LEFT JOIN search_docs d ON d.message_id = m.id WHERE m.id = ?`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return nil, err
		}
		return nil, queue.ErrNotFound
	}
	m, err := scanRead(rows)
	if err != nil {
		return nil, err
	}
	return &m, rows.Close()
}

// Attempts reads a message's attempts.
func (t *sqlTx) Attempts(ctx context.Context, id string) ([]queue.Attempt, error) {
	rows, err := t.query(ctx, `SELECT number, started_at, finished_at, route, host, reply,
		error, transcript FROM attempts WHERE message_id = ? ORDER BY number`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []queue.Attempt
	for rows.Next() {
		var a queue.Attempt
		var started, finished int64
		if err := rows.Scan(&a.Number, &started, &finished, &a.Route, &a.Host, &a.Reply, &a.Error, &a.Transcript); err != nil {
			return nil, err
		}
		a.StartedAt, a.FinishedAt = fromMS(started), fromMS(finished)
		out = append(out, a)
	}
	return out, rows.Err()
}

// List reads a page of messages. Substring matches use instr on lowered
// text rather than LIKE, so a user's % or _ means itself.
//
// A search reads the index's matches newest first (its rowids are in id
// order) and stops at the page's end, however many messages match.
func (t *sqlTx) List(ctx context.Context, f queue.Filter, before string, limit int) ([]queue.Message, error) {
	from, order := "messages m LEFT JOIN search_docs d ON d.message_id = m.id", "m.id DESC"
	var conds []string
	var args []any
	if f.Search != "" {
		from, order = searchFrom(before != ""), "f.doc DESC"
		args = append(args, matchQuery(f.SearchTerms()))
		if before != "" {
			args = append(args, docID(before))
		}
	}
	add := func(c string, a any) { conds, args = append(conds, c), append(args, a) }
	if f.Status != "" {
		add("status = ?", string(f.Status))
	}
	if f.Recipient != "" {
		add(`EXISTS (SELECT 1 FROM recipients r WHERE r.message_id = m.id
			AND instr(lower(r.address), lower(?)) > 0)`, f.Recipient)
	}
	if f.From != "" {
		add("instr(lower(sender), lower(?)) > 0", f.From)
	}
	if f.Subject != "" {
		add("instr(lower(subject), lower(?)) > 0", f.Subject)
	}
	if !f.Since.IsZero() {
		add("created_at >= ?", f.Since.UnixMilli())
	}
	if !f.Until.IsZero() {
		add("created_at < ?", f.Until.UnixMilli())
	}
	if before != "" {
		add("m.id < ?", before)
	}
	where := ""
	if len(conds) > 0 {
		where = " WHERE " + strings.Join(conds, " AND ")
	}
	rows, err := t.query(ctx, `SELECT `+readCols+` FROM `+from+where+` ORDER BY `+order+` LIMIT ?`,
		append(args, limit)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []queue.Message
	for rows.Next() {
		m, err := scanRead(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// Counts counts messages by status.
func (t *sqlTx) Counts(ctx context.Context) (map[queue.Status]int64, error) {
	rows, err := t.query(ctx, `SELECT status, COUNT(*) FROM messages GROUP BY status`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make(map[queue.Status]int64)
	for rows.Next() {
		var st string
		var n int64
		if err := rows.Scan(&st, &n); err != nil {
			return nil, err
		}
		out[queue.Status(st)] = n
	}
	return out, rows.Err()
}

// BodySize reads a message's body size.
func (t *sqlTx) BodySize(ctx context.Context, id string) (int64, error) {
	var n int64
	err := t.queryRow(ctx, []any{&n}, `SELECT size FROM messages WHERE id = ?`, id)
	return n, err
}

// Chunk reads one body chunk.
func (t *sqlTx) Chunk(ctx context.Context, id string, seq int, buf []byte) ([]byte, error) {
	// RawBytes is the driver's own copy, valid until the rows move on:
	// copying it into buf saves a second allocation per chunk.
	var raw sql.RawBytes
	rows, err := t.query(ctx, `SELECT data FROM body_chunks WHERE message_id = ? AND seq = ?`, id, seq)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return nil, err
		}
		return nil, queue.ErrNotFound
	}
	if err := rows.Scan(&raw); err != nil {
		return nil, err
	}
	buf = append(buf[:0], raw...)
	return buf, rows.Close()
}

// History reads a message's recipient events.
func (t *sqlTx) History(ctx context.Context, id string) ([]queue.RecipientEvent, error) {
	rows, err := t.query(ctx, `SELECT address, type, code, enhanced_code, text, created_at
		FROM recipient_events WHERE message_id = ? ORDER BY id`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []queue.RecipientEvent
	for rows.Next() {
		e := queue.RecipientEvent{MessageID: id}
		var typ string
		var at int64
		if err := rows.Scan(&e.Address, &typ, &e.Code, &e.EnhancedCode, &e.Text, &at); err != nil {
			return nil, err
		}
		e.Type, e.At = queue.HistoryType(typ), fromMS(at)
		out = append(out, e)
	}
	return out, rows.Err()
}

// NextDue is the earliest next attempt or lease expiry, one index seek
// per status.
func (t *sqlTx) NextDue(ctx context.Context) (time.Time, bool, error) {
	var v sql.NullInt64
	err := t.queryRow(ctx, []any{&v}, `SELECT MIN(t) FROM (
		SELECT MIN(next_attempt_at) AS t FROM messages INDEXED BY messages_queued WHERE status = 'queued'
		UNION ALL
		SELECT MIN(next_attempt_at) FROM messages INDEXED BY messages_deferred WHERE status = 'deferred'
		UNION ALL
		SELECT MIN(lease_expires_at) FROM messages INDEXED BY messages_sending WHERE status = 'sending')`)
	if err != nil || !v.Valid {
		return time.Time{}, false, err
	}
	return time.UnixMilli(v.Int64), true, nil
}

// NextEventDue is the earliest time a pending event becomes claimable.
func (t *sqlTx) NextEventDue(ctx context.Context) (time.Time, bool, error) {
	var v sql.NullInt64
	err := t.queryRow(ctx, []any{&v}, `SELECT MIN(MAX(next_attempt_at, lease_expires_at))
		FROM events WHERE status = 'pending'`)
	if err != nil || !v.Valid {
		return time.Time{}, false, err
	}
	return time.UnixMilli(v.Int64), true, nil
}

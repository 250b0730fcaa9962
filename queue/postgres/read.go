package postgres

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/outbox-mail/outbox/queue"
)

// msgCols are the outbox_messages columns scanMessage reads, in order.
const msgCols = `id, sender, subject, status, size, attempts,
	coalesce(idempotency_key, ''), tags::text, created_at, updated_at,
	next_attempt_at, expires_at, source, eight_bit, smtputf8, dsn_ret, dsn_envid,
	ignore_suppressions, repairs, unsubscribe, long_lines`

// readCols are what Message and List read: the header's mailboxes from
// the search index, then msgCols, for "FROM outbox_messages m LEFT JOIN
// outbox_search d ON d.message_id = m.id".
const readCols = `coalesce(d.mailboxes, ''), ` + msgCols

// scanRead reads the readCols of one row.
func scanRead(row pgx.Row) (queue.Message, error) {
	var mb string
	m, err := scanMessage(row, &mb)
	if err == nil {
		m.Mailboxes, err = queue.ParseMailboxes(mb)
	}
	return m, err
}

// scanMessage reads the msgCols of one row, after the extra destinations
// a query puts first.
func scanMessage(row pgx.Row, extra ...any) (queue.Message, error) {
	var m queue.Message
	var status, tags, source, ret, repairs string
	var next *time.Time
	dst := append(extra, &m.ID, &m.From, &m.Subject, &status, &m.Size, &m.Attempts,
		&m.IdempotencyKey, &tags, &m.CreatedAt, &m.UpdatedAt, &next, &m.ExpiresAt, &source,
		&m.EightBit, &m.SMTPUTF8, &ret, &m.DSN.EnvID, &m.IgnoreSuppressions, &repairs, &m.Unsubscribe, &m.LongLines)
	err := row.Scan(dst...)
	if err != nil {
		return m, err
	}
	m.Status, m.NextAttemptAt, m.Source, m.DSN.Return = queue.Status(status), deref(next), queue.Source(source), queue.DSNReturn(ret)
	m.Repairs = queue.ParseList(repairs)
	m.Tags, err = queue.ParseTags(m.ID, tags)
	return m, err
}

// dueQuery lists the oldest due messages ($3 is the limit), locking them
// and skipping rows another claimer has locked. The lock is FOR NO KEY
// UPDATE, the one an UPDATE of non-key columns takes: FOR UPDATE would
// also conflict with the key-share lock that every insert referencing the
// message (its search entry, an event) holds, and skip a due message
// because the search indexer was writing its entry. Each status is its own
// bounded index range, so a claim costs the same with a backlog of a
// million as with ten. Due means by the database's clock.
const dueQuery = `
	SELECT * FROM (SELECT id, next_attempt_at AS due FROM outbox_messages
		WHERE status = 'queued' AND next_attempt_at <= now()
		ORDER BY next_attempt_at LIMIT $3 FOR NO KEY UPDATE SKIP LOCKED) q1
	UNION ALL
	SELECT * FROM (SELECT id, next_attempt_at FROM outbox_messages
		WHERE status = 'deferred' AND next_attempt_at <= now()
		ORDER BY next_attempt_at LIMIT $3 FOR NO KEY UPDATE SKIP LOCKED) q2
	UNION ALL
	SELECT * FROM (SELECT id, lease_expires_at FROM outbox_messages
		WHERE status = 'sending' AND lease_expires_at <= now()
		ORDER BY lease_expires_at LIMIT $3 FOR NO KEY UPDATE SKIP LOCKED) q3`

// ClaimDue leases due messages in one statement, until the database's
// now() plus lease.
func (t *pgTx) ClaimDue(ctx context.Context, owner string, limit int, lease time.Duration) ([]queue.Claimed, error) {
	var out []queue.Claimed
	err := t.rows(ctx, func(r pgx.Rows) error {
		var c queue.Claimed
		m, err := scanMessage(r, &c.LeaseExpiresAt)
		c.Message = m
		out = append(out, c)
		return err
	}, `UPDATE outbox_messages
		SET status = 'sending', lease_owner = $1, lease_expires_at = now() + $2::interval,
			attempts = attempts + 1, updated_at = now()
		WHERE id IN (SELECT id FROM (`+dueQuery+`) d ORDER BY due LIMIT $3)
		RETURNING lease_expires_at, `+msgCols, owner, lease, limit)
	slices.SortFunc(out, func(a, b queue.Claimed) int { return strings.Compare(a.ID, b.ID) })
	return out, err
}

// Recipients reads the recipients of ids in envelope order.
func (t *pgTx) Recipients(ctx context.Context, ids []string, openOnly bool) (map[string][]queue.Recipient, error) {
	out := make(map[string][]queue.Recipient, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	query := `SELECT message_id, idx, address, status, attempts, code, enhanced_code,
		text, last_attempt_at, dsn_notify, dsn_orcpt FROM outbox_recipients WHERE message_id = ANY($1)`
	if openOnly {
		query += ` AND status IN ('pending', 'deferred')`
	}
	err := t.rows(ctx, func(rows pgx.Rows) error {
		var id, status, notify string
		var last *time.Time
		var r queue.Recipient
		if err := rows.Scan(&id, &r.Idx, &r.Address, &status, &r.Attempts, &r.Code,
			&r.EnhancedCode, &r.Text, &last, &notify, &r.DSN.ORcpt); err != nil {
			return err
		}
		r.Status, r.LastAttemptAt, r.DSN.Notify = queue.RecipientStatus(status), deref(last), queue.ParseList(notify)
		out[id] = append(out[id], r)
		return nil
	}, query+` ORDER BY message_id, idx`, ids)
	return out, err
}

// states reads message states joined with their recipients.
func (t *pgTx) states(ctx context.Context, query string, args ...any) ([]queue.MessageState, error) {
	var out []queue.MessageState
	err := t.rows(ctx, func(rows pgx.Rows) error {
		var m queue.MessageState
		var r queue.RecipientState
		var status, rstatus string
		if err := rows.Scan(&m.ID, &status, &m.Attempts, &m.LeaseLive, &r.Idx, &r.Address, &rstatus); err != nil {
			return err
		}
		r.Status = queue.RecipientStatus(rstatus)
		if n := len(out); n > 0 && out[n-1].ID == m.ID {
			out[n-1].Recipients = append(out[n-1].Recipients, r)
			return nil
		}
		m.Status, m.Recipients = queue.Status(status), []queue.RecipientState{r}
		out = append(out, m)
		return nil
	}, query, args...)
	return out, err
}

const stateCols = `m.id, m.status, m.attempts, coalesce(m.status = 'sending' AND m.lease_expires_at > now(), false),
	r.idx, r.address, r.status FROM outbox_messages m JOIN outbox_recipients r ON r.message_id = m.id`

// Held locks owner's leased messages of ids, in id order so that
// concurrent callers cannot deadlock, and reads them with their recipients.
func (t *pgTx) Held(ctx context.Context, owner string, ids []string) ([]queue.MessageState, error) {
	return t.states(ctx, `SELECT `+stateCols+`
		WHERE m.id = ANY($1) AND m.status = 'sending' AND m.lease_owner = $2
		ORDER BY m.id, r.idx FOR NO KEY UPDATE OF m`, ids, owner)
}

// Lock locks one message and reads its state.
func (t *pgTx) Lock(ctx context.Context, id string) (*queue.MessageState, error) {
	st, err := t.states(ctx, `SELECT `+stateCols+` WHERE m.id = $1 ORDER BY r.idx FOR NO KEY UPDATE OF m`, id)
	if err != nil {
		return nil, err
	}
	if len(st) == 0 {
		return nil, queue.ErrNotFound
	}
	return &st[0], nil
}

// NextDue is the earliest next attempt or lease expiry.
func (t *pgTx) NextDue(ctx context.Context) (time.Time, bool, error) {
	var v *time.Time
	err := t.row(ctx, []any{&v}, `SELECT least(
		(SELECT min(next_attempt_at) FROM outbox_messages WHERE status = 'queued'),
		(SELECT min(next_attempt_at) FROM outbox_messages WHERE status = 'deferred'),
		(SELECT min(lease_expires_at) FROM outbox_messages WHERE status = 'sending'))`)
	return deref(v), v != nil, err
}

// Message reads one message.
func (t *pgTx) Message(ctx context.Context, id string) (*queue.Message, error) {
	var out *queue.Message
	err := t.rows(ctx, func(r pgx.Rows) error {
		m, err := scanRead(r)
		out = &m
		return err
	}, `SELECT `+readCols+` FROM outbox_messages m
		LEFT JOIN outbox_search d ON d.message_id = m.id WHERE m.id = $1`, id)
	if err == nil && out == nil {
		err = queue.ErrNotFound
	}
	return out, err
}

// Attempts reads a message's attempts.
func (t *pgTx) Attempts(ctx context.Context, id string) ([]queue.Attempt, error) {
	var out []queue.Attempt
	err := t.rows(ctx, func(r pgx.Rows) error {
		var a queue.Attempt
		err := r.Scan(&a.Number, &a.StartedAt, &a.FinishedAt, &a.Route, &a.Host, &a.Reply, &a.Error, &a.Transcript)
		out = append(out, a)
		return err
	}, `SELECT number, started_at, finished_at, route, host, reply, error, transcript
		FROM outbox_attempts WHERE message_id = $1 ORDER BY number`, id)
	return out, err
}

// List reads a page of messages. Substring matches use strpos on lowered
// text rather than LIKE, so a user's % or _ means itself.
func (t *pgTx) List(ctx context.Context, f queue.Filter, before string, limit int) ([]queue.Message, error) {
	var conds []string
	var args []any
	add := func(cond string, arg any) {
		args = append(args, arg)
		conds = append(conds, strings.ReplaceAll(cond, "$?", fmt.Sprintf("$%d", len(args))))
	}
	if f.Status != "" {
		add("status = $?", string(f.Status))
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
	if f.Search != "" {
		add(searchCond, matchQuery(f.SearchTerms()))
	}
	if !f.Since.IsZero() {
		add("created_at >= $?", f.Since)
	}
	if !f.Until.IsZero() {
		add("created_at < $?", f.Until)
	}
	if before != "" {
		add("m.id < $?", before)
	}
	where := ""
	if len(conds) > 0 {
		where = " WHERE " + strings.Join(conds, " AND ")
	}
	args = append(args, limit)
	var out []queue.Message
	err := t.rows(ctx, func(r pgx.Rows) error {
		m, err := scanRead(r)
		out = append(out, m)
		return err
	}, `SELECT `+readCols+` FROM outbox_messages m LEFT JOIN outbox_search d ON d.message_id = m.id`+
		where+fmt.Sprintf(` ORDER BY m.id DESC LIMIT $%d`, len(args)), args...)
	return out, err
}

// Counts counts messages by status.
func (t *pgTx) Counts(ctx context.Context) (map[queue.Status]int64, error) {
	out := make(map[queue.Status]int64)
	err := t.rows(ctx, func(r pgx.Rows) error {
		var st string
		var n int64
		err := r.Scan(&st, &n)
		out[queue.Status(st)] = n
		return err
	}, `SELECT status, count(*) FROM outbox_messages GROUP BY status`)
	return out, err
}

// BodySize reads a message's body size.
func (t *pgTx) BodySize(ctx context.Context, id string) (int64, error) {
	var n int64
	err := t.row(ctx, []any{&n}, `SELECT size FROM outbox_messages WHERE id = $1`, id)
	return n, err
}

// Chunk reads one body chunk.
func (t *pgTx) Chunk(ctx context.Context, id string, seq int, buf []byte) ([]byte, error) {
	found := false
	err := t.rows(ctx, func(r pgx.Rows) error {
		found = true
		// RawValues are pgx's read buffer, valid until the next row.
		buf = append(buf[:0], r.RawValues()[0]...)
		return nil
	}, `SELECT data FROM outbox_body_chunks WHERE message_id = $1 AND seq = $2`, id, seq)
	if err == nil && !found {
		err = queue.ErrNotFound
	}
	return buf, err
}

// History reads a message's recipient events.
func (t *pgTx) History(ctx context.Context, id string) ([]queue.RecipientEvent, error) {
	var out []queue.RecipientEvent
	err := t.rows(ctx, func(r pgx.Rows) error {
		e := queue.RecipientEvent{MessageID: id}
		var typ string
		err := r.Scan(&e.Address, &typ, &e.Code, &e.EnhancedCode, &e.Text, &e.At)
		e.Type = queue.HistoryType(typ)
		out = append(out, e)
		return err
	}, `SELECT address, type, code, enhanced_code, text, created_at
		FROM outbox_recipient_events WHERE message_id = $1 ORDER BY id`, id)
	return out, err
}

// dueEventsQuery lists the due events ($3 is the limit) as one index range
// per status, locking them and skipping those another claimer holds.
const dueEventsQuery = `
	SELECT * FROM (SELECT id, next_attempt_at AS due FROM outbox_events
		WHERE status = 'pending' AND next_attempt_at <= now()
		ORDER BY next_attempt_at LIMIT $3 FOR UPDATE SKIP LOCKED) q1
	UNION ALL
	SELECT * FROM (SELECT id, lease_expires_at FROM outbox_events
		WHERE status = 'sending' AND lease_expires_at <= now()
		ORDER BY lease_expires_at LIMIT $3 FOR UPDATE SKIP LOCKED) q2`

// ClaimEvents leases due events in one statement, longest due first.
func (t *pgTx) ClaimEvents(ctx context.Context, owner string, limit int, lease time.Duration) ([]queue.Event, error) {
	var out []queue.Event
	err := t.rows(ctx, func(r pgx.Rows) error {
		var e queue.Event
		err := r.Scan(&e.ID, &e.Endpoint, &e.Type, &e.MessageID, &e.Payload,
			&e.Attempts, &e.CreatedAt, &e.NextAttemptAt, &e.LastError)
		out = append(out, e)
		return err
	}, `UPDATE outbox_events e
		SET status = 'sending', lease_owner = $1, lease_expires_at = now() + $2::interval,
			attempts = attempts + 1
		FROM (SELECT id, due FROM (`+dueEventsQuery+`) d ORDER BY due LIMIT $3) d
		WHERE e.id = d.id
		RETURNING e.id, endpoint, type, message_id, payload, attempts, created_at,
			next_attempt_at, last_error`, owner, lease, limit)
	slices.SortStableFunc(out, func(a, b queue.Event) int { return a.NextAttemptAt.Compare(b.NextAttemptAt) })
	return out, err
}

// NextEventDue is the earliest time an event becomes claimable.
func (t *pgTx) NextEventDue(ctx context.Context) (time.Time, bool, error) {
	var v *time.Time
	err := t.row(ctx, []any{&v}, `SELECT least(
		(SELECT min(next_attempt_at) FROM outbox_events WHERE status = 'pending'),
		(SELECT min(lease_expires_at) FROM outbox_events WHERE status = 'sending'))`)
	return deref(v), v != nil, err
}

// ListSuppressions reads a page of entries by address and scope.
func (t *pgTx) ListSuppressions(ctx context.Context, contains, afterAddress, afterScope string, limit int) ([]queue.Suppression, error) {
	return t.suppressions(ctx, `SELECT `+suppressionCols+` FROM outbox_suppressions
		WHERE (address, scope) > ($1, $2) AND strpos(address, $3) > 0
		ORDER BY address, scope LIMIT $4`, afterAddress, afterScope, contains, limit)
}

package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/outbox-mail/outbox/queue"
)

// msgCols are the messages columns scanMessage reads, in order.
const msgCols = `id, sender, subject, status, size, attempts,
	COALESCE(idempotency_key, ''), tags, created_at, updated_at,
	next_attempt_at, expires_at`

// dueQuery lists the oldest due messages (?3 is now, ?4 the limit) as one
// bounded index range per status, so a claim costs the same with a backlog
// of a million as with ten: an OR across statuses would make SQLite sort
// every due row on every claim.
const dueQuery = `
	SELECT * FROM (SELECT id, next_attempt_at AS due FROM messages
		WHERE status = 'queued' AND next_attempt_at <= ?3 ORDER BY next_attempt_at LIMIT ?4)
	UNION ALL
	SELECT * FROM (SELECT id, next_attempt_at AS due FROM messages
		WHERE status = 'deferred' AND next_attempt_at <= ?3 ORDER BY next_attempt_at LIMIT ?4)
	UNION ALL
	SELECT * FROM (SELECT id, lease_expires_at AS due FROM messages
		WHERE status = 'sending' AND lease_expires_at <= ?3 ORDER BY lease_expires_at LIMIT ?4)`

// Claim leases up to limit due messages to owner in one statement, so two
// claimers can never take the same message, and returns them with their
// open recipients. It runs on the single writer connection.
func (s *Store) Claim(ctx context.Context, owner string, limit int, lease time.Duration) ([]queue.Claimed, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, nil
	}
	tx, done, err := s.beginRelaxed(ctx)
	if err != nil {
		return nil, s.wrap("claim", err)
	}
	defer done()
	defer rollback(tx)
	now := time.Now()
	until := now.Add(lease).UnixMilli()
	rows, err := tx.QueryContext(ctx, `UPDATE messages
		SET status = 'sending', lease_owner = ?1, lease_expires_at = ?2,
			attempts = attempts + 1, updated_at = ?3
		WHERE id IN (SELECT id FROM (`+dueQuery+`) ORDER BY due LIMIT ?4)
		RETURNING `+msgCols, owner, until, now.UnixMilli(), limit)
	if err != nil {
		return nil, s.wrap("claim", err)
	}
	var out []queue.Claimed
	for rows.Next() {
		m, err := scanMessage(rows)
		if err != nil {
			rows.Close()
			return nil, s.wrap("claim", err)
		}
		out = append(out, queue.Claimed{Message: m, LeaseExpiresAt: time.UnixMilli(until)})
	}
	if err := rows.Err(); err != nil {
		return nil, s.wrap("claim", err)
	}
	ids := make([]string, len(out))
	for i := range out {
		ids[i] = out[i].ID
	}
	rcpts, err := loadRecipients(ctx, tx, ids, true)
	if err != nil {
		return nil, s.wrap("claim", err)
	}
	for i := range out {
		out[i].Recipients = rcpts[out[i].ID]
	}
	if err := s.commit(tx); err != nil {
		return nil, s.wrap("claim", err)
	}
	return out, nil
}

// Renew extends owner's leases on ids to now+lease; ids owner no longer
// holds are left alone.
func (s *Store) Renew(ctx context.Context, owner string, ids []string, lease time.Duration) error {
	if err := s.check(); err != nil {
		return err
	}
	if len(ids) == 0 {
		return nil
	}
	now := time.Now()
	args := []any{now.Add(lease).UnixMilli(), now.UnixMilli(), owner}
	_, err := s.wdb.ExecContext(ctx, `UPDATE messages
		SET lease_expires_at = ?, updated_at = ?
		WHERE lease_owner = ? AND status = 'sending' AND id IN (`+placeholders(len(ids))+`)`,
		append(args, anySlice(ids)...)...)
	return s.wrap("renew", err)
}

// Release hands owner's leases on ids back unfinished: each message is due
// at once, with the status its recipients give it. The claim's attempt is
// not counted, since no attempt was made.
func (s *Store) Release(ctx context.Context, owner string, ids []string) error {
	if err := s.check(); err != nil {
		return err
	}
	if len(ids) == 0 {
		return nil
	}
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return s.wrap("release", err)
	}
	defer rollback(tx)
	now := time.Now().UnixMilli()
	for _, id := range ids {
		var held bool
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM messages
			WHERE id = ? AND lease_owner = ? AND status = 'sending'`, id, owner).Scan(&held)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return s.wrap("release", err)
		}
		status, err := summarize(ctx, tx, id)
		if err != nil {
			return s.wrap("release", err)
		}
		_, err = tx.ExecContext(ctx, `UPDATE messages SET status = ?, next_attempt_at = ?,
			lease_owner = '', lease_expires_at = 0, updated_at = ?,
			attempts = MAX(attempts - 1, 0) WHERE id = ?`, string(status), now, now, id)
		if err != nil {
			return s.wrap("release", err)
		}
	}
	return s.wrap("release", s.commit(tx))
}

// NextDue is the earliest of the next attempt of waiting messages and the
// lease expiry of messages being sent (an expired lease makes a message
// due again). The time may be in the past: something is due now.
func (s *Store) NextDue(ctx context.Context) (time.Time, bool, error) {
	if err := s.check(); err != nil {
		return time.Time{}, false, err
	}
	var t sql.NullInt64
	err := s.rdb.QueryRowContext(ctx, `SELECT MIN(t) FROM (
		SELECT MIN(next_attempt_at) AS t FROM messages WHERE status = 'queued'
		UNION ALL
		SELECT MIN(next_attempt_at) FROM messages WHERE status = 'deferred'
		UNION ALL
		SELECT MIN(lease_expires_at) FROM messages WHERE status = 'sending')`).Scan(&t)
	if err != nil {
		return time.Time{}, false, s.wrap("next due", err)
	}
	if !t.Valid {
		return time.Time{}, false, nil
	}
	return time.UnixMilli(t.Int64), true, nil
}

// summarize derives a message's status from all its recipients, within tx.
func summarize(ctx context.Context, tx *sql.Tx, id string) (queue.Status, error) {
	rows, err := tx.QueryContext(ctx, `SELECT status FROM recipients WHERE message_id = ?`, id)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	var rs []queue.RecipientStatus
	for rows.Next() {
		var st string
		if err := rows.Scan(&st); err != nil {
			return "", err
		}
		rs = append(rs, queue.RecipientStatus(st))
	}
	if err := rows.Err(); err != nil {
		return "", err
	}
	return queue.Summarize(rs), nil
}

// querier is what *sql.Tx and *sql.DB share for reading.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// loadRecipients returns the recipients of ids keyed by message id, in
// envelope order; openOnly keeps those still pending or deferred.
func loadRecipients(ctx context.Context, q querier, ids []string, openOnly bool) (map[string][]queue.Recipient, error) {
	out := make(map[string][]queue.Recipient, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	query := `SELECT message_id, address, status, attempts, code, enhanced_code,
		text, last_attempt_at FROM recipients
		WHERE message_id IN (` + placeholders(len(ids)) + `)`
	if openOnly {
		query += ` AND status IN ('pending', 'deferred')`
	}
	rows, err := q.QueryContext(ctx, query+` ORDER BY message_id, idx`, anySlice(ids)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var id, status string
		var last int64
		var r queue.Recipient
		if err := rows.Scan(&id, &r.Address, &status, &r.Attempts, &r.Code,
			&r.EnhancedCode, &r.Text, &last); err != nil {
			return nil, err
		}
		r.Status, r.LastAttemptAt = queue.RecipientStatus(status), fromMS(last)
		out[id] = append(out[id], r)
	}
	return out, rows.Err()
}

// scanner is a *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

// scanMessage reads the msgCols of one row.
func scanMessage(sc scanner) (queue.Message, error) {
	var m queue.Message
	var status, tags string
	var created, updated, next, expires int64
	err := sc.Scan(&m.ID, &m.From, &m.Subject, &status, &m.Size, &m.Attempts,
		&m.IdempotencyKey, &tags, &created, &updated, &next, &expires)
	if err != nil {
		return m, err
	}
	m.Status = queue.Status(status)
	m.CreatedAt, m.UpdatedAt = fromMS(created), fromMS(updated)
	m.NextAttemptAt, m.ExpiresAt = fromMS(next), fromMS(expires)
	if m.Tags, err = decodeTags(tags); err != nil {
		return m, fmt.Errorf("message %s: %w", m.ID, err)
	}
	return m, nil
}

// placeholders returns "?, ?, …" with n marks.
func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

func anySlice(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

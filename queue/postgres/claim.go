package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/outbox-mail/outbox/queue"
)

// msgCols are the outbox_messages columns scanMessage reads, in order.
const msgCols = `id, sender, subject, status, size, attempts,
	coalesce(idempotency_key, ''), tags::text, created_at, updated_at,
	next_attempt_at, expires_at`

// dueQuery lists the oldest due messages ($3 is the limit), locking them
// and skipping rows another claimer has locked. Each status is its own
// bounded index range, so a claim costs the same with a backlog of a
// million as with ten: an OR across statuses would make PostgreSQL sort
// every due row on every claim. Due means by the database's clock.
const dueQuery = `
	SELECT * FROM (SELECT id, next_attempt_at AS due FROM outbox_messages
		WHERE status = 'queued' AND next_attempt_at <= now()
		ORDER BY next_attempt_at LIMIT $3 FOR UPDATE SKIP LOCKED) q1
	UNION ALL
	SELECT * FROM (SELECT id, next_attempt_at FROM outbox_messages
		WHERE status = 'deferred' AND next_attempt_at <= now()
		ORDER BY next_attempt_at LIMIT $3 FOR UPDATE SKIP LOCKED) q2
	UNION ALL
	SELECT * FROM (SELECT id, lease_expires_at FROM outbox_messages
		WHERE status = 'sending' AND lease_expires_at <= now()
		ORDER BY lease_expires_at LIMIT $3 FOR UPDATE SKIP LOCKED) q3`

// Claim leases up to limit due messages to owner in one statement, so two
// claimers, on any nodes, can never take the same message, and returns
// them with their open recipients. The lease runs until the database's
// now() plus lease.
func (s *Store) Claim(ctx context.Context, owner string, limit int, lease time.Duration) ([]queue.Claimed, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, nil
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, s.wrap("claim", err)
	}
	defer rollback(tx)
	rows, err := tx.Query(ctx, `UPDATE outbox_messages
		SET status = 'sending', lease_owner = $1, lease_expires_at = now() + $2::interval,
			attempts = attempts + 1, updated_at = now()
		WHERE id IN (SELECT id FROM (`+dueQuery+`) d ORDER BY due LIMIT $3)
		RETURNING lease_expires_at, `+msgCols, owner, lease, limit)
	if err != nil {
		return nil, s.wrap("claim", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (queue.Claimed, error) {
		var c queue.Claimed
		m, err := scanMessage(row, &c.LeaseExpiresAt)
		c.Message = m
		return c, err
	})
	if err != nil {
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
	if err := tx.Commit(ctx); err != nil {
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
	_, err := s.pool.Exec(ctx, `UPDATE outbox_messages
		SET lease_expires_at = now() + $1::interval, updated_at = now()
		WHERE lease_owner = $2 AND status = 'sending' AND id = ANY($3)`, lease, owner, ids)
	return s.wrap("renew", err)
}

// Release hands owner's leases on ids back unfinished: each message is due
// at once, with the status its recipients give it, and watchers on every
// node are woken. The claim's attempt is not counted, since no attempt was
// made.
func (s *Store) Release(ctx context.Context, owner string, ids []string) error {
	if err := s.check(); err != nil {
		return err
	}
	if len(ids) == 0 {
		return nil
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return s.wrap("release", err)
	}
	defer rollback(tx)
	heldAttempts, err := lockHeld(ctx, tx, owner, ids)
	if err != nil || len(heldAttempts) == 0 {
		return s.wrap("release", err)
	}
	held := slices.Sorted(maps.Keys(heldAttempts))
	statuses, err := summarize(ctx, tx, held)
	if err != nil {
		return s.wrap("release", err)
	}
	var b pgx.Batch
	for _, id := range held {
		b.Queue(`UPDATE outbox_messages SET status = $1, next_attempt_at = now(),
			lease_owner = '', lease_expires_at = NULL, updated_at = now(),
			attempts = greatest(attempts - 1, 0) WHERE id = $2`, string(statuses[id]), id)
	}
	b.Queue(notifySQL)
	if err := tx.SendBatch(ctx, &b).Close(); err != nil {
		return s.wrap("release", err)
	}
	return s.wrap("release", tx.Commit(ctx))
}

// lockHeld locks those of ids that owner holds under a lease, in id order
// so that concurrent callers lock rows in the same order and cannot
// deadlock, and returns them with their attempt counts (the fence
// Complete checks).
func lockHeld(ctx context.Context, tx pgx.Tx, owner string, ids []string) (map[string]int, error) {
	rows, err := tx.Query(ctx, `SELECT id, attempts FROM outbox_messages
		WHERE id = ANY($1) AND lease_owner = $2 AND status = 'sending'
		ORDER BY id FOR UPDATE`, ids, owner)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	held := make(map[string]int, len(ids))
	for rows.Next() {
		var id string
		var attempts int
		if err := rows.Scan(&id, &attempts); err != nil {
			return nil, err
		}
		held[id] = attempts
	}
	return held, rows.Err()
}

// NextDue is the earliest of the next attempt of waiting messages and the
// lease expiry of messages being sent (an expired lease makes a message
// due again). The time may be in the past: something is due now.
func (s *Store) NextDue(ctx context.Context) (time.Time, bool, error) {
	if err := s.check(); err != nil {
		return time.Time{}, false, err
	}
	var t *time.Time
	err := s.pool.QueryRow(ctx, `SELECT least(
		(SELECT min(next_attempt_at) FROM outbox_messages WHERE status = 'queued'),
		(SELECT min(next_attempt_at) FROM outbox_messages WHERE status = 'deferred'),
		(SELECT min(lease_expires_at) FROM outbox_messages WHERE status = 'sending'))`).Scan(&t)
	if err != nil {
		return time.Time{}, false, s.wrap("next due", err)
	}
	if t == nil {
		return time.Time{}, false, nil
	}
	return *t, true, nil
}

// summarize derives the status of each message of ids from all its
// recipients, within tx.
func summarize(ctx context.Context, tx pgx.Tx, ids []string) (map[string]queue.Status, error) {
	rows, err := tx.Query(ctx, `SELECT message_id, status FROM outbox_recipients
		WHERE message_id = ANY($1)`, ids)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	rs := make(map[string][]queue.RecipientStatus, len(ids))
	for rows.Next() {
		var id, st string
		if err := rows.Scan(&id, &st); err != nil {
			return nil, err
		}
		rs[id] = append(rs[id], queue.RecipientStatus(st))
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	out := make(map[string]queue.Status, len(ids))
	for _, id := range ids {
		out[id] = queue.Summarize(rs[id])
	}
	return out, nil
}

// querier is what pgx.Tx, *pgx.Conn and *pgxpool.Pool share for reading.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// loadRecipients returns the recipients of ids keyed by message id, in
// envelope order; openOnly keeps those still pending or deferred.
func loadRecipients(ctx context.Context, q querier, ids []string, openOnly bool) (map[string][]queue.Recipient, error) {
	out := make(map[string][]queue.Recipient, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	query := `SELECT message_id, address, status, attempts, code, enhanced_code,
		text, last_attempt_at FROM outbox_recipients WHERE message_id = ANY($1)`
	if openOnly {
		query += ` AND status IN ('pending', 'deferred')`
	}
	rows, err := q.Query(ctx, query+` ORDER BY message_id, idx`, ids)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var id, status string
		var last *time.Time
		var r queue.Recipient
		if err := rows.Scan(&id, &r.Address, &status, &r.Attempts, &r.Code,
			&r.EnhancedCode, &r.Text, &last); err != nil {
			return nil, err
		}
		r.Status, r.LastAttemptAt = queue.RecipientStatus(status), deref(last)
		out[id] = append(out[id], r)
	}
	return out, rows.Err()
}

// scanMessage reads the msgCols of one row, after the extra destinations
// a query puts first.
func scanMessage(row pgx.Row, extra ...any) (queue.Message, error) {
	var m queue.Message
	var status, tags string
	var next *time.Time
	dst := append(extra, &m.ID, &m.From, &m.Subject, &status, &m.Size, &m.Attempts,
		&m.IdempotencyKey, &tags, &m.CreatedAt, &m.UpdatedAt, &next, &m.ExpiresAt)
	if err := row.Scan(dst...); err != nil {
		return m, err
	}
	m.Status, m.NextAttemptAt = queue.Status(status), deref(next)
	if tags != "" && tags != "{}" {
		if err := json.Unmarshal([]byte(tags), &m.Tags); err != nil {
			return m, fmt.Errorf("message %s: tags: %w", m.ID, err)
		}
	}
	return m, nil
}

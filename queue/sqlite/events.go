package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/outbox-mail/outbox/queue"
)

// insertEvents records webhook events within tx, due at once.
func insertEvents(ctx context.Context, tx *sql.Tx, events []queue.NewEvent, now time.Time) error {
	if len(events) == 0 {
		return nil
	}
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO events
		(id, endpoint, type, message_id, payload, created_at, next_attempt_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	defer stmt.Close()
	ms := now.UnixMilli()
	for i, e := range events {
		if e.Endpoint == "" || e.Type == "" {
			return fmt.Errorf("%w: events[%d] needs an endpoint and a type", queue.ErrInvalid, i)
		}
		id, err := uuid.NewV7()
		if err != nil {
			return err
		}
		if _, err := stmt.ExecContext(ctx, id.String(), e.Endpoint, e.Type, e.MessageID, e.Payload, ms, ms); err != nil {
			return err
		}
	}
	return nil
}

// AddEvents durably records events not tied to a delivery result.
func (s *Store) AddEvents(ctx context.Context, events []queue.NewEvent) error {
	if err := s.check(); err != nil {
		return err
	}
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return s.wrap("add events", err)
	}
	defer rollback(tx)
	if err := insertEvents(ctx, tx, events, time.Now()); err != nil {
		return s.wrap("add events", err)
	}
	return s.wrap("add events", s.commit(tx))
}

// ClaimEvents leases up to limit due events to owner, oldest first. Like
// message claims, it skips the fsync: a lost claim only makes an event due
// again.
func (s *Store) ClaimEvents(ctx context.Context, owner string, limit int, lease time.Duration) ([]queue.Event, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, nil
	}
	tx, done, err := s.beginRelaxed(ctx)
	if err != nil {
		return nil, s.wrap("claim events", err)
	}
	defer done()
	defer rollback(tx)
	now := time.Now()
	rows, err := tx.QueryContext(ctx, `UPDATE events
		SET lease_owner = ?1, lease_expires_at = ?2, attempts = attempts + 1
		WHERE id IN (SELECT id FROM events
			WHERE status = 'pending' AND next_attempt_at <= ?3 AND lease_expires_at <= ?3
			ORDER BY next_attempt_at LIMIT ?4)
		RETURNING id, endpoint, type, message_id, payload, attempts, created_at, next_attempt_at, last_error`,
		owner, now.Add(lease).UnixMilli(), now.UnixMilli(), limit)
	if err != nil {
		return nil, s.wrap("claim events", err)
	}
	var out []queue.Event
	for rows.Next() {
		var e queue.Event
		var created, next int64
		if err := rows.Scan(&e.ID, &e.Endpoint, &e.Type, &e.MessageID, &e.Payload,
			&e.Attempts, &created, &next, &e.LastError); err != nil {
			rows.Close()
			return nil, s.wrap("claim events", err)
		}
		e.CreatedAt, e.NextAttemptAt = time.UnixMilli(created), time.UnixMilli(next)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, s.wrap("claim events", err)
	}
	return out, s.wrap("claim events", s.commit(tx))
}

// FinishEvent records the outcome of posting an event owner holds.
func (s *Store) FinishEvent(ctx context.Context, owner, id string, delivered bool, next time.Time, lastError string) error {
	if err := s.check(); err != nil {
		return err
	}
	var res sql.Result
	var err error
	switch {
	case delivered:
		res, err = s.wdb.ExecContext(ctx, `DELETE FROM events WHERE id = ? AND lease_owner = ?`, id, owner)
	default:
		status, nextMS := "pending", next.UnixMilli()
		if next.IsZero() {
			status, nextMS = "abandoned", 0
		}
		res, err = s.wdb.ExecContext(ctx, `UPDATE events SET status = ?, next_attempt_at = ?,
			last_error = ?, lease_owner = '', lease_expires_at = 0
			WHERE id = ? AND lease_owner = ?`, status, nextMS, lastError, id, owner)
	}
	if err != nil {
		return s.wrap("finish event", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("sqlite: finish event %s: %w", id, queue.ErrLeaseLost)
	}
	s.wrote()
	return nil
}

// NextEventDue returns the earliest time a pending event becomes claimable.
func (s *Store) NextEventDue(ctx context.Context) (time.Time, bool, error) {
	if err := s.check(); err != nil {
		return time.Time{}, false, err
	}
	var t sql.NullInt64
	err := s.rdb.QueryRowContext(ctx, `SELECT MIN(MAX(next_attempt_at, lease_expires_at))
		FROM events WHERE status = 'pending'`).Scan(&t)
	if err != nil || !t.Valid {
		return time.Time{}, false, s.wrap("next event due", err)
	}
	return time.UnixMilli(t.Int64), true, nil
}

// purgeBatch bounds the messages one purge transaction deletes, so the
// single writer is never held for long.
const purgeBatch = 500

// Purge deletes final messages last updated before cutoff, in batches, and
// abandoned events created before it.
func (s *Store) Purge(ctx context.Context, cutoff time.Time) (int, error) {
	if err := s.check(); err != nil {
		return 0, err
	}
	total := 0
	for {
		res, err := s.wdb.ExecContext(ctx, `DELETE FROM messages WHERE id IN (
			SELECT id FROM messages WHERE status IN ('delivered', 'partial', 'failed', 'cancelled')
				AND updated_at < ? LIMIT ?)`, cutoff.UnixMilli(), purgeBatch)
		if err != nil {
			return total, s.wrap("purge", err)
		}
		n, _ := res.RowsAffected()
		total += int(n)
		if n < purgeBatch {
			break
		}
		s.wrote()
	}
	_, err := s.wdb.ExecContext(ctx, `DELETE FROM events WHERE status = 'abandoned' AND created_at < ?`,
		cutoff.UnixMilli())
	s.wrote()
	return total, s.wrap("purge", err)
}

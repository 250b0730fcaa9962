package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/outbox-mail/outbox/queue"
)

// checkEvents rejects events that cannot be posted or stored, naming the
// field; prefix names where they came from.
func checkEvents(prefix string, events []queue.NewEvent) error {
	for i, e := range events {
		field := fmt.Sprintf("%s[%d]", prefix, i)
		if e.Endpoint == "" || e.Type == "" {
			return fmt.Errorf("%w: %s needs an endpoint and a type", queue.ErrInvalid, field)
		}
		err := errors.Join(checkText(field+".Endpoint", e.Endpoint, true),
			checkText(field+".Type", e.Type, true), checkText(field+".MessageID", e.MessageID, true))
		if err != nil {
			return err
		}
	}
	return nil
}

// queueEvent adds to b the insertion of one event, due at once.
func queueEvent(b *pgx.Batch, e queue.NewEvent) error {
	id, err := uuid.NewV7()
	if err != nil {
		return err
	}
	payload := e.Payload
	if payload == nil {
		payload = []byte{} // the column is NOT NULL; an empty body is still a body
	}
	b.Queue(`INSERT INTO outbox_events (id, endpoint, type, message_id, payload,
		status, created_at, next_attempt_at) VALUES ($1, $2, $3, $4, $5, 'pending', now(), now())`,
		id.String(), e.Endpoint, e.Type, e.MessageID, payload)
	return nil
}

// AddEvents durably records events not tied to a delivery result, in one
// transaction: all or none.
func (s *Store) AddEvents(ctx context.Context, events []queue.NewEvent) error {
	if err := s.check(); err != nil {
		return err
	}
	if err := checkEvents("events", events); err != nil {
		return err
	}
	if len(events) == 0 {
		return nil
	}
	var b pgx.Batch
	for _, e := range events {
		if err := queueEvent(&b, e); err != nil {
			return s.wrap("add events", err)
		}
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return s.wrap("add events", err)
	}
	defer rollback(tx)
	if err := tx.SendBatch(ctx, &b).Close(); err != nil {
		return s.wrap("add events", err)
	}
	return s.wrap("add events", tx.Commit(ctx))
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

// ClaimEvents leases up to limit due events to owner until the database's
// now() plus lease, longest due first; an event whose lease lapsed is due
// again. Each claim counts as an attempt.
func (s *Store) ClaimEvents(ctx context.Context, owner string, limit int, lease time.Duration) ([]queue.Event, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, `UPDATE outbox_events e
		SET status = 'sending', lease_owner = $1, lease_expires_at = now() + $2::interval,
			attempts = attempts + 1
		FROM (SELECT id, due FROM (`+dueEventsQuery+`) d ORDER BY due LIMIT $3) d
		WHERE e.id = d.id
		RETURNING e.id, endpoint, type, message_id, payload, attempts, created_at,
			next_attempt_at, last_error`, owner, lease, limit)
	if err != nil {
		return nil, s.wrap("claim events", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (queue.Event, error) {
		var e queue.Event
		err := row.Scan(&e.ID, &e.Endpoint, &e.Type, &e.MessageID, &e.Payload,
			&e.Attempts, &e.CreatedAt, &e.NextAttemptAt, &e.LastError)
		return e, err
	})
	if err != nil {
		return nil, s.wrap("claim events", err)
	}
	sortEvents(out)
	return out, nil
}

// sortEvents orders events by next attempt (RETURNING has no order).
func sortEvents(es []queue.Event) {
	for i := 1; i < len(es); i++ {
		for j := i; j > 0 && es[j].NextAttemptAt.Before(es[j-1].NextAttemptAt); j-- {
			es[j], es[j-1] = es[j-1], es[j]
		}
	}
}

// FinishEvent records the outcome of posting an event owner holds:
// delivered removes it; otherwise it is due again at next with lastError
// kept, or abandoned for good (kept until Purge) when next is zero. An
// event owner no longer holds gives ErrLeaseLost and changes nothing.
func (s *Store) FinishEvent(ctx context.Context, owner, id string, delivered bool, next time.Time, lastError string) error {
	if err := s.check(); err != nil {
		return err
	}
	if err := checkText("lastError", lastError, false); err != nil {
		return err
	}
	var n int64
	if delivered {
		tag, err := s.pool.Exec(ctx, `DELETE FROM outbox_events
			WHERE id = $1 AND lease_owner = $2 AND status = 'sending'`, id, owner)
		if err != nil {
			return s.wrap("finish event", err)
		}
		n = tag.RowsAffected()
	} else {
		status := "pending"
		if next.IsZero() {
			status = "abandoned"
		}
		tag, err := s.pool.Exec(ctx, `UPDATE outbox_events SET status = $1, next_attempt_at = $2,
			last_error = $3, lease_owner = '', lease_expires_at = NULL
			WHERE id = $4 AND lease_owner = $5 AND status = 'sending'`,
			status, timeOrNil(next), lastError, id, owner)
		if err != nil {
			return s.wrap("finish event", err)
		}
		n = tag.RowsAffected()
	}
	if n == 0 {
		return fmt.Errorf("postgres: finish event %s: %w", id, queue.ErrLeaseLost)
	}
	return nil
}

// NextEventDue returns the earliest time an event becomes claimable: the
// next attempt of a pending event or the lease expiry of one being posted.
func (s *Store) NextEventDue(ctx context.Context) (time.Time, bool, error) {
	if err := s.check(); err != nil {
		return time.Time{}, false, err
	}
	var t *time.Time
	err := s.pool.QueryRow(ctx, `SELECT least(
		(SELECT min(next_attempt_at) FROM outbox_events WHERE status = 'pending'),
		(SELECT min(lease_expires_at) FROM outbox_events WHERE status = 'sending'))`).Scan(&t)
	if err != nil {
		return time.Time{}, false, s.wrap("next event due", err)
	}
	if t == nil {
		return time.Time{}, false, nil
	}
	return *t, true, nil
}

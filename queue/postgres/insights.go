package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/outbox-mail/outbox/queue"
	"github.com/outbox-mail/outbox/queue/internal/ids"
)

// The insight queries feed the web dashboard's overview, as the SQLite
// store's do: each reads a time window through an index.

// Activity counts, per bucket of width bucket from since to now, the
// messages created ("created") and those that became final, under their
// final status. Slot i covers [since+i*bucket, since+(i+1)*bucket).
func (s *Store) Activity(ctx context.Context, since time.Time, bucket time.Duration) (map[string][]int64, error) {
	if bucket < time.Millisecond {
		return nil, fmt.Errorf("%w: activity bucket %v is too small", queue.ErrInvalid, bucket)
	}
	n := int(time.Since(since)/bucket) + 1
	if n <= 0 || n > 10000 {
		return nil, fmt.Errorf("%w: activity window of %d buckets", queue.ErrInvalid, n)
	}
	out := map[string][]int64{"created": make([]int64, n)}
	for _, st := range []string{"delivered", "partial", "failed", "cancelled"} {
		out[st] = make([]int64, n)
	}
	width := bucket.Seconds()
	// Final messages through the outbox_messages_final index; created ones
	// through the primary key, since UUIDv7 ids start with their time.
	rows, err := s.d.pool.Query(ctx, `
		SELECT status, floor(extract(epoch FROM updated_at - $1) / $2)::bigint AS b, count(*)
		FROM outbox_messages WHERE status IN ('delivered', 'partial', 'failed', 'cancelled')
			AND updated_at >= $1 GROUP BY status, b
		UNION ALL
		SELECT 'created', floor(extract(epoch FROM created_at - $1) / $2)::bigint AS b, count(*)
		FROM outbox_messages WHERE id >= $3 AND created_at >= $1 GROUP BY b`,
		since, width, ids.Floor(since))
	if err != nil {
		return nil, wrap("activity", err)
	}
	defer rows.Close()
	for rows.Next() {
		var series string
		var b, count int64
		if err := rows.Scan(&series, &b, &count); err != nil {
			return nil, wrap("activity", err)
		}
		if sl, ok := out[series]; ok && b >= 0 && b < int64(len(sl)) {
			sl[b] += count
		}
	}
	return out, wrap("activity", rows.Err())
}

// RouteHealth returns, per route used since then, how many attempts
// finished and how many of them did not deliver every recipient: an
// attempt succeeded when it is its message's last and the message is
// delivered.
func (s *Store) RouteHealth(ctx context.Context, since time.Time) (attempts, failures map[string]int64, err error) {
	rows, err := s.d.pool.Query(ctx, `
		SELECT a.route, count(*), count(*) FILTER (WHERE NOT (m.status = 'delivered'
			AND a.number = (SELECT max(number) FROM outbox_attempts l WHERE l.message_id = m.id)))
		FROM (SELECT id, status FROM outbox_messages
				WHERE status IN ('delivered', 'partial', 'failed', 'cancelled') AND updated_at >= $1
				UNION ALL
				SELECT id, status FROM outbox_messages
				WHERE status IN ('queued', 'sending', 'deferred') AND updated_at >= $1) m
			JOIN outbox_attempts a ON a.message_id = m.id
		WHERE a.finished_at >= $1
		GROUP BY a.route ORDER BY a.route`, since)
	if err != nil {
		return nil, nil, wrap("route health", err)
	}
	defer rows.Close()
	attempts, failures = map[string]int64{}, map[string]int64{}
	for rows.Next() {
		var route string
		var n, bad int64
		if err := rows.Scan(&route, &n, &bad); err != nil {
			return nil, nil, wrap("route health", err)
		}
		attempts[route], failures[route] = n, bad
	}
	return attempts, failures, wrap("route health", rows.Err())
}

// OldestWaiting returns the oldest message not yet final, or nil.
func (s *Store) OldestWaiting(ctx context.Context) (*queue.Message, error) {
	// One index seek per status on (status, id), rather than a scan of
	// all three.
	var id *string // least() of three NULLs is NULL: nothing waits
	err := s.d.pool.QueryRow(ctx, `SELECT least(
		(SELECT min(id) FROM outbox_messages WHERE status = 'queued'),
		(SELECT min(id) FROM outbox_messages WHERE status = 'sending'),
		(SELECT min(id) FROM outbox_messages WHERE status = 'deferred'))`).Scan(&id)
	if err != nil {
		return nil, wrap("oldest waiting", err)
	}
	if id == nil {
		return nil, nil
	}
	m, err := s.Get(ctx, *id)
	if errors.Is(err, queue.ErrNotFound) {
		return nil, nil
	}
	return m, err
}

// wrap names an insight query in its error.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("postgres: %s: %w", op, err)
}

package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/outbox-mail/outbox/queue"
	"github.com/outbox-mail/outbox/queue/internal/ids"
)

// The insight queries below feed the web dashboard's overview. Each reads
// only a time window through an index, so they stay cheap however many
// finished messages the store keeps.

// finalStatuses are the statuses Activity reports finished messages under.
var finalStatuses = []queue.Status{queue.StatusDelivered, queue.StatusPartial,
	queue.StatusFailed, queue.StatusCancelled}

// Activity counts, per bucket of width bucket from since to now, the
// messages created ("created") and the messages that became final, under
// their final status ("delivered", "partial", "failed", "cancelled"). Slot i
// of each series covers [since+i*bucket, since+(i+1)*bucket).
func (s *Store) Activity(ctx context.Context, since time.Time, bucket time.Duration) (map[string][]int64, error) {
	if bucket < time.Millisecond {
		return nil, fmt.Errorf("%w: activity bucket %v is too small", queue.ErrInvalid, bucket)
	}
	n := int(time.Since(since)/bucket) + 1
	if n <= 0 || n > 10000 {
		return nil, fmt.Errorf("%w: activity window of %d buckets", queue.ErrInvalid, n)
	}
	out := map[string][]int64{"created": make([]int64, n)}
	for _, st := range finalStatuses {
		out[string(st)] = make([]int64, n)
	}
	start, width := since.UnixMilli(), bucket.Milliseconds()
	// Final messages through the messages_final partial index, whose
	// condition the query names exactly.
	rows, err := s.d.rdb.QueryContext(ctx, `SELECT status, (updated_at - ?1) / ?2 AS b, COUNT(*)
		FROM messages INDEXED BY messages_final WHERE status IN ('delivered', 'partial', 'failed', 'cancelled')
		AND updated_at >= ?1 GROUP BY status, b`, start, width)
	if err != nil {
		return nil, wrap("activity", err)
	}
	if err := addBuckets(rows, out); err != nil {
		return nil, wrap("activity", err)
	}
	// Created messages: ids are UUIDv7, whose text starts with the creation
	// time in hex, so a primary-key range finds the window without an index
	// on created_at.
	rows, err = s.d.rdb.QueryContext(ctx, `SELECT 'created', (created_at - ?1) / ?2 AS b, COUNT(*)
		FROM messages WHERE id >= ?3 AND created_at >= ?1 GROUP BY b`, start, width, ids.Floor(since))
	if err != nil {
		return nil, wrap("activity", err)
	}
	return out, wrap("activity", addBuckets(rows, out))
}

// addBuckets adds rows of (series, bucket, count) into out, ignoring
// buckets past the window (a clock step, or rows written during the query).
func addBuckets(rows *sql.Rows, out map[string][]int64) error {
	defer rows.Close()
	for rows.Next() {
		var series string
		var b, count int64
		if err := rows.Scan(&series, &b, &count); err != nil {
			return err
		}
		if s, ok := out[series]; ok && b >= 0 && b < int64(len(s)) {
			s[b] += count
		}
	}
	return rows.Err()
}

// RouteHealth returns, for each route used since then, how many attempts
// finished and how many of them did not deliver every recipient. An attempt
// succeeded when it is its message's last and the message is delivered; any
// earlier attempt left something to retry.
func (s *Store) RouteHealth(ctx context.Context, since time.Time) (attempts, failures map[string]int64, err error) {
	// An attempt that finished since then updated its message since then:
	// finished mail comes through the messages_final index, and mail still
	// waiting (never much of it) through (status, id).
	rows, err := s.d.rdb.QueryContext(ctx, `SELECT a.route, COUNT(*),
		SUM(CASE WHEN m.status = 'delivered' AND a.number =
			(SELECT MAX(number) FROM attempts l WHERE l.message_id = m.id) THEN 0 ELSE 1 END)
		FROM (SELECT id, status FROM messages INDEXED BY messages_final
			WHERE status IN ('delivered', 'partial', 'failed', 'cancelled') AND updated_at >= ?1
			UNION ALL
			SELECT id, status FROM messages WHERE status IN ('queued', 'sending', 'deferred') AND updated_at >= ?1) m
		JOIN attempts a ON a.message_id = m.id
		WHERE a.finished_at >= ?1
		GROUP BY a.route ORDER BY a.route`, since.UnixMilli())
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

// OldestWaiting returns the oldest message not yet final (queued, sending
// or deferred), or nil when nothing waits.
func (s *Store) OldestWaiting(ctx context.Context) (*queue.Message, error) {
	// MIN per status is one index seek on messages_status_id each; a single
	// query over the three statuses would scan them.
	var oldest string
	for _, st := range []queue.Status{queue.StatusQueued, queue.StatusSending, queue.StatusDeferred} {
		var id sql.NullString
		err := s.d.rdb.QueryRowContext(ctx, `SELECT MIN(id) FROM messages WHERE status = ?`, string(st)).Scan(&id)
		if err != nil {
			return nil, wrap("oldest waiting", err)
		}
		if id.Valid && (oldest == "" || id.String < oldest) {
			oldest = id.String
		}
	}
	if oldest == "" {
		return nil, nil
	}
	m, err := s.Get(ctx, oldest)
	if errors.Is(err, queue.ErrNotFound) {
		// Purged or finished between the two reads: nothing to show.
		return nil, nil
	}
	return m, err
}

// wrap names an insight query in its error.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("sqlite: %s: %w", op, err)
}

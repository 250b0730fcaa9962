package postgres

import (
	"context"
	"errors"
	"time"
)

// purgeBatch bounds the rows one purge transaction deletes, so that no
// purge holds many row locks or a long transaction.
const purgeBatch = 500

// ErrHousekeepBusy is returned by Housekeep when another process (or
// another Housekeep call) is already housekeeping this schema. Callers on a
// timer can ignore it: the other node does the work.
var ErrHousekeepBusy = errors.New("postgres: housekeeping is running elsewhere")

// Purge deletes final messages last updated before cutoff (by the caller's
// clock) with their recipients, attempts and bodies (by ON DELETE
// CASCADE), then abandoned events created before it, each in batches of
// purgeBatch rows per transaction. Rows another transaction has locked are
// skipped and left for the next run. It returns the messages deleted.
func (s *Store) Purge(ctx context.Context, cutoff time.Time) (int, error) {
	if err := s.check(); err != nil {
		return 0, err
	}
	total := 0
	for {
		tag, err := s.pool.Exec(ctx, `DELETE FROM outbox_messages WHERE id IN (
			SELECT id FROM outbox_messages
			WHERE status IN ('delivered', 'partial', 'failed', 'cancelled') AND updated_at < $1
			LIMIT $2 FOR UPDATE SKIP LOCKED)`, cutoff, purgeBatch)
		if err != nil {
			return total, s.wrap("purge", err)
		}
		total += int(tag.RowsAffected())
		if tag.RowsAffected() < purgeBatch {
			break
		}
	}
	for {
		tag, err := s.pool.Exec(ctx, `DELETE FROM outbox_events WHERE id IN (
			SELECT id FROM outbox_events WHERE status = 'abandoned' AND created_at < $1
			LIMIT $2 FOR UPDATE SKIP LOCKED)`, cutoff, purgeBatch)
		if err != nil {
			return total, s.wrap("purge", err)
		}
		if tag.RowsAffected() < purgeBatch {
			return total, nil
		}
	}
}

// Housekeep runs Purge with cutoff now-retention, on one node at a time:
// it first takes a session-level advisory lock (pg_try_advisory_lock,
// keyed by the schema) on a connection it holds for the run, and returns
// ErrHousekeepBusy at once if another node holds it. The purge itself runs
// in its own short transactions on other connections; the lock only keeps
// two nodes from doing the same deletes. If the process dies, its session
// ends and PostgreSQL releases the lock. Call it from a timer on every
// node; whichever gets the lock does the work.
func (s *Store) Housekeep(ctx context.Context, retention time.Duration) (int, error) {
	if err := s.check(); err != nil {
		return 0, err
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return 0, s.wrap("housekeep", err)
	}
	defer conn.Release()
	var got bool
	err = conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1, `+schemaKey+`)`, housekeepLockClass).Scan(&got)
	if err != nil {
		return 0, s.wrap("housekeep", err)
	}
	if !got {
		return 0, ErrHousekeepBusy
	}
	defer func() {
		// Unlock even if ctx has ended; should this fail, the connection
		// is closed instead so the lock cannot outlive the run.
		_, err := conn.Exec(context.Background(), `SELECT pg_advisory_unlock($1, `+schemaKey+`)`, housekeepLockClass)
		if err != nil {
			_ = conn.Conn().Close(context.Background())
		}
	}()
	if s.purgeHook != nil {
		s.purgeHook()
	}
	return s.Purge(ctx, time.Now().Add(-retention))
}

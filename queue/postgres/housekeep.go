package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrHousekeepBusy is returned by Housekeep when another process (or
// another Housekeep call) is already housekeeping this schema. Callers on a
// timer can ignore it: the other node does the work.
var ErrHousekeepBusy = errors.New("postgres: housekeeping is running elsewhere")

// Housekeep runs Purge with cutoff now-retention, on one node at a time:
// it first takes a session-level advisory lock (pg_try_advisory_lock,
// keyed by the schema) on a connection it holds for the run, and returns
// ErrHousekeepBusy at once if another node holds it. The purge itself runs
// in its own short transactions on other connections; the lock only keeps
// two nodes from doing the same deletes. If the process dies, its session
// ends and PostgreSQL releases the lock. Call it from a timer on every
// node; whichever gets the lock does the work.
func (s *Store) Housekeep(ctx context.Context, retention time.Duration) (int, error) {
	conn, err := s.d.pool.Acquire(ctx)
	if err != nil {
		return 0, fmt.Errorf("postgres: housekeep: %w", err)
	}
	defer conn.Release()
	var got bool
	err = conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1, `+schemaKey+`)`, housekeepLockClass).Scan(&got)
	if err != nil {
		return 0, fmt.Errorf("postgres: housekeep: %w", err)
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

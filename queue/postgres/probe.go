package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/outbox-mail/outbox/queue"
)

// ProbeWrite proves the database commits: a transaction that is given a
// transaction id commits a WAL record, flushed like any commit, and
// writes no table. A full disk, a read-only standby or a lost server
// makes it fail. Readiness checks call it every few seconds.
func (s *Store) ProbeWrite(ctx context.Context) error {
	if s.closed.Load() {
		return queue.ErrClosed
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var id int64
		return tx.QueryRow(ctx, "SELECT txid_current()").Scan(&id)
	})
	if err != nil {
		return fmt.Errorf("postgres: probe: %w", err)
	}
	return nil
}

package sqlite

import (
	"context"
	"fmt"
)

// ProbeWrite proves the database commits: one write transaction on the
// writer connection that rewrites the schema version with its own value
// (a page write, a WAL frame and an fsync, and nothing else changes).
// A full disk or a read-only file makes it fail. Readiness checks call it
// every few seconds.
func (s *Store) ProbeWrite(ctx context.Context) error {
	if err := s.check(); err != nil {
		return err
	}
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return s.wrap("probe", err)
	}
	defer tx.Rollback()
	var v int
	if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return s.wrap("probe", err)
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", v)); err != nil {
		return s.wrap("probe", err)
	}
	return s.wrap("probe", s.commit(tx))
}

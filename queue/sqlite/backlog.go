package sqlite

import "context"

// WebhookBacklog counts the webhook events not yet posted (waiting, those
// being posted included) and those given up on, for metrics.
func (s *Store) WebhookBacklog(ctx context.Context) (waiting, abandoned int64, err error) {
	// Both are ranges of the events_due index on (status, …).
	err = s.d.rdb.QueryRowContext(ctx, `SELECT
		(SELECT COUNT(*) FROM events WHERE status = 'pending'),
		(SELECT COUNT(*) FROM events WHERE status = 'abandoned')`).Scan(&waiting, &abandoned)
	return waiting, abandoned, wrap("webhook backlog", err)
}

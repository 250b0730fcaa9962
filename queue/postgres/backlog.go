package postgres

import "context"

// WebhookBacklog counts the webhook events not yet posted (waiting, those
// being posted included) and those given up on, for metrics.
func (s *Store) WebhookBacklog(ctx context.Context) (waiting, abandoned int64, err error) {
	err = s.d.pool.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM outbox_events WHERE status IN ('pending', 'sending')),
		(SELECT count(*) FROM outbox_events WHERE status = 'abandoned')`).Scan(&waiting, &abandoned)
	return waiting, abandoned, wrap("webhook backlog", err)
}

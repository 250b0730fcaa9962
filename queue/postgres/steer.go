package postgres

import (
	"context"

	"github.com/outbox-mail/outbox/queue"
)

// Waiting locks the messages m matches, skipping rows that others hold
// (a worker completing them; not an insert that only references them, as
// the search indexer's does: see dueQuery), and reads them with their
// recipients. A
// route matches an element of the last attempt's ", "-joined destinations
// exactly, or its start up to a colon.
func (t *pgTx) Waiting(ctx context.Context, m queue.Match) ([]queue.MessageState, error) {
	st := make([]string, len(m.Statuses))
	for i, s := range m.Statuses {
		st[i] = string(s)
	}
	return t.states(ctx, `WITH w AS (
		SELECT w.id FROM outbox_messages w
		WHERE w.status = ANY($1) AND w.id > $2 AND ($3 = '' OR w.id < $3)
			AND ($4 = '' OR EXISTS (SELECT 1 FROM outbox_recipients x WHERE x.message_id = w.id
				AND strpos(lower(x.address), lower($4)) > 0))
			AND ($5 = '' OR (SELECT strpos(', ' || lower(a.route) || ',', ', ' || lower($5) || ',') > 0
					OR strpos(', ' || lower(a.route) || ',', ', ' || lower($5) || ':') > 0
				FROM outbox_attempts a WHERE a.message_id = w.id ORDER BY a.number DESC LIMIT 1))
		ORDER BY w.id LIMIT $6 FOR NO KEY UPDATE SKIP LOCKED)
		SELECT `+stateCols+` WHERE m.id IN (SELECT id FROM w) ORDER BY m.id, r.idx`,
		st, m.After, m.IDBelow, m.Recipient, m.Route, m.Limit)
}

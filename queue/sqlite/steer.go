package sqlite

import (
	"context"
	"time"

	"github.com/outbox-mail/outbox/queue"
)

// Waiting reads the messages m matches with their recipients. The single
// writer connection is the lock. A route matches an element of the last
// attempt's ", "-joined destinations exactly, or its start up to a colon.
func (t *sqlTx) Waiting(ctx context.Context, m queue.Match) ([]queue.MessageState, error) {
	st := make([]string, len(m.Statuses))
	for i, s := range m.Statuses {
		st[i] = string(s)
	}
	return t.states(ctx, `SELECT `+stateCols+` WHERE m.id IN (
		SELECT w.id FROM messages w
		WHERE w.status IN (SELECT value FROM json_each(?2)) AND w.id > ?3 AND (?4 = '' OR w.id < ?4)
			AND (?5 = '' OR EXISTS (SELECT 1 FROM recipients x WHERE x.message_id = w.id
				AND instr(lower(x.address), lower(?5)) > 0))
			AND (?6 = '' OR (SELECT instr(', ' || lower(a.route) || ',', ', ' || lower(?6) || ',') > 0
					OR instr(', ' || lower(a.route) || ',', ', ' || lower(?6) || ':') > 0
				FROM attempts a WHERE a.message_id = w.id ORDER BY a.number DESC LIMIT 1))
		ORDER BY w.id LIMIT ?7)
		ORDER BY m.id, r.idx`, time.Now().UnixMilli(), idsJSON(st), m.After, m.IDBelow, m.Recipient, m.Route, m.Limit)
}

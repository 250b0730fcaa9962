package sqlite

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/outbox-mail/outbox/queue"
)

// mailboxesJSON stores a message's header mailboxes.
func mailboxesJSON(ms []queue.Mailbox) (string, error) {
	if len(ms) == 0 {
		return "", nil
	}
	b, err := json.Marshal(ms)
	return string(b), err
}

// parseMailboxes reads what mailboxesJSON stored; "" is none.
func parseMailboxes(s string) ([]queue.Mailbox, error) {
	if s == "" {
		return nil, nil
	}
	var ms []queue.Mailbox
	err := json.Unmarshal([]byte(s), &ms)
	return ms, err
}

// matchQuery is the FTS5 query for words: each a quoted prefix, all
// required. The words are letters and digits only; quotes are doubled all
// the same.
func matchQuery(words []string) string {
	parts := make([]string, len(words))
	for i, w := range words {
		parts[i] = `"` + strings.ReplaceAll(w, `"`, `""`) + `"*`
	}
	return strings.Join(parts, " ")
}

// searchCond is List's condition for f.Search.
const searchCond = `m.id IN (SELECT d.message_id FROM search_docs d
	WHERE d.doc IN (SELECT rowid FROM search_fts WHERE search_fts MATCH ?))`

// PendingIndex reads messages waiting for the search index, by id.
func (t *sqlTx) PendingIndex(ctx context.Context, after, below string, limit int) ([]queue.IndexCandidate, error) {
	if below == "" {
		below = "\U0010FFFF"
	}
	rows, err := t.query(ctx, `SELECT m.id, m.sender, m.subject FROM search_pending p
		JOIN messages m ON m.id = p.message_id
		WHERE p.message_id > ? AND p.message_id < ? ORDER BY p.message_id LIMIT ?`, after, below, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []queue.IndexCandidate
	for rows.Next() {
		var c queue.IndexCandidate
		if err := rows.Scan(&c.ID, &c.From, &c.Subject); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// IndexMessages writes entries through the search_input view, in one
// statement.
func (t *sqlTx) IndexMessages(ctx context.Context, docs []queue.SearchDoc) error {
	if len(docs) == 0 {
		return nil
	}
	rows := make([][]any, len(docs))
	for i, d := range docs {
		mb, err := mailboxesJSON(d.Mailboxes)
		if err != nil {
			return err
		}
		rows[i] = []any{d.MessageID, mb, d.Subject, d.Addresses, d.Body}
	}
	j, err := rowsJSON(rows)
	if err != nil {
		return err
	}
	_, err = t.exec(ctx, `INSERT INTO search_input (message_id, mailboxes, subject, addresses, body)
		SELECT j.value->>0, j.value->>1, j.value->>2, j.value->>3, j.value->>4 FROM json_each(?) AS j`, j)
	return err
}

package postgres

import (
	"context"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/outbox-mail/outbox/queue"
)

// matchQuery is the tsquery for terms, given as text and cast, so that no
// parser or dictionary touches it: each a quoted word, a prefix match for
// the prefix one, all required. The words are letters and digits only;
// quotes and backslashes are escaped all the same.
func matchQuery(terms []queue.SearchTerm) string {
	esc := strings.NewReplacer(`\`, `\\`, `'`, `''`)
	parts := make([]string, len(terms))
	for i, t := range terms {
		parts[i] = "'" + esc.Replace(t.Word) + "'"
		if t.Prefix {
			parts[i] += ":*"
		}
	}
	return strings.Join(parts, " & ")
}

// searchCond is List's condition for f.Search.
const searchCond = `m.id IN (SELECT message_id FROM outbox_search WHERE words @@ $?::tsquery)`

// PendingIndex reads messages waiting for the search index, by id.
func (t *pgTx) PendingIndex(ctx context.Context, after, below string, limit int) ([]queue.IndexCandidate, error) {
	var out []queue.IndexCandidate
	err := t.rows(ctx, func(r pgx.Rows) error {
		var c queue.IndexCandidate
		err := r.Scan(&c.ID, &c.From, &c.Subject)
		out = append(out, c)
		return err
	}, `SELECT m.id, m.sender, m.subject FROM outbox_search_pending p
		JOIN outbox_messages m ON m.id = p.message_id
		WHERE p.message_id > $1 AND ($2 = '' OR p.message_id < $2)
		ORDER BY p.message_id LIMIT $3`, after, below, limit)
	return out, err
}

// IndexMessages writes entries in one statement that also takes their
// messages off the waiting list. The tsvector is built from the words as
// they are (array_to_tsvector drops repeats).
func (t *pgTx) IndexMessages(ctx context.Context, docs []queue.SearchDoc) error {
	if len(docs) == 0 {
		return nil
	}
	ids, mbs, words := make([]string, len(docs)), make([]string, len(docs)), make([]string, len(docs))
	for i, d := range docs {
		mb, err := queue.MailboxesText(d.Mailboxes)
		if err != nil {
			return err
		}
		ids[i], mbs[i] = d.MessageID, mb
		words[i] = d.Words
	}
	t.queue(`WITH u AS (SELECT * FROM unnest($1::text[], $2::text[], $3::text[]) AS u(id, mailboxes, words)),
		done AS (DELETE FROM outbox_search_pending p USING u WHERE p.message_id = u.id)
	INSERT INTO outbox_search (message_id, mailboxes, words)
	SELECT u.id, u.mailboxes, array_to_tsvector(array_remove(string_to_array(u.words, ' '), '')) FROM u
	WHERE EXISTS (SELECT 1 FROM outbox_messages m WHERE m.id = u.id)
	ON CONFLICT (message_id) DO UPDATE SET mailboxes = excluded.mailboxes, words = excluded.words`, ids, mbs, words)
	return nil
}

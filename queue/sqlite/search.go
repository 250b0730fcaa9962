package sqlite

import (
	"context"
	"strconv"
	"strings"

	"github.com/outbox-mail/outbox/queue"
)

// matchQuery is the FTS5 query for terms, all required: each a quoted
// word, a prefix query for the prefix one. The words hold no space or
// punctuation, so the ascii tokenizer keeps each whole; quotes are
// doubled all the same.
func matchQuery(terms []queue.SearchTerm) string {
	parts := make([]string, len(terms))
	for i, t := range terms {
		parts[i] = `"` + strings.ReplaceAll(t.Word, `"`, `""`) + `"`
		if t.Prefix {
			parts[i] += "*"
		}
	}
	return strings.Join(parts, " ")
}

// docID is the search rowid of message id: the 48-bit time and 12-bit
// sequence at the head of its UUIDv7 (strictly increasing within a
// process), 0 for an id that is not one.
func docID(id string) int64 {
	hex := strings.ReplaceAll(id, "-", "")
	if len(hex) != 32 || hex[12] != '7' {
		return 0
	}
	ms, err1 := strconv.ParseInt(hex[:12], 16, 64)
	seq, err2 := strconv.ParseInt(hex[13:16], 16, 64)
	if err1 != nil || err2 != nil {
		return 0
	}
	return ms<<12 | seq
}

// searchFrom is List's FROM for a search: the matching rowids newest
// first, below a bound when paging, joined to their messages.
func searchFrom(paging bool) string {
	bound := ""
	if paging {
		bound = " AND rowid < ?"
	}
	return `(SELECT rowid AS doc FROM search_fts WHERE search_fts MATCH ?` + bound + ` ORDER BY rowid DESC) f
		JOIN search_docs d ON d.doc = f.doc JOIN messages m ON m.id = d.message_id`
}

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

// indexRows is the most entries one INSERT of IndexMessages carries.
const indexRows = 64

// indexInsert is the INSERT of n entries into the search_input view.
func indexInsert(n int) string {
	return `INSERT INTO search_input (doc, message_id, mailboxes, words) VALUES (?, ?, ?, ?)` +
		strings.Repeat(`, (?, ?, ?, ?)`, n-1)
}

// IndexMessages writes entries through the search_input view. The text
// is bound as parameters, which costs far less than passing it through
// json_each, and every entry of a batch goes in one statement: FTS5
// writes its pending entries to disk at each statement's end, so one
// statement per entry would make a segment of each and keep merging them.
// A batch goes in pieces of 64, 32, 16, … entries, so that a handful of
// statements, each prepared once, serve every batch size.
func (t *sqlTx) IndexMessages(ctx context.Context, docs []queue.SearchDoc) error {
	for len(docs) > 0 {
		n := indexRows
		for n > len(docs) {
			n /= 2
		}
		args := make([]any, 0, 4*n)
		for _, d := range docs[:n] {
			mb, err := queue.MailboxesText(d.Mailboxes)
			if err != nil {
				return err
			}
			args = append(args, docID(d.MessageID), d.MessageID, mb, d.Words)
		}
		if _, err := t.exec(ctx, indexInsert(n), args...); err != nil {
			return err
		}
		docs = docs[n:]
	}
	return nil
}

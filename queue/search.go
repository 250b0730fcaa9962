package queue

import (
	"fmt"

	"github.com/outbox-mail/outbox/queue/internal/fulltext"
)

// Full-text search: what the index holds of a message and how a search
// reads. The indexer that fills it is in index.go.

// Mailbox is an address as one of a message's header fields gives it,
// with its display name.
type Mailbox struct {
	// Field is the header field it is from: "from", "to" or "cc".
	Field   string
	Name    string
	Address string
}

// MaxSearchWords bounds the words of one search.
const MaxSearchWords = 16

// SearchWords returns the words Filter.Search looks for, normalised as the
// index holds them (lower case, accents removed, split at punctuation:
// "Ann's café" is "ann", "s", "cafe"), without repeats. A driver matches a
// message when each of them begins some word of its index entry.
func (f Filter) SearchWords() []string {
	return fulltext.Unique(fulltext.Words(nil, f.Search))
}

// checkSearch vets Filter.Search.
func checkSearch(f Filter) error {
	if f.Search == "" {
		return nil
	}
	if err := checkText("Search", f.Search, false); err != nil {
		return err
	}
	switch n := len(f.SearchWords()); {
	case n == 0:
		return fmt.Errorf("%w: Search: %q has no letters or digits to look for", ErrInvalid, f.Search)
	case n > MaxSearchWords:
		return fmt.Errorf("%w: Search: %d words; at most %d are looked for at once", ErrInvalid, n, MaxSearchWords)
	}
	return nil
}

// SearchDoc is a message's entry in the search index, as IndexMessages
// writes it. Subject, Addresses and Body are normalised words (see
// Filter.SearchWords) separated by single spaces.
type SearchDoc struct {
	MessageID string
	// Mailboxes are what Message.Mailboxes reads back.
	Mailboxes []Mailbox
	Subject   string
	// Addresses holds the envelope's addresses and the header's mailboxes
	// with their display names.
	Addresses string
	// Body holds the text of the body and the attachments' names.
	Body string
}

// IndexCandidate is a message waiting for the search index.
type IndexCandidate struct {
	ID, From, Subject string
}

// searchDoc builds a message's index entry from its envelope and what
// fulltext read of its body.
func searchDoc(id, from, subject string, rcpts []string, d fulltext.Document) SearchDoc {
	doc := SearchDoc{MessageID: id}
	subj := fulltext.Words(nil, subject)
	if d.Subject != subject {
		subj = fulltext.Words(subj, d.Subject)
	}
	addrs := fulltext.Words(nil, from)
	for _, r := range rcpts {
		addrs = fulltext.Words(addrs, r)
	}
	for _, m := range d.Mailboxes {
		doc.Mailboxes = append(doc.Mailboxes, Mailbox(m))
		addrs = fulltext.Words(fulltext.Words(addrs, m.Name), m.Address)
	}
	body := fulltext.Words(nil, d.Text)
	for _, name := range d.Attachments {
		body = fulltext.Words(body, name)
	}
	doc.Subject = fulltext.Join(fulltext.Unique(subj))
	doc.Addresses = fulltext.Join(fulltext.Unique(addrs))
	doc.Body = fulltext.Join(body)
	return doc
}

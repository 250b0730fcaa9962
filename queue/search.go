package queue

import (
	"encoding/json"
	"fmt"
	"unicode/utf8"

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

// MailboxesText is the stored form of a message's mailboxes (JSON; ""
// for none), which drivers keep as text and ParseMailboxes reads back.
func MailboxesText(ms []Mailbox) (string, error) {
	if len(ms) == 0 {
		return "", nil
	}
	b, err := json.Marshal(ms)
	return string(b), err
}

// ParseMailboxes reads what MailboxesText made.
func ParseMailboxes(s string) ([]Mailbox, error) {
	if s == "" {
		return nil, nil
	}
	var ms []Mailbox
	err := json.Unmarshal([]byte(s), &ms)
	return ms, err
}

// MaxSearchWords bounds the words of one search.
const MaxSearchWords = 16

// minPrefix is the shortest last word matched as the start of a longer
// one: a shorter prefix begins too many words to be worth looking up.
const minPrefix = 3

// SearchTerm is one word Filter.Search looks for.
type SearchTerm struct {
	// Word is normalised as the index holds words (lower case, accents
	// removed, split at punctuation: "Ann's café" is "ann", "s", "cafe").
	Word string
	// Prefix: the word may also begin a longer one. Only the last word
	// of a search is a prefix (it may still be being typed), and only
	// when it has at least three characters.
	Prefix bool
}

// SearchTerms returns the words Filter.Search looks for, without repeats.
// A driver matches a message when its index entry holds every word (the
// prefix one as the start of a word).
func (f Filter) SearchTerms() []SearchTerm {
	words := fulltext.Unique(fulltext.Words(nil, f.Search))
	out := make([]SearchTerm, len(words))
	for i, w := range words {
		out[i] = SearchTerm{Word: w, Prefix: i == len(words)-1 && utf8.RuneCountInString(w) >= minPrefix}
	}
	return out
}

// checkSearch vets Filter.Search.
func checkSearch(f Filter) error {
	if f.Search == "" {
		return nil
	}
	if err := checkText("Search", f.Search, false); err != nil {
		return err
	}
	switch n := len(f.SearchTerms()); {
	case n == 0:
		return fmt.Errorf("%w: Search: %q has no letters or digits to look for", ErrInvalid, f.Search)
	case n > MaxSearchWords:
		return fmt.Errorf("%w: Search: %d words; at most %d are looked for at once", ErrInvalid, n, MaxSearchWords)
	}
	return nil
}

// SearchDoc is a message's entry in the search index, as IndexMessages
// writes it.
type SearchDoc struct {
	MessageID string
	// Mailboxes are what Message.Mailboxes reads back.
	Mailboxes []Mailbox
	// Words are the message's normalised words (see SearchTerm),
	// each followed by one space: those of its subject, its envelope's
	// addresses, its header's mailboxes with their display names, the
	// text of its body and its attachments' names. A word may repeat.
	Words string
}

// IndexCandidate is a message waiting for the search index.
type IndexCandidate struct {
	ID, From, Subject string
}

// searchDoc builds a message's index entry from its envelope and what
// fulltext read of its body.
func searchDoc(id, from, subject string, rcpts []string, d fulltext.Document) SearchDoc {
	doc := SearchDoc{MessageID: id}
	w := fulltext.AppendWords(make([]byte, 0, 256+len(d.Text)), subject)
	if d.Subject != subject {
		w = fulltext.AppendWords(w, d.Subject)
	}
	w = fulltext.AppendWords(w, from)
	for _, r := range rcpts {
		w = fulltext.AppendWords(w, r)
	}
	for _, m := range d.Mailboxes {
		doc.Mailboxes = append(doc.Mailboxes, Mailbox(m))
		w = fulltext.AppendWords(fulltext.AppendWords(w, m.Name), m.Address)
	}
	w = fulltext.AppendWords(w, d.Text)
	for _, name := range d.Attachments {
		w = fulltext.AppendWords(w, name)
	}
	doc.Words = string(w)
	return doc
}

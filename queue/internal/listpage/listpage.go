// Package listpage is the paging both queue stores' List share: the page
// size bounds and the cursor. A cursor is the last id of the previous page,
// base64url-encoded so callers treat it as opaque; ids are UUIDv7, so id
// order is creation order and paging by "id < cursor" never skips or
// repeats a message. Keeping it in one place keeps cursors of the two
// stores alike.
package listpage

import (
	"encoding/base64"

	"github.com/outbox-mail/outbox/queue"
)

// Page size bounds.
const (
	// DefaultLimit is the page size when a filter asks for none.
	DefaultLimit = 50
	// MaxLimit bounds a page, whatever the filter asks for.
	MaxLimit = 1000
)

// Limit is the page size for a filter's Limit n.
func Limit(n int) int {
	if n <= 0 {
		n = DefaultLimit
	}
	return min(n, MaxLimit)
}

// Cut makes a page of msgs, fetched newest first with one row more than
// limit to learn whether another page follows: the first limit messages,
// and the cursor of the next page ("" on the last page).
func Cut(msgs []queue.Message, limit int) *queue.ListPage {
	page := &queue.ListPage{Messages: msgs}
	if len(msgs) > limit {
		page.Messages = msgs[:limit]
		page.Next = base64.RawURLEncoding.EncodeToString([]byte(msgs[limit-1].ID))
	}
	return page
}

// After decodes cursor into the id the page starts below; false when it
// is malformed.
func After(cursor string) (string, bool) {
	last, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil || len(last) == 0 {
		return "", false
	}
	return string(last), true
}

package client

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Suppression is an entry of the suppression list: mail to Address (from
// senders of Scope's domain, or from every sender when Scope is empty) is
// accepted but never sent.
type Suppression struct {
	Address string `json:"address"`
	Scope   string `json:"scope,omitempty"`
	Reason  string `json:"reason,omitempty"`
	// Cause is bounced, complained, unsubscribed or manual.
	Cause     string     `json:"cause"`
	MessageID string     `json:"message_id,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	// Expired entries are listed until removed, but stop nothing.
	Expired bool `json:"expired,omitempty"`
}

// SuppressionPage is one page of the list, by address.
type SuppressionPage struct {
	Suppressions []Suppression `json:"suppressions"`
	// NextCursor continues the listing; empty on the last page.
	NextCursor string `json:"next_cursor,omitempty"`
}

// SuppressionQuery selects a page of the list; zero fields take the
// daemon's defaults.
type SuppressionQuery struct {
	// Address keeps entries whose address contains it.
	Address string
	Limit   int
	Cursor  string
}

// Suppressions returns a page of the suppression list.
func (c *Client) Suppressions(ctx context.Context, q SuppressionQuery) (*SuppressionPage, error) {
	v := url.Values{}
	setString(v, "address", q.Address)
	setString(v, "cursor", q.Cursor)
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	var page SuppressionPage
	if err := c.do(ctx, request{method: http.MethodGet, path: "/v1/suppressions", query: v}, &page); err != nil {
		return nil, err
	}
	return &page, nil
}

// NewSuppression is an entry to add.
type NewSuppression struct {
	Address string `json:"address"`
	// Scope limits the entry to mail from this sender domain.
	Scope  string `json:"scope,omitempty"`
	Reason string `json:"reason,omitempty"`
	// ExpiresAt ends the entry; zero never does.
	ExpiresAt time.Time `json:"-"`
}

// Suppress adds (or replaces) an entry and returns it as stored.
func (c *Client) Suppress(ctx context.Context, s NewSuppression) (*Suppression, error) {
	body := struct {
		NewSuppression
		ExpiresAt string `json:"expires_at,omitempty"`
	}{NewSuppression: s}
	if !s.ExpiresAt.IsZero() {
		body.ExpiresAt = s.ExpiresAt.UTC().Format(time.RFC3339)
	}
	var out Suppression
	if err := c.postJSON(ctx, request{method: http.MethodPost, path: "/v1/suppressions"}, body, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Unsuppress removes the entry for address and scope ("" for the one
// for every sender); an address not on the list is IsNotFound.
func (c *Client) Unsuppress(ctx context.Context, address, scope string) error {
	if address == "" {
		return errors.New("client: Unsuppress: the address is empty")
	}
	var q url.Values
	if scope != "" {
		q = url.Values{"scope": {scope}}
	}
	return c.do(ctx, request{method: http.MethodDelete, path: "/v1/suppressions/" + url.PathEscape(address), query: q}, nil)
}

package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// SendOptions are the optional settings of Send and SendRaw.
type SendOptions struct {
	// IdempotencyKey makes a retried submission return the first id.
	IdempotencyKey string
}

func (o *SendOptions) header(h http.Header) http.Header {
	if o != nil && o.IdempotencyKey != "" {
		h.Set("Idempotency-Key", o.IdempotencyKey)
	}
	return h
}

type accepted struct {
	ID string `json:"id"`
}

// Send has the daemon compose m and queue it, and returns its id once
// the message is durable.
func (c *Client) Send(ctx context.Context, m *Email, opts *SendOptions) (string, error) {
	body := struct {
		*Email
		SendAt string `json:"send_at,omitempty"`
	}{Email: m}
	if !m.SendAt.IsZero() {
		body.SendAt = m.SendAt.UTC().Format(time.RFC3339Nano)
	}
	var a accepted
	r := request{method: http.MethodPost, path: "/v1/messages", header: opts.header(http.Header{})}
	if err := c.postJSON(ctx, r, body, &a); err != nil {
		return "", err
	}
	return a.ID, nil
}

// Envelope is the envelope of a ready message for SendRaw; what it
// leaves empty comes from the message's header (From, or Sender; To, Cc,
// Bcc).
type Envelope struct {
	From string
	To   []string
	// SendAt delays the first attempt; zero means now.
	SendAt time.Time
}

// SendRaw queues the RFC 5322 message read from msg, streamed, and
// returns its id once it is durable.
func (c *Client) SendRaw(ctx context.Context, msg io.Reader, env Envelope, opts *SendOptions) (string, error) {
	q := url.Values{}
	setString(q, "from", env.From)
	for _, to := range env.To {
		q.Add("to", to)
	}
	setTime(q, "send_at", env.SendAt)
	h := opts.header(http.Header{"Content-Type": {"message/rfc822"}})
	var a accepted
	err := c.do(ctx, request{method: http.MethodPost, path: "/v1/messages/raw", query: q, header: h, body: msg}, &a)
	if err != nil {
		return "", err
	}
	return a.ID, nil
}

// Get returns a message with its recipients and attempts.
func (c *Client) Get(ctx context.Context, id string) (*Message, error) {
	var m Message
	if err := c.do(ctx, request{method: http.MethodGet, path: messagePath(id, "")}, &m); err != nil {
		return nil, err
	}
	return &m, nil
}

// ListOptions filter a listing; zero fields match everything.
type ListOptions struct {
	Status Status
	// To, From and Subject match substrings, in any case; To matches
	// any recipient.
	To, From, Subject string
	// Since and Until bound the creation time.
	Since, Until time.Time
	// Limit is the page size (1-1000; the daemon's default, 50, when 0).
	Limit int
	// Cursor continues from a previous page's NextCursor.
	Cursor string
}

func (o ListOptions) query() url.Values {
	q := url.Values{}
	setString(q, "status", string(o.Status))
	setString(q, "to", o.To)
	setString(q, "from", o.From)
	setString(q, "subject", o.Subject)
	setTime(q, "since", o.Since)
	setTime(q, "until", o.Until)
	setString(q, "cursor", o.Cursor)
	if o.Limit > 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	return q
}

// List returns a page of the messages opts select, newest first.
func (c *Client) List(ctx context.Context, opts ListOptions) (*ListPage, error) {
	var p ListPage
	if err := c.do(ctx, request{method: http.MethodGet, path: "/v1/messages", query: opts.query()}, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// MaxWait is the longest one long poll of the API waits; Wait asks again
// for longer timeouts.
const MaxWait = 60 * time.Second

// ErrTimeout is Wait's error when no message matched in time.
var ErrTimeout = errors.New("client: no matching message arrived in time")

// Wait returns the newest message opts select, waiting up to timeout for
// one to exist. The daemon answers as soon as one is there (it is woken
// by new mail, not by polling). opts.Cursor must be empty.
func (c *Client) Wait(ctx context.Context, opts ListOptions, timeout time.Duration) (*Message, error) {
	if opts.Cursor != "" {
		return nil, errors.New("client: Wait cannot continue from a cursor")
	}
	deadline := time.Now().Add(timeout)
	for {
		q := opts.query()
		left := time.Until(deadline).Truncate(time.Millisecond)
		if left > 0 {
			q.Set("wait", min(left, MaxWait).String())
		}
		var p ListPage
		if err := c.do(ctx, request{method: http.MethodGet, path: "/v1/messages", query: q}, &p); err != nil {
			return nil, err
		}
		if len(p.Messages) > 0 {
			return &p.Messages[0], nil
		}
		if left <= 0 || !time.Now().Before(deadline) {
			return nil, fmt.Errorf("%w (%s)", ErrTimeout, timeout)
		}
	}
}

// Raw streams the stored RFC 5322 message, byte for byte as sent; the
// caller closes it. A read error means the message was cut short.
func (c *Client) Raw(ctx context.Context, id string) (io.ReadCloser, error) {
	resp, err := c.send(ctx, request{method: http.MethodGet, path: messagePath(id, "/raw")})
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// Content returns the message as a program reads it: headers, addresses,
// text and HTML, attachments, inline parts and links.
func (c *Client) Content(ctx context.Context, id string) (*Content, error) {
	var ct Content
	if err := c.do(ctx, request{method: http.MethodGet, path: messagePath(id, "/content")}, &ct); err != nil {
		return nil, err
	}
	return &ct, nil
}

// Download is a part being streamed; the caller closes it.
type Download struct {
	io.ReadCloser
	// ContentType is the type it was served as; Filename a safe name.
	ContentType, Filename string
}

// Attachment streams part n of a message (Part.Index of its Content).
func (c *Client) Attachment(ctx context.Context, id string, n int) (*Download, error) {
	resp, err := c.send(ctx, request{method: http.MethodGet, path: messagePath(id, "/attachments/"+strconv.Itoa(n))})
	if err != nil {
		return nil, err
	}
	d := &Download{ReadCloser: resp.Body, ContentType: resp.Header.Get("Content-Type")}
	if _, params, err := mime.ParseMediaType(resp.Header.Get("Content-Disposition")); err == nil {
		d.Filename = params["filename"]
	}
	return d, nil
}

// steer posts to a message's retry or cancel and returns it after.
func (c *Client) steer(ctx context.Context, id, action string, q url.Values) (*Message, error) {
	var m Message
	if err := c.do(ctx, request{method: http.MethodPost, path: messagePath(id, "/"+action), query: q}, &m); err != nil {
		return nil, err
	}
	return &m, nil
}

// Retry makes a waiting message due now; a final one is a conflict
// (IsConflict), as is one being sent.
func (c *Client) Retry(ctx context.Context, id string) (*Message, error) {
	return c.steer(ctx, id, "retry", nil)
}

// Requeue tries a message's failed and bounced recipients again too.
func (c *Client) Requeue(ctx context.Context, id string) (*Message, error) {
	return c.steer(ctx, id, "retry", url.Values{"include_failed": {"true"}})
}

// Cancel stops delivery of a message not yet final.
func (c *Client) Cancel(ctx context.Context, id string) (*Message, error) {
	return c.steer(ctx, id, "cancel", nil)
}

// Delete removes a final message; one still waiting or being sent is a
// conflict (IsConflict): cancel it first.
func (c *Client) Delete(ctx context.Context, id string) error {
	return c.do(ctx, request{method: http.MethodDelete, path: messagePath(id, "")}, nil)
}

// Selection picks waiting messages (queued or deferred) for RetryMatching
// and CancelMatching; zero fields match everything.
type Selection struct {
	// Status is StatusQueued or StatusDeferred.
	Status Status
	// Route is a destination of the last attempt
	// ("relay:smtp.example.com:587", "mx:mx1.example.org", "capture"), or
	// its start up to a colon ("relay", "mx").
	Route string
	// To matches a recipient's address by substring, in any case.
	To string
	// Before keeps messages created before it.
	Before time.Time
}

func (s Selection) query() url.Values {
	q := url.Values{}
	setString(q, "status", string(s.Status))
	setString(q, "route", s.Route)
	setString(q, "to", s.To)
	setTime(q, "before", s.Before)
	return q
}

// RetryMatching makes every waiting message sel selects due now and
// returns how many.
func (c *Client) RetryMatching(ctx context.Context, sel Selection) (int, error) {
	var out struct {
		N int `json:"retried"`
	}
	err := c.do(ctx, request{method: http.MethodPost, path: "/v1/messages/retry", query: sel.query()}, &out)
	return out.N, err
}

// CancelMatching cancels every waiting message sel selects and returns
// how many. sel may not be empty (set Before to now for everything).
func (c *Client) CancelMatching(ctx context.Context, sel Selection) (int, error) {
	var out struct {
		N int `json:"cancelled"`
	}
	err := c.do(ctx, request{method: http.MethodPost, path: "/v1/messages/cancel", query: sel.query()}, &out)
	return out.N, err
}

// DeleteFilter picks final messages for DeleteMatching.
type DeleteFilter struct {
	// Status is one final status; empty means all of them.
	Status Status
	// Before keeps messages created before it; zero means now.
	Before time.Time
}

// DeleteMatching removes the final messages f selects (waiting mail is
// never removed) and returns how many: DeleteFilter{} empties a capture
// inbox.
func (c *Client) DeleteMatching(ctx context.Context, f DeleteFilter) (int, error) {
	q := url.Values{}
	setString(q, "status", string(f.Status))
	setTime(q, "before", f.Before)
	var out struct {
		N int `json:"deleted"`
	}
	err := c.do(ctx, request{method: http.MethodDelete, path: "/v1/messages", query: q}, &out)
	return out.N, err
}

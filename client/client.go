// Package client is a Go client of the HTTP API of an outbox daemon
// (outbox serve): submit mail, follow each recipient's fate, steer the
// queue, and read captured (or sent) mail — the calls an application's
// test suite makes against a capturing outbox:
//
//	c, _ := client.New("http://127.0.0.1:8025", client.Options{})
//	m, err := c.Wait(ctx, client.ListOptions{To: "ann@example.org", Subject: "Reset"}, 30*time.Second)
//	content, err := c.Content(ctx, m.ID)
//	// content.Links[0] is the reset link
//
// Every answer other than a success is an *Error with the API's status,
// sentence and field. The package depends on the standard library only.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Timeouts of the default HTTP client. The answer to a long poll comes
// after up to a minute, so the header timeout is longer than that; a
// body streams for as long as it takes.
const (
	dialTimeout   = 10 * time.Second
	headerTimeout = 2 * time.Minute
)

// maxJSON bounds what is read of one JSON answer.
const maxJSON = 64 << 20

// Options configure a Client.
type Options struct {
	// Token is one of the daemon's API tokens (--api-token); empty for a
	// daemon without tokens.
	Token string
	// HTTPClient sends the requests; nil means one with a 10 s dial
	// timeout and a 2 min response header timeout.
	HTTPClient *http.Client
}

// Client calls one daemon's API. It is safe for concurrent use.
type Client struct {
	base  *url.URL
	token string
	http  *http.Client
}

// New returns a Client of the daemon at baseURL ("http://127.0.0.1:8025";
// a path prefix, if any, is kept).
func New(baseURL string, opts Options) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("client: daemon URL %q: want http://host:port or https://host:port", baseURL)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath, u.RawQuery, u.Fragment = "", "", ""
	hc := opts.HTTPClient
	if hc == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.DialContext = (&net.Dialer{Timeout: dialTimeout}).DialContext
		tr.ResponseHeaderTimeout = headerTimeout
		hc = &http.Client{Transport: tr}
	}
	return &Client{base: u, token: opts.Token, http: hc}, nil
}

// BaseURL returns the daemon's URL as given to New.
func (c *Client) BaseURL() string { return c.base.String() }

// Error is an answer of the API other than a success: its HTTP status
// and, when the API gave them, its sentence and the field at fault.
type Error struct {
	// StatusCode is the HTTP status, e.g. 404.
	StatusCode int `json:"-"`
	// Message is the API's one sentence ("No message has the id …").
	Message string `json:"error"`
	// Field names the request field or parameter at fault ("to[2]",
	// "id"), when one is.
	Field string `json:"field,omitempty"`
	// RetryAfter is the wait the API asked for (429, 503), or zero.
	RetryAfter time.Duration `json:"-"`
}

// Error gives the API's sentence, led by its field unless the sentence
// names it already, and the HTTP status.
func (e *Error) Error() string {
	msg := e.Message
	if e.Field != "" && !strings.HasPrefix(msg, e.Field) {
		msg = e.Field + ": " + msg
	}
	return fmt.Sprintf("%s (HTTP %d)", msg, e.StatusCode)
}

// Temporary reports whether trying again later may succeed (429, 503).
func (e *Error) Temporary() bool {
	return e.StatusCode == http.StatusTooManyRequests || e.StatusCode == http.StatusServiceUnavailable
}

// IsNotFound reports whether err is the API's 404.
func IsNotFound(err error) bool { return statusOf(err) == http.StatusNotFound }

// IsConflict reports whether err is the API's 409: the message is not in
// a state that allows the call (final, being sent, or not final yet).
func IsConflict(err error) bool { return statusOf(err) == http.StatusConflict }

func statusOf(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.StatusCode
	}
	return 0
}

// request is one API call.
type request struct {
	// path is escaped: its segments made with url.PathEscape.
	method, path string
	query        url.Values
	header       http.Header
	body         io.Reader
}

// send performs r and returns the answer when its status is 2xx; the
// caller closes its body. Any other answer becomes an *Error.
func (c *Client) send(ctx context.Context, r request) (*http.Response, error) {
	resp, err := c.roundTrip(ctx, r)
	if err != nil || resp.StatusCode/100 == 2 {
		return resp, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return nil, statusError(resp, body)
}

// roundTrip performs r and returns whatever the daemon answered.
func (c *Client) roundTrip(ctx context.Context, r request) (*http.Response, error) {
	u := *c.base
	// r.path is escaped already; Path alone would escape it again, and
	// an address holding % or / would name another entry.
	p, err := url.PathUnescape(r.path)
	if err != nil {
		return nil, fmt.Errorf("client: path %q: %w", r.path, err)
	}
	u.RawPath = c.base.EscapedPath() + r.path
	u.Path += p
	u.RawQuery = r.query.Encode()
	req, err := http.NewRequestWithContext(ctx, r.method, u.String(), r.body)
	if err != nil {
		return nil, err
	}
	for k, vs := range r.header {
		req.Header[k] = vs
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	return c.http.Do(req)
}

// statusError turns a non-2xx answer into an *Error.
func statusError(resp *http.Response, body []byte) *Error {
	e := &Error{StatusCode: resp.StatusCode}
	if json.Unmarshal(body, e) != nil || e.Message == "" {
		first, _, _ := strings.Cut(strings.TrimSpace(string(body)), "\n")
		if len(first) > 200 {
			first = first[:200] + "…"
		}
		e.Message, e.Field = strings.TrimSpace(resp.Status+" "+first), ""
	}
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
		e.RetryAfter = time.Duration(s) * time.Second
	}
	return e
}

// do performs r and decodes its JSON answer into out (nil: discard it).
func (c *Client) do(ctx context.Context, r request, out any) error {
	if r.header == nil {
		r.header = http.Header{}
	}
	r.header.Set("Accept", "application/json")
	resp, err := c.send(ctx, r)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxJSON))
	if err != nil {
		return fmt.Errorf("client: reading the answer of %s %s: %w", r.method, r.path, err)
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("client: %s %s answered something other than the expected JSON: %v", r.method, r.path, err)
	}
	return nil
}

// postJSON sends v as the JSON body of r.
func (c *Client) postJSON(ctx context.Context, r request, v, out any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	r.body = bytes.NewReader(b)
	if r.header == nil {
		r.header = http.Header{}
	}
	r.header.Set("Content-Type", "application/json")
	return c.do(ctx, r, out)
}

func messagePath(id, rest string) string { return "/v1/messages/" + url.PathEscape(id) + rest }

// setTime sets an RFC 3339 parameter when t is not zero.
func setTime(q url.Values, name string, t time.Time) {
	if !t.IsZero() {
		q.Set(name, t.UTC().Format(time.RFC3339Nano))
	}
}

// setString sets a parameter when v is not empty.
func setString(q url.Values, name, v string) {
	if v != "" {
		q.Set(name, v)
	}
}

// Health checks that the daemon answers (GET /healthz).
func (c *Client) Health(ctx context.Context) error {
	return c.do(ctx, request{method: http.MethodGet, path: "/healthz"}, nil)
}

// Readiness is the answer of GET /readyz.
type Readiness struct {
	Ready bool
	// Reason is a short key and Message a sentence saying why not.
	Reason, Message string
}

// Ready asks whether the daemon can accept mail now (GET /readyz). An
// unready daemon (503) is a Readiness, not an error.
func (c *Client) Ready(ctx context.Context) (*Readiness, error) {
	resp, err := c.roundTrip(ctx, request{method: http.MethodGet, path: "/readyz"})
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusServiceUnavailable {
		return nil, statusError(resp, data)
	}
	var body struct {
		Status string `json:"status"`
		Reason string `json:"reason"`
		Error  string `json:"error"`
	}
	if err := json.Unmarshal(data, &body); err != nil {
		return nil, fmt.Errorf("client: GET /readyz answered something other than the expected JSON: %v", err)
	}
	return &Readiness{Ready: resp.StatusCode == http.StatusOK && body.Status == "ready",
		Reason: body.Reason, Message: body.Error}, nil
}

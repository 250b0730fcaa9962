package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"syscall"
	"time"
)

// defaultURL is where 'outbox serve' listens unless told otherwise.
const defaultURL = "http://127.0.0.1:8025"

// Timeouts of the daemon client. A submission's body streams for as long
// as it takes, so there is no overall limit on it; a query has one.
const (
	dialTimeout    = 10 * time.Second
	replyTimeout   = 2 * time.Minute
	requestTimeout = 30 * time.Second
)

// maxReply bounds what is read of one API answer.
const maxReply = 64 << 20

// daemonOptions are the flags every command that talks to the daemon
// shares; empty values fall back to OUTBOX_URL and OUTBOX_TOKEN.
type daemonOptions struct {
	url, token string
}

// register adds --url and --token to fs.
func (o *daemonOptions) register(fs *flag.FlagSet) {
	fs.StringVar(&o.url, "url", "", "daemon `URL` (default $OUTBOX_URL or "+defaultURL+")")
	fs.StringVar(&o.token, "token", "", "API `token` (default $OUTBOX_TOKEN)")
}

// client returns an API client for the options and the environment.
func (o *daemonOptions) client() (*apiClient, error) {
	raw := firstNonEmpty(o.url, os.Getenv("OUTBOX_URL"), defaultURL)
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usagef("daemon URL %q: want http://host:port or https://host:port", raw)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawQuery, u.Fragment = "", ""
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{Timeout: dialTimeout}).DialContext
	tr.ResponseHeaderTimeout = replyTimeout
	return &apiClient{
		base:  u,
		token: firstNonEmpty(o.token, os.Getenv("OUTBOX_TOKEN")),
		http:  &http.Client{Transport: tr},
	}, nil
}

func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

// apiClient talks to the daemon's HTTP API.
type apiClient struct {
	base  *url.URL
	token string
	http  *http.Client
}

// request describes one API call.
type request struct {
	method, path string
	query        url.Values
	header       http.Header
	body         io.Reader
}

// do performs r and returns the answer's body when its status is 2xx;
// any other answer becomes an *apiError, a failure to connect a line
// that says the daemon cannot be reached.
func (c *apiClient) do(ctx context.Context, r request) ([]byte, error) {
	u := *c.base
	u.Path += r.path
	u.RawQuery = r.query.Encode()
	req, err := http.NewRequestWithContext(ctx, r.method, u.String(), r.body)
	if err != nil {
		return nil, err
	}
	for k, vs := range r.header {
		req.Header[k] = vs
	}
	req.Header.Set("Accept", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, c.transportError(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxReply))
	if err != nil {
		return nil, fmt.Errorf("reading the daemon's answer: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		return nil, c.statusError(resp, body)
	}
	return body, nil
}

// getJSON performs r with the query timeout and decodes its answer into
// out; it also returns the answer as received.
func (c *apiClient) getJSON(ctx context.Context, r request, out any) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	body, err := c.do(ctx, r)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(body, out); err != nil {
		return nil, fmt.Errorf("the daemon at %s answered something other than the expected JSON: %v", c.base, err)
	}
	return body, nil
}

// transportError words a failure to get any answer at all.
func (c *apiClient) transportError(err error) error {
	var op *net.OpError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("cannot reach the outbox daemon at %s (is 'outbox serve' running?)", c.base)
	case errors.As(err, &op) && op.Op == "dial":
		return fmt.Errorf("cannot reach the outbox daemon at %s: %v", c.base, op.Err)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("the outbox daemon at %s did not answer in time", c.base)
	}
	return fmt.Errorf("talking to the outbox daemon at %s: %v", c.base, err)
}

// apiError is an error answer of the API.
type apiError struct {
	Status int    `json:"-"`
	Msg    string `json:"error"`
	Field  string `json:"field,omitempty"`
}

// Error gives the API's sentence, led by its field unless the sentence
// already names it, and the HTTP status.
func (e *apiError) Error() string {
	msg := e.Msg
	if e.Field != "" && !strings.HasPrefix(msg, e.Field) {
		msg = e.Field + ": " + msg
	}
	return fmt.Sprintf("%s (HTTP %d)", clean(msg), e.Status)
}

// statusError turns a non-2xx answer into an error.
func (c *apiClient) statusError(resp *http.Response, body []byte) error {
	e := &apiError{Status: resp.StatusCode}
	if json.Unmarshal(body, e) != nil || e.Msg == "" {
		first, _, _ := strings.Cut(strings.TrimSpace(string(body)), "\n")
		if len(first) > 200 {
			first = first[:200] + "…"
		}
		e.Msg = fmt.Sprintf("unexpected answer from %s: %s %s", c.base, resp.Status, first)
		e.Field = ""
	}
	if resp.StatusCode == http.StatusUnauthorized {
		e.Field = ""
		if c.token == "" {
			e.Msg = "authentication required: the daemon wants an API token (set OUTBOX_TOKEN or pass --token)"
		} else {
			e.Msg = "authentication failed: the daemon did not accept the API token (check OUTBOX_TOKEN or --token)"
		}
	}
	return e
}

// submission is a composed message to hand to the daemon.
type submission struct {
	from           string
	to             []string
	sendAt         string
	idempotencyKey string
	compose        func(w io.Writer) error
}

// submit streams the composed message to POST /v1/messages/raw, with the
// envelope in the query, and returns the new message's id. The message
// is written into a pipe as the request reads it, never held whole.
func (c *apiClient) submit(ctx context.Context, s submission) (string, error) {
	q := url.Values{"from": {s.from}, "to": s.to}
	if s.sendAt != "" {
		q.Set("send_at", s.sendAt)
	}
	h := http.Header{"Content-Type": {"message/rfc822"}}
	if s.idempotencyKey != "" {
		h.Set("Idempotency-Key", s.idempotencyKey)
	}
	pr, pw := io.Pipe()
	out := &pipeWriter{w: pw}
	composed := make(chan error, 1)
	go func() {
		err := s.compose(out)
		// An error aborts the upload, so the daemon stores nothing.
		pw.CloseWithError(err)
		if out.err != nil {
			// The request ended first; its error is the one to report.
			err = nil
		}
		composed <- err
	}()
	body, err := c.do(ctx, request{method: http.MethodPost, path: "/v1/messages/raw", query: q, header: h, body: pr})
	// Unblock the writer if the request ended before reading it all.
	pr.CloseWithError(errors.New("request ended"))
	cerr := <-composed
	var ae *apiError
	switch {
	case errors.As(err, &ae):
		// The daemon answered: its reason is the one that counts.
		return "", err
	case cerr != nil:
		return "", cerr
	case err != nil:
		return "", err
	}
	var acc struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(body, &acc) != nil || acc.ID == "" {
		return "", fmt.Errorf("the daemon at %s accepted the message but did not say its id", c.base)
	}
	return acc.ID, nil
}

// pipeWriter remembers whether writing into the request failed, which
// tells a failure to compose from the request ending under it.
type pipeWriter struct {
	w   io.Writer
	err error
}

func (p *pipeWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	if err != nil && p.err == nil {
		p.err = err
	}
	return n, err
}

// clean makes text from the daemon (which may come from a message's
// content) safe to print on a terminal: C0 and C1 controls other than
// tab, DEL, bidirectional overrides and invalid UTF-8 become U+FFFD, so
// an escape sequence in a subject cannot drive the terminal.
func clean(s string) string {
	return strings.Map(func(r rune) rune {
		if unsafeRune(r) {
			return '\uFFFD'
		}
		return r
	}, s)
}

// cleanCell is clean for a table cell, where a tab would split columns.
func cleanCell(s string) string {
	return strings.ReplaceAll(clean(s), "\t", " ")
}

// unsafeRune reports whether r must not reach a terminal as it is.
func unsafeRune(r rune) bool {
	switch {
	case r == '\t':
		return false
	case r < 0x20, r >= 0x7f && r <= 0x9f:
		return true
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
		return true
	}
	return false
}

// safeJSON indents a JSON answer for the terminal and escapes the runes
// that JSON leaves raw but a terminal would act on (C1 controls, DEL,
// bidirectional overrides); they can only occur inside strings, where
// \u escapes mean the same.
func safeJSON(w io.Writer, data []byte) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, bytes.TrimSpace(data), "", "  "); err != nil {
		return fmt.Errorf("the daemon's answer is not valid JSON: %v", err)
	}
	var b strings.Builder
	for _, r := range buf.String() {
		// Below space, valid JSON has only its own white space.
		if r >= 0x20 && unsafeRune(r) {
			fmt.Fprintf(&b, `\u%04x`, r)
			continue
		}
		b.WriteRune(r)
	}
	b.WriteByte('\n')
	_, err := io.WriteString(w, b.String())
	return err
}

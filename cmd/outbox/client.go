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
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/outbox-mail/outbox/client"
)

// defaultURL is where 'outbox serve' listens unless told otherwise.
const defaultURL = "http://127.0.0.1:8025"

// requestTimeout bounds a query to the daemon; a submission's body and a
// wait take as long as they take.
const requestTimeout = 30 * time.Second

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
func (o *daemonOptions) client() (*daemonClient, error) {
	raw := firstNonEmpty(o.url, os.Getenv("OUTBOX_URL"), defaultURL)
	token := firstNonEmpty(o.token, os.Getenv("OUTBOX_TOKEN"))
	c, err := client.New(raw, client.Options{Token: token})
	if err != nil {
		return nil, usagef("daemon URL %q: want http://host:port or https://host:port", raw)
	}
	return &daemonClient{Client: c, token: token}, nil
}

func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

// daemonClient is the API client with the CLI's wording of its errors.
type daemonClient struct {
	*client.Client
	token string
}

// explain words an error of the client for the terminal: a failure to
// connect says the daemon cannot be reached, a 401 says what to do about
// the token, and the API's own sentences are made safe to print.
func (c *daemonClient) explain(err error) error {
	var ae *client.Error
	var op *net.OpError
	base := c.BaseURL()
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ae) && ae.StatusCode == http.StatusUnauthorized:
		msg := "authentication failed: the daemon did not accept the API token (check OUTBOX_TOKEN or --token)"
		if c.token == "" {
			msg = "authentication required: the daemon wants an API token (set OUTBOX_TOKEN or pass --token)"
		}
		return &client.Error{StatusCode: ae.StatusCode, Message: msg}
	case errors.As(err, &ae):
		return &client.Error{StatusCode: ae.StatusCode, Message: clean(ae.Message), Field: clean(ae.Field)}
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("cannot reach the outbox daemon at %s (is 'outbox serve' running?)", base)
	case errors.As(err, &op) && op.Op == "dial":
		return fmt.Errorf("cannot reach the outbox daemon at %s: %v", base, op.Err)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("the outbox daemon at %s did not answer in time", base)
	case errors.Is(err, client.ErrTimeout):
		return err
	}
	return fmt.Errorf("talking to the outbox daemon at %s: %v", base, err)
}

// query runs fn with the query timeout and explains its error.
func (c *daemonClient) query(ctx context.Context, fn func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	return c.explain(fn(ctx))
}

// submission is a composed message to hand to the daemon.
type submission struct {
	from           string
	to             []string
	sendAt         time.Time
	idempotencyKey string
	compose        func(w io.Writer) error
}

// submit streams the composed message to POST /v1/messages/raw, with the
// envelope in the query, and returns the new message's id. The message
// is written into a pipe as the request reads it, never held whole.
func (c *daemonClient) submit(ctx context.Context, s submission) (string, error) {
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
	id, err := c.SendRaw(ctx, pr, client.Envelope{From: s.from, To: s.to, SendAt: s.sendAt},
		&client.SendOptions{IdempotencyKey: s.idempotencyKey})
	// Unblock the writer if the request ended before reading it all.
	pr.CloseWithError(errors.New("request ended"))
	cerr := <-composed
	var ae *client.Error
	switch {
	case errors.As(err, &ae):
		// The daemon answered: its reason is the one that counts.
		return "", c.explain(err)
	case cerr != nil:
		return "", cerr
	case err != nil:
		return "", c.explain(err)
	case id == "":
		return "", fmt.Errorf("the daemon at %s accepted the message but did not say its id", c.BaseURL())
	}
	return id, nil
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

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/outbox-mail/outbox/client"
)

// printJSON writes v as the API's JSON, indented and safe for a terminal.
func printJSON(w io.Writer, v any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return err
	}
	return safeJSON(w, buf.Bytes())
}

// selectionFlags are the filters of a bulk retry or cancel.
type selectionFlags struct {
	status, route, to, before string
	allDeferred, all          bool
}

// register adds the filter flags to fs; --all-deferred for a retry,
// --all for a cancel.
func (s *selectionFlags) register(fs *flag.FlagSet, retry bool) {
	fs.StringVar(&s.status, "status", "", "only messages with this `status` (queued or deferred)")
	fs.StringVar(&s.route, "route", "", "only messages whose last attempt went through this `route` (relay:HOST:PORT, mx:HOST, capture, or relay, mx)")
	fs.StringVar(&s.to, "to", "", "only messages with a recipient containing `text`")
	fs.StringVar(&s.before, "before", "", "only messages created before this RFC 3339 `time`")
	if retry {
		fs.BoolVar(&s.allDeferred, "all-deferred", false, "every deferred message (with the other filters, those of them)")
	} else {
		fs.BoolVar(&s.all, "all", false, "every waiting message (with the other filters, those of them)")
	}
}

func (s *selectionFlags) any() bool {
	return s.status != "" || s.route != "" || s.to != "" || s.before != "" || s.allDeferred || s.all
}

// selection turns the flags into the client's filter.
func (s *selectionFlags) selection() (client.Selection, error) {
	sel := client.Selection{Status: client.Status(s.status), Route: s.route, To: s.to}
	if s.allDeferred {
		if s.status != "" && s.status != "deferred" {
			return sel, usagef("--all-deferred selects deferred messages; it does not go with --status %s", s.status)
		}
		sel.Status = client.StatusDeferred
	}
	if s.before != "" {
		t, err := time.Parse(time.RFC3339, s.before)
		if err != nil {
			return sel, usagef("--before %q: want an RFC 3339 time such as 2026-01-02T15:04:05Z", s.before)
		}
		sel.Before = t
	}
	if s.all && sel.Before.IsZero() {
		sel.Before = time.Now()
	}
	return sel, nil
}

// steerMatching retries or cancels the messages the flags select and
// says how many.
func steerMatching(ctx context.Context, d daemonOptions, action string, flags selectionFlags, stdout io.Writer) error {
	sel, err := flags.selection()
	if err != nil {
		return err
	}
	c, err := d.client()
	if err != nil {
		return err
	}
	var n int
	err = c.query(ctx, func(ctx context.Context) (err error) {
		if action == "retry" {
			n, err = c.RetryMatching(ctx, sel)
		} else {
			n, err = c.CancelMatching(ctx, sel)
		}
		return err
	})
	if err != nil {
		return err
	}
	past := map[string]string{"retry": "retried", "cancel": "cancelled"}[action]
	_, err = fmt.Fprintf(stdout, "%s %s\n", past, count(n, "message"))
	return err
}

// count is "1 message", "2 messages".
func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// queueWait waits for a message that matches, as a CI test does: it
// prints its id, or with --json its content.
func queueWait(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var d daemonOptions
	fs := queueFlags("wait", &d)
	var opts client.ListOptions
	fs.StringVar(&opts.To, "to", "", "a recipient containing `text`, e.g. the address")
	fs.StringVar(&opts.Subject, "subject", "", "a subject containing `text`")
	fs.StringVar(&opts.From, "from", "", "an envelope sender containing `text`")
	status := fs.String("status", "", "only a message with this `status`, e.g. delivered")
	timeout := new(time.Duration)
	durationVar(fs, timeout, "timeout", 30*time.Second, "how long to wait, e.g. 30s or 2m")
	asJSON := fs.Bool("json", false, "print the message's content (GET /v1/messages/ID/content) instead of its id")
	const synopsis = "wait [--to ADDR] [--subject TEXT] [--from ADDR] [--status S] [--timeout 30s] [--json]"
	rest, err := parseArgs(fs, args, stderr, synopsis)
	switch {
	case err != nil:
		return err
	case len(rest) > 0:
		return usagef("wait: unexpected argument %q", rest[0])
	case *timeout < 0:
		return usagef("wait: --timeout must not be negative")
	}
	opts.Status = client.Status(*status)
	c, err := d.client()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout+requestTimeout)
	defer cancel()
	m, err := c.Wait(ctx, opts, *timeout)
	if errors.Is(err, client.ErrTimeout) {
		return fmt.Errorf("no message %sarrived within %s", describe(opts), *timeout)
	}
	if err != nil {
		return c.explain(err)
	}
	if !*asJSON {
		_, err = fmt.Fprintln(stdout, clean(m.ID))
		return err
	}
	var content *client.Content
	err = c.query(ctx, func(ctx context.Context) (err error) {
		content, err = c.Content(ctx, m.ID)
		return err
	})
	if err != nil {
		return err
	}
	return printJSON(stdout, content)
}

// describe words a wait's filter: "to ann@example.org with subject "Reset" ".
func describe(o client.ListOptions) string {
	var parts []string
	if o.To != "" {
		parts = append(parts, "to "+clean(o.To))
	}
	if o.From != "" {
		parts = append(parts, "from "+clean(o.From))
	}
	if o.Subject != "" {
		parts = append(parts, fmt.Sprintf("with subject %q", clean(o.Subject)))
	}
	if o.Status != "" {
		parts = append(parts, "in status "+clean(string(o.Status)))
	}
	if len(parts) == 0 {
		return ""
	}
	return strings.Join(parts, " ") + " "
}

// queueDelete deletes one final message, or with --all (or a filter)
// every final message that matches: what empties a capture inbox.
func queueDelete(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var d daemonOptions
	fs := queueFlags("delete", &d)
	all := fs.Bool("all", false, "every final message (with --status or --before, those of them)")
	status := fs.String("status", "", "only final messages with this `status` (delivered, partial, failed, cancelled)")
	before := fs.String("before", "", "only messages created before this RFC 3339 `time`")
	const synopsis = "delete ID | delete --all [--status S] [--before T]"
	rest, err := parseArgs(fs, args, stderr, synopsis)
	if err != nil {
		return err
	}
	bulk := *all || *status != "" || *before != ""
	if !bulk {
		id, err := oneID(fs, rest, stderr, synopsis)
		if err != nil {
			return err
		}
		return deleteOne(ctx, d, id, stdout)
	}
	if len(rest) > 0 {
		return usagef("delete: give a message ID or --all and filters, not both")
	}
	f := client.DeleteFilter{Status: client.Status(*status)}
	if *before != "" {
		if f.Before, err = time.Parse(time.RFC3339, *before); err != nil {
			return usagef("delete: --before %q: want an RFC 3339 time such as 2026-01-02T15:04:05Z", *before)
		}
	}
	c, err := d.client()
	if err != nil {
		return err
	}
	var n int
	if err := c.query(ctx, func(ctx context.Context) (err error) { n, err = c.DeleteMatching(ctx, f); return err }); err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "deleted %s\n", count(n, "message"))
	return err
}

func deleteOne(ctx context.Context, d daemonOptions, id string, stdout io.Writer) error {
	c, err := d.client()
	if err != nil {
		return err
	}
	if err := c.query(ctx, func(ctx context.Context) error { return c.Delete(ctx, id) }); err != nil {
		return lookupError(err, id)
	}
	_, err = fmt.Fprintf(stdout, "%s: deleted\n", clean(id))
	return err
}

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/outbox-mail/outbox/api"
)

// queueUsage is the one-line synopsis of 'outbox queue'.
const queueUsage = "usage: outbox queue list [flags] | show ID [--json] [-v] | retry ID [--include-failed] | cancel ID"

// runQueue implements 'outbox queue': it dispatches to list, show, retry
// and cancel, each a client of the daemon's API.
func runQueue(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usagef("%s", queueUsage)
	}
	if wantsHelp(args) {
		return queueHelp()
	}
	for _, c := range queueCommands() {
		if c.name == args[0] {
			return c.run(ctx, args[1:], stdout, stderr)
		}
	}
	return usagef("unknown subcommand %q; %s", args[0], queueUsage)
}

// queueCommand is one subcommand of 'outbox queue'.
type queueCommand struct {
	name, summary string
	run           func(context.Context, []string, io.Writer, io.Writer) error
}

func queueCommands() []queueCommand {
	return []queueCommand{
		{"list", "list messages, newest first", queueList},
		{"show", "show a message, its recipients and attempts", queueShow},
		{"retry", "make a deferred message due now", queueRetry},
		{"cancel", "stop delivering a message", queueCancel},
	}
}

// queueHelp lists the subcommands.
func queueHelp() *helpRequest {
	h := &helpRequest{cmd: "queue", synopsis: "outbox queue COMMAND [flags]"}
	for _, c := range queueCommands() {
		h.subs = append(h.subs, subcommand{c.name, c.summary})
	}
	h.notes = "Every command talks to the daemon at --url (OUTBOX_URL, default " + defaultURL +
		") with the API token --token (OUTBOX_TOKEN)."
	return h
}

// queueFlags returns a flag set for one subcommand that reports errors
// once, through run, with --url and --token registered.
func queueFlags(name string, d *daemonOptions) *flag.FlagSet {
	fs := flag.NewFlagSet("queue "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	d.register(fs)
	return fs
}

// parseArgs parses flags wherever they stand among the arguments (so both
// "show ID --json" and "show --json ID" work) and returns the others.
func parseArgs(fs *flag.FlagSet, args []string, stderr io.Writer, synopsis string) ([]string, error) {
	var rest []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				h := helpFor(fs.Name(), fs)
				h.synopsis = "outbox queue " + synopsis
				return nil, h
			}
			return nil, usagef("%s: %v", fs.Name(), err)
		}
		if fs.NArg() == 0 {
			return rest, nil
		}
		rest = append(rest, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// oneID parses a subcommand that takes exactly one message id.
func oneID(fs *flag.FlagSet, args []string, stderr io.Writer, synopsis string) (string, error) {
	rest, err := parseArgs(fs, args, stderr, synopsis)
	switch {
	case err != nil:
		return "", err
	case len(rest) == 0 || rest[0] == "":
		return "", usagef("%s: a message ID is required (usage: outbox queue %s)", fs.Name(), synopsis)
	case len(rest) > 1:
		return "", usagef("%s: unexpected argument %q", fs.Name(), rest[1])
	case rest[0] == "." || rest[0] == "..":
		return "", usagef("%s: %q is not a message ID", fs.Name(), rest[0])
	}
	return rest[0], nil
}

// listOptions are the flags of 'outbox queue list'.
type listOptions struct {
	daemon                                   daemonOptions
	status, cursor, recipient, from, subject string
	limit                                    int
	json                                     bool
}

func queueList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var o listOptions
	fs := queueFlags("list", &o.daemon)
	fs.StringVar(&o.status, "status", "", "only messages with this `status`")
	fs.IntVar(&o.limit, "limit", 0, "at most `N` messages (1-1000; the daemon's default otherwise)")
	fs.StringVar(&o.cursor, "cursor", "", "continue from the `cursor` a previous page gave")
	fs.StringVar(&o.recipient, "recipient", "", "only messages to this `address`")
	fs.StringVar(&o.from, "from", "", "only messages from this `address`")
	fs.StringVar(&o.subject, "subject", "", "only messages whose subject contains `text`")
	fs.BoolVar(&o.json, "json", false, "print the API's JSON")
	rest, err := parseArgs(fs, args, stderr, "list [flags]")
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usagef("list: unexpected argument %q", rest[0])
	}
	if o.limit < 0 {
		return usagef("list: -limit must be positive")
	}
	c, err := o.daemon.client()
	if err != nil {
		return err
	}
	var page api.ListPage
	raw, err := c.getJSON(ctx, request{method: http.MethodGet, path: "/v1/messages", query: o.query()}, &page)
	if err != nil {
		return err
	}
	if o.json {
		return safeJSON(stdout, raw)
	}
	return printList(stdout, &page)
}

// query is the list's filter as GET /v1/messages takes it.
func (o *listOptions) query() url.Values {
	q := url.Values{}
	for k, v := range map[string]string{"status": o.status, "cursor": o.cursor,
		"recipient": o.recipient, "from": o.from, "subject": o.subject} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if o.limit > 0 {
		q.Set("limit", strconv.Itoa(o.limit))
	}
	return q
}

func queueShow(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var d daemonOptions
	fs := queueFlags("show", &d)
	asJSON := fs.Bool("json", false, "print the API's JSON")
	verbose := fs.Bool("v", false, "also print each attempt's SMTP transcript")
	id, err := oneID(fs, args, stderr, "show ID [--json] [-v]")
	if err != nil {
		return err
	}
	c, err := d.client()
	if err != nil {
		return err
	}
	var m api.Message
	raw, err := c.getJSON(ctx, request{method: http.MethodGet, path: "/v1/messages/" + url.PathEscape(id)}, &m)
	if err != nil {
		return lookupError(err, id)
	}
	if *asJSON {
		return safeJSON(stdout, raw)
	}
	return printMessage(stdout, &m, *verbose)
}

func queueRetry(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var d daemonOptions
	fs := queueFlags("retry", &d)
	failed := fs.Bool("include-failed", false, "also try again the recipients that failed for good")
	id, err := oneID(fs, args, stderr, "retry ID [--include-failed]")
	if err != nil {
		return err
	}
	var q url.Values
	if *failed {
		q = url.Values{"include_failed": {"true"}}
	}
	return steer(ctx, d, id, "retry", q, stdout)
}

func queueCancel(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var d daemonOptions
	fs := queueFlags("cancel", &d)
	id, err := oneID(fs, args, stderr, "cancel ID")
	if err != nil {
		return err
	}
	return steer(ctx, d, id, "cancel", nil, stdout)
}

// steer posts a retry or cancel for id and prints the message's new
// status on one line.
func steer(ctx context.Context, d daemonOptions, id, action string, q url.Values, stdout io.Writer) error {
	c, err := d.client()
	if err != nil {
		return err
	}
	var m api.Message
	path := "/v1/messages/" + url.PathEscape(id) + "/" + action
	if _, err := c.getJSON(ctx, request{method: http.MethodPost, path: path, query: q}, &m); err != nil {
		return lookupError(err, id)
	}
	line := fmt.Sprintf("%s: %s", cleanCell(m.ID), cleanCell(string(m.Status)))
	if m.NextAttemptAt != nil && !m.NextAttemptAt.IsZero() {
		line += ", next attempt " + m.NextAttemptAt.Local().Format(time.DateTime)
	}
	_, err = fmt.Fprintln(stdout, line)
	return err
}

// lookupError words the API's 404 for a message id as "not found".
func lookupError(err error, id string) error {
	var ae *apiError
	if errors.As(err, &ae) && ae.Status == http.StatusNotFound && ae.Field == "id" {
		return fmt.Errorf("message %q not found (HTTP 404)", id)
	}
	return err
}

// fullTime is the layout of times in 'queue show', in local time.
const fullTime = "2006-01-02 15:04:05 MST"

// shortTime formats t for a table in local time: the year only when it
// is not this one.
func shortTime(t time.Time) string {
	t = t.Local()
	if t.Year() == time.Now().Year() {
		return t.Format("Jan 02 15:04")
	}
	return t.Format("2006-01-02 15:04")
}

// maxSubject is how many runes of a subject a table shows.
const maxSubject = 40

// printList writes a page of messages as a table, with the command for
// the next page after it when there is one.
func printList(w io.Writer, page *api.ListPage) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATUS\tATTEMPTS\tCREATED\tNEXT ATTEMPT\tFROM\tTO\tSUBJECT")
	for _, m := range page.Messages {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n",
			cleanCell(m.ID), cleanCell(string(m.Status)), m.AttemptCount,
			shortTime(m.CreatedAt), optTime(m.NextAttemptAt, shortTime),
			orDash(cleanCell(m.From)), recipientsCell(m.Recipients),
			truncate(cleanCell(m.Subject), maxSubject))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(page.Messages) == 0 {
		fmt.Fprintln(w, "(no messages)")
	}
	if page.NextCursor != "" {
		_, err := fmt.Fprintf(w, "next page: outbox queue list --cursor %s\n", cleanCell(page.NextCursor))
		return err
	}
	return nil
}

// printMessage writes one message: its envelope and state, a table of
// its recipients and its attempts, with transcripts when verbose.
func printMessage(w io.Writer, m *api.Message, verbose bool) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	field := func(name, value string) { fmt.Fprintf(tw, "%s:\t%s\n", name, value) }
	field("ID", cleanCell(m.ID))
	field("Status", cleanCell(string(m.Status)))
	field("From", orDash(cleanCell(m.From)))
	field("Subject", cleanCell(m.Subject))
	field("Size", fmt.Sprintf("%d bytes", m.Size))
	field("Attempts", strconv.Itoa(m.AttemptCount))
	field("Created", m.CreatedAt.Local().Format(fullTime))
	field("Updated", m.UpdatedAt.Local().Format(fullTime))
	field("Next attempt", optTime(m.NextAttemptAt, longTime))
	field("Expires", optTime(m.ExpiresAt, longTime))
	if m.IdempotencyKey != "" {
		field("Idempotency key", cleanCell(m.IdempotencyKey))
	}
	for _, k := range slices.Sorted(maps.Keys(m.Tags)) {
		field("Tag "+cleanCell(k), cleanCell(m.Tags[k]))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	if err := printRecipients(w, m.Recipients); err != nil {
		return err
	}
	return printAttempts(w, m.Attempts, verbose)
}

// printRecipients writes the per-recipient table.
func printRecipients(w io.Writer, rs []api.Recipient) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ADDRESS\tSTATUS\tATTEMPTS\tCODE\tENHANCED\tTEXT")
	for _, r := range rs {
		code := "-"
		if r.Code != 0 {
			code = strconv.Itoa(r.Code)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", cleanCell(r.Address), cleanCell(string(r.Status)),
			r.Attempts, code, orDash(cleanCell(r.EnhancedCode)), orDash(cleanCell(r.Text)))
	}
	return tw.Flush()
}

// printAttempts writes the attempts, one line each, and with verbose
// each one's transcript indented under it.
func printAttempts(w io.Writer, as []api.Attempt, verbose bool) error {
	if len(as) == 0 {
		_, err := fmt.Fprintln(w, "\nNo attempts yet.")
		return err
	}
	fmt.Fprintln(w, "\nAttempts:")
	for _, a := range as {
		line := fmt.Sprintf("  #%d  %s", a.Number, a.StartedAt.Local().Format(fullTime))
		if a.Route != "" {
			line += "  via " + cleanCell(a.Route)
		}
		if a.Error != "" {
			line += "  error: " + cleanCell(a.Error)
		}
		fmt.Fprintln(w, line)
		if !verbose || a.Transcript == "" {
			continue
		}
		for _, l := range strings.Split(strings.TrimRight(a.Transcript, "\r\n"), "\n") {
			fmt.Fprintln(w, "      "+clean(strings.TrimSuffix(l, "\r")))
		}
	}
	return nil
}

// recipientsCell shows the first recipient and how many more there are.
func recipientsCell(rs []api.Recipient) string {
	switch len(rs) {
	case 0:
		return "-"
	case 1:
		return cleanCell(rs[0].Address)
	}
	return fmt.Sprintf("%s +%d", cleanCell(rs[0].Address), len(rs)-1)
}

// optTime formats an optional time with format, or gives a dash.
func optTime(t *time.Time, format func(time.Time) string) string {
	if t == nil || t.IsZero() {
		return "-"
	}
	return format(*t)
}

// longTime formats t for 'queue show' in local time.
func longTime(t time.Time) string { return t.Local().Format(fullTime) }

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// truncate shortens s to at most n runes, ending it with an ellipsis.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

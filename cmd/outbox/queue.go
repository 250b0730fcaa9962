package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/outbox-mail/outbox/client"
)

// queueUsage is the synopsis of 'outbox queue'.
const queueUsage = "usage: outbox queue list [flags] | show ID [--json] [--raw] [-v] | wait --to ADDR [--subject TEXT] [--timeout 30s] [--json]" +
	" | retry ID [--include-failed] | retry --all-deferred [filters] | cancel ID | cancel [filters] | delete ID | delete --all [--status S] [--before T]"

// runQueue implements 'outbox queue': it dispatches to list, show, wait,
// retry, cancel and delete, each a client of the daemon's API.
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
		{"wait", "wait until a matching message exists; print its id", queueWait},
		{"delete", "delete finished messages", queueDelete},
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
	var page *client.ListPage
	err = c.query(ctx, func(ctx context.Context) (err error) {
		page, err = c.List(ctx, o.options())
		return err
	})
	if err != nil {
		return err
	}
	if o.json {
		return printJSON(stdout, page)
	}
	return printList(stdout, page)
}

// options is the list's filter as the client takes it.
func (o *listOptions) options() client.ListOptions {
	return client.ListOptions{Status: client.Status(o.status), Cursor: o.cursor, To: o.recipient,
		From: o.from, Subject: o.subject, Limit: o.limit}
}

func queueShow(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var d daemonOptions
	fs := queueFlags("show", &d)
	asJSON := fs.Bool("json", false, "print the API's JSON")
	raw := fs.Bool("raw", false, "print the stored RFC 5322 message, byte for byte as sent")
	verbose := fs.Bool("v", false, "also print each attempt's SMTP transcript")
	id, err := oneID(fs, args, stderr, "show ID [--json] [--raw] [-v]")
	if err != nil {
		return err
	}
	if *raw && (*asJSON || *verbose) {
		return usagef("show: --raw prints the message itself; it goes with neither --json nor -v")
	}
	c, err := d.client()
	if err != nil {
		return err
	}
	if *raw {
		return showRaw(ctx, c, id, stdout)
	}
	var m *client.Message
	err = c.query(ctx, func(ctx context.Context) (err error) {
		m, err = c.Get(ctx, id)
		return err
	})
	if err != nil {
		return lookupError(err, id)
	}
	if *asJSON {
		return printJSON(stdout, m)
	}
	return printMessage(stdout, m, *verbose)
}

// showRaw copies the stored message to stdout unchanged: it is what was
// asked for, to be saved or piped, so nothing is escaped.
func showRaw(ctx context.Context, c *daemonClient, id string, stdout io.Writer) error {
	rc, err := c.Raw(ctx, id)
	if err != nil {
		return lookupError(c.explain(err), id)
	}
	defer rc.Close()
	if _, err := io.Copy(stdout, rc); err != nil {
		return fmt.Errorf("reading message %s from the daemon: %w", id, err)
	}
	return nil
}

func queueRetry(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var d daemonOptions
	fs := queueFlags("retry", &d)
	failed := fs.Bool("include-failed", false, "also try again the recipients that failed for good")
	var sel selectionFlags
	sel.register(fs, true)
	const synopsis = "retry ID [--include-failed] | retry --all-deferred | retry [--status S] [--route R] [--to ADDR] [--before T]"
	rest, err := parseArgs(fs, args, stderr, synopsis)
	if err != nil {
		return err
	}
	if sel.any() {
		if len(rest) > 0 || *failed {
			return usagef("retry: give a message ID or a filter, not both (--include-failed goes with an ID)")
		}
		return steerMatching(ctx, d, "retry", sel, stdout)
	}
	id, err := oneID(fs, rest, stderr, synopsis)
	if err != nil {
		return err
	}
	return steer(ctx, d, id, func(ctx context.Context, c *daemonClient) (*client.Message, error) {
		if *failed {
			return c.Requeue(ctx, id)
		}
		return c.Retry(ctx, id)
	}, stdout)
}

func queueCancel(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var d daemonOptions
	fs := queueFlags("cancel", &d)
	var sel selectionFlags
	sel.register(fs, false)
	const synopsis = "cancel ID | cancel [--status S] [--route R] [--to ADDR] [--before T]"
	rest, err := parseArgs(fs, args, stderr, synopsis)
	if err != nil {
		return err
	}
	if sel.any() {
		if len(rest) > 0 {
			return usagef("cancel: give a message ID or a filter, not both")
		}
		return steerMatching(ctx, d, "cancel", sel, stdout)
	}
	id, err := oneID(fs, rest, stderr, synopsis)
	if err != nil {
		return err
	}
	return steer(ctx, d, id, func(ctx context.Context, c *daemonClient) (*client.Message, error) {
		return c.Cancel(ctx, id)
	}, stdout)
}

// steer runs a retry or cancel of id and prints the message's new status
// on one line.
func steer(ctx context.Context, d daemonOptions, id string, op func(context.Context, *daemonClient) (*client.Message, error), stdout io.Writer) error {
	c, err := d.client()
	if err != nil {
		return err
	}
	var m *client.Message
	err = c.query(ctx, func(ctx context.Context) (err error) {
		m, err = op(ctx, c)
		return err
	})
	if err != nil {
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
	var ae *client.Error
	if errors.As(err, &ae) && ae.StatusCode == http.StatusNotFound && ae.Field == "id" {
		return fmt.Errorf("message %q not found (HTTP 404)", clean(id))
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
func printList(w io.Writer, page *client.ListPage) error {
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
func printMessage(w io.Writer, m *client.Message, verbose bool) error {
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
func printRecipients(w io.Writer, rs []client.Recipient) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ADDRESS\tSTATUS\tATTEMPTS\tCODE\tENHANCED\tTEXT")
	for _, r := range rs {
		code := "-"
		if r.Code != 0 {
			code = strconv.Itoa(r.Code)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", cleanCell(r.Address), cleanCell(r.Status),
			r.Attempts, code, orDash(cleanCell(r.EnhancedCode)), orDash(cleanCell(r.Text)))
	}
	return tw.Flush()
}

// printAttempts writes the attempts, one line each, and with verbose
// each one's transcript indented under it.
func printAttempts(w io.Writer, as []client.Attempt, verbose bool) error {
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
func recipientsCell(rs []client.Recipient) string {
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

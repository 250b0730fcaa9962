package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/outbox-mail/outbox/client"
)

// suppressionsUsage is the synopsis of 'outbox suppressions'.
const suppressionsUsage = "usage: outbox suppressions list [--address TEXT] [--limit N] [--cursor C] [--json] | " +
	"add ADDRESS [--reason TEXT] [--scope DOMAIN] [--expires TIME|DURATION] | remove ADDRESS [--scope DOMAIN]"

// runSuppressions implements 'outbox suppressions': list, add and remove
// entries of the suppression list through the daemon's API.
func runSuppressions(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usagef("%s", suppressionsUsage)
	}
	subs := []struct {
		name, summary string
		run           func(context.Context, []string, io.Writer, io.Writer) error
	}{
		{"list", "list the entries, by address", suppressionsList},
		{"add", "suppress an address (for one sender domain, or every one)", suppressionsAdd},
		{"remove", "remove an address's entry", suppressionsRemove},
	}
	if wantsHelp(args) {
		h := &helpRequest{cmd: "suppressions", synopsis: "outbox suppressions COMMAND [flags]"}
		for _, c := range subs {
			h.subs = append(h.subs, subcommand{c.name, c.summary})
		}
		return h
	}
	for _, c := range subs {
		if c.name == args[0] {
			return c.run(ctx, args[1:], stdout, stderr)
		}
	}
	return usagef("unknown subcommand %q; %s", args[0], suppressionsUsage)
}

// suppressionArgs parses a subcommand's flags wherever they stand and
// returns its other arguments, at most max of them.
func suppressionArgs(fs *flag.FlagSet, args []string, stderr io.Writer, max int) ([]string, error) {
	var rest []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				h := helpFor(fs.Name(), fs)
				if max > 0 {
					h.synopsis = "outbox " + fs.Name() + " ADDRESS [flags]"
				}
				return nil, h
			}
			return nil, usagef("%s: %v", fs.Name(), err)
		}
		if fs.NArg() == 0 {
			break
		}
		rest = append(rest, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(rest) > max {
		return nil, usagef("%s: unexpected argument %q", fs.Name(), rest[max])
	}
	return rest, nil
}

func suppressionsFlags(name string, d *daemonOptions) *flag.FlagSet {
	fs := flag.NewFlagSet("suppressions "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	d.register(fs)
	return fs
}

func suppressionsList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var d daemonOptions
	fs := suppressionsFlags("list", &d)
	address := fs.String("address", "", "only entries whose address contains `text`")
	limit := fs.Int("limit", 0, "at most `N` entries (1-1000; the daemon's default otherwise)")
	cursor := fs.String("cursor", "", "continue from the `cursor` a previous page gave")
	asJSON := fs.Bool("json", false, "print the API's JSON")
	if _, err := suppressionArgs(fs, args, stderr, 0); err != nil {
		return err
	}
	if *limit < 0 {
		return usagef("list: -limit must be positive")
	}
	c, err := d.client()
	if err != nil {
		return err
	}
	var page *client.SuppressionPage
	if err := c.query(ctx, func(ctx context.Context) (err error) {
		page, err = c.Suppressions(ctx, client.SuppressionQuery{Address: *address, Limit: *limit, Cursor: *cursor})
		return err
	}); err != nil {
		return err
	}
	if *asJSON {
		raw, err := json.Marshal(page)
		if err != nil {
			return err
		}
		return safeJSON(stdout, raw)
	}
	return printSuppressions(stdout, page)
}

// printSuppressions writes a page of the list as a table, with the
// command for the next page when there is one.
func printSuppressions(w io.Writer, page *client.SuppressionPage) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ADDRESS\tSCOPE\tCAUSE\tSINCE\tEXPIRES\tREASON")
	for _, s := range page.Suppressions {
		expires := "never"
		if s.ExpiresAt != nil {
			expires = shortTime(*s.ExpiresAt)
			if s.Expired {
				expires += " (expired)"
			}
		}
		scope := s.Scope
		if scope == "" {
			scope = "*"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", cleanCell(s.Address), cleanCell(scope), cleanCell(s.Cause),
			shortTime(s.CreatedAt), expires, truncate(cleanCell(s.Reason), 60))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(page.Suppressions) == 0 {
		_, err := fmt.Fprintln(w, "(no entries)")
		return err
	}
	if page.NextCursor != "" {
		_, err := fmt.Fprintf(w, "more: outbox suppressions list --cursor %s\n", cleanCell(page.NextCursor))
		return err
	}
	return nil
}

func suppressionsAdd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var d daemonOptions
	fs := suppressionsFlags("add", &d)
	reason := fs.String("reason", "", "why, for whoever reads the list")
	scope := fs.String("scope", "", "suppress only mail from this sender `domain` (default: every sender)")
	expires := fs.String("expires", "", "end the entry at this RFC 3339 `time`, or after this duration (e.g. 720h)")
	rest, err := suppressionArgs(fs, args, stderr, 1)
	if err != nil {
		return err
	}
	if len(rest) == 0 || rest[0] == "" {
		return usagef("add: an ADDRESS is required; %s", suppressionsUsage)
	}
	until, err := parseExpiry(*expires, time.Now())
	if err != nil {
		return err
	}
	c, err := d.client()
	if err != nil {
		return err
	}
	var s *client.Suppression
	if err := c.query(ctx, func(ctx context.Context) (err error) {
		s, err = c.Suppress(ctx, client.NewSuppression{Address: rest[0], Reason: *reason, Scope: *scope, ExpiresAt: until})
		return err
	}); err != nil {
		return err
	}
	line := "suppressed " + cleanCell(s.Address)
	if s.Scope != "" {
		line += " for mail from " + cleanCell(s.Scope)
	}
	if s.ExpiresAt != nil {
		line += " until " + s.ExpiresAt.Local().Format(fullTime)
	}
	_, err = fmt.Fprintln(stdout, line)
	return err
}

// parseExpiry reads --expires: an RFC 3339 time or a duration from now
// (zero for none).
func parseExpiry(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return time.Time{}, usagef("add: --expires %q is neither an RFC 3339 time (2026-01-02T15:04:05Z) nor a positive duration (720h)", s)
	}
	return now.Add(d).UTC().Truncate(time.Second), nil
}

func suppressionsRemove(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var d daemonOptions
	fs := suppressionsFlags("remove", &d)
	scope := fs.String("scope", "", "remove the entry for this sender `domain` (default: the one for every sender)")
	rest, err := suppressionArgs(fs, args, stderr, 1)
	if err != nil {
		return err
	}
	if len(rest) == 0 || rest[0] == "" {
		return usagef("remove: an ADDRESS is required; %s", suppressionsUsage)
	}
	c, err := d.client()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	if err := c.Unsuppress(ctx, rest[0], *scope); err != nil {
		if client.IsNotFound(err) {
			return fmt.Errorf("%s is not on the suppression list%s (HTTP 404)", clean(rest[0]), scopeNote(*scope))
		}
		return c.explain(err)
	}
	_, err = fmt.Fprintf(stdout, "removed %s from the suppression list%s\n", cleanCell(rest[0]), scopeNote(*scope))
	return err
}

func scopeNote(scope string) string {
	if scope == "" {
		return ""
	}
	return " for mail from " + clean(scope)
}

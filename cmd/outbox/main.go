// Command outbox composes, queues and delivers email.
//
//	outbox serve              run the daemon (HTTP API, SMTP submission, dashboard)
//	outbox send [flags]       compose a message; --print it, --direct send it, or submit it
//	outbox queue list|show|retry|cancel
//	outbox suppressions list|add|remove
//	outbox dkim keygen        make a DKIM key and its DNS record
//	outbox healthcheck [URL]  exit 0 when the daemon is ready
//	outbox version            print the version
//
// Every command and subcommand prints its flags with --help (or -h) on
// stdout and exits 0.
//
// Every command exits 0 on success and otherwise prints one clear line on
// stderr and exits non-zero.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"syscall"
)

// usageError marks errors caused by how the command was invoked.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Sprintf(format, args...)}
}

// command is one subcommand of outbox.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"serve", "run the daemon: HTTP API, SMTP submission, delivery", runServe},
		{"send", "compose a message and print, send or submit it", runSend},
		{"queue", "list, show, retry or cancel queued messages", runQueue},
		{"suppressions", "list, add or remove addresses of the suppression list", runSuppressions},
		{"dkim", "generate a DKIM key and the DNS record to publish", runDKIM},
		{"healthcheck", "exit 0 if a running daemon is ready (for container health checks)", runHealthcheck},
		{"version", "print the version, commit and Go version", runVersion},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	stopProfile := startProfile()
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stopProfile()
	stop()
	os.Exit(code)
}

// run executes the command line args and returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	switch {
	case len(args) == 0:
		printUsage(stderr)
		return 2
	case wantsHelp(args) && len(args) > 1 && !wantsHelp(args[1:]):
		// "outbox help queue list" is "outbox queue list --help".
		return run(ctx, append(slices.Clone(args[1:]), "--help"), stdout, stderr)
	case wantsHelp(args):
		printUsage(stdout)
		return 0
	case args[0] == "--version" || args[0] == "-version":
		return run(ctx, []string{"version"}, stdout, stderr)
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, args[1:], stdout, stderr)
		if err == nil {
			return 0
		}
		var help *helpRequest
		if errors.As(err, &help) {
			help.write(stdout)
			return 0
		}
		if errors.Is(err, errHelpShown) {
			return 0
		}
		fmt.Fprintf(stderr, "outbox %s: %v\n", c.name, err)
		var ue *usageError
		if errors.As(err, &ue) {
			return 2
		}
		var ec interface{ ExitCode() int } // e.g. 75 (EX_TEMPFAIL) from send --direct
		if errors.As(err, &ec) {
			return ec.ExitCode()
		}
		return 1
	}
	fmt.Fprintf(stderr, "outbox: unknown command %q (try 'outbox help')\n", args[0])
	return 2
}

// errHelpShown is returned by a command that printed its help on request.
var errHelpShown = errors.New("help shown")

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "usage: outbox <command> [flags]")
	fmt.Fprintln(w)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-12s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'outbox COMMAND --help' for a command's flags; 'outbox --version' for the version.")
}

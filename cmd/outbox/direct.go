package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode/utf8"

	"github.com/outbox-mail/outbox/smtp"
)

// directOptions is what 'outbox send --direct' needs to send one message now.
type directOptions struct {
	Relay      string   // --relay URL, e.g. smtp://user:pass@host:587?starttls=required
	Verbose    bool     // -v: print the redacted SMTP transcript to stderr
	From       string   // envelope sender
	Recipients []string // envelope recipients (to, cc and bcc)
	// Compose writes the complete RFC 5322 message; it may be called once.
	Compose func(w io.Writer) error
}

// sendDirect sends one message through the relay without a daemon. The
// message is streamed from Compose to the socket, never held in memory.
// On success it prints "delivered: <final reply>" to stdout; a failure
// returns an error carrying the server's reply.
func sendDirect(ctx context.Context, o directOptions, stdout, stderr io.Writer) error {
	if o.Relay == "" {
		return errors.New("--direct needs --relay smtp://[user:pass@]host[:port]")
	}
	if len(o.Recipients) == 0 {
		return errors.New("--direct needs at least one recipient")
	}
	relay, err := smtp.ParseRelayURL(o.Relay)
	if err != nil {
		return err
	}
	opts := relay.Options(&smtp.Options{LocalName: localName()})
	if o.Verbose {
		opts.Transcript = func(d smtp.Direction, line string) { fmt.Fprintf(stderr, "%s: %s\n", d, line) }
	}
	body, wait := startCompose(o.Compose)
	res, err := deliver(ctx, relay, opts, o, body)
	body.CloseWithError(errSendFinished)
	if cerr := wait(); cerr != nil {
		return fmt.Errorf("composing message: %w", cerr)
	}
	if err != nil && res == nil {
		return fmt.Errorf("relay %s: %w", relay, err)
	}
	return report(res, err, stdout)
}

// errSendFinished stops a Compose still writing when the send has ended.
var errSendFinished = errors.New("send finished")

// startCompose runs Compose into a pipe; wait returns Compose's error.
func startCompose(compose func(io.Writer) error) (*io.PipeReader, func() error) {
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := compose(pw)
		pw.CloseWithError(err)
		if errors.Is(err, errSendFinished) {
			err = nil // the send ended first; its error is the one to report
		}
		done <- err
	}()
	return pr, func() error { return <-done }
}

// deliver connects to the relay and sends one message, then QUIT.
func deliver(ctx context.Context, relay *smtp.Relay, opts *smtp.Options, o directOptions, body io.Reader) (*smtp.SendResult, error) {
	c, err := smtp.Dial(ctx, relay.Addr(), opts)
	if err != nil {
		return nil, err
	}
	env := &smtp.Envelope{From: o.From, Recipients: o.Recipients, UTF8: !isASCII(o.From)}
	for _, r := range o.Recipients {
		env.UTF8 = env.UTF8 || !isASCII(r)
	}
	return c.SendAndQuit(ctx, env, body)
}

// report prints the outcome and turns rejected recipients into an error.
func report(res *smtp.SendResult, err error, stdout io.Writer) error {
	if err == nil {
		fmt.Fprintf(stdout, "delivered: %s\n", res.Data)
	}
	var rejected []string
	for _, rr := range res.Recipients {
		if rr.Err != nil && !errors.Is(rr.Err, err) {
			rejected = append(rejected, rr.Err.Error())
		}
	}
	switch {
	case err != nil && errors.Is(err, smtp.ErrNoRecipients):
		return fmt.Errorf("not delivered: %s", strings.Join(rejected, "; "))
	case err != nil && len(rejected) > 0:
		return fmt.Errorf("not delivered: %v (and %s)", err, strings.Join(rejected, "; "))
	case err != nil:
		return fmt.Errorf("not delivered: %w", err)
	case len(rejected) > 0:
		return fmt.Errorf("not delivered to every recipient: %s", strings.Join(rejected, "; "))
	}
	return nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// localName is the name given in EHLO: the host name, or "localhost".
func localName() string {
	if h, err := os.Hostname(); err == nil && h != "" && !strings.ContainsAny(h, " \t\r\n") {
		return h
	}
	return "localhost"
}

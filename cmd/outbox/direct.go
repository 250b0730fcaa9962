package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode/utf8"

	"github.com/outbox-mail/outbox/smtp"
)

// Exit statuses of 'outbox send --direct' beyond 0 (every recipient
// delivered): exTempFail (sysexits.h EX_TEMPFAIL) when something was
// deferred and may go through later, exFailed when something failed for
// good. A permanent failure wins over a deferral: sending again cannot
// deliver the whole message.
const (
	exFailed   = 1
	exTempFail = 75
)

// exitError is an error that asks for its own exit status.
type exitError struct {
	status int
	err    error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// ExitCode is the status the command exits with.
func (e *exitError) ExitCode() int { return e.status }

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
// message is composed into an unlinked temporary file first, so that its
// exact size goes in SIZE= and a message that cannot be composed never
// opens a connection; it then streams from that file, never held in
// memory. On success it prints "delivered: <final reply>" to stdout; a
// failure returns an *exitError carrying the server's reply (or the local
// decision, worded as one).
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
	if relay.InsecureSkipVerify {
		fmt.Fprintf(stderr, "outbox send: warning: tls_verify=false: the certificate of %s is not verified\n", relay.Addr())
	}
	body, size, cleanup, err := spool(o.Compose)
	if err != nil {
		return fmt.Errorf("composing message: %w", err)
	}
	defer cleanup()
	opts := relay.Options(&smtp.Options{LocalName: localName()})
	if o.Verbose {
		opts.Transcript = func(d smtp.Direction, line string) { fmt.Fprintf(stderr, "%s: %s\n", d, line) }
	}
	c, err := smtp.Dial(ctx, relay.Addr(), opts)
	if err != nil {
		return &exitError{status: recipientStatus(err), err: fmt.Errorf("not delivered: relay %s: %w", relay, err)}
	}
	env := &smtp.Envelope{From: o.From, Recipients: o.Recipients, Size: size, UTF8: !isASCII(o.From)}
	for _, r := range o.Recipients {
		env.UTF8 = env.UTF8 || !isASCII(r)
	}
	res, err := c.SendAndQuit(ctx, env, body)
	return report(res, err, stdout)
}

// spool composes the message into a temporary file and returns it rewound,
// with its size. The file is unlinked at once where the system allows
// (its name is never seen again); cleanup closes and removes it.
func spool(compose func(io.Writer) error) (io.Reader, int64, func(), error) {
	f, err := os.CreateTemp("", "outbox-send-*.eml")
	if err != nil {
		return nil, 0, nil, err
	}
	name := f.Name()
	os.Remove(name)
	cleanup := func() { f.Close(); os.Remove(name) }
	bw := bufio.NewWriterSize(f, 64<<10)
	cw := &countingWriter{w: bw}
	err = compose(cw)
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		cleanup()
		return nil, 0, nil, err
	}
	return bufio.NewReaderSize(f, 64<<10), cw.n, cleanup, nil
}

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// report prints the outcome and turns every recipient not delivered into
// an *exitError whose status says whether trying again can help.
func report(res *smtp.SendResult, err error, stdout io.Writer) error {
	if err == nil {
		fmt.Fprintf(stdout, "delivered: %s\n", res.Data)
	}
	status := 0
	var rejected []string
	for _, rr := range res.Recipients {
		if rr.Err == nil {
			continue
		}
		if s := recipientStatus(rr.Err); s == exFailed || status == 0 {
			status = s
		}
		if !errors.Is(rr.Err, err) {
			rejected = append(rejected, rr.Err.Error())
		}
	}
	var msg error
	switch {
	case status == 0:
		return nil
	case err != nil && errors.Is(err, smtp.ErrNoRecipients):
		msg = fmt.Errorf("not delivered: %s", strings.Join(rejected, "; "))
	case err != nil && len(rejected) > 0:
		msg = fmt.Errorf("not delivered: %w (and %s)", err, strings.Join(rejected, "; "))
	case err != nil:
		msg = fmt.Errorf("not delivered: %w", err)
	default:
		msg = fmt.Errorf("not delivered to every recipient: %s", strings.Join(rejected, "; "))
	}
	if status == exTempFail {
		msg = fmt.Errorf("%w; temporary, try again later", msg)
	}
	return &exitError{status: status, err: msg}
}

// recipientStatus is the exit status a recipient's error asks for: a
// permanent reply (5xx, from the server or decided locally) fails;
// anything else (4xx, a lost connection) defers.
func recipientStatus(err error) int {
	var e *smtp.Error
	if errors.As(err, &e) && e.Permanent() {
		return exFailed
	}
	return exTempFail
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

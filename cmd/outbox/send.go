package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/outbox-mail/outbox/message"
)

// listFlag collects a repeatable flag's values in order.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ", ") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// sendOptions holds the flags of 'outbox send'.
type sendOptions struct {
	from, subject, text, textFile, html, htmlFile, relay string
	to, cc, bcc, replyTo, attach, inline, header         listFlag
	print, direct, verbose                               bool
	// For submission to the daemon.
	daemon                 daemonOptions
	idempotencyKey, sendAt string
	sendAtTime             time.Time // sendAt, parsed
}

func sendFlags(o *sendOptions) *flag.FlagSet {
	fs := flag.NewFlagSet("send", flag.ContinueOnError)
	// Errors are returned and printed once, as one line, by run.
	fs.SetOutput(io.Discard)
	fs.StringVar(&o.from, "from", "", "sender `address`")
	fs.Var(&o.to, "to", "recipient `addresses` (repeatable, comma-separated)")
	fs.Var(&o.cc, "cc", "carbon-copy `addresses` (repeatable, comma-separated)")
	fs.Var(&o.bcc, "bcc", "blind-copy `addresses`: envelope only (repeatable, comma-separated)")
	fs.Var(&o.replyTo, "reply-to", "reply-to `addresses` (repeatable, comma-separated)")
	fs.StringVar(&o.subject, "subject", "", "subject `text`")
	fs.StringVar(&o.text, "text", "", "the plain-text `body`")
	fs.StringVar(&o.textFile, "text-file", "", "read the plain-text body from `FILE`")
	fs.StringVar(&o.html, "html", "", "the HTML `body`")
	fs.StringVar(&o.htmlFile, "html-file", "", "read the HTML body from `FILE`")
	fs.Var(&o.attach, "attach", "attach `FILE` (repeatable)")
	fs.Var(&o.inline, "inline", "inline `FILE` for the HTML, as cid:<base name> (repeatable)")
	fs.Var(&o.header, "header", "extra header `'Name: value'` (repeatable)")
	fs.BoolVar(&o.print, "print", false, "write the composed message to stdout; send nothing")
	fs.BoolVar(&o.direct, "direct", false, "send now through --relay, without the daemon")
	fs.StringVar(&o.relay, "relay", "", "relay `URL` for --direct, e.g. smtp://user:pass@host:587")
	fs.BoolVar(&o.verbose, "v", false, "with --direct, print the SMTP transcript to stderr")
	o.daemon.register(fs)
	fs.StringVar(&o.idempotencyKey, "idempotency-key", "", "submitting again with the same `key` returns the first id")
	fs.StringVar(&o.sendAt, "send-at", "", "deliver no earlier than `TIME` (RFC 3339, e.g. 2026-01-02T15:04:05Z)")
	return fs
}

// runSend implements 'outbox send'. Everything that can be wrong with the
// input is found before the first byte goes to stdout, so a failed
// --print never leaves half a message behind.
func runSend(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var o sendOptions
	fs := sendFlags(&o)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			h := helpFor("send", fs)
			h.synopsis = "outbox send --from ADDR --to ADDR [flags]"
			return h
		}
		return usagef("%v", err)
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	if o.print && o.direct {
		return usagef("--print and --direct exclude each other")
	}
	if err := o.checkSubmitFlags(); err != nil {
		return err
	}
	m, closeFiles, err := o.message()
	defer closeFiles()
	if err != nil {
		return err
	}
	if err := m.Validate(); err != nil {
		return usagef("%s", flagError(err, m))
	}
	switch {
	case o.print:
		_, err := m.WriteTo(stdout)
		return err
	case o.direct:
		from, rcpts := m.Envelope()
		return sendDirect(ctx, directOptions{
			Relay: o.relay, Verbose: o.verbose, From: from, Recipients: rcpts,
			Compose: func(w io.Writer) error { _, err := m.WriteTo(w); return err },
		}, stdout, stderr)
	}
	return o.submit(ctx, m, stdout)
}

// checkSubmitFlags rejects flags that only a submission to the daemon
// can honour when the message goes elsewhere, and a malformed --send-at.
func (o *sendOptions) checkSubmitFlags() error {
	if (o.print || o.direct) && (o.sendAt != "" || o.idempotencyKey != "") {
		return usagef("--send-at and --idempotency-key need the daemon; drop --print or --direct")
	}
	if o.sendAt == "" {
		return nil
	}
	t, err := time.Parse(time.RFC3339, o.sendAt)
	if err != nil {
		return usagef("--send-at %q: want an RFC 3339 time such as 2026-01-02T15:04:05Z", o.sendAt)
	}
	o.sendAtTime = t
	return nil
}

// submit hands the composed message to the daemon and prints its id.
func (o *sendOptions) submit(ctx context.Context, m *message.Message, stdout io.Writer) error {
	c, err := o.daemon.client()
	if err != nil {
		return err
	}
	from, rcpts := m.Envelope()
	id, err := c.submit(ctx, submission{
		from: from, to: rcpts, sendAt: o.sendAtTime, idempotencyKey: o.idempotencyKey,
		compose: func(w io.Writer) error { _, err := m.WriteTo(w); return err },
	})
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, clean(id))
	return err
}

// message builds the Message from the flags, opening every file it
// names. closeFiles must be called whatever the error.
func (o *sendOptions) message() (m *message.Message, closeFiles func(), err error) {
	var files []*os.File
	closeFiles = func() {
		for _, f := range files {
			f.Close()
		}
	}
	m = &message.Message{Subject: o.subject}
	if m.From, err = message.ParseAddress(o.from); err != nil {
		if o.from == "" {
			return nil, closeFiles, usagef("--from is required")
		}
		return nil, closeFiles, usagef("--from: %v", err)
	}
	for _, l := range []struct {
		name string
		vals listFlag
		dst  *[]message.Address
	}{{"to", o.to, &m.To}, {"cc", o.cc, &m.Cc}, {"bcc", o.bcc, &m.Bcc}, {"reply-to", o.replyTo, &m.ReplyTo}} {
		for _, v := range l.vals {
			as, err := message.ParseAddressList(v)
			if err != nil {
				return nil, closeFiles, usagef("--%s: %v", l.name, err)
			}
			*l.dst = append(*l.dst, as...)
		}
	}
	if m.Text, err = body("text", o.text, o.textFile); err != nil {
		return nil, closeFiles, err
	}
	if m.HTML, err = body("html", o.html, o.htmlFile); err != nil {
		return nil, closeFiles, err
	}
	for _, h := range o.header {
		name, value, ok := strings.Cut(h, ":")
		if !ok {
			return nil, closeFiles, usagef("--header %q: want 'Name: value'", h)
		}
		m.Headers = append(m.Headers, [2]string{name, strings.TrimLeft(value, " \t")})
	}
	for _, att := range []struct {
		paths  listFlag
		inline bool
	}{{o.attach, false}, {o.inline, true}} {
		for _, path := range att.paths {
			a, f, err := attachment(path, att.inline)
			if err != nil {
				return nil, closeFiles, err
			}
			files = append(files, f)
			m.Attachments = append(m.Attachments, a)
		}
	}
	return m, closeFiles, nil
}

// attachment opens path as an attachment; an inline one gets its base
// name as Content-ID, so the HTML can say cid:logo.png.
func attachment(path string, inline bool) (message.Attachment, *os.File, error) {
	f, err := openRegular(path)
	if err != nil {
		return message.Attachment{}, nil, err
	}
	a := message.Attachment{Filename: filepath.Base(path), Content: f, Inline: inline}
	if inline {
		a.ContentID = a.Filename
	}
	return a, f, nil
}

// body returns the text given inline or read from file; both is an error.
func body(name, inline, file string) (string, error) {
	if file == "" {
		return inline, nil
	}
	if inline != "" {
		return "", usagef("--%s and --%s-file exclude each other", name, name)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("--%s-file: %w", name, err)
	}
	return string(b), nil
}

// openRegular opens an attachment, refusing what cannot be read as one
// (directories, missing files) before anything is composed.
func openRegular(path string) (*os.File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err == nil && st.IsDir() {
		err = fmt.Errorf("%s is a directory", path)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// flagError words a validation error in terms of the flags the user typed
// rather than the Message fields they were copied into.
func flagError(err error, m *message.Message) string {
	var fe *message.FieldError
	if !errors.As(err, &fe) {
		return err.Error()
	}
	name, idx, _ := strings.Cut(fe.Field, "[")
	switch name {
	case "attachments":
		var i int
		fmt.Sscanf(idx, "%d]", &i)
		if i >= 0 && i < len(m.Attachments) {
			return fmt.Sprintf("attachment %q: %v", m.Attachments[i].Filename, fe.Err)
		}
	case "headers":
		name = "header"
	case "reply_to":
		name = "reply-to"
	case "message_id":
		return err.Error()
	}
	if idx != "" {
		return fmt.Sprintf("--%s[%s: %v", name, idx, fe.Err)
	}
	return fmt.Sprintf("--%s: %v", name, fe.Err)
}

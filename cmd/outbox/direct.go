package main

import (
	"context"
	"errors"
	"io"
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

// sendDirect sends one message through the relay without a daemon.
// (Being written for issue 3.)
func sendDirect(ctx context.Context, o directOptions, stdout, stderr io.Writer) error {
	return errors.New("--direct is not implemented yet")
}

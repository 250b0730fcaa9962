package smtp

import "strconv"

// Direction tells which side sent a transcript line.
type Direction int

const (
	// Sent is a line the client sent.
	Sent Direction = iota
	// Received is a line the server sent.
	Received
	// Note is the client's own remark, not on the wire: how TLS went,
	// a fallback to plain text, a dead pooled connection replaced.
	Note
)

// String returns "C" for Sent, "S" for Received and "*" for Note.
func (d Direction) String() string {
	switch d {
	case Sent:
		return "C"
	case Note:
		return "*"
	}
	return "S"
}

// Transcript receives each line of a session, without its line ending.
// Credentials are replaced by "***" and message bodies are summarised as
// "[body N bytes]".
type Transcript func(dir Direction, line string)

// redacted is the text shown in place of a secret.
const redacted = "***"

// bodySummary is the transcript line standing for n bytes of message body.
func bodySummary(n int64) string {
	return "[body " + strconv.FormatInt(n, 10) + " bytes]"
}

// tracing reports whether any transcript hook is installed, so that a
// line that costs something to build is built only when someone reads it.
func (c *Client) tracing() bool { return c.opts.Transcript != nil || c.extraTrace != nil }

// trace sends a line to the configured transcript hooks.
func (c *Client) trace(dir Direction, line string) {
	if c.opts.Transcript != nil {
		c.opts.Transcript(dir, line)
	}
	if c.extraTrace != nil {
		c.extraTrace(dir, line)
	}
}

// SetTranscript installs an additional transcript hook (nil removes it),
// beside Options.Transcript; a pool uses it for per-message transcripts.
func (c *Client) SetTranscript(t Transcript) { c.extraTrace = t }

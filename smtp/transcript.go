package smtp

import "strconv"

// Direction tells which side sent a transcript line.
type Direction int

const (
	// Sent is a line the client sent.
	Sent Direction = iota
	// Received is a line the server sent.
	Received
)

// String returns "C" for Sent and "S" for Received.
func (d Direction) String() string {
	if d == Sent {
		return "C"
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

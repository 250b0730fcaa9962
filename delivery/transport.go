// Package delivery is the engine that takes due messages from a queue
// store and delivers them. Each recipient is routed (package route) to a
// destination: a relay, or the MX host set of its domain. A destination
// has its own connection pool, concurrency limit, optional rate limit and
// health, so one slow or failing site holds only its own connections
// while the rest flow; a global cap bounds connections in all. Replies
// are classified per recipient, results are committed in batches behind
// the senders, and deferred mail is retried at its scheduled time.
package delivery

import (
	"context"
	"io"
	"time"
)

// Envelope is what a transport needs besides the body to deliver a message.
type Envelope struct {
	// MessageID is the queue id, for logs and transcripts.
	MessageID string
	// From is the envelope sender; empty for the null sender.
	From string
	// Recipients are the recipients still open for this attempt.
	Recipients []string
	// Size is the body size in octets, 0 when unknown.
	Size int64
	// EightBit asks for BODY=8BITMIME; UTF8 for SMTPUTF8.
	EightBit, UTF8 bool
	// DSN parameters (RFC 3461), passed to servers that offer DSN: RET,
	// ENVID, and by recipient index NOTIFY and ORCPT (shorter or nil when
	// the later recipients ask for nothing).
	DSNReturn string
	EnvID     string
	Notify    [][]string
	ORcpt     []string
	// Downgrade converts the body to 7-bit MIME for a server without
	// 8BITMIME (smtp.SendOptions.Downgrade); nil refuses such a send.
	Downgrade func(body io.Reader) (io.Reader, error)
}

// Reply is an SMTP reply as far as delivery cares: code, enhanced status
// code (e.g. "5.1.1") and text. Code 0 means no reply was received.
type Reply struct {
	Code         int
	EnhancedCode string
	Text         string
	// Soft makes even a 5xx reply defer rather than fail: it was about the
	// session with the relay (greeting, EHLO, STARTTLS, AUTH), not about
	// this message, and mending the relay's configuration should let the
	// mail through (Postfix's smtp_sasl_auth_soft_bounce).
	Soft bool
	// Refused says the reply refused the recipient's address itself (at
	// RCPT TO, or DNS found its domain takes no mail), not the message:
	// a 5xx of that kind is a hard bounce, and the store suppresses the
	// address.
	Refused bool
}

// RecipientReply is the reply that decided one recipient's fate: the RCPT
// reply when it refused the recipient, otherwise the reply to the message
// data.
type RecipientReply struct {
	Address string
	Reply
}

// Outcome is what one delivery attempt produced.
type Outcome struct {
	// Recipients holds a reply for every recipient the transport heard
	// about; a recipient missing here is deferred with Err as its reason.
	Recipients []RecipientReply
	// Err is a connection-level or message-level failure, nil otherwise.
	Err error
	// Transcript is the redacted protocol conversation, if recorded.
	Transcript string
	// Server names the host that answered, for logs: its name and its
	// "ip:port"; empty when no connection was made.
	Server, ServerAddr string
	// RetryAfter, when set, is the earliest time a deferred recipient
	// should be tried again (a destination backed off until then).
	RetryAfter time.Time
}

// Transport delivers one message body to its recipients. Implementations
// must be safe for concurrent use; a transport that keeps connections (the
// SMTP relay) reuses them across calls of the same route.
type Transport interface {
	// Route names where messages go, e.g. "relay:smtp.example.com:587".
	Route() string
	// Deliver streams body to the envelope's recipients. It never reports
	// a recipient accepted that the server did not acknowledge.
	Deliver(ctx context.Context, env Envelope, body io.Reader) Outcome
}

// Capture is the transport of a first run: it sends nothing over the
// network and accepts every recipient, so the message stays in the store,
// marked delivered, where the API and dashboard can show it.
type Capture struct{}

// Route returns "capture".
func (Capture) Route() string { return "capture" }

// Deliver reads the body through, to prove it is intact in the store, and
// accepts every recipient.
func (Capture) Deliver(ctx context.Context, env Envelope, body io.Reader) Outcome {
	if _, err := io.Copy(io.Discard, body); err != nil {
		return Outcome{Err: err}
	}
	out := Outcome{Recipients: make([]RecipientReply, len(env.Recipients))}
	for i, rcpt := range env.Recipients {
		out.Recipients[i] = RecipientReply{Address: rcpt, Reply: Reply{
			Code: 250, EnhancedCode: "2.0.0", Text: "captured"}}
	}
	return out
}

package smtp

import (
	"errors"
	"fmt"
	"net"
)

// ErrConnection matches (with errors.Is) every connection-level failure:
// network errors, timeouts, cancellation and replies that break the
// protocol. After one, recipients not yet acknowledged must be deferred.
var ErrConnection = errors.New("smtp: connection failure")

// ErrNoRecipients is returned (wrapped) by Send when every recipient was
// rejected at RCPT; the per-recipient results carry each reply.
var ErrNoRecipients = errors.New("smtp: every recipient was rejected")

// ErrClientClosed is the cause of a *ConnError for a Client that was
// closed or broken by an earlier failure.
var ErrClientClosed = errors.New("client is closed")

// Error is a negative reply from the server (or a check made locally with
// the same meaning, when Local is set).
type Error struct {
	Command      string       // the command rejected, e.g. "RCPT TO:<x@y>"
	Code         int          // reply code, e.g. 550
	EnhancedCode EnhancedCode // RFC 3463 code, zero when none
	Message      string       // reply text
	Local        bool         // true when the client decided without asking the server
}

// Error reads like "smtp: RCPT TO:<x@y> rejected: 550 5.1.1 user unknown"
// for a server's reply. A local decision never reads as a reply: "smtp:
// STARTTLS: policy requires STARTTLS; the server does not offer it
// (decided locally, 454 4.7.0)".
func (e *Error) Error() string {
	code := fmt.Sprint(e.Code)
	if !e.EnhancedCode.IsZero() {
		code += " " + e.EnhancedCode.String()
	}
	if e.Local {
		return fmt.Sprintf("smtp: %s: %s (decided locally, %s)", e.Command, e.Message, code)
	}
	s := fmt.Sprintf("smtp: %s rejected: %s", e.Command, code)
	if e.Message != "" {
		s += " " + e.Message
	}
	return s
}

// Temporary reports whether the reply is a transient (4xx) failure.
func (e *Error) Temporary() bool { return e.Code >= 400 && e.Code < 500 }

// Permanent reports whether the reply is a permanent (5xx) failure.
func (e *Error) Permanent() bool { return e.Code >= 500 }

// replyError turns a reply to cmd into an *Error.
func replyError(cmd string, r *Reply) *Error {
	return &Error{Command: cmd, Code: r.Code, EnhancedCode: r.EnhancedCode, Message: r.Message()}
}

// ConnError is a connection-level failure: the network failed, a deadline
// passed, the context was cancelled, the server broke the protocol or
// closed the session with 421. errors.Is(err, ErrConnection) is true for
// it. When a reply (421) or a TLS verdict ended the session, Err is that
// *Error, so errors.As finds its code too.
type ConnError struct {
	Stage string // what the client was doing, e.g. "DATA", "greeting"
	Err   error  // the underlying cause
}

// Error reads like "smtp: connection failed during RCPT: i/o timeout".
func (e *ConnError) Error() string {
	return fmt.Sprintf("smtp: connection failed during %s: %v", e.Stage, e.Err)
}

// Unwrap returns the cause.
func (e *ConnError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrConnection) true.
func (e *ConnError) Is(target error) bool { return target == ErrConnection }

// Timeout reports whether the failure was a deadline being reached.
func (e *ConnError) Timeout() bool {
	var ne net.Error
	return errors.As(e.Err, &ne) && ne.Timeout()
}

// Temporary is always true: a connection failure defers delivery.
func (e *ConnError) Temporary() bool { return true }

package bounce

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Kind says what sort of report a message is.
type Kind string

// Report kinds.
const (
	// KindDSN is a delivery status notification (RFC 3464):
	// multipart/report; report-type=delivery-status.
	KindDSN Kind = "delivery-status"
	// KindFeedback is a complaint (ARF, RFC 5965):
	// multipart/report; report-type=feedback-report.
	KindFeedback Kind = "feedback-report"
	// KindNonStandard is a plain-text bounce from a mailer daemon that
	// does not send DSNs (qmail and the like): one Recipient read off the
	// text, with the status and the line it came from. Its
	// FinalRecipient may be empty; the VERP address it came to names the
	// recipient anyway.
	KindNonStandard Kind = "non-standard"
)

// Action is what a reporting MTA did with a recipient (RFC 3464 §2.3.3),
// lowercase. Values other than the five below are kept as they came.
type Action string

// DSN actions.
const (
	ActionFailed    Action = "failed"
	ActionDelayed   Action = "delayed"
	ActionDelivered Action = "delivered"
	ActionRelayed   Action = "relayed"
	ActionExpanded  Action = "expanded"
)

// Report is what Parse found in one incoming report.
type Report struct {
	Kind Kind
	// ReportingMTA is the MTA that wrote the report ("dns;" removed).
	ReportingMTA string
	// EnvelopeID is the DSN's Original-Envelope-Id: the ENVID given at
	// MAIL FROM, as the report wrote it.
	EnvelopeID string
	// Recipients are the DSN's per-recipient groups, in order (one for a
	// non-standard bounce, none for a feedback report).
	Recipients []Recipient
	// Feedback is the ARF report's machine-readable part.
	Feedback *Feedback
	// Original holds fields of the returned message (or its header),
	// when the report included it.
	Original Original
}

// Recipient is one per-recipient group of a DSN.
type Recipient struct {
	FinalRecipient    string // the address, its type ("rfc822;") removed
	OriginalRecipient string // from ORCPT, when given
	Action            Action
	Status            string // the status code, e.g. "5.1.1"; "" if absent or unreadable
	DiagnosticCode    string // e.g. "550 5.1.1 <bob@example.net>: no such user" (type removed)
	RemoteMTA         string // "dns;" removed
}

// Permanent reports whether the recipient failed for good: Action failed
// with a 5.x.x status. A failed recipient with a 4.x.x status (the MTA
// gave up retrying) bounced, but the address may well work later.
func (r *Recipient) Permanent() bool {
	return r.Action == ActionFailed && strings.HasPrefix(r.Status, "5.")
}

// Feedback is the machine-readable part of an ARF report (RFC 5965 §3.1).
type Feedback struct {
	Type             string   // Feedback-Type, lowercase: abuse, fraud, virus, other, not-spam…
	UserAgent        string   // User-Agent of the reporting system
	Version          string   // Version (1)
	OriginalMailFrom string   // Original-Mail-From: the envelope sender
	OriginalRcptTo   []string // Original-Rcpt-To: who complained, when told
	ArrivalDate      string
	SourceIP         string
	ReportingMTA     string
}

// Original is what a report says of the message it is about, read from
// the returned message or its header.
type Original struct {
	MessageID  string // Message-ID, brackets kept
	ReturnPath string // Return-Path as the receiver recorded it (often our VERP address), brackets removed
	From       string // From, unfolded, undecoded
}

// Parse errors. Parse returns an error wrapping one of them.
var (
	// ErrTooLarge: the report is larger than the limit given to Parse.
	ErrTooLarge = errors.New("bounce: report too large")
	// ErrNotReport: a well-formed message that is neither a DSN, nor an
	// ARF report, nor a recognisable bounce (an automatic reply, a
	// read receipt, spam to the bounce address…).
	ErrNotReport = errors.New("bounce: not a delivery or feedback report")
	// ErrMalformed: a report that cannot be read: broken or truncated
	// MIME, a missing or empty status part, garbage.
	ErrMalformed = errors.New("bounce: malformed report")
)

// DefaultMaxSize is the limit Parse applies when given none: what a DSN
// returning the original's header, or a short original, needs.
const DefaultMaxSize = 2 << 20

// Parse reads one report message (header and body, as received) from r,
// reading at most maxSize bytes (DefaultMaxSize if maxSize <= 0). It
// streams: the returned message and the human-readable parts are read
// past, not kept, so its memory does not grow with the size of the
// report.
func Parse(r io.Reader, maxSize int64) (*Report, error) {
	if maxSize <= 0 {
		maxSize = DefaultMaxSize
	}
	lr := &limitReader{r: r, left: maxSize}
	p := &parser{lr: lr}
	rep, err := p.parse(bufio.NewReaderSize(lr, 16<<10))
	if lr.over {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, maxSize)
	}
	if lr.err != nil {
		return nil, fmt.Errorf("bounce: reading the report: %w", lr.err)
	}
	if err != nil {
		return nil, err
	}
	return rep, nil
}

// limitReader fails with ErrTooLarge past its limit, so that a report cut
// off by the limit is never mistaken for a truncated one.
type limitReader struct {
	r    io.Reader
	left int64
	over bool
	err  error // the source's error, other than io.EOF
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.left <= 0 {
		// One byte more tells a report of exactly the limit from a longer one.
		var one [1]byte
		n, err := l.r.Read(one[:])
		if n > 0 {
			l.over = true
			return 0, ErrTooLarge
		}
		if err != nil && err != io.EOF && l.err == nil {
			l.err = err
		}
		return 0, err
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	if err != nil && err != io.EOF && l.err == nil {
		l.err = err
	}
	return n, err
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
}

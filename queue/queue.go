// Package queue is the durable mail queue: its types, the role interfaces
// its consumers take, and Queue, the one implementation of its rules (status
// transitions, lease fencing, retry, requeue and cancel, result recording,
// the webhook event queue, suppressions, validation and defaults) above a
// small per-database Driver whose methods are each one statement, or one
// batch, in that database's dialect (queue/sqlite, queue/postgres).
//
// A message is accepted only once the driver has committed it, body and
// all, to durable storage. Delivery workers claim due messages under a
// lease, send them, and report per-recipient results back in batches; the
// node that accepts fresh mail may write it already leased to itself
// (EnqueueLeased), so that such a message costs one write.
package queue

import (
	"errors"
	"io"
	"time"
)

// DefaultLifetime is how long delivery is tried when a message gives no
// ExpiresAt (Postfix's maximal_queue_lifetime is 5 days). It is defined
// here only; Options.Lifetime overrides it per store.
const DefaultLifetime = 120 * time.Hour

// Status is the state of a whole message.
type Status string

// Message statuses. A message is final once no recipient is left pending or
// deferred: delivered, partial, failed or cancelled.
const (
	StatusQueued    Status = "queued"
	StatusSending   Status = "sending"
	StatusDeferred  Status = "deferred"
	StatusDelivered Status = "delivered"
	StatusPartial   Status = "partial"
	StatusFailed    Status = "failed"
	StatusCancelled Status = "cancelled"
)

// Statuses lists every message status, waiting ones first.
var Statuses = []Status{StatusQueued, StatusSending, StatusDeferred, StatusDelivered,
	StatusPartial, StatusFailed, StatusCancelled}

// FinalStatuses lists the statuses of messages no attempt will be made for.
var FinalStatuses = []Status{StatusDelivered, StatusPartial, StatusFailed, StatusCancelled}

// Final reports whether no further delivery attempt will be made.
func (s Status) Final() bool {
	switch s {
	case StatusDelivered, StatusPartial, StatusFailed, StatusCancelled:
		return true
	}
	return false
}

// Valid reports whether s is one of the defined statuses.
func (s Status) Valid() bool {
	switch s {
	case StatusQueued, StatusSending, StatusDeferred, StatusDelivered,
		StatusPartial, StatusFailed, StatusCancelled:
		return true
	}
	return false
}

// RecipientStatus is the state of one recipient of a message.
type RecipientStatus string

// Recipient statuses. Bounced and suppressed count as failed when a
// message's status is derived (see Summarize).
const (
	RecipientPending   RecipientStatus = "pending"
	RecipientDelivered RecipientStatus = "delivered"
	RecipientDeferred  RecipientStatus = "deferred"
	RecipientFailed    RecipientStatus = "failed"
	// RecipientBounced: the next hop accepted the message, then a DSN
	// reported that delivery failed.
	RecipientBounced RecipientStatus = "bounced"
	// RecipientSuppressed: never sent, because the address was on the
	// suppression list when the message was accepted.
	RecipientSuppressed RecipientStatus = "suppressed"
)

// Open reports whether the recipient still waits for delivery.
func (s RecipientStatus) Open() bool {
	return s == RecipientPending || s == RecipientDeferred
}

// Undelivered reports whether the recipient ended without its mail
// arriving: failed, bounced or suppressed.
func (s RecipientStatus) Undelivered() bool {
	return s == RecipientFailed || s == RecipientBounced || s == RecipientSuppressed
}

// Source is where a message came from: a closed set, so that it can label
// metrics without a user's input choosing the label.
type Source string

// Message sources.
const (
	SourceLibrary Source = "library" // Enqueue from Go code (the default)
	SourceAPI     Source = "api"     // the HTTP JSON API
	SourceSMTP    Source = "smtp"    // the SMTP submission listener
	SourceCLI     Source = "cli"     // the command line, sending direct
)

// Valid reports whether s is one of the defined sources.
func (s Source) Valid() bool {
	switch s {
	case SourceLibrary, SourceAPI, SourceSMTP, SourceCLI:
		return true
	}
	return false
}

// DSNReturn is the RFC 3461 RET parameter: how much of the message a
// failure DSN should return.
type DSNReturn string

// RET values; empty leaves it to the server.
const (
	DSNReturnFull    DSNReturn = "FULL"
	DSNReturnHeaders DSNReturn = "HDRS"
)

// DSN holds a message's RFC 3461 parameters for MAIL FROM.
type DSN struct {
	Return DSNReturn // RET
	EnvID  string    // ENVID, as plain text; the SMTP client xtext-encodes it
}

// RecipientDSN holds one recipient's RFC 3461 parameters for RCPT TO.
type RecipientDSN struct {
	// Notify is the NOTIFY keywords, e.g. ["FAILURE", "DELAY"] or
	// ["NEVER"]; empty leaves it to the server.
	Notify []string
	// ORcpt is the original recipient address (ORCPT=rfc822;…), if any.
	ORcpt string
}

// Flags are a message's typed delivery flags, stored with it and given
// back on every claim, so no free-form tag can switch one on.
type Flags struct {
	// EightBit: the body is 8-bit MIME (BODY=8BITMIME).
	EightBit bool
	// SMTPUTF8: addresses or headers need SMTPUTF8.
	SMTPUTF8 bool
	// DSN holds RET and ENVID.
	DSN DSN
	// IgnoreSuppressions sends to every recipient, even those on the
	// suppression list (a password reset the user asked for).
	IgnoreSuppressions bool
	// Unsubscribe asks delivery to put one-click unsubscribe fields
	// (RFC 2369 List-Unsubscribe, RFC 8058 List-Unsubscribe-Post) naming
	// each recipient before the stored message: one recipient per
	// transaction, since each gets its own link.
	Unsubscribe bool
	// LongLines: the body has a line over 998 octets (RFC 5322 §2.1.1),
	// which delivery re-encodes (quoted-printable) before sending. The
	// store finds it as the body streams in, whatever the producer said.
	LongLines bool
}

// NewMessage is what a producer hands to Enqueue.
type NewMessage struct {
	// From is the envelope sender (MAIL FROM); empty for a null sender.
	From string
	// Recipients are the envelope recipients (RCPT TO), at least one.
	Recipients []string
	// RecipientDSN, when not empty, holds one entry per Recipients entry:
	// its NOTIFY and ORCPT.
	RecipientDSN []RecipientDSN
	// Subject is kept for listing and search only; the body is authoritative.
	Subject string
	// Body is the complete RFC 5322 message. It is streamed into the store
	// and never held whole in memory (a body of at most one chunk is).
	Body io.Reader
	// SendAt delays the first attempt; zero means now.
	SendAt time.Time
	// ExpiresAt is when delivery is given up; zero means the store's
	// lifetime from the first attempt's time.
	ExpiresAt time.Time
	// IdempotencyKey, when set, makes a second enqueue with the same key
	// return the first message's id and store nothing.
	IdempotencyKey string
	// Source says where the message came from; empty means SourceLibrary.
	Source Source
	// Flags are the delivery flags (8-bit body, SMTPUTF8, DSN, suppressions).
	Flags
	// Repairs names what submission added to the message it was given,
	// e.g. "date", "message-id", "header-block".
	Repairs []string
	// CheckLongLines, when set, is run over the spooled body of a message
	// that has a line over 998 octets, before anything is committed; its
	// error refuses the message (submission refuses a long line that no
	// re-encoding could mend, one in a header). Other bodies skip it.
	CheckLongLines func(body io.Reader) error
	// Tags are the user's free-form labels, kept with the message and
	// shown back; nothing in outbox acts on them.
	Tags map[string]string
}

// Message is a stored message with its recipients.
type Message struct {
	ID             string
	From           string
	Subject        string
	Status         Status
	Size           int64
	Attempts       int
	IdempotencyKey string
	Source         Source
	Flags
	Repairs   []string
	Tags      map[string]string
	CreatedAt time.Time
	UpdatedAt time.Time
	// NextAttemptAt is when the message is next due; zero once final.
	NextAttemptAt time.Time
	ExpiresAt     time.Time
	Recipients    []Recipient
	// Mailboxes are the From, To and Cc mailboxes of the message's own
	// header, with their display names, read when the message is indexed
	// for search (a moment after it is accepted); empty until then. Get
	// and List fill them; a claim does not.
	Mailboxes []Mailbox
}

// Recipient is one envelope recipient and what became of it.
type Recipient struct {
	// Idx is the recipient's position in the message's recipient list as
	// it was enqueued (a VERP return path names it).
	Idx     int
	Address string
	Status  RecipientStatus
	DSN     RecipientDSN
	// Attempts counts the attempts that reported on this recipient.
	Attempts int
	// Code, EnhancedCode and Text are the last SMTP reply for this
	// recipient (Code 0 when no reply was received, e.g. connection lost),
	// or a bounce's diagnostic once bounced.
	Code          int
	EnhancedCode  string
	Text          string
	LastAttemptAt time.Time
}

// Attempt is the record of one delivery attempt of a message. A
// successful attempt keeps its summary (route, host, reply, times); its
// transcript is kept as the store's TranscriptPolicy says.
type Attempt struct {
	Number     int
	StartedAt  time.Time
	FinishedAt time.Time
	// Route names the transport used, e.g. "relay:smtp.example.com:587".
	Route string
	// Host is the server that answered, e.g. "mx1.example.org:25".
	Host string
	// Reply is the attempt's last SMTP reply, e.g. "250 2.0.0 Ok: queued".
	Reply string
	// Error summarises a connection-level failure, empty otherwise.
	Error string
	// Transcript is the redacted SMTP conversation, possibly truncated.
	Transcript string
	// KeepTranscript keeps Transcript whatever the store's policy (short of
	// TranscriptsOff): a transcript someone asked for.
	KeepTranscript bool
}

// Claimed is a message a worker holds under a lease. Recipients holds only
// the recipients still open (pending or deferred).
type Claimed struct {
	Message
	// LeaseExpiresAt is when the claim lapses unless renewed.
	LeaseExpiresAt time.Time
}

// Enqueued is what EnqueueLeased returns.
type Enqueued struct {
	// ID is the message's id (an earlier message's, for a repeated
	// idempotency key).
	ID string
	// Claimed is the message as Claim would have returned it, leased to
	// the owner asked for; nil when it was not leased: scheduled for
	// later, final at once (every recipient suppressed), or an earlier
	// message returned for its idempotency key.
	Claimed *Claimed
	// Body is the message's body when the store held it in memory (a body
	// of at most one chunk), nil otherwise: read it with OpenBody. It is
	// the caller's.
	Body []byte
}

// RecipientResult is the outcome of one attempt for one recipient.
type RecipientResult struct {
	Address      string
	Status       RecipientStatus // delivered, deferred or failed
	Code         int
	EnhancedCode string
	Text         string
	// Refused says the next hop refused the address itself rather than
	// the message: the reply to RCPT TO, or DNS saying the domain takes no
	// mail. A failed recipient refused with a hard bounce's code (5.1.x,
	// for one) is added to the suppression list by Complete.
	Refused bool
}

// Result is the outcome of one delivery attempt of a claimed message.
type Result struct {
	MessageID  string
	Recipients []RecipientResult
	// NextAttemptAt applies when any recipient is deferred.
	NextAttemptAt time.Time
	// Attempt describes the attempt. Its Number, when not zero, must be the
	// claim's Attempts: it fences off a stale attempt of the same owner
	// whose lease lapsed and whose message was claimed again.
	Attempt Attempt
	// Events are webhook notifications of this result, recorded in the
	// same transaction so none is lost or invented by a crash.
	Events []NewEvent
}

// NewEvent is a notification for one webhook endpoint, kept in the store
// until it has been delivered, so events survive restarts.
type NewEvent struct {
	// Endpoint is the URL the event is POSTed to.
	Endpoint string
	// Type is what happened: "delivered", "deferred", "failed",
	// "cancelled", "bounced", …
	Type      string
	MessageID string
	// Payload is the JSON body to POST.
	Payload []byte
}

// Event is a stored webhook notification.
type Event struct {
	ID string
	NewEvent
	// Attempts counts delivery attempts, including the current claim.
	Attempts      int
	CreatedAt     time.Time
	NextAttemptAt time.Time
	LastError     string
}

// HistoryType is the kind of a recipient history event.
type HistoryType string

// History event types: what was learnt about a recipient after an attempt.
const (
	// HistoryBounced: a DSN reported that delivery failed after the next
	// hop had accepted the message; the recipient becomes bounced.
	HistoryBounced HistoryType = "bounced"
	// HistoryDelayed: a DSN reported that delivery is delayed downstream.
	HistoryDelayed HistoryType = "delayed"
	// HistoryComplained: the recipient reported the message as spam (ARF).
	HistoryComplained HistoryType = "complained"
)

// Valid reports whether t is a defined history type.
func (t HistoryType) Valid() bool {
	return t == HistoryBounced || t == HistoryDelayed || t == HistoryComplained
}

// RecipientEvent is something learnt about one recipient of a message
// after it was sent: a bounce, a delay notice, a complaint.
type RecipientEvent struct {
	MessageID string
	Address   string
	Type      HistoryType
	// Code, EnhancedCode and Text are the diagnostic, e.g. a DSN's
	// Diagnostic-Code and Status.
	Code         int
	EnhancedCode string
	Text         string
	// At is when it happened (zero: now).
	At time.Time
}

// Suppression is an address the sender must not mail (again).
type Suppression struct {
	// Address is the suppressed address, compared without regard to case.
	Address string
	// Scope limits the suppression to senders of one domain (e.g.
	// "shop.example"); empty suppresses the address for every sender.
	Scope string
	// Reason is a human-readable why, e.g. a bounce's diagnostic.
	Reason string
	// Cause is the event that caused it: "bounced", "complained",
	// "unsubscribed" or "manual".
	Cause string
	// MessageID names the message whose event caused it, if any.
	MessageID string
	CreatedAt time.Time
	// ExpiresAt ends the suppression; zero keeps it until removed.
	ExpiresAt time.Time
}

// SuppressionFilter selects suppressions for Suppressions.
type SuppressionFilter struct {
	// Address, when set, keeps entries whose address contains it.
	Address string
	// Limit bounds the page size; zero means 50, at most 1000.
	Limit int
	// Cursor continues a previous listing (from SuppressionPage.Next).
	Cursor string
}

// SuppressionPage is one page of the suppression list, by address.
type SuppressionPage struct {
	Suppressions []Suppression
	// Next is the cursor for the following page, empty on the last one.
	Next string
}

// Filter selects messages for List.
type Filter struct {
	Status    Status // empty: any
	Recipient string // substring match on a recipient address
	From      string // substring match on the envelope sender
	Subject   string // substring match
	// Search holds words to find in the subject, the envelope's and the
	// header's addresses (display names included), the text of the body
	// and the attachments' names: a message matches when it has each
	// word, case and accents aside, the last one also as the start of a
	// longer word (see SearchTerms). Messages are found once indexed, a
	// moment after they are accepted.
	Search string
	Since  time.Time
	Until  time.Time
	// Limit bounds the page size; zero means 50, at most 1000.
	Limit int
	// Cursor continues a previous listing (opaque, from ListPage.Next).
	Cursor string
}

// ListPage is one page of a listing, newest first.
type ListPage struct {
	Messages []Message
	// Next is the cursor for the following page, empty on the last one.
	Next string
}

// DeleteFilter selects final messages for DeleteMessages.
type DeleteFilter struct {
	// Status is one final status; empty means every final status.
	Status Status
	// Before keeps only messages created before it; required.
	Before time.Time
}

// Errors returned by the queue.
var (
	// ErrNotFound: no message (or suppression) has that id (or address).
	ErrNotFound = errors.New("queue: message not found")
	// ErrLeaseLost: the worker no longer holds the message's lease, so its
	// result was not recorded.
	ErrLeaseLost = errors.New("queue: lease lost")
	// ErrFinal: the message is final and cannot be changed that way.
	ErrFinal = errors.New("queue: message is already final")
	// ErrNotFinal: the message is still waiting or being sent, so it
	// cannot be deleted.
	ErrNotFinal = errors.New("queue: message is not final")
	// ErrClosed: the store has been closed.
	ErrClosed = errors.New("queue: store closed")
	// ErrSending: a worker holds the message under a live lease, so Retry
	// has nothing to do now; its result will decide what comes next.
	ErrSending = errors.New("queue: message is being delivered")
	// ErrInvalid: the queue was given something it cannot accept; the
	// wrapping error names the field. Nothing was stored.
	ErrInvalid = errors.New("queue: invalid input")
)

// SameAttempt reports whether a result for attempt number (0: unnumbered)
// belongs to the claim that raised the message's attempts to attempts.
func SameAttempt(number, attempts int) bool {
	return number == 0 || number == attempts
}

// Summarize derives a message's status from its recipients' statuses:
// queued while no recipient has been tried (pending, or suppressed), deferred while any is
// open after an attempt, then delivered, failed or partial. Bounced and
// suppressed recipients count as failed: a message whose every recipient
// was suppressed is failed at once, and a bounce turns a delivered message
// partial (or failed, when it was the only recipient delivered).
func Summarize(rs []RecipientStatus) Status {
	var open, attempted, delivered, undelivered int
	for _, s := range rs {
		switch {
		case s == RecipientPending:
			open++
		case s == RecipientDeferred:
			open++
			attempted++
		case s == RecipientDelivered:
			delivered++
			attempted++
		case s.Undelivered():
			undelivered++
			if s != RecipientSuppressed {
				attempted++
			}
		}
	}
	switch {
	case open > 0 && attempted == 0:
		return StatusQueued
	case open > 0:
		return StatusDeferred
	case undelivered == 0:
		return StatusDelivered
	case delivered == 0:
		return StatusFailed
	default:
		return StatusPartial
	}
}

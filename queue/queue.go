// Package queue defines the durable mail queue: the types a store speaks and
// the Store interface that every database driver implements.
//
// A message is accepted only once a Store has committed it, body and all, to
// durable storage. Delivery workers claim due messages under a lease, send
// them, and report per-recipient results back in batches.
package queue

import (
	"context"
	"errors"
	"io"
	"time"
)

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

// Recipient statuses.
const (
	RecipientPending   RecipientStatus = "pending"
	RecipientDelivered RecipientStatus = "delivered"
	RecipientDeferred  RecipientStatus = "deferred"
	RecipientFailed    RecipientStatus = "failed"
)

// Open reports whether the recipient still waits for delivery.
func (s RecipientStatus) Open() bool {
	return s == RecipientPending || s == RecipientDeferred
}

// NewMessage is what a producer hands to Store.Enqueue.
type NewMessage struct {
	// From is the envelope sender (MAIL FROM); empty for a null sender.
	From string
	// Recipients are the envelope recipients (RCPT TO), at least one.
	Recipients []string
	// Subject is kept for listing and search only; the body is authoritative.
	Subject string
	// Body is the complete RFC 5322 message. It is streamed into the store
	// and never held whole in memory.
	Body io.Reader
	// SendAt delays the first attempt; zero means now.
	SendAt time.Time
	// ExpiresAt is when delivery is given up; zero means the store's default
	// lifetime from now.
	ExpiresAt time.Time
	// IdempotencyKey, when set, makes a second enqueue with the same key
	// return the first message's id and store nothing.
	IdempotencyKey string
	// Tags are free-form labels (route name, source) kept with the message.
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
	Tags           map[string]string
	CreatedAt      time.Time
	UpdatedAt      time.Time
	// NextAttemptAt is when the message is next due; zero once final.
	NextAttemptAt time.Time
	ExpiresAt     time.Time
	Recipients    []Recipient
}

// Recipient is one envelope recipient and what became of it.
type Recipient struct {
	Address  string
	Status   RecipientStatus
	Attempts int
	// Code, EnhancedCode and Text are the last SMTP reply for this
	// recipient (Code 0 when no reply was received, e.g. connection lost).
	Code          int
	EnhancedCode  string
	Text          string
	LastAttemptAt time.Time
}

// Attempt is the record of one delivery attempt of a message.
type Attempt struct {
	Number     int
	StartedAt  time.Time
	FinishedAt time.Time
	// Route names the transport used, e.g. "relay:smtp.example.com:587".
	Route string
	// Error summarises a connection-level failure, empty otherwise.
	Error string
	// Transcript is the redacted SMTP conversation, possibly truncated.
	Transcript string
}

// Claimed is a message a worker holds under a lease. Recipients holds only
// the recipients still open (pending or deferred).
type Claimed struct {
	Message
	// LeaseExpiresAt is when the claim lapses unless renewed.
	LeaseExpiresAt time.Time
}

// RecipientResult is the outcome of one attempt for one recipient.
type RecipientResult struct {
	Address      string
	Status       RecipientStatus // delivered, deferred or failed
	Code         int
	EnhancedCode string
	Text         string
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
	// Type is what happened: "delivered", "deferred", "failed" or
	// "cancelled".
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

// Filter selects messages for List.
type Filter struct {
	Status    Status // empty: any
	Recipient string // substring match on a recipient address
	From      string // substring match on the envelope sender
	Subject   string // substring match
	Since     time.Time
	Until     time.Time
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

// Errors returned by stores.
var (
	// ErrNotFound: no message has that id.
	ErrNotFound = errors.New("queue: message not found")
	// ErrLeaseLost: the worker no longer holds the message's lease, so its
	// result was not recorded.
	ErrLeaseLost = errors.New("queue: lease lost")
	// ErrFinal: the message is final and cannot be changed that way.
	ErrFinal = errors.New("queue: message is already final")
	// ErrClosed: the store has been closed.
	ErrClosed = errors.New("queue: store closed")
	// ErrSending: a worker holds the message under a live lease, so Retry
	// has nothing to do now; its result will decide what comes next.
	ErrSending = errors.New("queue: message is being delivered")
	// ErrInvalid: Enqueue was given a message it cannot accept; the
	// wrapping error names the field. Nothing was stored.
	ErrInvalid = errors.New("queue: invalid message")
)

// Store is a durable mail queue. Implementations are safe for concurrent use
// by many goroutines and, for shared databases, many processes.
type Store interface {
	// Enqueue stores a message and returns its id once the message and its
	// body are durably committed. Concurrent calls may share one commit.
	Enqueue(ctx context.Context, m NewMessage) (id string, err error)

	// Claim leases up to limit due messages (queued or deferred with
	// next attempt <= now, or sending with an expired lease) to owner until
	// now+lease, marks them sending, and returns them.
	Claim(ctx context.Context, owner string, limit int, lease time.Duration) ([]Claimed, error)
	// Renew extends owner's leases on ids; ids no longer held are ignored.
	Renew(ctx context.Context, owner string, ids []string, lease time.Duration) error
	// Complete records the results of attempts in one transaction. Each
	// result is recorded only if owner still holds that message's lease;
	// the returned slice has one error (nil or ErrLeaseLost) per result.
	Complete(ctx context.Context, owner string, results []Result) ([]error, error)
	// Release gives back owner's leases on ids unfinished, due at once.
	Release(ctx context.Context, owner string, ids []string) error
	// NextDue returns the earliest time a message becomes claimable;
	// ok is false when nothing is waiting.
	NextDue(ctx context.Context) (t time.Time, ok bool, err error)

	// OpenBody streams a message's stored RFC 5322 body.
	OpenBody(ctx context.Context, id string) (io.ReadCloser, error)
	// Get returns a message with all its recipients.
	Get(ctx context.Context, id string) (*Message, error)
	// Attempts returns a message's attempts, oldest first.
	Attempts(ctx context.Context, id string) ([]Attempt, error)
	// List returns messages matching f, newest first, by keyset paging.
	List(ctx context.Context, f Filter) (*ListPage, error)
	// Counts returns the number of messages in each status.
	Counts(ctx context.Context) (map[Status]int64, error)

	// Retry makes a message due now. Deferred recipients are retried; with
	// failed ones included (requeue) failed recipients become pending again.
	// A delivered or cancelled message gives ErrFinal.
	Retry(ctx context.Context, id string, includeFailed bool) error
	// Cancel stops delivery of a message not yet final; ErrFinal otherwise.
	// Recipients still open become failed; the message becomes cancelled.
	// A message a worker is sending under a live lease gives ErrSending:
	// its attempt may be delivering it right now, and its result must not
	// be thrown away; cancel it once the attempt has ended.
	Cancel(ctx context.Context, id string) error

	// AddEvents durably records webhook events not tied to a delivery
	// result, such as a cancellation's.
	AddEvents(ctx context.Context, events []NewEvent) error
	// ClaimEvents leases up to limit due events to owner until now+lease,
	// oldest first; an event whose lease lapsed is due again.
	ClaimEvents(ctx context.Context, owner string, limit int, lease time.Duration) ([]Event, error)
	// FinishEvent records the outcome of posting an event owner holds:
	// delivered removes it; otherwise it is due again at next with
	// lastError kept, or abandoned for good when next is zero.
	FinishEvent(ctx context.Context, owner, id string, delivered bool, next time.Time, lastError string) error
	// NextEventDue returns the earliest time an event becomes claimable.
	NextEventDue(ctx context.Context) (t time.Time, ok bool, err error)

	// Purge deletes final messages last updated before cutoff, with their
	// recipients, attempts and bodies (so their idempotency keys expire),
	// and abandoned events created before cutoff. It returns how many
	// messages it deleted, working in bounded batches so it never holds
	// the database for long.
	Purge(ctx context.Context, cutoff time.Time) (int, error)

	// Close releases the store's resources.
	Close() error
}

// Insights is implemented by stores that can summarise recent activity
// for the dashboard's overview; both stores here do.
type Insights interface {
	// Activity counts, per bucket of width bucket from since to now, the
	// messages created ("created") and those that became final, under
	// their final status; slot i covers [since+i*bucket, since+(i+1)*bucket).
	Activity(ctx context.Context, since time.Time, bucket time.Duration) (map[string][]int64, error)
	// RouteHealth counts attempts per route since then, and those that did
	// not deliver every recipient.
	RouteHealth(ctx context.Context, since time.Time) (attempts, failures map[string]int64, err error)
	// OldestWaiting returns the oldest message not yet final, nil if none.
	OldestWaiting(ctx context.Context) (*Message, error)
}

// Watcher is implemented by stores shared between processes (PostgreSQL
// with LISTEN/NOTIFY): fn is called whenever another process may have made
// work due, so idle workers on every node wake at once. stop unsubscribes.
type Watcher interface {
	Watch(fn func()) (stop func())
}

// SameAttempt reports whether a result for attempt number (0: unnumbered)
// belongs to the claim that raised the message's attempts to attempts.
func SameAttempt(number, attempts int) bool {
	return number == 0 || number == attempts
}

// Summarize derives a message's status from its recipients' statuses.
func Summarize(rs []RecipientStatus) Status {
	var open, deferred, delivered, failed int
	for _, s := range rs {
		switch {
		case s == RecipientDeferred:
			open++
			deferred++
		case s.Open():
			open++
		case s == RecipientDelivered:
			delivered++
		case s == RecipientFailed:
			failed++
		}
	}
	switch {
	case open > 0 && deferred+delivered+failed == 0:
		return StatusQueued
	case open > 0:
		return StatusDeferred
	case failed == 0:
		return StatusDelivered
	case delivered == 0:
		return StatusFailed
	default:
		return StatusPartial
	}
}

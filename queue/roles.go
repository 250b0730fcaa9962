package queue

import (
	"context"
	"io"
	"time"
)

// The role interfaces below are what each consumer of the queue takes, so
// that it depends on what it uses and nothing more. *Queue implements all
// of them; Store is their union.

// Producer accepts messages.
type Producer interface {
	// Enqueue stores a message and returns its id once the message and its
	// body are durably committed. Concurrent calls may share one commit.
	Enqueue(ctx context.Context, m NewMessage) (id string, err error)
	// EnqueueLeased is Enqueue for the node that will deliver the message
	// itself: fresh mail due now is written already leased to owner (status
	// sending, attempt 1) in the same commit, and returned as Claim would
	// return it, with its body when the store held it in memory.
	EnqueueLeased(ctx context.Context, m NewMessage, owner string, lease time.Duration) (Enqueued, error)
}

// TxProducer enqueues within a caller's own database transaction (the
// transactional outbox): the message exists if and only if tx commits. The
// writes run in a savepoint, so a failed EnqueueTx leaves nothing of the
// message in tx and tx stays usable.
type TxProducer[TTx any] interface {
	EnqueueTx(ctx context.Context, tx TTx, m NewMessage) (id string, err error)
}

// LeaseHolder is what a delivery engine uses: claim due messages under a
// lease, keep the lease, and record results.
type LeaseHolder interface {
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
}

// EventQueue is the webhook events' queue.
type EventQueue interface {
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
}

// Counter gives the queue's depth, for metrics and readiness checks.
type Counter interface {
	// Counts returns the number of messages in each status.
	Counts(ctx context.Context) (map[Status]int64, error)
}

// Reader is what the API and the dashboard read.
type Reader interface {
	Counter
	// Get returns a message with all its recipients.
	Get(ctx context.Context, id string) (*Message, error)
	// Attempts returns a message's attempts, oldest first.
	Attempts(ctx context.Context, id string) ([]Attempt, error)
	// History returns what was learnt about a message's recipients after
	// sending (bounces, delays, complaints), oldest first.
	History(ctx context.Context, id string) ([]RecipientEvent, error)
	// List returns messages matching f, newest first, by keyset paging.
	List(ctx context.Context, f Filter) (*ListPage, error)
	// OpenBody streams a message's stored RFC 5322 body.
	OpenBody(ctx context.Context, id string) (io.ReadCloser, error)
}

// Admin steers messages.
type Admin interface {
	// Retry makes a message with deferred or pending recipients due now.
	// A final message gives ErrFinal; one being sent, ErrSending.
	Retry(ctx context.Context, id string) error
	// Requeue makes the failed and bounced recipients of a message pending
	// again (suppressed ones stay so) and the message due now, its expiry
	// pushed to at least the lifetime from now. A cancelled message, or
	// one with nothing to requeue, gives ErrFinal; one being sent,
	// ErrSending.
	Requeue(ctx context.Context, id string) error
	// Cancel stops delivery of a message not yet final; ErrFinal otherwise.
	// Recipients still open become failed; the message becomes cancelled.
	// A message a worker is sending under a live lease gives ErrSending.
	Cancel(ctx context.Context, id string) error
	// RetryMessages makes every waiting message sel selects due now and
	// returns how many.
	RetryMessages(ctx context.Context, sel Selection) (int, error)
	// CancelMessages cancels every waiting message sel selects and returns
	// their ids.
	CancelMessages(ctx context.Context, sel Selection) ([]string, error)
	// Delete removes a final message with everything it owns; ErrNotFinal
	// for one still waiting or being sent.
	Delete(ctx context.Context, id string) error
	// DeleteMessages removes final messages matching f, in bounded
	// batches, and returns how many it removed.
	DeleteMessages(ctx context.Context, f DeleteFilter) (int, error)
	// Purge deletes final messages last updated before cutoff, with their
	// recipients, attempts and bodies (so their idempotency keys expire),
	// and abandoned events created before cutoff, in bounded batches. It
	// returns how many messages it deleted.
	Purge(ctx context.Context, cutoff time.Time) (int, error)
}

// SuppressionList is the list of addresses not to mail.
type SuppressionList interface {
	// Suppress adds entries, or updates those already there (same address
	// and scope), and records events (webhook notifications of the change)
	// in the same transaction.
	Suppress(ctx context.Context, entries []Suppression, events ...NewEvent) error
	// Unsuppress removes the entry for address in scope; ErrNotFound if
	// there is none.
	Unsuppress(ctx context.Context, address, scope string) error
	// Suppressions lists entries by address, by keyset paging.
	Suppressions(ctx context.Context, f SuppressionFilter) (*SuppressionPage, error)
	// LookupSuppression returns the live entry that stops mail from a
	// sender of domain senderDomain to address (one for that domain, else
	// one for every sender); ErrNotFound if there is none.
	LookupSuppression(ctx context.Context, address, senderDomain string) (*Suppression, error)
}

// Feedback records what is learnt about recipients after sending.
type Feedback interface {
	// AddRecipientEvents records bounces, delays and complaints, and
	// webhook events about them, in one transaction. A bounce makes a
	// delivered recipient bounced, with its diagnostic, and the message's
	// status follows (partial or failed); a hard bounce suppresses the
	// address for every sender, a complaint for the message's sender
	// domain.
	AddRecipientEvents(ctx context.Context, events []RecipientEvent, hooks ...NewEvent) error
}

// Store is every role of the queue at once, with Close.
type Store interface {
	Producer
	LeaseHolder
	EventQueue
	Reader
	Admin
	SuppressionList
	Feedback
	// ProbeWrite commits one durable write that changes nothing anyone
	// reads: it fails when the store cannot commit (a full disk, a
	// read-only file, a lost database server). Readiness checks call it.
	ProbeWrite(ctx context.Context) error
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

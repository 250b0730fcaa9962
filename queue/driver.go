package queue

import (
	"context"
	"time"
)

// Driver is one database's side of the queue. It decides nothing: every
// rule lives in Queue, and each method of a Tx is one statement (or one
// pipelined batch) in the database's dialect. Drivers take times that are
// "now" from their database's clock where the database has one, so that
// nodes sharing it agree on which leases have lapsed. TTx is the type of
// an application's own transaction that EnqueueTx writes into (*sql.Tx for
// SQLite, pgx.Tx for PostgreSQL).
type Driver[TTx any] interface {
	// Begin starts a write transaction on the store's own connections.
	// With durable false its commit may skip the fsync (a claim: losing it
	// in a power cut only makes its messages due again).
	Begin(ctx context.Context, durable bool) (Tx, error)
	// Read starts a read-only transaction: one snapshot where the
	// database gives one.
	Read(ctx context.Context) (Tx, error)
	// Savepoint starts a savepoint inside the caller's transaction tx:
	// Commit releases it, Rollback undoes what was written since and
	// leaves tx usable.
	Savepoint(ctx context.Context, tx TTx) (Tx, error)
	// Close releases the driver's connections.
	Close() error
}

// Tx is a transaction of a Driver. After Commit, Rollback is a no-op, so
// it can be deferred. Errors wrap ErrNotFound where a statement looked
// for one row that is not there.
type Tx interface {
	Commit(ctx context.Context) error
	Rollback(ctx context.Context) error

	// InsertMessages inserts message rows, skipping those whose
	// idempotency key is taken, each marked as waiting for the search
	// index; a row is reported in the result at the same index.
	InsertMessages(ctx context.Context, rows []MessageRow) ([]Inserted, error)
	// FindKeys returns the ids of the messages holding keys.
	FindKeys(ctx context.Context, keys []string) (map[string]string, error)
	// InsertRecipients inserts recipient rows of inserted messages; rows
	// of messages that are not in the table are skipped.
	InsertRecipients(ctx context.Context, rows []RecipientRow) error
	// WriteChunk stores one chunk of a message's body.
	WriteChunk(ctx context.Context, id string, seq int, data []byte) error
	// Probe rewrites the store's one probe row, so that the commit has
	// something to make durable (readiness checks call it).
	Probe(ctx context.Context) error
	// SetSize records a body's size once it has streamed in.
	SetSize(ctx context.Context, id string, size int64) error
	// LiveSuppressions returns the unexpired suppressions of addresses
	// (lower-cased), in any scope.
	LiveSuppressions(ctx context.Context, addresses []string) ([]Suppression, error)
	// Notify tells other processes, once the transaction commits, that
	// work may be due (a no-op for a database only one process uses).
	Notify(ctx context.Context) error

	// ClaimDue leases up to limit due messages to owner, in one statement,
	// and returns them without recipients.
	ClaimDue(ctx context.Context, owner string, limit int, lease time.Duration) ([]Claimed, error)
	// Recipients returns the recipients of ids by message id, in envelope
	// order; openOnly keeps those pending or deferred.
	Recipients(ctx context.Context, ids []string, openOnly bool) (map[string][]Recipient, error)
	// Renew extends owner's leases on ids that it holds.
	Renew(ctx context.Context, owner string, ids []string, lease time.Duration) error
	// Held returns (and, where the database locks, locks) those of ids
	// that owner holds under a lease, in id order, with their recipients.
	Held(ctx context.Context, owner string, ids []string) ([]MessageState, error)
	// Lock returns (and locks) one message with its recipients;
	// ErrNotFound if absent.
	Lock(ctx context.Context, id string) (*MessageState, error)
	// UpdateRecipients applies rows, set-based.
	UpdateRecipients(ctx context.Context, rows []RecipientUpdate) error
	// InsertAttempts records attempts, numbered after each message's last.
	InsertAttempts(ctx context.Context, rows []AttemptRow) error
	// SetStates applies message state rows, set-based.
	SetStates(ctx context.Context, rows []StateRow) error
	// NextDue is the earliest next attempt of a waiting message or lease
	// expiry of one being sent.
	NextDue(ctx context.Context) (time.Time, bool, error)

	// Waiting returns (and, where the database locks, locks, skipping rows
	// others hold) up to m.Limit messages that m matches, in id order,
	// with their recipients.
	Waiting(ctx context.Context, m Match) ([]MessageState, error)

	// DeleteMessage deletes one message and what it owns.
	DeleteMessage(ctx context.Context, id string) error
	// DeleteFinal deletes up to limit messages in statuses with an id
	// below idBelow (ids are UUIDv7: created before the time it encodes).
	DeleteFinal(ctx context.Context, statuses []Status, idBelow string, limit int) (int, error)
	// PurgeFinal deletes up to limit final messages updated before cutoff.
	PurgeFinal(ctx context.Context, cutoff time.Time, limit int) (int, error)
	// PurgeEvents deletes up to limit abandoned events created before
	// cutoff.
	PurgeEvents(ctx context.Context, cutoff time.Time, limit int) (int, error)

	// Message reads one message without recipients, with its Mailboxes;
	// ErrNotFound if absent.
	Message(ctx context.Context, id string) (*Message, error)
	// Attempts reads a message's attempts, oldest first.
	Attempts(ctx context.Context, id string) ([]Attempt, error)
	// List reads up to limit messages matching f with ids below before
	// (any when empty), newest first, without recipients; f.Search
	// matches through f.SearchTerms. It reads Mailboxes, as Message does.
	List(ctx context.Context, f Filter, before string, limit int) ([]Message, error)
	// Counts counts messages by status.
	Counts(ctx context.Context) (map[Status]int64, error)
	// BodySize returns a message's body size; ErrNotFound if absent.
	BodySize(ctx context.Context, id string) (int64, error)
	// Chunk reads chunk seq of a body into buf (reusing its storage, so a
	// body streams through one buffer) and returns it; ErrNotFound if
	// absent.
	Chunk(ctx context.Context, id string, seq int, buf []byte) ([]byte, error)
	// InsertHistory records recipient events.
	InsertHistory(ctx context.Context, rows []RecipientEvent) error
	// History reads a message's recipient events, oldest first.
	History(ctx context.Context, id string) ([]RecipientEvent, error)

	// InsertEvents records webhook events, due now.
	InsertEvents(ctx context.Context, rows []EventRow) error
	// ClaimEvents leases up to limit due events to owner, oldest due first.
	ClaimEvents(ctx context.Context, owner string, limit int, lease time.Duration) ([]Event, error)
	// FinishEvent deletes (delivered) or reschedules (next; abandoned
	// when zero) an event owner holds; false when it holds none.
	FinishEvent(ctx context.Context, owner, id string, delivered bool, next time.Time, lastError string) (bool, error)
	// NextEventDue is the earliest time an event becomes claimable.
	NextEventDue(ctx context.Context) (time.Time, bool, error)

	// UpsertSuppressions adds or replaces suppressions.
	UpsertSuppressions(ctx context.Context, rows []Suppression) error
	// DeleteSuppression removes one; false when there was none.
	DeleteSuppression(ctx context.Context, address, scope string) (bool, error)
	// PendingIndex reads up to limit messages waiting to be indexed for
	// search, by id, with ids above after and below below (either may be
	// empty: no bound).
	PendingIndex(ctx context.Context, after, below string, limit int) ([]IndexCandidate, error)
	// IndexMessages writes search entries, replacing a message's earlier
	// one, and takes their messages off the waiting list; entries of
	// messages that are gone are skipped.
	IndexMessages(ctx context.Context, docs []SearchDoc) error

	// ListSuppressions reads up to limit entries after (address, scope)
	// whose address contains contains, by address then scope.
	ListSuppressions(ctx context.Context, contains, afterAddress, afterScope string, limit int) ([]Suppression, error)
}

// MessageRow is a new message as InsertMessages writes it.
type MessageRow struct {
	ID             string
	From           string
	Subject        string
	Status         Status // queued, sending (leased) or failed (all suppressed)
	CreatedAt      time.Time
	NextAttemptAt  time.Time // zero: none (final)
	ExpiresAt      time.Time
	IdempotencyKey string
	Size           int64
	Source         Source
	Flags          Flags
	Repairs        []string
	Tags           map[string]string
	// LeaseOwner and Lease lease a fresh message to its node (status
	// sending, attempts 1) when LeaseOwner is set.
	LeaseOwner string
	Lease      time.Duration
	// Inline is a body of at most one chunk to store with the row as
	// chunk 0; nil when the body is written with WriteChunk.
	Inline []byte
}

// Inserted is InsertMessages' report on one row.
type Inserted struct {
	// OK is false when the idempotency key was taken.
	OK bool
	// LeaseExpiresAt is the lease of a leased row, by the database's clock.
	LeaseExpiresAt time.Time
}

// RecipientRow is a new recipient.
type RecipientRow struct {
	MessageID string
	Idx       int
	Address   string
	Status    RecipientStatus // pending or suppressed
	DSN       RecipientDSN
	Text      string // why, for a suppressed recipient
}

// RecipientState is a recipient as the rules see it.
type RecipientState struct {
	Idx     int
	Address string
	Status  RecipientStatus
}

// MessageState is a message as the rules see it when changing it.
type MessageState struct {
	ID       string
	Status   Status
	Attempts int
	// LeaseLive: a lease on it has not lapsed (by the database's clock).
	LeaseLive  bool
	Recipients []RecipientState
}

// RecipientUpdate changes one recipient.
type RecipientUpdate struct {
	MessageID string
	Idx       int
	Status    RecipientStatus
	// Attempted counts an attempt and stamps its time.
	Attempted bool
	// SetReply replaces the recipient's code, enhanced code and text.
	SetReply     bool
	Code         int
	EnhancedCode string
	Text         string
}

// AttemptRow is one attempt to record.
type AttemptRow struct {
	MessageID string
	Attempt   Attempt
}

// StateRow sets a message's status.
type StateRow struct {
	ID     string
	Status Status
	// Next is the next attempt; for a status not final, zero means now.
	// A final status has none.
	Next time.Time
	// ClearLease ends any lease on the message.
	ClearLease bool
	// UncountAttempt takes back the claim's attempt (a release).
	UncountAttempt bool
	// MinLifetime, when not zero, pushes the expiry to at least now plus it.
	MinLifetime time.Duration
}

// EventRow is a webhook event to record.
type EventRow struct {
	ID string
	NewEvent
}

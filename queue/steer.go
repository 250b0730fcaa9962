package queue

import (
	"context"
	"fmt"
	"time"

	"github.com/outbox-mail/outbox/queue/internal/ids"
)

// Selection selects waiting messages (queued or deferred; never one being
// sent) for RetryMessages and CancelMessages. Every field that is set
// must match.
type Selection struct {
	// Status is StatusQueued or StatusDeferred; empty means both.
	Status Status
	// Route keeps messages whose last attempt went through that
	// destination, named as attempts record it ("relay:smtp.example.com:587",
	// "mx:mx1.example.org", "capture"), or through any destination the
	// name begins, up to a colon ("relay", "mx", "relay:smtp.example.com").
	// Case does not matter. A message never tried matches no route.
	Route string
	// Recipient keeps messages with a recipient whose address contains it,
	// whatever its case.
	Recipient string
	// Before keeps messages created before it; zero means any.
	Before time.Time
}

// waitingStatuses are the statuses a Selection chooses from.
var waitingStatuses = []Status{StatusQueued, StatusDeferred}

// check validates sel and returns the statuses it selects from.
func (sel Selection) check(name string) ([]Status, error) {
	statuses := waitingStatuses
	switch sel.Status {
	case "":
	case StatusQueued, StatusDeferred:
		statuses = []Status{sel.Status}
	default:
		return nil, fmt.Errorf("%s: %w: Status %q is not a waiting status (queued or deferred)", name, ErrInvalid, sel.Status)
	}
	for field, v := range map[string]string{"Route": sel.Route, "Recipient": sel.Recipient} {
		if err := checkText(field, v, true); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	return statuses, nil
}

// Match is a Selection as a driver reads it.
type Match struct {
	Statuses  []Status
	Route     string
	Recipient string
	// IDBelow keeps ids below it (created before the time it encodes);
	// empty means any.
	IDBelow string
	// After keeps ids above it, for paging in id order; empty means any.
	After string
	Limit int
}

// RetryMessages makes every message sel selects due now, as Retry does
// one by one, in transactions of bounded size, and returns how many it
// made due. A message that a worker claims meanwhile is left to it.
func (q *Queue[TTx]) RetryMessages(ctx context.Context, sel Selection) (int, error) {
	return q.steerMatching(ctx, "retry messages", sel, func(tx Tx, ms []MessageState) (int, error) {
		rows := make([]StateRow, 0, len(ms))
		for _, m := range ms {
			if m.Status.Final() || m.Status == StatusSending {
				continue
			}
			rows = append(rows, StateRow{ID: m.ID, Status: summarize(m.Recipients)})
		}
		if len(rows) == 0 {
			return 0, nil
		}
		if err := tx.SetStates(ctx, rows); err != nil {
			return 0, err
		}
		return len(rows), tx.Notify(ctx)
	}, nil)
}

// CancelMessages cancels every message sel selects, as Cancel does one by
// one, in transactions of bounded size, and returns the ids it cancelled
// in id order (so that the caller can tell webhooks of each).
func (q *Queue[TTx]) CancelMessages(ctx context.Context, sel Selection) ([]string, error) {
	var cancelled []string
	_, err := q.steerMatching(ctx, "cancel messages", sel, func(tx Tx, ms []MessageState) (int, error) {
		var rcpts []RecipientUpdate
		var rows []StateRow
		for _, m := range ms {
			if m.Status.Final() || m.Status == StatusSending {
				continue
			}
			for _, r := range m.Recipients {
				if r.Status.Open() {
					rcpts = append(rcpts, RecipientUpdate{MessageID: m.ID, Idx: r.Idx, Status: RecipientFailed})
				}
			}
			rows = append(rows, StateRow{ID: m.ID, Status: StatusCancelled, ClearLease: true})
		}
		if err := tx.UpdateRecipients(ctx, rcpts); err != nil {
			return 0, err
		}
		return len(rows), tx.SetStates(ctx, rows)
	}, func(ms []MessageState) {
		for _, m := range ms {
			if !m.Status.Final() && m.Status != StatusSending {
				cancelled = append(cancelled, m.ID)
			}
		}
	})
	return cancelled, err
}

// steerMatching applies fn to the messages sel selects, one bounded batch
// per transaction in id order, and adds up what fn counts; committed, if
// set, hears of each batch once its transaction has committed.
func (q *Queue[TTx]) steerMatching(ctx context.Context, op string, sel Selection,
	fn func(Tx, []MessageState) (int, error), committed func([]MessageState)) (int, error) {
	if err := q.check(); err != nil {
		return 0, err
	}
	statuses, err := sel.check(q.name)
	if err != nil {
		return 0, err
	}
	m := Match{Statuses: statuses, Route: sel.Route, Recipient: sel.Recipient, Limit: deleteBatch}
	if !sel.Before.IsZero() {
		m.IDBelow = ids.Floor(sel.Before)
	}
	total := 0
	for {
		var batch []MessageState
		var n int
		err := q.write(ctx, op, true, func(tx Tx) error {
			var err error
			if batch, err = tx.Waiting(ctx, m); err != nil || len(batch) == 0 {
				return err
			}
			n, err = fn(tx, batch)
			return err
		})
		if err != nil {
			return total, err
		}
		total += n
		if committed != nil {
			committed(batch)
		}
		if len(batch) < m.Limit {
			return total, nil
		}
		m.After = batch[len(batch)-1].ID
	}
}

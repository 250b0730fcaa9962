package queue

import (
	"context"
	"fmt"
	"time"

	"github.com/outbox-mail/outbox/queue/internal/ids"
)

// deleteBatch bounds the messages one delete or purge transaction removes,
// so that none holds the database for long.
const deleteBatch = 500

// change locks message id and lets fn change it in one transaction;
// ErrNotFound for an id no message has.
func (q *Queue[TTx]) change(ctx context.Context, op, id string, fn func(Tx, *MessageState) error) error {
	if err := q.check(); err != nil {
		return err
	}
	if !storable(id) {
		return ErrNotFound
	}
	return q.write(ctx, op, true, func(tx Tx) error {
		m, err := tx.Lock(ctx, id)
		if err != nil {
			return err
		}
		return fn(tx, m)
	})
}

// Retry makes a message due now: its pending and deferred recipients are
// tried at the next claim, whatever their schedule. A final message gives
// ErrFinal (Requeue tries failed recipients again); one being sent gives
// ErrSending, since the worker's result decides what follows and Retry
// never competes with a lease.
func (q *Queue[TTx]) Retry(ctx context.Context, id string) error {
	return q.change(ctx, "retry", id, func(tx Tx, m *MessageState) error {
		switch {
		case m.Status.Final():
			return ErrFinal
		case m.Status == StatusSending:
			return ErrSending
		}
		if err := tx.SetStates(ctx, []StateRow{{ID: id, Status: summarize(m.Recipients)}}); err != nil {
			return err
		}
		return tx.Notify(ctx)
	})
}

// Requeue makes a message's failed and bounced recipients pending again
// and the message due now, its expiry pushed to at least the lifetime from
// now (a requeued message that had expired would otherwise fail at once).
// Suppressed recipients stay suppressed: remove the address from the list
// first. A cancelled message, or a final one with nothing to requeue,
// gives ErrFinal; one being sent gives ErrSending.
func (q *Queue[TTx]) Requeue(ctx context.Context, id string) error {
	return q.change(ctx, "requeue", id, func(tx Tx, m *MessageState) error {
		switch m.Status {
		case StatusCancelled:
			return ErrFinal
		case StatusSending:
			return ErrSending
		}
		var rows []RecipientUpdate
		for i, r := range m.Recipients {
			if r.Status == RecipientFailed || r.Status == RecipientBounced {
				m.Recipients[i].Status = RecipientPending
				rows = append(rows, RecipientUpdate{MessageID: id, Idx: r.Idx, Status: RecipientPending})
			}
		}
		st := summarize(m.Recipients)
		if st.Final() {
			return ErrFinal
		}
		if err := tx.UpdateRecipients(ctx, rows); err != nil {
			return err
		}
		if err := tx.SetStates(ctx, []StateRow{{ID: id, Status: st, MinLifetime: q.opts.Lifetime}}); err != nil {
			return err
		}
		return tx.Notify(ctx)
	})
}

// Cancel stops delivery of a message that is not final: open recipients
// become failed and the message cancelled. A message sent under a live
// lease gives ErrSending, so a delivery in progress is never thrown away;
// one whose lease lapsed (its worker died) is cancelled, and should that
// worker come back, its Complete gets ErrLeaseLost.
func (q *Queue[TTx]) Cancel(ctx context.Context, id string) error {
	return q.change(ctx, "cancel", id, func(tx Tx, m *MessageState) error {
		switch {
		case m.Status.Final():
			return ErrFinal
		case m.Status == StatusSending && m.LeaseLive:
			return ErrSending
		}
		var rows []RecipientUpdate
		for _, r := range m.Recipients {
			if r.Status.Open() {
				rows = append(rows, RecipientUpdate{MessageID: id, Idx: r.Idx, Status: RecipientFailed})
			}
		}
		if err := tx.UpdateRecipients(ctx, rows); err != nil {
			return err
		}
		return tx.SetStates(ctx, []StateRow{{ID: id, Status: StatusCancelled, ClearLease: true}})
	})
}

// Delete removes a final message with its recipients, attempts, history
// and body; ErrNotFinal for a message still waiting or being sent (cancel
// it first), ErrNotFound for an unknown id.
func (q *Queue[TTx]) Delete(ctx context.Context, id string) error {
	return q.change(ctx, "delete", id, func(tx Tx, m *MessageState) error {
		if !m.Status.Final() {
			return ErrNotFinal
		}
		return tx.DeleteMessage(ctx, id)
	})
}

// DeleteMessages removes the final messages f selects (one final status,
// or all of them, created before f.Before) in batches of bounded size,
// and returns how many it removed.
func (q *Queue[TTx]) DeleteMessages(ctx context.Context, f DeleteFilter) (int, error) {
	if err := q.check(); err != nil {
		return 0, err
	}
	statuses := FinalStatuses
	if f.Status != "" {
		if !f.Status.Final() {
			return 0, fmt.Errorf("%s: %w: Status %q is not a final status (delivered, partial, failed, cancelled)", q.name, ErrInvalid, f.Status)
		}
		statuses = []Status{f.Status}
	}
	if f.Before.IsZero() {
		return 0, fmt.Errorf("%s: %w: Before is required", q.name, ErrInvalid)
	}
	below := ids.Floor(f.Before)
	return q.batches(ctx, "delete messages", func(tx Tx) (int, error) {
		return tx.DeleteFinal(ctx, statuses, below, deleteBatch)
	})
}

// Purge deletes final messages last updated before cutoff, with all they
// own (so their idempotency keys expire), and abandoned events created
// before it, in batches of bounded size. It returns the messages deleted.
func (q *Queue[TTx]) Purge(ctx context.Context, cutoff time.Time) (int, error) {
	if err := q.check(); err != nil {
		return 0, err
	}
	n, err := q.batches(ctx, "purge", func(tx Tx) (int, error) {
		return tx.PurgeFinal(ctx, cutoff, deleteBatch)
	})
	if err != nil {
		return n, err
	}
	_, err = q.batches(ctx, "purge events", func(tx Tx) (int, error) {
		return tx.PurgeEvents(ctx, cutoff, deleteBatch)
	})
	return n, err
}

// batches runs fn in transactions of its own until one removes less than
// a whole batch, and adds up what they removed.
func (q *Queue[TTx]) batches(ctx context.Context, op string, fn func(Tx) (int, error)) (int, error) {
	total := 0
	for {
		var n int
		err := q.write(ctx, op, true, func(tx Tx) error {
			var err error
			n, err = fn(tx)
			return err
		})
		total += n
		if err != nil || n < deleteBatch {
			return total, err
		}
	}
}

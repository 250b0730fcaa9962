package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/outbox-mail/outbox/queue"
)

// Complete records a batch of attempt results in one transaction. The
// messages owner still holds are locked first (so a concurrent Cancel or
// claim waits); a result whose message owner no longer holds (claimed by
// another after the lease lapsed, cancelled, unknown, or already completed
// earlier in the batch) gets ErrLeaseLost and changes nothing, and its
// events are not recorded. Recipient results are matched to the message's
// open recipients by exact address; open recipients a result does not
// name stay as they were. The writes go out in two pgx batches, so a
// batch of results costs a handful of round trips, not several per result.
func (s *Store) Complete(ctx context.Context, owner string, results []queue.Result) ([]error, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if err := checkResults(results); err != nil {
		return nil, err
	}
	errs := make([]error, len(results))
	if len(results) == 0 {
		return errs, nil
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, s.wrap("complete", err)
	}
	defer rollback(tx)
	ids := make([]string, len(results))
	for i, r := range results {
		ids[i] = r.MessageID
	}
	held, err := lockHeld(ctx, tx, owner, ids)
	if err != nil {
		return nil, s.wrap("complete", err)
	}
	var b pgx.Batch
	var recorded []int
	for i := range results {
		r := &results[i]
		attempts, ok := held[r.MessageID]
		if !ok || !queue.SameAttempt(r.Attempt.Number, attempts) {
			errs[i] = queue.ErrLeaseLost
			continue
		}
		delete(held, r.MessageID) // the lease goes with the first result
		recorded = append(recorded, i)
		if err := queueResult(&b, r); err != nil {
			return nil, s.wrap("complete", err)
		}
	}
	if len(recorded) > 0 {
		if err := finishResults(ctx, tx, &b, results, recorded); err != nil {
			return nil, s.wrap("complete", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, s.wrap("complete", err)
	}
	return errs, nil
}

// checkResults rejects recipient statuses a result cannot report.
func checkResults(results []queue.Result) error {
	for i, r := range results {
		for j, rr := range r.Recipients {
			switch rr.Status {
			case queue.RecipientDelivered, queue.RecipientDeferred, queue.RecipientFailed:
			default:
				return fmt.Errorf("postgres: complete: %w: results[%d].Recipients[%d].Status %q is not delivered, deferred or failed",
					queue.ErrInvalid, i, j, rr.Status)
			}
		}
		if err := checkEvents(fmt.Sprintf("results[%d].Events", i), r.Events); err != nil {
			return err
		}
	}
	return nil
}

// queueResult adds to b the recipient updates, the attempt record and the
// events of one result whose lease is held.
func queueResult(b *pgx.Batch, r *queue.Result) error {
	for _, rr := range r.Recipients {
		b.Queue(`UPDATE outbox_recipients SET status = $1, attempts = attempts + 1,
			code = $2, enhanced_code = $3, text = $4, last_attempt_at = now()
			WHERE message_id = $5 AND address = $6 AND status IN ('pending', 'deferred')`,
			string(rr.Status), rr.Code, clean(rr.EnhancedCode), clean(rr.Text), r.MessageID, rr.Address)
	}
	a := r.Attempt
	b.Queue(`INSERT INTO outbox_attempts
		(message_id, number, started_at, finished_at, route, error, transcript)
		VALUES ($1, (SELECT coalesce(max(number), 0) + 1 FROM outbox_attempts WHERE message_id = $1),
			coalesce($2, now()), coalesce($3, now()), $4, $5, $6)`,
		r.MessageID, timeOrNil(a.StartedAt), timeOrNil(a.FinishedAt), clean(a.Route), clean(a.Error), clean(a.Transcript))
	for _, e := range r.Events {
		if err := queueEvent(b, e); err != nil {
			return err
		}
	}
	return nil
}

// finishResults sends b, then sets each recorded message's status from
// its recipients and gives up its lease.
func finishResults(ctx context.Context, tx pgx.Tx, b *pgx.Batch, results []queue.Result, recorded []int) error {
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return err
	}
	ids := make([]string, len(recorded))
	for k, i := range recorded {
		ids[k] = results[i].MessageID
	}
	statuses, err := summarize(ctx, tx, ids)
	if err != nil {
		return err
	}
	var upd pgx.Batch
	for _, i := range recorded {
		r := &results[i]
		st := statuses[r.MessageID]
		// A final message has no next attempt; otherwise it is due when the
		// worker said, or at once.
		upd.Queue(`UPDATE outbox_messages SET status = $1,
			next_attempt_at = CASE WHEN $2 THEN NULL ELSE coalesce($3, now()) END,
			lease_owner = '', lease_expires_at = NULL, updated_at = now() WHERE id = $4`,
			string(st), st.Final(), timeOrNil(r.NextAttemptAt), r.MessageID)
	}
	return tx.SendBatch(ctx, &upd).Close()
}

// clean makes text that came from a remote server storable: PostgreSQL
// text holds neither NUL bytes nor invalid UTF-8, and one odd byte in a
// reply must not sink a whole batch of results.
func clean(s string) string {
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

// Retry makes a message due now and wakes watchers. Deferred and pending
// recipients are tried again; with includeFailed, failed recipients become
// pending again and the message's expiry is pushed to at least the default
// lifetime from now (a requeued message that had expired would otherwise
// fail at once).
//
// A delivered or cancelled message gives ErrFinal, as does a failed or
// partial one without includeFailed (nothing is left to retry). A message
// being sent gives ErrSending: the worker's result decides what follows,
// and Retry never competes with a live lease.
func (s *Store) Retry(ctx context.Context, id string, includeFailed bool) error {
	if err := s.check(); err != nil {
		return err
	}
	if !storableID(id) {
		return queue.ErrNotFound
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return s.wrap("retry", err)
	}
	defer rollback(tx)
	status, err := lockStatus(ctx, tx, id)
	if err != nil {
		return s.wrap("retry", err)
	}
	switch status {
	case queue.StatusDelivered, queue.StatusCancelled:
		return queue.ErrFinal
	case queue.StatusSending:
		return queue.ErrSending
	}
	var lifetime any // NULL: keep the expiry
	if includeFailed {
		_, err = tx.Exec(ctx, `UPDATE outbox_recipients SET status = 'pending'
			WHERE message_id = $1 AND status = 'failed'`, id)
		if err != nil {
			return s.wrap("retry", err)
		}
		lifetime = s.opts.DefaultLifetime
	}
	statuses, err := summarize(ctx, tx, []string{id})
	if err != nil {
		return s.wrap("retry", err)
	}
	if statuses[id].Final() {
		return queue.ErrFinal
	}
	_, err = tx.Exec(ctx, `UPDATE outbox_messages SET status = $1, next_attempt_at = now(),
		updated_at = now(), expires_at = greatest(expires_at, now() + $2::interval)
		WHERE id = $3`, string(statuses[id]), lifetime, id)
	if err != nil {
		return s.wrap("retry", err)
	}
	if _, err := tx.Exec(ctx, notifySQL); err != nil {
		return s.wrap("retry", err)
	}
	return s.wrap("retry", tx.Commit(ctx))
}

// Cancel stops delivery of a message that is not final: open recipients
// become failed and the message cancelled. A lease is cleared with it, so
// a worker sending the message gets ErrLeaseLost from Complete and cannot
// bring it back.
func (s *Store) Cancel(ctx context.Context, id string) error {
	if err := s.check(); err != nil {
		return err
	}
	if !storableID(id) {
		return queue.ErrNotFound
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return s.wrap("cancel", err)
	}
	defer rollback(tx)
	status, err := lockStatus(ctx, tx, id)
	if err != nil {
		return s.wrap("cancel", err)
	}
	if status.Final() {
		return queue.ErrFinal
	}
	if status == queue.StatusSending {
		var live bool
		err := tx.QueryRow(ctx, `SELECT lease_expires_at > now() FROM outbox_messages WHERE id = $1`, id).Scan(&live)
		if err != nil {
			return s.wrap("cancel", err)
		}
		if live {
			return queue.ErrSending
		}
	}
	_, err = tx.Exec(ctx, `UPDATE outbox_recipients SET status = 'failed'
		WHERE message_id = $1 AND status IN ('pending', 'deferred')`, id)
	if err != nil {
		return s.wrap("cancel", err)
	}
	_, err = tx.Exec(ctx, `UPDATE outbox_messages SET status = 'cancelled',
		next_attempt_at = NULL, lease_owner = '', lease_expires_at = NULL, updated_at = now()
		WHERE id = $1`, id)
	if err != nil {
		return s.wrap("cancel", err)
	}
	return s.wrap("cancel", tx.Commit(ctx))
}

// lockStatus locks a message's row within tx and reads its status, so the
// change that follows cannot interleave with a claim or a result;
// ErrNotFound if absent.
func lockStatus(ctx context.Context, tx pgx.Tx, id string) (queue.Status, error) {
	var st string
	err := tx.QueryRow(ctx, `SELECT status FROM outbox_messages WHERE id = $1 FOR UPDATE`, id).Scan(&st)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", queue.ErrNotFound
	}
	return queue.Status(st), err
}

package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/outbox-mail/outbox/queue"
)

// Complete records a batch of attempt results in one transaction. A result
// whose message owner no longer holds (claimed by another after the lease
// lapsed, cancelled, or unknown) gets ErrLeaseLost and changes nothing.
// Recipient results are matched to the message's open recipients by exact
// address, as Claim returned them; open recipients a result does not name
// stay as they were.
func (s *Store) Complete(ctx context.Context, owner string, results []queue.Result) ([]error, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	for i, r := range results {
		for j, rr := range r.Recipients {
			switch rr.Status {
			case queue.RecipientDelivered, queue.RecipientDeferred, queue.RecipientFailed:
			default:
				return nil, fmt.Errorf("sqlite: complete: results[%d].Recipients[%d].Status %q is not delivered, deferred or failed", i, j, rr.Status)
			}
		}
	}
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return nil, s.wrap("complete", err)
	}
	defer rollback(tx)
	errs := make([]error, len(results))
	now := time.Now()
	for i := range results {
		held, err := completeOne(ctx, tx, owner, &results[i], now)
		if err != nil {
			return nil, s.wrap("complete", err)
		}
		if !held {
			errs[i] = queue.ErrLeaseLost
		}
	}
	if err := s.commit(tx); err != nil {
		return nil, s.wrap("complete", err)
	}
	return errs, nil
}

// completeOne records one result if owner holds its message's lease.
func completeOne(ctx context.Context, tx *sql.Tx, owner string, r *queue.Result, now time.Time) (held bool, err error) {
	var attempts int
	err = tx.QueryRowContext(ctx, `SELECT attempts FROM messages
		WHERE id = ? AND status = 'sending' AND lease_owner = ?`, r.MessageID, owner).Scan(&attempts)
	if errors.Is(err, sql.ErrNoRows) || err == nil && !queue.SameAttempt(r.Attempt.Number, attempts) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	nowMS := now.UnixMilli()
	for _, rr := range r.Recipients {
		_, err := tx.ExecContext(ctx, `UPDATE recipients SET status = ?,
			attempts = attempts + 1, code = ?, enhanced_code = ?, text = ?, last_attempt_at = ?
			WHERE message_id = ? AND address = ? AND status IN ('pending', 'deferred')`,
			string(rr.Status), rr.Code, rr.EnhancedCode, rr.Text, nowMS, r.MessageID, rr.Address)
		if err != nil {
			return false, err
		}
	}
	a := r.Attempt
	if a.StartedAt.IsZero() {
		a.StartedAt = now
	}
	if a.FinishedAt.IsZero() {
		a.FinishedAt = now
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO attempts
		(message_id, number, started_at, finished_at, route, error, transcript)
		VALUES (?1, (SELECT COALESCE(MAX(number), 0) + 1 FROM attempts WHERE message_id = ?1),
			?2, ?3, ?4, ?5, ?6)`,
		r.MessageID, a.StartedAt.UnixMilli(), a.FinishedAt.UnixMilli(), a.Route, a.Error, a.Transcript)
	if err != nil {
		return false, err
	}
	status, err := summarize(ctx, tx, r.MessageID)
	if err != nil {
		return false, err
	}
	var next int64 // final: no next attempt
	if !status.Final() {
		next = nowMS
		if !r.NextAttemptAt.IsZero() {
			next = r.NextAttemptAt.UnixMilli()
		}
	}
	_, err = tx.ExecContext(ctx, `UPDATE messages SET status = ?, next_attempt_at = ?,
		lease_owner = '', lease_expires_at = 0, updated_at = ? WHERE id = ?`,
		string(status), next, nowMS, r.MessageID)
	if err != nil {
		return false, err
	}
	return true, insertEvents(ctx, tx, r.Events, now)
}

// Retry makes a message due now. Deferred and pending recipients are tried
// again; with includeFailed, failed recipients become pending again and the
// message's expiry is pushed to at least the default lifetime from now (a
// requeued message that had expired would otherwise fail at once).
//
// A delivered or cancelled message gives ErrFinal, as does a failed or
// partial one without includeFailed (nothing is left to retry). A message
// being sent gives ErrSending: the worker's result decides what follows,
// and Retry never competes with a live lease.
func (s *Store) Retry(ctx context.Context, id string, includeFailed bool) error {
	if err := s.check(); err != nil {
		return err
	}
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return s.wrap("retry", err)
	}
	defer rollback(tx)
	status, err := messageStatus(ctx, tx, id)
	if err != nil {
		return s.wrap("retry", err)
	}
	switch status {
	case queue.StatusDelivered, queue.StatusCancelled:
		return queue.ErrFinal
	case queue.StatusSending:
		return queue.ErrSending
	}
	now := time.Now()
	expires := int64(0)
	if includeFailed {
		_, err = tx.ExecContext(ctx, `UPDATE recipients SET status = 'pending'
			WHERE message_id = ? AND status = 'failed'`, id)
		if err != nil {
			return s.wrap("retry", err)
		}
		expires = now.Add(s.opts.DefaultLifetime).UnixMilli()
	}
	if status, err = summarize(ctx, tx, id); err != nil {
		return s.wrap("retry", err)
	}
	if status.Final() {
		return queue.ErrFinal
	}
	_, err = tx.ExecContext(ctx, `UPDATE messages SET status = ?, next_attempt_at = ?,
		updated_at = ?, expires_at = MAX(expires_at, ?) WHERE id = ?`,
		string(status), now.UnixMilli(), now.UnixMilli(), expires, id)
	if err != nil {
		return s.wrap("retry", err)
	}
	return s.wrap("retry", s.commit(tx))
}

// Cancel stops delivery of a message that is not final: open recipients
// become failed and the message cancelled. A message sent under a live
// lease gives ErrSending, so a delivery in progress is never thrown away;
// one whose lease lapsed (its worker died) is cancelled, and should that
// worker come back, its Complete gets ErrLeaseLost.
func (s *Store) Cancel(ctx context.Context, id string) error {
	if err := s.check(); err != nil {
		return err
	}
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return s.wrap("cancel", err)
	}
	defer rollback(tx)
	status, err := messageStatus(ctx, tx, id)
	if err != nil {
		return s.wrap("cancel", err)
	}
	if status.Final() {
		return queue.ErrFinal
	}
	if status == queue.StatusSending {
		var live bool
		err := tx.QueryRowContext(ctx, `SELECT lease_expires_at > ? FROM messages WHERE id = ?`,
			time.Now().UnixMilli(), id).Scan(&live)
		if err != nil {
			return s.wrap("cancel", err)
		}
		if live {
			return queue.ErrSending
		}
	}
	now := time.Now().UnixMilli()
	_, err = tx.ExecContext(ctx, `UPDATE recipients SET status = 'failed'
		WHERE message_id = ? AND status IN ('pending', 'deferred')`, id)
	if err != nil {
		return s.wrap("cancel", err)
	}
	_, err = tx.ExecContext(ctx, `UPDATE messages SET status = 'cancelled',
		next_attempt_at = 0, lease_owner = '', lease_expires_at = 0, updated_at = ?
		WHERE id = ?`, now, id)
	if err != nil {
		return s.wrap("cancel", err)
	}
	return s.wrap("cancel", s.commit(tx))
}

// messageStatus reads a message's status within tx; ErrNotFound if absent.
func messageStatus(ctx context.Context, tx *sql.Tx, id string) (queue.Status, error) {
	var st string
	err := tx.QueryRowContext(ctx, `SELECT status FROM messages WHERE id = ?`, id).Scan(&st)
	if errors.Is(err, sql.ErrNoRows) {
		return "", queue.ErrNotFound
	}
	return queue.Status(st), err
}

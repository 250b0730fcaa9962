package queue

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
)

// Claim leases up to limit due messages to owner in one statement, so two
// claimers can never take the same message, and returns them with their
// open recipients. Its commit may skip the fsync: a claim lost in a power
// cut only makes its messages due again.
func (q *Queue[TTx]) Claim(ctx context.Context, owner string, limit int, lease time.Duration) ([]Claimed, error) {
	if err := q.check(); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, nil
	}
	var out []Claimed
	err := q.write(ctx, "claim", false, func(tx Tx) error {
		var err error
		if out, err = tx.ClaimDue(ctx, owner, limit, lease); err != nil || len(out) == 0 {
			return err
		}
		ids := make([]string, len(out))
		for i := range out {
			ids[i] = out[i].ID
		}
		rcpts, err := tx.Recipients(ctx, ids, true)
		for i := range out {
			out[i].Recipients = rcpts[out[i].ID]
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Renew extends owner's leases on ids to now+lease; ids owner no longer
// holds are left alone.
func (q *Queue[TTx]) Renew(ctx context.Context, owner string, ids []string, lease time.Duration) error {
	if len(ids) == 0 {
		return q.check()
	}
	return q.write(ctx, "renew", false, func(tx Tx) error { return tx.Renew(ctx, owner, ids, lease) })
}

// Release hands owner's leases on ids back unfinished: each message is due
// at once, with the status its recipients give it. The claim's attempt is
// not counted, since no attempt was made.
func (q *Queue[TTx]) Release(ctx context.Context, owner string, ids []string) error {
	if len(ids) == 0 {
		return q.check()
	}
	var valid []string
	for _, id := range ids {
		if storable(id) {
			valid = append(valid, id)
		}
	}
	return q.write(ctx, "release", true, func(tx Tx) error {
		held, err := tx.Held(ctx, owner, sortedUnique(valid))
		if err != nil || len(held) == 0 {
			return err
		}
		rows := make([]StateRow, len(held))
		for i, m := range held {
			rows[i] = StateRow{ID: m.ID, Status: summarize(m.Recipients), ClearLease: true, UncountAttempt: true}
		}
		if err := tx.SetStates(ctx, rows); err != nil {
			return err
		}
		return tx.Notify(ctx)
	})
}

// NextDue is the earliest of the next attempt of waiting messages and the
// lease expiry of messages being sent. It may be in the past: something
// is due now.
func (q *Queue[TTx]) NextDue(ctx context.Context) (t time.Time, ok bool, err error) {
	err = q.read(ctx, "next due", func(tx Tx) error {
		t, ok, err = tx.NextDue(ctx)
		return err
	})
	return t, ok, err
}

func summarize(rs []RecipientState) Status {
	st := make([]RecipientStatus, len(rs))
	for i, r := range rs {
		st[i] = r.Status
	}
	return Summarize(st)
}

// checkResults rejects what a result cannot report, naming the field.
func checkResults(results []Result) error {
	for i, r := range results {
		for j, rr := range r.Recipients {
			switch rr.Status {
			case RecipientDelivered, RecipientDeferred, RecipientFailed:
			default:
				return fmt.Errorf("%w: results[%d].Recipients[%d].Status %q is not delivered, deferred or failed",
					ErrInvalid, i, j, rr.Status)
			}
		}
		if err := checkEvents(fmt.Sprintf("results[%d].Events", i), r.Events); err != nil {
			return err
		}
	}
	return nil
}

// Complete records a batch of attempt results in one transaction, with a
// fixed number of set-based statements whatever the batch's size. A result
// whose message owner no longer holds (claimed by another after the lease
// lapsed, cancelled, unknown, or already completed earlier in the batch),
// or whose attempt number is not the claim's, gets ErrLeaseLost and
// changes nothing, its events included. Recipient results are matched to
// the message's open recipients by exact address; open recipients a
// result does not name stay as they were.
func (q *Queue[TTx]) Complete(ctx context.Context, owner string, results []Result) ([]error, error) {
	if err := q.check(); err != nil {
		return nil, err
	}
	if err := checkResults(results); err != nil {
		return nil, q.wrap("complete", err)
	}
	errs := make([]error, len(results))
	if len(results) == 0 {
		return errs, nil
	}
	ids := make([]string, 0, len(results))
	for _, r := range results {
		if storable(r.MessageID) {
			ids = append(ids, r.MessageID)
		}
	}
	// The results ride in the writer's next group commit, beside the
	// messages accepted meanwhile: one durable commit for both.
	c := &completion{owner: owner, results: results, ids: sortedUnique(ids), errs: errs}
	if _, err := q.writer.Submit(&writeItem{done: c}); err != nil {
		return nil, q.wrap("complete", err)
	}
	return c.errs, nil
}

// completion is a batch of results waiting for the writer.
type completion struct {
	owner   string
	results []Result
	ids     []string // the results' message ids, sorted, unique
	errs    []error  // one per result, filled by recordResults
}

// recordResults records c's results in tx: each only if c's owner still
// holds that message under the attempt's claim.
func (q *Queue[TTx]) recordResults(ctx context.Context, tx Tx, c *completion) error {
	clear(c.errs) // from an earlier try of a batch that failed, if any
	held, err := tx.Held(ctx, c.owner, c.ids)
	if err != nil {
		return err
	}
	byID := make(map[string]*MessageState, len(held))
	for i := range held {
		byID[held[i].ID] = &held[i]
	}
	var w resultWrites
	for i := range c.results {
		m := byID[c.results[i].MessageID]
		if m == nil || !SameAttempt(c.results[i].Attempt.Number, m.Attempts) {
			c.errs[i] = ErrLeaseLost
			continue
		}
		delete(byID, m.ID) // the lease goes with the first result
		if err := q.record(&w, m, &c.results[i]); err != nil {
			return err
		}
	}
	return w.apply(ctx, tx)
}

// resultWrites are the rows a batch of results writes.
type resultWrites struct {
	rcpts    []RecipientUpdate
	attempts []AttemptRow
	states   []StateRow
	events   []EventRow
	suppress []Suppression // addresses refused with a hard bounce
}

func (w *resultWrites) apply(ctx context.Context, tx Tx) error {
	if len(w.states) == 0 {
		return nil
	}
	if err := tx.UpdateRecipients(ctx, w.rcpts); err != nil {
		return err
	}
	if err := tx.InsertAttempts(ctx, w.attempts); err != nil {
		return err
	}
	if err := tx.SetStates(ctx, w.states); err != nil {
		return err
	}
	if len(w.suppress) > 0 {
		if err := tx.UpsertSuppressions(ctx, uniqueSuppressions(w.suppress)); err != nil {
			return err
		}
	}
	return tx.InsertEvents(ctx, w.events)
}

// record adds one held message's result to w: its recipients' new
// statuses, the attempt (its transcript as the policy says), the message's
// status derived from all its recipients, and its events.
func (q *Queue[TTx]) record(w *resultWrites, m *MessageState, r *Result) error {
	delivered := len(r.Recipients) > 0 && r.Attempt.Error == ""
	for _, rr := range r.Recipients {
		delivered = delivered && rr.Status == RecipientDelivered
		for i := range m.Recipients {
			rs := &m.Recipients[i]
			if rs.Address != rr.Address || !rs.Status.Open() {
				continue
			}
			rs.Status = rr.Status
			w.rcpts = append(w.rcpts, RecipientUpdate{MessageID: m.ID, Idx: rs.Idx, Status: rr.Status,
				Attempted: true, SetReply: true, Code: rr.Code,
				EnhancedCode: clean(rr.EnhancedCode), Text: clean(rr.Text)})
			if rr.Status == RecipientFailed && rr.Refused && hardBounce(rr.Code, rr.EnhancedCode) {
				w.suppress = append(w.suppress, bounceSuppression(m.ID, rr.Address, rr.Code,
					clean(rr.EnhancedCode), clean(rr.Text), time.Now()))
			}
		}
	}
	a := r.Attempt
	a.Route, a.Host, a.Reply, a.Error = clean(a.Route), clean(a.Host), clean(a.Reply), clean(a.Error)
	switch {
	case q.opts.Transcripts == TranscriptsOff,
		q.opts.Transcripts == TranscriptsFailures && delivered && !a.KeepTranscript:
		a.Transcript = ""
	default:
		a.Transcript = clean(a.Transcript)
	}
	w.attempts = append(w.attempts, AttemptRow{MessageID: m.ID, Attempt: a})
	st := summarize(m.Recipients)
	row := StateRow{ID: m.ID, Status: st, ClearLease: true}
	if !st.Final() {
		row.Next = r.NextAttemptAt
	}
	w.states = append(w.states, row)
	for _, e := range r.Events {
		id, err := uuid.NewV7()
		if err != nil {
			return err
		}
		w.events = append(w.events, EventRow{ID: id.String(), NewEvent: e})
	}
	return nil
}

// sortedUnique returns ids sorted, without repeats.
func sortedUnique(ids []string) []string {
	out := slices.Clone(ids)
	slices.Sort(out)
	return slices.Compact(out)
}

package queue

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// checkEvents rejects events that cannot be posted or stored, naming the
// field; prefix names where they came from.
func checkEvents(prefix string, events []NewEvent) error {
	for i, e := range events {
		field := fmt.Sprintf("%s[%d]", prefix, i)
		if e.Endpoint == "" || e.Type == "" {
			return fmt.Errorf("%w: %s needs an endpoint and a type", ErrInvalid, field)
		}
		err := errors.Join(checkText(field+".Endpoint", e.Endpoint, true),
			checkText(field+".Type", e.Type, true), checkText(field+".MessageID", e.MessageID, true))
		if err != nil {
			return err
		}
	}
	return nil
}

func eventRows(events []NewEvent) ([]EventRow, error) {
	rows := make([]EventRow, len(events))
	for i, e := range events {
		id, err := uuid.NewV7()
		if err != nil {
			return nil, err
		}
		if e.Payload == nil {
			e.Payload = []byte{} // an empty body is still a body
		}
		rows[i] = EventRow{ID: id.String(), NewEvent: e}
	}
	return rows, nil
}

// AddEvents durably records events not tied to a delivery result, in one
// transaction: all or none.
func (q *Queue[TTx]) AddEvents(ctx context.Context, events []NewEvent) error {
	if err := checkEvents("events", events); err != nil {
		return q.wrap("add events", err)
	}
	if len(events) == 0 {
		return q.check()
	}
	rows, err := eventRows(events)
	if err != nil {
		return q.wrap("add events", err)
	}
	return q.write(ctx, "add events", true, func(tx Tx) error {
		if err := tx.InsertEvents(ctx, rows); err != nil {
			return err
		}
		return tx.Notify(ctx)
	})
}

// ClaimEvents leases up to limit due events to owner, longest due first;
// an event whose lease lapsed is due again. Each claim counts as an
// attempt. Like message claims, its commit may skip the fsync.
func (q *Queue[TTx]) ClaimEvents(ctx context.Context, owner string, limit int, lease time.Duration) ([]Event, error) {
	if err := q.check(); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, nil
	}
	var out []Event
	err := q.write(ctx, "claim events", false, func(tx Tx) error {
		var err error
		out, err = tx.ClaimEvents(ctx, owner, limit, lease)
		return err
	})
	return out, err
}

// FinishEvent records the outcome of posting an event owner holds:
// delivered removes it; otherwise it is due again at next with lastError
// kept, or abandoned for good (kept until Purge) when next is zero. An
// event owner no longer holds gives ErrLeaseLost and changes nothing.
func (q *Queue[TTx]) FinishEvent(ctx context.Context, owner, id string, delivered bool, next time.Time, lastError string) error {
	if !storable(id) {
		return firstErr(q.check(), fmt.Errorf("%s: finish event: %w", q.name, ErrLeaseLost))
	}
	lastError = clean(lastError)
	return q.write(ctx, "finish event", true, func(tx Tx) error {
		ok, err := tx.FinishEvent(ctx, owner, id, delivered, next, lastError)
		if err == nil && !ok {
			err = fmt.Errorf("event %s: %w", id, ErrLeaseLost)
		}
		return err
	})
}

// NextEventDue returns the earliest time an event becomes claimable.
func (q *Queue[TTx]) NextEventDue(ctx context.Context) (t time.Time, ok bool, err error) {
	err = q.read(ctx, "next event due", func(tx Tx) error {
		t, ok, err = tx.NextEventDue(ctx)
		return err
	})
	return t, ok, err
}

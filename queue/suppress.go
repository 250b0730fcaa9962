package queue

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Suppression causes.
const (
	CauseBounced      = "bounced"
	CauseComplained   = "complained"
	CauseUnsubscribed = "unsubscribed"
	CauseManual       = "manual"
)

// normalAddress is how suppressed addresses are stored and looked up.
func normalAddress(a string) string { return strings.ToLower(strings.TrimSpace(a)) }

func checkSuppression(i int, s *Suppression) error {
	field := fmt.Sprintf("entries[%d]", i)
	s.Address, s.Scope = normalAddress(s.Address), normalAddress(s.Scope)
	if s.Address == "" {
		return fmt.Errorf("%w: %s.Address is empty", ErrInvalid, field)
	}
	if s.Cause == "" {
		s.Cause = CauseManual
	}
	switch s.Cause {
	case CauseBounced, CauseComplained, CauseUnsubscribed, CauseManual:
	default:
		return fmt.Errorf("%w: %s.Cause %q is not bounced, complained, unsubscribed or manual", ErrInvalid, field, s.Cause)
	}
	if strings.ContainsAny(s.Scope, "@ ") {
		return fmt.Errorf("%w: %s.Scope %q is not a domain", ErrInvalid, field, s.Scope)
	}
	for _, f := range []struct {
		name, v string
		lines   bool
	}{{"Address", s.Address, true}, {"Scope", s.Scope, true}, {"Reason", s.Reason, false}, {"MessageID", s.MessageID, true}} {
		if err := checkText(field+"."+f.name, f.v, f.lines); err != nil {
			return err
		}
	}
	return nil
}

// Suppress adds entries to the suppression list, or replaces those with
// the same address and scope (the last one given wins), and records
// events, the webhook notifications of the change, in one transaction.
// Addresses and scopes are kept lower-cased; a zero CreatedAt is now.
func (q *Queue[TTx]) Suppress(ctx context.Context, entries []Suppression, events ...NewEvent) error {
	rows := slices.Clone(entries)
	now := time.Now()
	for i := range rows {
		if err := checkSuppression(i, &rows[i]); err != nil {
			return q.wrap("suppress", err)
		}
		if rows[i].CreatedAt.IsZero() {
			rows[i].CreatedAt = now
		}
	}
	hooks, err := q.hookRows(events)
	if err != nil {
		return err
	}
	if len(rows) == 0 && len(hooks) == 0 {
		return q.check()
	}
	return q.write(ctx, "suppress", true, func(tx Tx) error {
		if len(rows) > 0 {
			if err := tx.UpsertSuppressions(ctx, uniqueSuppressions(rows)); err != nil {
				return err
			}
		}
		return insertHooks(ctx, tx, hooks)
	})
}

// hookRows checks webhook events to record beside a change and gives
// them their ids.
func (q *Queue[TTx]) hookRows(events []NewEvent) ([]EventRow, error) {
	if err := checkEvents("events", events); err != nil {
		return nil, q.wrap("events", err)
	}
	rows, err := eventRows(events)
	if err != nil {
		return nil, q.wrap("events", err)
	}
	return rows, nil
}

// insertHooks records webhook events and wakes the dispatchers of other
// processes once the transaction commits.
func insertHooks(ctx context.Context, tx Tx, rows []EventRow) error {
	if len(rows) == 0 {
		return nil
	}
	if err := tx.InsertEvents(ctx, rows); err != nil {
		return err
	}
	return tx.Notify(ctx)
}

// Unsuppress removes the entry for address in scope ("" for every
// sender); ErrNotFound if there is none.
func (q *Queue[TTx]) Unsuppress(ctx context.Context, address, scope string) error {
	address, scope = normalAddress(address), normalAddress(scope)
	if !storable(address) || !storable(scope) {
		return firstErr(q.check(), ErrNotFound)
	}
	return q.write(ctx, "unsuppress", true, func(tx Tx) error {
		ok, err := tx.DeleteSuppression(ctx, address, scope)
		if err == nil && !ok {
			err = fmt.Errorf("suppression of %q: %w", address, ErrNotFound)
		}
		return err
	})
}

// Suppressions lists the suppression list by address then scope, expired
// entries included (they say when they ended), by keyset paging.
func (q *Queue[TTx]) Suppressions(ctx context.Context, f SuppressionFilter) (*SuppressionPage, error) {
	if err := checkText("Address", f.Address, true); err != nil {
		return nil, q.wrap("suppressions", err)
	}
	var afterAddr, afterScope string
	if f.Cursor != "" {
		c, ok := decodeCursor(f.Cursor)
		if !ok || !storable(strings.ReplaceAll(c, "\x00", "")) {
			return nil, fmt.Errorf("%s: %w: Cursor: malformed cursor", q.name, ErrInvalid)
		}
		afterAddr, afterScope, _ = strings.Cut(c, "\x00")
	}
	limit := pageLimit(f.Limit)
	page := &SuppressionPage{}
	err := q.read(ctx, "suppressions", func(tx Tx) error {
		rows, err := tx.ListSuppressions(ctx, normalAddress(f.Address), afterAddr, afterScope, limit+1)
		if len(rows) > limit {
			rows = rows[:limit]
			last := rows[limit-1]
			page.Next = encodeCursor(last.Address, last.Scope)
		}
		page.Suppressions = rows
		return err
	})
	if err != nil {
		return nil, err
	}
	return page, nil
}

// LookupSuppression returns the live entry that stops mail from a sender
// of senderDomain to address: one for that domain first, else one for
// every sender; ErrNotFound if there is none.
func (q *Queue[TTx]) LookupSuppression(ctx context.Context, address, senderDomain string) (*Suppression, error) {
	address, senderDomain = normalAddress(address), normalAddress(senderDomain)
	if !storable(address) || !storable(senderDomain) {
		return nil, firstErr(q.check(), ErrNotFound)
	}
	var found *Suppression
	err := q.read(ctx, "lookup suppression", func(tx Tx) error {
		rows, err := tx.LiveSuppressions(ctx, []string{address})
		slices.SortFunc(rows, func(a, b Suppression) int { return -strings.Compare(a.Scope, b.Scope) })
		found = suppressing(rows, senderDomain)
		if err == nil && found == nil {
			err = fmt.Errorf("suppression of %q: %w", address, ErrNotFound)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return found, nil
}

// AddRecipientEvents records what was learnt about recipients after
// sending, and hooks, the webhook events about it, in one transaction.
// A bounce turns the named recipient, if delivered, bounced with the
// bounce's diagnostic, and the message's status follows (a delivered
// message becomes partial, or failed when no recipient is left
// delivered); a message being sent keeps its status, which its attempt's
// result derives from every recipient anyway. A hard bounce (see
// hardBounce: 5.1.1 no such user, say, but not 5.7.1 refused as spam)
// adds the address to the suppression list for every sender; a complaint
// adds it for the message's sender domain; delays are history only. An
// unknown message gives ErrNotFound and records nothing.
func (q *Queue[TTx]) AddRecipientEvents(ctx context.Context, events []RecipientEvent, hooks ...NewEvent) error {
	rows, err := q.recipientEventRows(events)
	if err != nil {
		return err
	}
	hookRows, err := q.hookRows(hooks)
	if err != nil {
		return err
	}
	if len(rows) == 0 {
		return q.check()
	}
	return q.write(ctx, "recipient events", true, func(tx Tx) error {
		locked := map[string]*MessageState{}
		var sup []Suppression
		for _, e := range rows {
			m := locked[e.MessageID]
			if m == nil {
				var err error
				if m, err = tx.Lock(ctx, e.MessageID); err != nil {
					return fmt.Errorf("message %s: %w", e.MessageID, err)
				}
				locked[e.MessageID] = m
			}
			s, err := feedbackSuppression(ctx, tx, e)
			if err != nil {
				return err
			}
			if s != nil {
				sup = append(sup, *s)
			}
			if e.Type == HistoryBounced {
				if err := bounce(ctx, tx, m, e); err != nil {
					return err
				}
			}
		}
		if err := tx.InsertHistory(ctx, rows); err != nil {
			return err
		}
		if len(sup) > 0 {
			if err := tx.UpsertSuppressions(ctx, uniqueSuppressions(sup)); err != nil {
				return err
			}
		}
		return insertHooks(ctx, tx, hookRows)
	})
}

// recipientEventRows checks events and returns them as stored: text
// made storable, a zero time now.
func (q *Queue[TTx]) recipientEventRows(events []RecipientEvent) ([]RecipientEvent, error) {
	rows := slices.Clone(events)
	now := time.Now()
	for i := range rows {
		e := &rows[i]
		field := fmt.Sprintf("events[%d]", i)
		if !e.Type.Valid() {
			return nil, fmt.Errorf("%s: %w: %s.Type %q is not bounced, delayed or complained", q.name, ErrInvalid, field, e.Type)
		}
		if err := checkText(field+".Address", e.Address, true); err != nil || e.Address == "" {
			return nil, fmt.Errorf("%s: %w: %s.Address is empty or not storable", q.name, ErrInvalid, field)
		}
		if !storable(e.MessageID) {
			return nil, q.wrap("recipient events", fmt.Errorf("message %q: %w", e.MessageID, ErrNotFound))
		}
		e.EnhancedCode, e.Text = clean(e.EnhancedCode), clean(e.Text)
		if e.At.IsZero() {
			e.At = now
		}
	}
	return rows, nil
}

// feedbackSuppression is the suppression event e causes, if any: a hard
// bounce's for every sender, a complaint's for the message's sender
// domain (read from the message).
func feedbackSuppression(ctx context.Context, tx Tx, e RecipientEvent) (*Suppression, error) {
	switch {
	case e.Type == HistoryBounced && hardBounce(e.Code, e.EnhancedCode):
		s := bounceSuppression(e.MessageID, e.Address, e.Code, e.EnhancedCode, e.Text, e.At)
		return &s, nil
	case e.Type == HistoryComplained:
		m, err := tx.Message(ctx, e.MessageID)
		if err != nil {
			return nil, fmt.Errorf("message %s: %w", e.MessageID, err)
		}
		s := complaintSuppression(e.MessageID, e.Address, m.From, e.Text, e.At)
		return &s, nil
	}
	return nil, nil
}

// bounce applies one bounce to a locked message.
func bounce(ctx context.Context, tx Tx, m *MessageState, e RecipientEvent) error {
	before := summarize(m.Recipients)
	var rows []RecipientUpdate
	for i, r := range m.Recipients {
		if strings.EqualFold(r.Address, e.Address) && (r.Status == RecipientDelivered || r.Status == RecipientBounced) {
			m.Recipients[i].Status = RecipientBounced
			rows = append(rows, RecipientUpdate{MessageID: m.ID, Idx: r.Idx, Status: RecipientBounced,
				SetReply: true, Code: e.Code, EnhancedCode: e.EnhancedCode, Text: e.Text})
		}
	}
	if err := tx.UpdateRecipients(ctx, rows); err != nil {
		return err
	}
	after := summarize(m.Recipients)
	if m.Status == StatusSending || after == before || !m.Status.Final() {
		return nil
	}
	m.Status = after
	return tx.SetStates(ctx, []StateRow{{ID: m.ID, Status: after}})
}

package queue

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// Enqueue validates m, spools its body, and hands it to the writer; it
// returns once the commit that holds it is durable. After the hand-off it
// waits for the commit even if ctx ends, so that its answer is never a lie.
func (q *Queue[TTx]) Enqueue(ctx context.Context, m NewMessage) (string, error) {
	e, err := q.enqueue(ctx, m, "", 0)
	return e.ID, err
}

// EnqueueLeased is Enqueue for the node that delivers what it accepts:
// a message due now, not final at once and not a repeat of an earlier
// idempotency key, is written leased to owner until now+lease (status
// sending, attempt 1) in the same group commit as its insert, and returned
// as Claim would have returned it, with its body when it was held in
// memory: no claim transaction, no body read-back. Should the process die,
// the lease lapses and the message is claimed again like any other.
func (q *Queue[TTx]) EnqueueLeased(ctx context.Context, m NewMessage, owner string, lease time.Duration) (Enqueued, error) {
	if owner == "" || lease == 0 {
		return Enqueued{}, fmt.Errorf("%s: %w: EnqueueLeased needs an owner and a lease", q.name, ErrInvalid)
	}
	return q.enqueue(ctx, m, owner, lease)
}

func (q *Queue[TTx]) enqueue(ctx context.Context, m NewMessage, owner string, lease time.Duration) (Enqueued, error) {
	if err := q.check(); err != nil {
		return Enqueued{}, err
	}
	p, err := q.accept(ctx, m)
	if err != nil {
		return Enqueued{}, q.wrap("enqueue", err)
	}
	p.owner, p.lease = owner, lease
	id, err := q.writer.Submit(&writeItem{msg: p})
	if err != nil {
		return Enqueued{}, q.wrap("enqueue", err)
	}
	e := Enqueued{ID: id, Claimed: p.claimed}
	if p.claimed != nil && p.file == nil {
		e.Body = p.mem
	}
	return e, nil
}

// EnqueueTx is the transactional outbox: it writes m, its recipients and
// its body into the caller's transaction tx, inside a savepoint, so that
// the message exists if and only if tx commits, and a failed EnqueueTx
// (bad input, a body that fails half-way) leaves nothing of the message in
// tx and tx usable. The body streams in chunks straight from m.Body. The
// store's workers find the message once tx commits (at once where the
// database notifies other processes, else at their next look).
func (q *Queue[TTx]) EnqueueTx(ctx context.Context, tx TTx, m NewMessage) (string, error) {
	if err := q.check(); err != nil {
		return "", err
	}
	body := m.Body
	p, err := q.prepare(m)
	if err != nil {
		return "", q.wrap("enqueue", err)
	}
	sp, err := q.d.Savepoint(ctx, tx)
	if err != nil {
		return "", q.wrap("enqueue", err)
	}
	defer sp.Rollback(context.Background())
	id, inserted, err := q.insertRows(ctx, sp, []*pending{p})
	if err != nil {
		return "", q.wrap("enqueue", err)
	}
	if inserted[0] {
		n, err := writeChunks(ctx, sp, p.id, body, make([]byte, q.opts.ChunkSize))
		if err != nil {
			return "", q.wrap("enqueue", err)
		}
		if err := sp.SetSize(ctx, p.id, n); err != nil {
			return "", q.wrap("enqueue", err)
		}
		if err := sp.Notify(ctx); err != nil {
			return "", q.wrap("enqueue", err)
		}
	}
	return id[0], q.wrap("enqueue", sp.Commit(ctx))
}

// writeItem is one thing the group-commit writer commits: a message to
// insert, or a batch of delivery results to record. Results share the
// commit of the messages accepted meanwhile, so that fresh mail costs one
// durable commit on the way in and a share of one on the way out.
type writeItem struct {
	msg  *pending
	done *completion
}

func (it *writeItem) size() int64 {
	if it.msg == nil {
		return 0
	}
	return it.msg.size
}

func (it *writeItem) release() {
	if it.msg != nil {
		it.msg.discard()
	}
}

// commitBatch writes every item of batch in one committed transaction:
// the messages first, then the results. It runs on the writer goroutine
// only, which alone uses q.buf. A message's id is its answer; results
// answer with "" and their per-result errors in their completion.
func (q *Queue[TTx]) commitBatch(ctx context.Context, items []*writeItem) ([]string, error) {
	tx, err := q.d.Begin(ctx, true)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(context.Background())
	var batch []*pending
	for _, it := range items {
		if it.msg != nil {
			batch = append(batch, it.msg)
		}
	}
	ids, inserted, err := q.insertBatch(ctx, tx, batch)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(items))
	for i, j := 0, 0; i < len(items); i++ {
		if items[i].msg != nil {
			out[i], j = ids[j], j+1
			continue
		}
		if err := q.recordResults(ctx, tx, items[i].done); err != nil {
			return nil, err
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, err
	}
	q.handToIndexer(batch, inserted)
	q.commits.Add(1)
	q.committed.Add(int64(len(batch)))
	return out, nil
}

// insertBatch inserts every message of batch in tx, and reports which
// were new (not a repeat of an idempotency key).
func (q *Queue[TTx]) insertBatch(ctx context.Context, tx Tx, batch []*pending) ([]string, []bool, error) {
	if len(batch) == 0 {
		return nil, nil, nil
	}
	ids, inserted, err := q.insertRows(ctx, tx, batch)
	if err != nil {
		return nil, nil, err
	}
	for i, p := range batch {
		if !inserted[i] || p.file == nil {
			continue
		}
		body, err := p.body()
		if err != nil {
			return nil, nil, err
		}
		n, err := writeChunks(ctx, tx, p.id, body, q.buf)
		if err != nil {
			return nil, nil, err
		}
		if n != p.size {
			return nil, nil, fmt.Errorf("body changed while stored: %d bytes, expected %d", n, p.size)
		}
	}
	if err := tx.Notify(ctx); err != nil {
		return nil, nil, err
	}
	return ids, inserted, nil
}

// insertRows writes the rows of batch: it checks the suppression list,
// derives each message's first state, inserts messages and recipients, and
// resolves idempotency keys already taken. Bodies that were spooled to a
// file are left to the caller; those held in memory go with their row.
func (q *Queue[TTx]) insertRows(ctx context.Context, tx Tx, batch []*pending) ([]string, []bool, error) {
	sup, err := q.suppressionsFor(ctx, tx, batch)
	if err != nil {
		return nil, nil, err
	}
	rows := make([]MessageRow, len(batch))
	var rcpts [][]RecipientRow
	for i, p := range batch {
		var rs []RecipientRow
		rows[i], rs = q.firstState(p, sup)
		rcpts = append(rcpts, rs)
	}
	ins, err := tx.InsertMessages(ctx, rows)
	if err != nil {
		return nil, nil, err
	}
	ids := make([]string, len(batch))
	inserted := make([]bool, len(batch))
	var taken []string
	var all []RecipientRow
	for i, p := range batch {
		inserted[i] = ins[i].OK
		p.claimed = nil // from an earlier try of a batch that failed, if any
		if !ins[i].OK {
			taken = append(taken, p.msg.IdempotencyKey)
			continue
		}
		ids[i] = p.id
		all = append(all, rcpts[i]...)
		if rows[i].Status == StatusSending {
			p.claimed = claimedFrom(&rows[i], rcpts[i], p, ins[i].LeaseExpiresAt)
		}
	}
	if err := tx.InsertRecipients(ctx, all); err != nil {
		return nil, nil, err
	}
	if len(taken) > 0 {
		found, err := tx.FindKeys(ctx, taken)
		if err != nil {
			return nil, nil, fmt.Errorf("find idempotency keys: %w", err)
		}
		for i, p := range batch {
			if !inserted[i] {
				if ids[i] = found[p.msg.IdempotencyKey]; ids[i] == "" {
					return nil, nil, fmt.Errorf("idempotency key of message %d not found", i)
				}
			}
		}
	}
	return ids, inserted, nil
}

// suppressionsFor reads the live suppressions of batch's recipients by
// lower-cased address, for the messages that heed the list.
func (q *Queue[TTx]) suppressionsFor(ctx context.Context, tx Tx, batch []*pending) (map[string][]Suppression, error) {
	seen := map[string]bool{}
	var addrs []string
	for _, p := range batch {
		if p.msg.IgnoreSuppressions {
			continue
		}
		for _, r := range p.msg.Recipients {
			if a := strings.ToLower(r); !seen[a] {
				seen[a] = true
				addrs = append(addrs, a)
			}
		}
	}
	if len(addrs) == 0 {
		return nil, nil
	}
	rows, err := tx.LiveSuppressions(ctx, addrs)
	if err != nil {
		return nil, fmt.Errorf("read suppressions: %w", err)
	}
	out := make(map[string][]Suppression, len(rows))
	for _, s := range rows {
		out[s.Address] = append(out[s.Address], s)
	}
	return out, nil
}

// suppressing returns the entry that stops mail from a sender of domain
// to the address it is listed under, nil if none.
func suppressing(entries []Suppression, domain string) *Suppression {
	for i, s := range entries {
		if s.Scope == "" || s.Scope == domain {
			return &entries[i]
		}
	}
	return nil
}

// firstState derives a new message's row and recipients: suppressed
// recipients are never sent; a message with none left is failed at once;
// fresh mail due now for a node that asked is leased to it.
func (q *Queue[TTx]) firstState(p *pending, sup map[string][]Suppression) (MessageRow, []RecipientRow) {
	m := &p.msg
	domain := senderDomain(m.From)
	rs := make([]RecipientRow, len(m.Recipients))
	statuses := make([]RecipientStatus, len(m.Recipients))
	for i, addr := range m.Recipients {
		rs[i] = RecipientRow{MessageID: p.id, Idx: i, Address: addr, Status: RecipientPending}
		if len(m.RecipientDSN) > 0 {
			rs[i].DSN = m.RecipientDSN[i]
		}
		if s := suppressing(sup[strings.ToLower(addr)], domain); s != nil && !m.IgnoreSuppressions {
			rs[i].Status = RecipientSuppressed
			rs[i].Text = "suppressed: " + s.Cause
			if s.Reason != "" {
				rs[i].Text += ": " + s.Reason
			}
		}
		statuses[i] = rs[i].Status
	}
	row := MessageRow{ID: p.id, From: m.From, Subject: m.Subject, Status: Summarize(statuses),
		CreatedAt: p.created, NextAttemptAt: p.created, ExpiresAt: p.expires,
		IdempotencyKey: m.IdempotencyKey, Size: p.size, Source: m.Source, Flags: m.Flags,
		Repairs: m.Repairs, Tags: m.Tags}
	if !m.SendAt.IsZero() {
		row.NextAttemptAt = m.SendAt
	}
	if p.file == nil {
		row.Inline = p.mem
	}
	if row.Status.Final() {
		row.NextAttemptAt = time.Time{}
	} else if p.owner != "" && !m.SendAt.After(p.created) {
		row.Status, row.LeaseOwner, row.Lease = StatusSending, p.owner, p.lease
	}
	return row, rs
}

// claimedFrom is what Claim would return for a row written leased.
func claimedFrom(row *MessageRow, rs []RecipientRow, p *pending, lease time.Time) *Claimed {
	c := &Claimed{LeaseExpiresAt: lease, Message: Message{ID: row.ID, From: row.From,
		Subject: row.Subject, Status: StatusSending, Size: row.Size, Attempts: 1,
		IdempotencyKey: row.IdempotencyKey, Source: row.Source, Flags: row.Flags,
		Repairs: row.Repairs, Tags: row.Tags, CreatedAt: row.CreatedAt, UpdatedAt: row.CreatedAt,
		NextAttemptAt: row.NextAttemptAt, ExpiresAt: row.ExpiresAt}}
	for _, r := range rs {
		if r.Status.Open() {
			c.Recipients = append(c.Recipients, Recipient{Idx: r.Idx, Address: r.Address, Status: r.Status, DSN: r.DSN})
		}
	}
	return c
}

// writeChunks streams body into the store one chunk at a time.
func writeChunks(ctx context.Context, tx Tx, id string, body io.Reader, buf []byte) (int64, error) {
	var total int64
	for seq := 0; ; seq++ {
		n, err := io.ReadFull(body, buf)
		if n > 0 {
			if err := tx.WriteChunk(ctx, id, seq, buf[:n]); err != nil {
				return total, err
			}
			total += int64(n)
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return total, nil
		}
		if err != nil {
			return total, fmt.Errorf("read body: %w", err)
		}
	}
}

package sqlite

import (
	"context"
	"encoding/json"
	"time"

	"github.com/outbox-mail/outbox/queue"
)

// idsJSON is a JSON array of strings, for the rare list (of statuses) that
// is not worth a VALUES list.
func idsJSON(ids []string) string {
	b, _ := json.Marshal(ids)
	return string(b)
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// ms converts a time to the stored unix milliseconds; zero stays 0.
func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// fromMS converts stored unix milliseconds back; 0 is the zero time.
func fromMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v)
}

const insertMessageSQL = `INSERT INTO messages (id, sender, subject, status, created_at,
	updated_at, next_attempt_at, expires_at, idempotency_key, size, tags, source, eight_bit,
	smtputf8, dsn_ret, dsn_envid, ignore_suppressions, repairs, lease_owner, lease_expires_at, attempts,
	unsubscribe, long_lines)
	VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22)
	ON CONFLICT (idempotency_key) DO NOTHING`

// InsertMessages inserts each row with one prepared statement (no round
// trips to save in an embedded database), and its inline body as chunk 0.
func (t *sqlTx) InsertMessages(ctx context.Context, rows []queue.MessageRow) ([]queue.Inserted, error) {
	out := make([]queue.Inserted, len(rows))
	for i := range rows {
		r := &rows[i]
		var key any
		if r.IdempotencyKey != "" {
			key = r.IdempotencyKey
		}
		tags, err := queue.TagsText(r.Tags)
		if err != nil {
			return nil, err
		}
		var lease int64
		attempts := 0
		if r.LeaseOwner != "" {
			out[i].LeaseExpiresAt = r.CreatedAt.Add(r.Lease).Truncate(time.Millisecond)
			lease, attempts = out[i].LeaseExpiresAt.UnixMilli(), 1
		}
		res, err := t.exec(ctx, insertMessageSQL, r.ID, r.From, r.Subject, string(r.Status),
			r.CreatedAt.UnixMilli(), ms(r.NextAttemptAt), r.ExpiresAt.UnixMilli(), key, r.Size, tags,
			string(r.Source), b2i(r.Flags.EightBit), b2i(r.Flags.SMTPUTF8), string(r.Flags.DSN.Return),
			r.Flags.DSN.EnvID, b2i(r.Flags.IgnoreSuppressions), queue.ListText(r.Repairs),
			r.LeaseOwner, lease, attempts, b2i(r.Flags.Unsubscribe), b2i(r.Flags.LongLines))
		if err != nil {
			return nil, err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			continue
		}
		out[i].OK = true
		if len(r.Inline) > 0 {
			if err := t.WriteChunk(ctx, r.ID, 0, r.Inline); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// FindKeys returns the ids holding idempotency keys.
func (t *sqlTx) FindKeys(ctx context.Context, keys []string) (map[string]string, error) {
	out := map[string]string{}
	err := chunks(len(keys), func(lo, hi int) error {
		args, in := inArgs(nil, keys[lo:hi])
		rows, err := t.query(ctx, `SELECT idempotency_key, id FROM messages WHERE idempotency_key IN (`+in+`)`, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var k, id string
			if err := rows.Scan(&k, &id); err != nil {
				return err
			}
			out[k] = id
		}
		return rows.Err()
	})
	return out, err
}

// InsertRecipients inserts recipients in one statement.
func (t *sqlTx) InsertRecipients(ctx context.Context, rs []queue.RecipientRow) error {
	if len(rs) == 0 {
		return nil
	}
	return t.execRows(ctx, len(rs), 7, nil, func(values string) string {
		return `INSERT INTO recipients (message_id, idx, address, status, text, dsn_notify, dsn_orcpt)
		SELECT v.column1, v.column2, v.column3, v.column4, v.column5, v.column6, v.column7
		FROM (VALUES ` + values + `) AS v
		WHERE v.column1 IS NOT NULL AND EXISTS (SELECT 1 FROM messages m WHERE m.id = v.column1)`
	}, func(args []any, i int) []any {
		r := &rs[i]
		return append(args, r.MessageID, r.Idx, r.Address, string(r.Status), r.Text,
			queue.ListText(r.DSN.Notify), r.DSN.ORcpt)
	})
}

// WriteChunk stores one body chunk.
func (t *sqlTx) WriteChunk(ctx context.Context, id string, seq int, data []byte) error {
	_, err := t.exec(ctx, `INSERT INTO body_chunks (message_id, seq, data) VALUES (?, ?, ?)`, id, seq, data)
	return err
}

// Probe rewrites the probe row: a page write the commit must make durable.
func (t *sqlTx) Probe(ctx context.Context) error {
	_, err := t.exec(ctx, `INSERT INTO store_probe (id, at) VALUES (1, ?)
		ON CONFLICT (id) DO UPDATE SET at = excluded.at`, time.Now().UnixMilli())
	return err
}

// SetSize records a streamed body's size.
func (t *sqlTx) SetSize(ctx context.Context, id string, size int64) error {
	_, err := t.exec(ctx, `UPDATE messages SET size = ? WHERE id = ?`, size, id)
	return err
}

const suppressionCols = `address, scope, reason, cause, message_id, created_at, expires_at`

func scanSuppressions(t *sqlTx, ctx context.Context, query string, args ...any) ([]queue.Suppression, error) {
	rows, err := t.query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []queue.Suppression
	for rows.Next() {
		var s queue.Suppression
		var created, expires int64
		if err := rows.Scan(&s.Address, &s.Scope, &s.Reason, &s.Cause, &s.MessageID, &created, &expires); err != nil {
			return nil, err
		}
		s.CreatedAt, s.ExpiresAt = fromMS(created), fromMS(expires)
		out = append(out, s)
	}
	return out, rows.Err()
}

// LiveSuppressions reads the unexpired entries of addresses.
func (t *sqlTx) LiveSuppressions(ctx context.Context, addresses []string) ([]queue.Suppression, error) {
	var out []queue.Suppression
	err := chunks(len(addresses), func(lo, hi int) error {
		args, in := inArgs([]any{time.Now().UnixMilli()}, addresses[lo:hi])
		got, err := scanSuppressions(t, ctx, `SELECT `+suppressionCols+` FROM suppressions
			WHERE (expires_at = 0 OR expires_at > ?1) AND address IN (`+in+`)`, args...)
		out = append(out, got...)
		return err
	})
	return out, err
}

// Notify is a no-op: only this process writes the file.
func (t *sqlTx) Notify(context.Context) error { return nil }

// dueQuery lists the oldest due messages (?3 is now, ?4 the limit) as one
// bounded index range per status, so a claim costs the same with a backlog
// of a million as with ten.
const dueQuery = `
	SELECT * FROM (SELECT id, next_attempt_at AS due FROM messages INDEXED BY messages_queued
		WHERE status = 'queued' AND next_attempt_at <= ?3 ORDER BY next_attempt_at LIMIT ?4)
	UNION ALL
	SELECT * FROM (SELECT id, next_attempt_at AS due FROM messages INDEXED BY messages_deferred
		WHERE status = 'deferred' AND next_attempt_at <= ?3 ORDER BY next_attempt_at LIMIT ?4)
	UNION ALL
	SELECT * FROM (SELECT id, lease_expires_at AS due FROM messages INDEXED BY messages_sending
		WHERE status = 'sending' AND lease_expires_at <= ?3 ORDER BY lease_expires_at LIMIT ?4)`

// ClaimDue leases due messages in one statement.
func (t *sqlTx) ClaimDue(ctx context.Context, owner string, limit int, lease time.Duration) ([]queue.Claimed, error) {
	now := time.Now()
	until := now.Add(lease).UnixMilli()
	rows, err := t.query(ctx, `UPDATE messages
		SET status = 'sending', lease_owner = ?1, lease_expires_at = ?2,
			attempts = attempts + 1, updated_at = ?3
		WHERE id IN (SELECT id FROM (`+dueQuery+`) ORDER BY due LIMIT ?4)
		RETURNING `+msgCols, owner, until, now.UnixMilli(), limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []queue.Claimed
	for rows.Next() {
		m, err := scanMessage(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, queue.Claimed{Message: m, LeaseExpiresAt: time.UnixMilli(until)})
	}
	return out, rows.Err()
}

// Renew extends owner's leases.
func (t *sqlTx) Renew(ctx context.Context, owner string, ids []string, lease time.Duration) error {
	now := time.Now()
	return chunks(len(ids), func(lo, hi int) error {
		args, in := inArgs([]any{now.Add(lease).UnixMilli(), now.UnixMilli(), owner}, ids[lo:hi])
		_, err := t.exec(ctx, `UPDATE messages SET lease_expires_at = ?1, updated_at = ?2
			WHERE lease_owner = ?3 AND status = 'sending' AND id IN (`+in+`)`, args...)
		return err
	})
}

// states reads message states joined with their recipients.
func (t *sqlTx) states(ctx context.Context, query string, args ...any) ([]queue.MessageState, error) {
	rows, err := t.query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []queue.MessageState
	for rows.Next() {
		var m queue.MessageState
		var r queue.RecipientState
		var status, rstatus string
		if err := rows.Scan(&m.ID, &status, &m.Attempts, &m.LeaseLive, &r.Idx, &r.Address, &rstatus); err != nil {
			return nil, err
		}
		r.Status = queue.RecipientStatus(rstatus)
		if n := len(out); n > 0 && out[n-1].ID == m.ID {
			out[n-1].Recipients = append(out[n-1].Recipients, r)
			continue
		}
		m.Status, m.Recipients = queue.Status(status), []queue.RecipientState{r}
		out = append(out, m)
	}
	return out, rows.Err()
}

const stateCols = `m.id, m.status, m.attempts, m.status = 'sending' AND m.lease_expires_at > ?1,
	r.idx, r.address, r.status FROM messages m JOIN recipients r ON r.message_id = m.id`

// Held reads owner's leased messages of ids with their recipients. The
// single writer connection is the lock.
func (t *sqlTx) Held(ctx context.Context, owner string, ids []string) ([]queue.MessageState, error) {
	var out []queue.MessageState
	err := chunks(len(ids), func(lo, hi int) error {
		args, in := inArgs([]any{time.Now().UnixMilli(), owner}, ids[lo:hi])
		got, err := t.states(ctx, `SELECT `+stateCols+`
			WHERE m.status = 'sending' AND m.lease_owner = ?2 AND m.id IN (`+in+`)
			ORDER BY m.id, r.idx`, args...)
		out = append(out, got...)
		return err
	})
	return out, err
}

// Lock reads one message's state.
func (t *sqlTx) Lock(ctx context.Context, id string) (*queue.MessageState, error) {
	st, err := t.states(ctx, `SELECT `+stateCols+` WHERE m.id = ?2 ORDER BY r.idx`, time.Now().UnixMilli(), id)
	if err != nil {
		return nil, err
	}
	if len(st) == 0 {
		return nil, queue.ErrNotFound
	}
	return &st[0], nil
}

// UpdateRecipients applies recipient changes in one statement.
func (t *sqlTx) UpdateRecipients(ctx context.Context, rs []queue.RecipientUpdate) error {
	if len(rs) == 0 {
		return nil
	}
	return t.execRows(ctx, len(rs), 8, []any{time.Now().UnixMilli()}, func(values string) string {
		return `UPDATE recipients SET status = v.column3,
		attempts = attempts + v.column4,
		last_attempt_at = CASE WHEN v.column4 THEN ?1 ELSE last_attempt_at END,
		code = CASE WHEN v.column5 THEN v.column6 ELSE code END,
		enhanced_code = CASE WHEN v.column5 THEN v.column7 ELSE enhanced_code END,
		text = CASE WHEN v.column5 THEN v.column8 ELSE text END
		FROM (VALUES ` + values + `) AS v
		WHERE recipients.message_id = v.column1 AND recipients.idx = v.column2`
	}, func(args []any, i int) []any {
		r := &rs[i]
		return append(args, r.MessageID, r.Idx, string(r.Status), b2i(r.Attempted), b2i(r.SetReply),
			r.Code, r.EnhancedCode, r.Text)
	})
}

// InsertAttempts records attempts in one statement.
func (t *sqlTx) InsertAttempts(ctx context.Context, as []queue.AttemptRow) error {
	if len(as) == 0 {
		return nil
	}
	now := time.Now()
	return t.execRows(ctx, len(as), 8, nil, func(values string) string {
		return `INSERT INTO attempts
		(message_id, number, started_at, finished_at, route, host, reply, error, transcript)
		SELECT v.column1, (SELECT coalesce(max(number), 0) + 1 FROM attempts a WHERE a.message_id = v.column1),
			v.column2, v.column3, v.column4, v.column5, v.column6, v.column7, v.column8
		FROM (VALUES ` + values + `) AS v WHERE v.column1 IS NOT NULL`
	}, func(args []any, i int) []any {
		a := as[i].Attempt
		return append(args, as[i].MessageID, ms(orNow(a.StartedAt, now)), ms(orNow(a.FinishedAt, now)),
			a.Route, a.Host, a.Reply, a.Error, a.Transcript)
	})
}

func orNow(t, now time.Time) time.Time {
	if t.IsZero() {
		return now
	}
	return t
}

// SetStates applies message states in one statement.
func (t *sqlTx) SetStates(ctx context.Context, ss []queue.StateRow) error {
	if len(ss) == 0 {
		return nil
	}
	now := time.Now()
	return t.execRows(ctx, len(ss), 6, []any{now.UnixMilli()}, func(values string) string {
		return `UPDATE messages SET status = v.column2, next_attempt_at = v.column3,
		lease_owner = CASE WHEN v.column4 THEN '' ELSE lease_owner END,
		lease_expires_at = CASE WHEN v.column4 THEN 0 ELSE lease_expires_at END,
		attempts = max(attempts - v.column5, 0),
		expires_at = max(expires_at, v.column6), updated_at = ?1
		FROM (VALUES ` + values + `) AS v WHERE messages.id = v.column1`
	}, func(args []any, i int) []any {
		s := &ss[i]
		next := int64(0) // final: no next attempt
		if !s.Status.Final() {
			next = orNow(s.Next, now).UnixMilli()
		}
		var expires int64
		if s.MinLifetime > 0 {
			expires = now.Add(s.MinLifetime).UnixMilli()
		}
		return append(args, s.ID, string(s.Status), next, b2i(s.ClearLease), b2i(s.UncountAttempt), expires)
	})
}

// DeleteMessage deletes one message; its rows cascade.
func (t *sqlTx) DeleteMessage(ctx context.Context, id string) error {
	_, err := t.exec(ctx, `DELETE FROM messages WHERE id = ?`, id)
	return err
}

// DeleteFinal deletes a bounded batch of messages in statuses created
// before the time idBelow encodes.
func (t *sqlTx) DeleteFinal(ctx context.Context, statuses []queue.Status, idBelow string, limit int) (int, error) {
	st := make([]string, len(statuses))
	for i, s := range statuses {
		st[i] = string(s)
	}
	return affected(t.exec(ctx, `DELETE FROM messages WHERE id IN (SELECT id FROM messages
		WHERE status IN (SELECT value FROM json_each(?1)) AND id < ?2 LIMIT ?3)`, idsJSON(st), idBelow, limit))
}

// PurgeFinal deletes a bounded batch of final messages updated before
// cutoff.
func (t *sqlTx) PurgeFinal(ctx context.Context, cutoff time.Time, limit int) (int, error) {
	return affected(t.exec(ctx, `DELETE FROM messages WHERE id IN (
		SELECT id FROM messages INDEXED BY messages_final WHERE status IN ('delivered', 'partial', 'failed', 'cancelled')
			AND updated_at < ? LIMIT ?)`, cutoff.UnixMilli(), limit))
}

// PurgeEvents deletes a bounded batch of abandoned events.
func (t *sqlTx) PurgeEvents(ctx context.Context, cutoff time.Time, limit int) (int, error) {
	return affected(t.exec(ctx, `DELETE FROM events WHERE id IN (SELECT id FROM events
		WHERE status = 'abandoned' AND created_at < ? LIMIT ?)`, cutoff.UnixMilli(), limit))
}

func affected(res interface{ RowsAffected() (int64, error) }, err error) (int, error) {
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	return int(n), err
}

// InsertEvents records webhook events in one statement.
func (t *sqlTx) InsertEvents(ctx context.Context, es []queue.EventRow) error {
	if len(es) == 0 {
		return nil
	}
	return t.execRows(ctx, len(es), 5, []any{time.Now().UnixMilli()}, func(values string) string {
		return `INSERT INTO events (id, endpoint, type, message_id, payload, created_at, next_attempt_at)
		SELECT v.column1, v.column2, v.column3, v.column4, v.column5, ?1, ?1
		FROM (VALUES ` + values + `) AS v WHERE v.column1 IS NOT NULL`
	}, func(args []any, i int) []any {
		e := &es[i]
		return append(args, e.ID, e.Endpoint, e.Type, e.MessageID, e.Payload)
	})
}

// ClaimEvents leases due events in one statement.
func (t *sqlTx) ClaimEvents(ctx context.Context, owner string, limit int, lease time.Duration) ([]queue.Event, error) {
	now := time.Now()
	rows, err := t.query(ctx, `UPDATE events
		SET lease_owner = ?1, lease_expires_at = ?2, attempts = attempts + 1
		WHERE id IN (SELECT id FROM events
			WHERE status = 'pending' AND next_attempt_at <= ?3 AND lease_expires_at <= ?3
			ORDER BY next_attempt_at LIMIT ?4)
		RETURNING id, endpoint, type, message_id, payload, attempts, created_at, next_attempt_at, last_error`,
		owner, now.Add(lease).UnixMilli(), now.UnixMilli(), limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []queue.Event
	for rows.Next() {
		var e queue.Event
		var created, next int64
		if err := rows.Scan(&e.ID, &e.Endpoint, &e.Type, &e.MessageID, &e.Payload,
			&e.Attempts, &created, &next, &e.LastError); err != nil {
			return nil, err
		}
		e.CreatedAt, e.NextAttemptAt = time.UnixMilli(created), time.UnixMilli(next)
		out = append(out, e)
	}
	return out, rows.Err()
}

// FinishEvent deletes or reschedules an event owner holds.
func (t *sqlTx) FinishEvent(ctx context.Context, owner, id string, delivered bool, next time.Time, lastError string) (bool, error) {
	if delivered {
		n, err := affected(t.exec(ctx, `DELETE FROM events WHERE id = ? AND lease_owner = ?`, id, owner))
		return n > 0, err
	}
	status, nextMS := "pending", next.UnixMilli()
	if next.IsZero() {
		status, nextMS = "abandoned", 0
	}
	n, err := affected(t.exec(ctx, `UPDATE events SET status = ?, next_attempt_at = ?,
		last_error = ?, lease_owner = '', lease_expires_at = 0
		WHERE id = ? AND lease_owner = ?`, status, nextMS, lastError, id, owner))
	return n > 0, err
}

// UpsertSuppressions adds or replaces entries in one statement.
func (t *sqlTx) UpsertSuppressions(ctx context.Context, ss []queue.Suppression) error {
	return t.execRows(ctx, len(ss), 7, nil, func(values string) string {
		return `INSERT INTO suppressions (` + suppressionCols + `)
		SELECT v.column1, v.column2, v.column3, v.column4, v.column5, v.column6, v.column7
		FROM (VALUES ` + values + `) AS v WHERE v.column1 IS NOT NULL
		ON CONFLICT (address, scope) DO UPDATE SET reason = excluded.reason, cause = excluded.cause,
			message_id = excluded.message_id, created_at = excluded.created_at, expires_at = excluded.expires_at`
	}, func(args []any, i int) []any {
		s := &ss[i]
		return append(args, s.Address, s.Scope, s.Reason, s.Cause, s.MessageID, ms(s.CreatedAt), ms(s.ExpiresAt))
	})
}

// DeleteSuppression removes one entry.
func (t *sqlTx) DeleteSuppression(ctx context.Context, address, scope string) (bool, error) {
	n, err := affected(t.exec(ctx, `DELETE FROM suppressions WHERE address = ? AND scope = ?`, address, scope))
	return n > 0, err
}

// ListSuppressions reads a page of entries by address and scope.
func (t *sqlTx) ListSuppressions(ctx context.Context, contains, afterAddress, afterScope string, limit int) ([]queue.Suppression, error) {
	return scanSuppressions(t, ctx, `SELECT `+suppressionCols+` FROM suppressions
		WHERE (address, scope) > (?1, ?2) AND instr(address, ?3) > 0
		ORDER BY address, scope LIMIT ?4`, afterAddress, afterScope, contains, limit)
}

// InsertHistory records recipient events in one statement.
func (t *sqlTx) InsertHistory(ctx context.Context, es []queue.RecipientEvent) error {
	if len(es) == 0 {
		return nil
	}
	return t.execRows(ctx, len(es), 7, nil, func(values string) string {
		return `INSERT INTO recipient_events (message_id, address, type, code, enhanced_code, text, created_at)
		SELECT v.column1, v.column2, v.column3, v.column4, v.column5, v.column6, v.column7
		FROM (VALUES ` + values + `) AS v WHERE v.column1 IS NOT NULL`
	}, func(args []any, i int) []any {
		e := &es[i]
		return append(args, e.MessageID, e.Address, string(e.Type), e.Code, e.EnhancedCode, e.Text, ms(e.At))
	})
}

package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/outbox-mail/outbox/queue"
)

// notifySQL wakes every node's watchers once the transaction commits. The
// payload names the schema, so stores of other schemas sharing the
// database can ignore it.
const notifySQL = `SELECT pg_notify('` + notifyChannel + `', current_schema())`

// timeOrNil is nil for the zero time, so it is stored as NULL ("none").
func timeOrNil(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// deref is the zero time for a NULL timestamp.
func deref(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}

// InsertMessages inserts every row in one statement, which also puts each
// on the search index's waiting list; ON CONFLICT skips a taken key, and
// an insert racing an uncommitted one with the same key waits for it. Inline bodies follow as one more statement, pipelined.
func (t *pgTx) InsertMessages(ctx context.Context, rows []queue.MessageRow) ([]queue.Inserted, error) {
	n := len(rows)
	args, err := messageArrays(rows)
	if err != nil {
		return nil, err
	}
	got := map[string]*time.Time{}
	err = t.rows(ctx, func(r pgx.Rows) error {
		var id string
		var lease *time.Time
		if err := r.Scan(&id, &lease); err != nil {
			return err
		}
		got[id] = lease
		return nil
	}, `WITH ins AS (INSERT INTO outbox_messages (id, sender, subject, status, created_at, updated_at,
		next_attempt_at, expires_at, idempotency_key, size, tags, source, eight_bit, smtputf8,
		dsn_ret, dsn_envid, ignore_suppressions, repairs, lease_owner, lease_expires_at, attempts, unsubscribe, long_lines)
	SELECT u.id, u.sender, u.subject, u.status, u.created, u.created, u.next, u.expires,
		nullif(u.key, ''), u.size, u.tags::jsonb, u.source, u.eight, u.utf8, u.ret, u.envid,
		u.ignore, u.repairs, u.owner,
		CASE WHEN u.owner <> '' THEN now() + u.lease * interval '1 microsecond' END,
		CASE WHEN u.owner <> '' THEN 1 ELSE 0 END, u.unsub, u.long
	FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::timestamptz[],
		$7::timestamptz[], $8::text[], $9::bigint[], $10::text[], $11::text[], $12::bool[], $13::bool[],
		$14::text[], $15::text[], $16::bool[], $17::text[], $18::text[], $19::bigint[], $20::bool[], $21::bool[]) WITH ORDINALITY
		AS u(id, sender, subject, status, created, next, expires, key, size, tags, source, eight, utf8,
			ret, envid, ignore, repairs, owner, lease, unsub, long, ord)
	ORDER BY u.ord
	ON CONFLICT (idempotency_key) DO NOTHING
	RETURNING id, lease_expires_at),
	waiting AS (INSERT INTO outbox_search_pending (message_id) SELECT id FROM ins)
	SELECT id, lease_expires_at FROM ins`, args...)
	if err != nil {
		return nil, err
	}
	out := make([]queue.Inserted, n)
	var cids []string
	var data [][]byte
	for i, r := range rows {
		lease, ok := got[r.ID]
		out[i] = queue.Inserted{OK: ok, LeaseExpiresAt: deref(lease)}
		if ok && len(r.Inline) > 0 {
			cids, data = append(cids, r.ID), append(data, r.Inline)
		}
	}
	if len(cids) > 0 {
		t.queue(`INSERT INTO outbox_body_chunks (message_id, seq, data)
			SELECT u.id, 0, u.data FROM unnest($1::text[], $2::bytea[]) AS u(id, data)`, cids, data)
	}
	return out, nil
}

// messageArrays are InsertMessages' arguments: one array per column.
func messageArrays(rows []queue.MessageRow) ([]any, error) {
	n := len(rows)
	var (
		ids, senders, subjects, statuses, keys, tags, sources, rets, envids, repairs, owners = make([]string, n),
			make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n),
			make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		created, expires    = make([]time.Time, n), make([]time.Time, n)
		next                = make([]*time.Time, n)
		sizes, leases       = make([]int64, n), make([]int64, n)
		eight, utf8, ignore = make([]bool, n), make([]bool, n), make([]bool, n)
		unsub, long         = make([]bool, n), make([]bool, n)
	)
	for i, r := range rows {
		ids[i], senders[i], subjects[i], statuses[i], keys[i] = r.ID, r.From, r.Subject, string(r.Status), r.IdempotencyKey
		t, err := queue.TagsText(r.Tags)
		if err != nil {
			return nil, err
		}
		tags[i], sources[i], rets[i], envids[i] = t, string(r.Source), string(r.Flags.DSN.Return), r.Flags.DSN.EnvID
		repairs[i], owners[i], leases[i] = queue.ListText(r.Repairs), r.LeaseOwner, r.Lease.Microseconds()
		created[i], expires[i], next[i], sizes[i] = r.CreatedAt, r.ExpiresAt, timeOrNil(r.NextAttemptAt), r.Size
		eight[i], utf8[i], ignore[i] = r.Flags.EightBit, r.Flags.SMTPUTF8, r.Flags.IgnoreSuppressions
		unsub[i], long[i] = r.Flags.Unsubscribe, r.Flags.LongLines
	}
	return []any{ids, senders, subjects, statuses, created, next, expires, keys, sizes, tags, sources, eight, utf8,
		rets, envids, ignore, repairs, owners, leases, unsub, long}, nil
}

// FindKeys returns the ids holding idempotency keys. It runs as its own
// statement, so it sees the concurrent commit that made ON CONFLICT fire.
func (t *pgTx) FindKeys(ctx context.Context, keys []string) (map[string]string, error) {
	out := map[string]string{}
	err := t.rows(ctx, func(r pgx.Rows) error {
		var k, id string
		err := r.Scan(&k, &id)
		out[k] = id
		return err
	}, `SELECT idempotency_key, id FROM outbox_messages WHERE idempotency_key = ANY($1)`, keys)
	return out, err
}

// InsertRecipients queues the recipients' insert; rows of messages that
// were not inserted (a taken key) find no message and are skipped.
func (t *pgTx) InsertRecipients(ctx context.Context, rs []queue.RecipientRow) error {
	if len(rs) == 0 {
		return nil
	}
	n := len(rs)
	mids, addrs, statuses, texts, notify, orcpt := make([]string, n), make([]string, n), make([]string, n),
		make([]string, n), make([]string, n), make([]string, n)
	idx := make([]int32, n)
	for i, r := range rs {
		mids[i], idx[i], addrs[i], statuses[i], texts[i] = r.MessageID, int32(r.Idx), r.Address, string(r.Status), r.Text
		notify[i], orcpt[i] = queue.ListText(r.DSN.Notify), r.DSN.ORcpt
	}
	t.queue(`INSERT INTO outbox_recipients (message_id, idx, address, status, text, dsn_notify, dsn_orcpt)
		SELECT u.mid, u.idx, u.addr, u.status, u.txt, u.notify, u.orcpt
		FROM unnest($1::text[], $2::int[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[])
			AS u(mid, idx, addr, status, txt, notify, orcpt)
		WHERE EXISTS (SELECT 1 FROM outbox_messages m WHERE m.id = u.mid)`,
		mids, idx, addrs, statuses, texts, notify, orcpt)
	return nil
}

// WriteChunk stores one chunk at once: the caller reuses data's buffer.
func (t *pgTx) WriteChunk(ctx context.Context, id string, seq int, data []byte) error {
	_, err := t.exec(ctx, `INSERT INTO outbox_body_chunks (message_id, seq, data) VALUES ($1, $2, $3)`, id, seq, data)
	return err
}

// Probe rewrites the probe row: a WAL record the commit must flush.
func (t *pgTx) Probe(ctx context.Context) error {
	_, err := t.exec(ctx, `INSERT INTO outbox_probe (id, at) VALUES (1, now())
		ON CONFLICT (id) DO UPDATE SET at = excluded.at`)
	return err
}

// SetSize queues a body's size.
func (t *pgTx) SetSize(ctx context.Context, id string, size int64) error {
	t.queue(`UPDATE outbox_messages SET size = $1 WHERE id = $2`, size, id)
	return nil
}

const suppressionCols = `address, scope, reason, cause, message_id, created_at, expires_at`

func (t *pgTx) suppressions(ctx context.Context, sql string, args ...any) ([]queue.Suppression, error) {
	var out []queue.Suppression
	err := t.rows(ctx, func(r pgx.Rows) error {
		var s queue.Suppression
		var exp *time.Time
		err := r.Scan(&s.Address, &s.Scope, &s.Reason, &s.Cause, &s.MessageID, &s.CreatedAt, &exp)
		s.ExpiresAt = deref(exp)
		out = append(out, s)
		return err
	}, sql, args...)
	return out, err
}

// LiveSuppressions reads the unexpired entries of addresses.
func (t *pgTx) LiveSuppressions(ctx context.Context, addresses []string) ([]queue.Suppression, error) {
	return t.suppressions(ctx, `SELECT `+suppressionCols+` FROM outbox_suppressions
		WHERE address = ANY($1) AND (expires_at IS NULL OR expires_at > now())`, addresses)
}

// Notify queues the NOTIFY that wakes other nodes after the commit.
func (t *pgTx) Notify(context.Context) error {
	t.queue(notifySQL)
	return nil
}

// Renew queues the extension of owner's leases.
func (t *pgTx) Renew(ctx context.Context, owner string, ids []string, lease time.Duration) error {
	t.queue(`UPDATE outbox_messages SET lease_expires_at = now() + $1::interval, updated_at = now()
		WHERE lease_owner = $2 AND status = 'sending' AND id = ANY($3)`, lease, owner, ids)
	return nil
}

// UpdateRecipients queues recipient changes as one statement.
func (t *pgTx) UpdateRecipients(ctx context.Context, rs []queue.RecipientUpdate) error {
	if len(rs) == 0 {
		return nil
	}
	n := len(rs)
	mids, statuses, enh, texts := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	idx, codes := make([]int32, n), make([]int32, n)
	att, setr := make([]bool, n), make([]bool, n)
	for i, r := range rs {
		mids[i], idx[i], statuses[i], att[i], setr[i] = r.MessageID, int32(r.Idx), string(r.Status), r.Attempted, r.SetReply
		codes[i], enh[i], texts[i] = int32(r.Code), r.EnhancedCode, r.Text
	}
	t.queue(`UPDATE outbox_recipients r SET status = u.status,
		attempts = r.attempts + CASE WHEN u.att THEN 1 ELSE 0 END,
		last_attempt_at = CASE WHEN u.att THEN now() ELSE r.last_attempt_at END,
		code = CASE WHEN u.setr THEN u.code ELSE r.code END,
		enhanced_code = CASE WHEN u.setr THEN u.enh ELSE r.enhanced_code END,
		text = CASE WHEN u.setr THEN u.txt ELSE r.text END
		FROM unnest($1::text[], $2::int[], $3::text[], $4::bool[], $5::bool[], $6::int[], $7::text[], $8::text[])
			AS u(mid, idx, status, att, setr, code, enh, txt)
		WHERE r.message_id = u.mid AND r.idx = u.idx`, mids, idx, statuses, att, setr, codes, enh, texts)
	return nil
}

// InsertAttempts queues the attempts' insert as one statement.
func (t *pgTx) InsertAttempts(ctx context.Context, as []queue.AttemptRow) error {
	if len(as) == 0 {
		return nil
	}
	n := len(as)
	mids, routes, hosts, replies, errs, trs := make([]string, n), make([]string, n), make([]string, n),
		make([]string, n), make([]string, n), make([]string, n)
	started, finished := make([]*time.Time, n), make([]*time.Time, n)
	for i, r := range as {
		a := r.Attempt
		mids[i], routes[i], hosts[i], replies[i], errs[i], trs[i] = r.MessageID, a.Route, a.Host, a.Reply, a.Error, a.Transcript
		started[i], finished[i] = timeOrNil(a.StartedAt), timeOrNil(a.FinishedAt)
	}
	t.queue(`INSERT INTO outbox_attempts
		(message_id, number, started_at, finished_at, route, host, reply, error, transcript)
		SELECT u.mid, (SELECT coalesce(max(number), 0) + 1 FROM outbox_attempts a WHERE a.message_id = u.mid),
			coalesce(u.started, now()), coalesce(u.finished, now()), u.route, u.host, u.reply, u.err, u.tr
		FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[], $4::text[], $5::text[], $6::text[],
			$7::text[], $8::text[]) AS u(mid, started, finished, route, host, reply, err, tr)`,
		mids, started, finished, routes, hosts, replies, errs, trs)
	return nil
}

// SetStates queues message states as one statement.
func (t *pgTx) SetStates(ctx context.Context, ss []queue.StateRow) error {
	if len(ss) == 0 {
		return nil
	}
	n := len(ss)
	ids, statuses := make([]string, n), make([]string, n)
	next := make([]*time.Time, n)
	final, clear, uncount := make([]bool, n), make([]bool, n), make([]bool, n)
	life := make([]int64, n)
	for i, s := range ss {
		ids[i], statuses[i], next[i] = s.ID, string(s.Status), timeOrNil(s.Next)
		final[i], clear[i], uncount[i], life[i] = s.Status.Final(), s.ClearLease, s.UncountAttempt, s.MinLifetime.Microseconds()
	}
	t.queue(`UPDATE outbox_messages m SET status = u.status,
		next_attempt_at = CASE WHEN u.final THEN NULL ELSE coalesce(u.next, now()) END,
		lease_owner = CASE WHEN u.clear THEN '' ELSE m.lease_owner END,
		lease_expires_at = CASE WHEN u.clear THEN NULL ELSE m.lease_expires_at END,
		attempts = greatest(m.attempts - CASE WHEN u.uncount THEN 1 ELSE 0 END, 0),
		expires_at = CASE WHEN u.life > 0 THEN greatest(m.expires_at, now() + u.life * interval '1 microsecond')
			ELSE m.expires_at END,
		updated_at = now()
		FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::bool[], $5::bool[], $6::bool[], $7::bigint[])
			AS u(id, status, next, final, clear, uncount, life)
		WHERE m.id = u.id`, ids, statuses, next, final, clear, uncount, life)
	return nil
}

// DeleteMessage queues a message's deletion; its rows cascade.
func (t *pgTx) DeleteMessage(ctx context.Context, id string) error {
	t.queue(`DELETE FROM outbox_messages WHERE id = $1`, id)
	return nil
}

// DeleteFinal deletes a bounded batch of messages in statuses created
// before the time idBelow encodes, skipping rows others have locked.
func (t *pgTx) DeleteFinal(ctx context.Context, statuses []queue.Status, idBelow string, limit int) (int, error) {
	st := make([]string, len(statuses))
	for i, s := range statuses {
		st[i] = string(s)
	}
	n, err := t.exec(ctx, `DELETE FROM outbox_messages WHERE id IN (SELECT id FROM outbox_messages
		WHERE status = ANY($1) AND id < $2 LIMIT $3 FOR UPDATE SKIP LOCKED)`, st, idBelow, limit)
	return int(n), err
}

// PurgeFinal deletes a bounded batch of final messages updated before
// cutoff.
func (t *pgTx) PurgeFinal(ctx context.Context, cutoff time.Time, limit int) (int, error) {
	n, err := t.exec(ctx, `DELETE FROM outbox_messages WHERE id IN (
		SELECT id FROM outbox_messages
		WHERE status IN ('delivered', 'partial', 'failed', 'cancelled') AND updated_at < $1
		LIMIT $2 FOR UPDATE SKIP LOCKED)`, cutoff, limit)
	return int(n), err
}

// PurgeEvents deletes a bounded batch of abandoned events.
func (t *pgTx) PurgeEvents(ctx context.Context, cutoff time.Time, limit int) (int, error) {
	n, err := t.exec(ctx, `DELETE FROM outbox_events WHERE id IN (
		SELECT id FROM outbox_events WHERE status = 'abandoned' AND created_at < $1
		LIMIT $2 FOR UPDATE SKIP LOCKED)`, cutoff, limit)
	return int(n), err
}

// InsertEvents queues the events' insert as one statement.
func (t *pgTx) InsertEvents(ctx context.Context, es []queue.EventRow) error {
	if len(es) == 0 {
		return nil
	}
	n := len(es)
	ids, eps, types, mids := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	payloads := make([][]byte, n)
	for i, e := range es {
		ids[i], eps[i], types[i], mids[i], payloads[i] = e.ID, e.Endpoint, e.Type, e.MessageID, e.Payload
	}
	t.queue(`INSERT INTO outbox_events (id, endpoint, type, message_id, payload, status, created_at, next_attempt_at)
		SELECT u.id, u.ep, u.typ, u.mid, u.payload, 'pending', now(), now()
		FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bytea[]) AS u(id, ep, typ, mid, payload)`,
		ids, eps, types, mids, payloads)
	return nil
}

// FinishEvent deletes or reschedules an event owner holds.
func (t *pgTx) FinishEvent(ctx context.Context, owner, id string, delivered bool, next time.Time, lastError string) (bool, error) {
	if delivered {
		n, err := t.exec(ctx, `DELETE FROM outbox_events WHERE id = $1 AND lease_owner = $2 AND status = 'sending'`, id, owner)
		return n > 0, err
	}
	status := "pending"
	if next.IsZero() {
		status = "abandoned"
	}
	n, err := t.exec(ctx, `UPDATE outbox_events SET status = $1, next_attempt_at = $2,
		last_error = $3, lease_owner = '', lease_expires_at = NULL
		WHERE id = $4 AND lease_owner = $5 AND status = 'sending'`, status, timeOrNil(next), lastError, id, owner)
	return n > 0, err
}

// UpsertSuppressions queues adding or replacing entries, one statement.
func (t *pgTx) UpsertSuppressions(ctx context.Context, ss []queue.Suppression) error {
	n := len(ss)
	addrs, scopes, reasons, causes, mids := make([]string, n), make([]string, n), make([]string, n),
		make([]string, n), make([]string, n)
	created, expires := make([]time.Time, n), make([]*time.Time, n)
	for i, s := range ss {
		addrs[i], scopes[i], reasons[i], causes[i], mids[i] = s.Address, s.Scope, s.Reason, s.Cause, s.MessageID
		created[i], expires[i] = s.CreatedAt, timeOrNil(s.ExpiresAt)
	}
	t.queue(`INSERT INTO outbox_suppressions (`+suppressionCols+`)
		SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[], $7::timestamptz[])
		ON CONFLICT (address, scope) DO UPDATE SET reason = excluded.reason, cause = excluded.cause,
			message_id = excluded.message_id, created_at = excluded.created_at, expires_at = excluded.expires_at`,
		addrs, scopes, reasons, causes, mids, created, expires)
	return nil
}

// DeleteSuppression removes one entry.
func (t *pgTx) DeleteSuppression(ctx context.Context, address, scope string) (bool, error) {
	n, err := t.exec(ctx, `DELETE FROM outbox_suppressions WHERE address = $1 AND scope = $2`, address, scope)
	return n > 0, err
}

// InsertHistory queues recipient events as one statement.
func (t *pgTx) InsertHistory(ctx context.Context, es []queue.RecipientEvent) error {
	if len(es) == 0 {
		return nil
	}
	n := len(es)
	mids, addrs, types, enh, texts := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	codes := make([]int32, n)
	at := make([]time.Time, n)
	for i, e := range es {
		mids[i], addrs[i], types[i], codes[i], enh[i], texts[i], at[i] = e.MessageID, e.Address, string(e.Type),
			int32(e.Code), e.EnhancedCode, e.Text, e.At
	}
	t.queue(`INSERT INTO outbox_recipient_events (message_id, address, type, code, enhanced_code, text, created_at)
		SELECT u.mid, u.addr, u.typ, u.code, u.enh, u.txt, u.at
		FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::text[], $6::text[], $7::timestamptz[])
			WITH ORDINALITY AS u(mid, addr, typ, code, enh, txt, at, ord) ORDER BY u.ord`,
		mids, addrs, types, codes, enh, texts, at)
	return nil
}

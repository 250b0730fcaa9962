package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Advisory lock classes (the first key of the two-key form). The second key
// is a hash of the current schema, so stores in different schemas of one
// database (tests, or several tenants) never wait on each other.
const (
	migrateLockClass   = 0x6f627831 // "obx1"
	housekeepLockClass = 0x6f627832 // "obx2"
)

// schemaKey is the SQL for the second advisory lock key.
const schemaKey = `hashtext(coalesce(current_schema(), ''))`

// migrations are applied in order; migration i brings the schema to
// version i+1. Never edit one that has shipped: append a new one.
var migrations = []string{
	// 1: the initial schema. "No time" is NULL: a final message has no next
	// attempt, a message nobody holds no lease expiry.
	`
CREATE TABLE outbox_messages (
	id               text PRIMARY KEY,
	sender           text NOT NULL,
	subject          text NOT NULL DEFAULT '',
	status           text NOT NULL,
	created_at       timestamptz NOT NULL,
	updated_at       timestamptz NOT NULL,
	next_attempt_at  timestamptz,
	attempts         integer NOT NULL DEFAULT 0,
	expires_at       timestamptz NOT NULL,
	idempotency_key  text UNIQUE,
	size             bigint NOT NULL DEFAULT 0,
	tags             jsonb NOT NULL DEFAULT '{}',
	lease_owner      text NOT NULL DEFAULT '',
	lease_expires_at timestamptz
);

-- Claiming and NextDue read only the due part of each waiting status, and
-- expired leases are found without scanning finished mail.
CREATE INDEX outbox_messages_due ON outbox_messages (status, next_attempt_at);
CREATE INDEX outbox_messages_lease ON outbox_messages (status, lease_expires_at);
-- Listing by status, newest first (ids are UUIDv7, so id order is time order).
CREATE INDEX outbox_messages_status_id ON outbox_messages (status, id);
-- Purge finds old final messages per status.
CREATE INDEX outbox_messages_updated ON outbox_messages (status, updated_at);

CREATE TABLE outbox_recipients (
	message_id      text NOT NULL REFERENCES outbox_messages (id) ON DELETE CASCADE,
	idx             integer NOT NULL,
	address         text NOT NULL,
	status          text NOT NULL,
	attempts        integer NOT NULL DEFAULT 0,
	code            integer NOT NULL DEFAULT 0,
	enhanced_code   text NOT NULL DEFAULT '',
	text            text NOT NULL DEFAULT '',
	last_attempt_at timestamptz,
	PRIMARY KEY (message_id, idx)
);

CREATE TABLE outbox_attempts (
	message_id  text NOT NULL REFERENCES outbox_messages (id) ON DELETE CASCADE,
	number      integer NOT NULL,
	started_at  timestamptz NOT NULL,
	finished_at timestamptz NOT NULL,
	route       text NOT NULL DEFAULT '',
	error       text NOT NULL DEFAULT '',
	transcript  text NOT NULL DEFAULT '',
	PRIMARY KEY (message_id, number)
);

CREATE TABLE outbox_body_chunks (
	message_id text NOT NULL REFERENCES outbox_messages (id) ON DELETE CASCADE,
	seq        integer NOT NULL,
	data       bytea NOT NULL,
	PRIMARY KEY (message_id, seq)
);

-- Webhook events. status is pending (due at next_attempt_at), sending
-- (leased until lease_expires_at) or abandoned (kept for inspection until
-- Purge). Payload is bytea so the JSON is posted byte for byte as given.
CREATE TABLE outbox_events (
	id               text PRIMARY KEY,
	endpoint         text NOT NULL,
	type             text NOT NULL,
	message_id       text NOT NULL DEFAULT '',
	payload          bytea NOT NULL,
	status           text NOT NULL DEFAULT 'pending',
	attempts         integer NOT NULL DEFAULT 0,
	created_at       timestamptz NOT NULL,
	next_attempt_at  timestamptz,
	last_error       text NOT NULL DEFAULT '',
	lease_owner      text NOT NULL DEFAULT '',
	lease_expires_at timestamptz
);
CREATE INDEX outbox_events_due ON outbox_events (status, next_attempt_at);
CREATE INDEX outbox_events_lease ON outbox_events (status, lease_expires_at);
CREATE INDEX outbox_events_created ON outbox_events (status, created_at);
`,
	// 2: typed delivery flags instead of tags, DSN parameters, what
	// submission repaired, attempt summaries, the suppression list and
	// recipient history. Tags that were flags move to their columns.
	`
ALTER TABLE outbox_messages
	ADD COLUMN source text NOT NULL DEFAULT 'library',
	ADD COLUMN eight_bit boolean NOT NULL DEFAULT false,
	ADD COLUMN smtputf8 boolean NOT NULL DEFAULT false,
	ADD COLUMN dsn_ret text NOT NULL DEFAULT '',
	ADD COLUMN dsn_envid text NOT NULL DEFAULT '',
	ADD COLUMN ignore_suppressions boolean NOT NULL DEFAULT false,
	ADD COLUMN repairs text NOT NULL DEFAULT '';
UPDATE outbox_messages SET
	eight_bit = coalesce(tags->>'body' = '8bitmime', false),
	smtputf8 = coalesce(tags->>'smtputf8' = '1', false),
	source = CASE WHEN tags->>'source' IN ('api', 'smtp', 'library', 'cli') THEN tags->>'source' ELSE 'library' END;
UPDATE outbox_messages SET tags = tags - 'body' - 'smtputf8' WHERE tags ?| array['body', 'smtputf8'];
UPDATE outbox_messages SET tags = tags - 'source' WHERE source = tags->>'source';
ALTER TABLE outbox_recipients
	ADD COLUMN dsn_notify text NOT NULL DEFAULT '',
	ADD COLUMN dsn_orcpt text NOT NULL DEFAULT '';
ALTER TABLE outbox_attempts
	ADD COLUMN host text NOT NULL DEFAULT '',
	ADD COLUMN reply text NOT NULL DEFAULT '';

-- The suppression list: address and scope are lower-cased; scope '' is
-- every sender.
CREATE TABLE outbox_suppressions (
	address    text NOT NULL,
	scope      text NOT NULL DEFAULT '',
	reason     text NOT NULL DEFAULT '',
	cause      text NOT NULL,
	message_id text NOT NULL DEFAULT '',
	created_at timestamptz NOT NULL,
	expires_at timestamptz,
	PRIMARY KEY (address, scope)
);

-- What was learnt about recipients after sending.
CREATE TABLE outbox_recipient_events (
	id            bigserial PRIMARY KEY,
	message_id    text NOT NULL REFERENCES outbox_messages (id) ON DELETE CASCADE,
	address       text NOT NULL,
	type          text NOT NULL,
	code          integer NOT NULL DEFAULT 0,
	enhanced_code text NOT NULL DEFAULT '',
	text          text NOT NULL DEFAULT '',
	created_at    timestamptz NOT NULL
);
CREATE INDEX outbox_recipient_events_message ON outbox_recipient_events (message_id, id);
`,
	// 3: one row the readiness probe rewrites, proving a commit reaches
	// the disk.
	`
CREATE TABLE outbox_probe (
	id integer PRIMARY KEY CHECK (id = 1),
	at timestamptz NOT NULL
);
`,
	// 4: partial indexes: a message is in the due index of its waiting
	// status, or in the lease index while sending, or in the index of
	// finished mail, never in all of them, so fresh mail written leased
	// and then delivered moves through two index entries instead of eight.
	`
DROP INDEX outbox_messages_due;
DROP INDEX outbox_messages_lease;
DROP INDEX outbox_messages_updated;
CREATE INDEX outbox_messages_queued ON outbox_messages (next_attempt_at) WHERE status = 'queued';
CREATE INDEX outbox_messages_deferred ON outbox_messages (next_attempt_at) WHERE status = 'deferred';
CREATE INDEX outbox_messages_sending ON outbox_messages (lease_expires_at) WHERE status = 'sending';
CREATE INDEX outbox_messages_final ON outbox_messages (updated_at)
	WHERE status IN ('delivered', 'partial', 'failed', 'cancelled');
`,
	// 5: the one-click unsubscribe flag, which delivery acts on.
	`
ALTER TABLE outbox_messages ADD COLUMN unsubscribe boolean NOT NULL DEFAULT false;
`,
	// 6: bodies with a line over 998 octets, which delivery re-encodes.
	`
ALTER TABLE outbox_messages ADD COLUMN long_lines boolean NOT NULL DEFAULT false;
`,
	// 7: full-text search. The queue hands over words it has already
	// normalised, so the tsvector is built from them as they are
	// (array_to_tsvector: no parser, no dictionary, no extension); the
	// text itself stays in the body. A message waits in
	// outbox_search_pending from its insert until indexed; the ones
	// already stored wait now, and the indexers work through them.
	`
CREATE TABLE outbox_search (
	message_id text PRIMARY KEY REFERENCES outbox_messages (id) ON DELETE CASCADE,
	mailboxes  text NOT NULL DEFAULT '',
	words      tsvector NOT NULL
);
CREATE INDEX outbox_search_words ON outbox_search USING gin (words);
CREATE TABLE outbox_search_pending (
	message_id text PRIMARY KEY REFERENCES outbox_messages (id) ON DELETE CASCADE
);
INSERT INTO outbox_search_pending (message_id) SELECT id FROM outbox_messages;
`,
}

// Beginner starts transactions: *pgxpool.Pool, *pgx.Conn and pgx.Tx all
// qualify.
type Beginner interface {
	Begin(ctx context.Context) (pgx.Tx, error)
}

// Migrate creates or upgrades the outbox schema (tables prefixed
// "outbox_") in the first schema of db's search_path, so that a store can
// EnqueueTx into an application's transactions on its own database. Open runs it too.
//
// All pending migrations run in one transaction that first takes a
// transaction-level advisory lock, so any number of processes may migrate
// the same database at once: the first applies the steps, the others wait
// for its commit and then find nothing to do. The lock is released by the
// commit or rollback, even if the process dies.
func Migrate(ctx context.Context, db Beginner) error {
	tx, err := db.Begin(ctx)
	if err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	defer rollback(tx)
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, `+schemaKey+`)`, migrateLockClass); err != nil {
		return fmt.Errorf("postgres: migrate: lock: %w", err)
	}
	_, err = tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS outbox_schema_migrations (
		version    integer PRIMARY KEY,
		applied_at timestamptz NOT NULL DEFAULT now())`)
	if err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	var version int
	err = tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM outbox_schema_migrations`).Scan(&version)
	if err != nil {
		return fmt.Errorf("postgres: migrate: read version: %w", err)
	}
	if version > len(migrations) {
		return fmt.Errorf("postgres: migrate: database schema version %d is newer than this program's %d", version, len(migrations))
	}
	for v := version; v < len(migrations); v++ {
		if _, err := tx.Exec(ctx, migrations[v]); err != nil {
			return fmt.Errorf("postgres: migrate to version %d: %w", v+1, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO outbox_schema_migrations (version) VALUES ($1)`, v+1); err != nil {
			return fmt.Errorf("postgres: migrate: record version %d: %w", v+1, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("postgres: migrate: commit: %w", err)
	}
	return nil
}

// rollback undoes tx unless it was committed; for use in defer.
func rollback(tx pgx.Tx) { _ = tx.Rollback(context.Background()) }

package sqlite

import (
	"context"
	"database/sql"
	"fmt"
)

// migrations are applied in order; migration i brings the schema to
// user_version i+1. Never edit one that has shipped: append a new one.
var migrations = []string{
	// 1: the initial schema. Times are INTEGER unix milliseconds, 0 for
	// "none", so comparisons stay plain integer comparisons on an index.
	`
CREATE TABLE messages (
	id               TEXT PRIMARY KEY,
	sender           TEXT NOT NULL,
	subject          TEXT NOT NULL DEFAULT '',
	status           TEXT NOT NULL,
	created_at       INTEGER NOT NULL,
	updated_at       INTEGER NOT NULL,
	next_attempt_at  INTEGER NOT NULL DEFAULT 0,
	attempts         INTEGER NOT NULL DEFAULT 0,
	expires_at       INTEGER NOT NULL,
	idempotency_key  TEXT UNIQUE,
	size             INTEGER NOT NULL DEFAULT 0,
	tags             TEXT NOT NULL DEFAULT '{}',
	lease_owner      TEXT NOT NULL DEFAULT '',
	lease_expires_at INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

-- Claiming and NextDue read only the due part of each waiting status, and
-- expired leases are found without scanning finished mail.
CREATE INDEX messages_due ON messages (status, next_attempt_at);
CREATE INDEX messages_lease ON messages (status, lease_expires_at);
-- Listing by status, newest first (ids are UUIDv7, so id order is time order).
CREATE INDEX messages_status_id ON messages (status, id);

CREATE TABLE recipients (
	message_id      TEXT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
	idx             INTEGER NOT NULL,
	address         TEXT NOT NULL,
	status          TEXT NOT NULL,
	attempts        INTEGER NOT NULL DEFAULT 0,
	code            INTEGER NOT NULL DEFAULT 0,
	enhanced_code   TEXT NOT NULL DEFAULT '',
	text            TEXT NOT NULL DEFAULT '',
	last_attempt_at INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (message_id, idx)
) WITHOUT ROWID;

CREATE TABLE attempts (
	message_id  TEXT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
	number      INTEGER NOT NULL,
	started_at  INTEGER NOT NULL,
	finished_at INTEGER NOT NULL,
	route       TEXT NOT NULL DEFAULT '',
	error       TEXT NOT NULL DEFAULT '',
	transcript  TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (message_id, number)
) WITHOUT ROWID;

CREATE TABLE body_chunks (
	message_id TEXT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
	seq        INTEGER NOT NULL,
	data       BLOB NOT NULL,
	PRIMARY KEY (message_id, seq)
);
`,
	// 2: webhook events, kept until posted. Status is 'pending' or
	// 'abandoned'; a pending event with a live lease is being posted.
	`
CREATE TABLE events (
	id               TEXT PRIMARY KEY,
	endpoint         TEXT NOT NULL,
	type             TEXT NOT NULL,
	message_id       TEXT NOT NULL,
	payload          BLOB NOT NULL,
	status           TEXT NOT NULL DEFAULT 'pending',
	attempts         INTEGER NOT NULL DEFAULT 0,
	created_at       INTEGER NOT NULL,
	next_attempt_at  INTEGER NOT NULL,
	last_error       TEXT NOT NULL DEFAULT '',
	lease_owner      TEXT NOT NULL DEFAULT '',
	lease_expires_at INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX events_due ON events (status, next_attempt_at);
-- Purge finds old finished mail without scanning what is still waiting.
CREATE INDEX messages_status_updated ON messages (status, updated_at);
`,
	// 3: typed delivery flags instead of tags, DSN parameters, what
	// submission repaired, attempt summaries, the suppression list and
	// recipient history. Tags that were flags move to their columns.
	`
ALTER TABLE messages ADD COLUMN source TEXT NOT NULL DEFAULT 'library';
ALTER TABLE messages ADD COLUMN eight_bit INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN smtputf8 INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN dsn_ret TEXT NOT NULL DEFAULT '';
ALTER TABLE messages ADD COLUMN dsn_envid TEXT NOT NULL DEFAULT '';
ALTER TABLE messages ADD COLUMN ignore_suppressions INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN repairs TEXT NOT NULL DEFAULT '';
UPDATE messages SET
	eight_bit = coalesce(json_extract(tags, '$.body') = '8bitmime', 0),
	smtputf8 = coalesce(json_extract(tags, '$.smtputf8') = '1', 0),
	source = CASE WHEN json_extract(tags, '$.source') IN ('api', 'smtp', 'library', 'cli')
		THEN json_extract(tags, '$.source') ELSE 'library' END;
UPDATE messages SET tags = json_remove(tags, '$.body', '$.smtputf8')
	WHERE json_extract(tags, '$.body') IS NOT NULL OR json_extract(tags, '$.smtputf8') IS NOT NULL;
UPDATE messages SET tags = json_remove(tags, '$.source') WHERE source = json_extract(tags, '$.source');
ALTER TABLE recipients ADD COLUMN dsn_notify TEXT NOT NULL DEFAULT '';
ALTER TABLE recipients ADD COLUMN dsn_orcpt TEXT NOT NULL DEFAULT '';
ALTER TABLE attempts ADD COLUMN host TEXT NOT NULL DEFAULT '';
ALTER TABLE attempts ADD COLUMN reply TEXT NOT NULL DEFAULT '';

-- The suppression list: address and scope are lower-cased; scope '' is
-- every sender. expires_at 0 is never.
CREATE TABLE suppressions (
	address    TEXT NOT NULL,
	scope      TEXT NOT NULL DEFAULT '',
	reason     TEXT NOT NULL DEFAULT '',
	cause      TEXT NOT NULL,
	message_id TEXT NOT NULL DEFAULT '',
	created_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (address, scope)
) WITHOUT ROWID;

-- What was learnt about recipients after sending: bounces, delays,
-- complaints.
CREATE TABLE recipient_events (
	id            INTEGER PRIMARY KEY,
	message_id    TEXT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
	address       TEXT NOT NULL,
	type          TEXT NOT NULL,
	code          INTEGER NOT NULL DEFAULT 0,
	enhanced_code TEXT NOT NULL DEFAULT '',
	text          TEXT NOT NULL DEFAULT '',
	created_at    INTEGER NOT NULL
);
CREATE INDEX recipient_events_message ON recipient_events (message_id, id);
`,
	// 4: one row the readiness probe rewrites, proving a commit reaches
	// the disk.
	`
CREATE TABLE store_probe (
	id INTEGER PRIMARY KEY CHECK (id = 1),
	at INTEGER NOT NULL
);
`,
	// 5: partial indexes: a message is in the due index of its waiting
	// status, or in the lease index while sending, or in the index of
	// finished mail, never in all of them; the claim, next-due, purge and
	// activity queries name the status exactly as the index does. Fresh
	// mail written leased and then delivered moves through two index
	// entries instead of eight.
	`
DROP INDEX messages_due;
DROP INDEX messages_lease;
DROP INDEX messages_status_updated;
CREATE INDEX messages_queued ON messages (next_attempt_at) WHERE status = 'queued';
CREATE INDEX messages_deferred ON messages (next_attempt_at) WHERE status = 'deferred';
CREATE INDEX messages_sending ON messages (lease_expires_at) WHERE status = 'sending';
CREATE INDEX messages_final ON messages (updated_at)
	WHERE status IN ('delivered', 'partial', 'failed', 'cancelled');
`,
	// 6: the one-click unsubscribe flag, which delivery acts on.
	`
ALTER TABLE messages ADD COLUMN unsubscribe INTEGER NOT NULL DEFAULT 0;
`,
	// 7: bodies with a line over 998 octets, which delivery re-encodes.
	`
ALTER TABLE messages ADD COLUMN long_lines INTEGER NOT NULL DEFAULT 0;
`,
	// 8: full-text search. search_fts is a contentless FTS5 index (the
	// text lives in the message body, not twice on disk) of words the
	// queue has already normalised and separated by spaces, so the ascii
	// tokenizer splits them exactly there; detail=none keeps only which
	// messages hold a word, all that a search of words needs. Its rowid,
	// search_docs.doc, is the time and sequence at the head of the
	// message's UUIDv7 id, so rowid order is id order and a search reads
	// its newest matches first and stops at the page's end. search_docs
	// maps rowids to messages and keeps the header's mailboxes for
	// listing. A message waits in search_pending from its insert until
	// indexed; the ones already stored wait now, and the indexer works
	// through them.
	`
CREATE VIRTUAL TABLE search_fts USING fts5 (words, content = '', contentless_delete = 1,
	detail = none, tokenize = 'ascii');
CREATE TABLE search_docs (
	doc        INTEGER PRIMARY KEY,
	message_id TEXT NOT NULL UNIQUE REFERENCES messages (id) ON DELETE CASCADE,
	mailboxes  TEXT NOT NULL DEFAULT ''
);
CREATE TRIGGER search_docs_delete AFTER DELETE ON search_docs BEGIN
	DELETE FROM search_fts WHERE rowid = old.doc;
END;
CREATE TABLE search_pending (
	message_id TEXT PRIMARY KEY REFERENCES messages (id) ON DELETE CASCADE
) WITHOUT ROWID;
CREATE TRIGGER messages_search_pending AFTER INSERT ON messages BEGIN
	INSERT INTO search_pending (message_id) VALUES (new.id);
END;
INSERT INTO search_pending (message_id) SELECT id FROM messages;

-- Writing an entry is one INSERT into this view: the trigger replaces the
-- message's earlier entry, if any, and takes it off the waiting list. Two
-- ids from different processes may share their head; the second then
-- takes the next free rowid after the newest.
CREATE VIEW search_input (doc, message_id, mailboxes, words) AS SELECT NULL, NULL, NULL, NULL WHERE 0;
CREATE TRIGGER search_input_insert INSTEAD OF INSERT ON search_input BEGIN
	DELETE FROM search_docs WHERE message_id = new.message_id;
	INSERT INTO search_docs (doc, message_id, mailboxes)
		SELECT CASE WHEN new.doc > 0 AND NOT EXISTS (SELECT 1 FROM search_docs WHERE doc = new.doc) THEN new.doc
			ELSE (SELECT coalesce(max(doc), 0) + 1 FROM search_docs) END, new.message_id, new.mailboxes
		WHERE EXISTS (SELECT 1 FROM messages WHERE id = new.message_id);
	INSERT INTO search_fts (rowid, words)
		SELECT doc, new.words FROM search_docs WHERE message_id = new.message_id;
	DELETE FROM search_pending WHERE message_id = new.message_id;
END;
`,
}

// Migrate creates or upgrades the outbox schema in db, an application's own
// SQLite database, so that a store opened on it can EnqueueTx into the
// application's transactions. Open runs the same migrations. It is safe to call on an up-to-date database.
func Migrate(ctx context.Context, db *sql.DB) error {
	// One connection for the whole run: user_version and the DDL must be
	// seen by the same session.
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("sqlite: migrate: %w", err)
	}
	defer conn.Close()
	for {
		done, err := migrateStep(ctx, conn)
		if err != nil {
			return err
		}
		if done {
			return nil
		}
	}
}

// migrateStep applies the next pending migration in its own transaction,
// re-reading user_version inside it so that two processes migrating the
// same file at once cannot apply a step twice.
func migrateStep(ctx context.Context, conn *sql.Conn) (done bool, err error) {
	// BEGIN IMMEDIATE takes the write lock before user_version is read.
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return false, fmt.Errorf("sqlite: migrate: %w", err)
	}
	defer func() {
		if err != nil {
			conn.ExecContext(context.Background(), "ROLLBACK")
		}
	}()
	var version int
	if err := conn.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return false, fmt.Errorf("sqlite: migrate: read version: %w", err)
	}
	if version > len(migrations) {
		return false, fmt.Errorf("sqlite: migrate: database schema version %d is newer than this program's %d", version, len(migrations))
	}
	if version == len(migrations) {
		_, err := conn.ExecContext(ctx, "COMMIT")
		return true, err
	}
	if _, err := conn.ExecContext(ctx, migrations[version]); err != nil {
		return false, fmt.Errorf("sqlite: migrate to version %d: %w", version+1, err)
	}
	if _, err := conn.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", version+1)); err != nil {
		return false, fmt.Errorf("sqlite: migrate: set version: %w", err)
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		return false, fmt.Errorf("sqlite: migrate: commit: %w", err)
	}
	return false, nil
}

package postgres

import (
	"context"
	"reflect"
	"testing"

	"github.com/outbox-mail/outbox/queue"
)

// TestMigrateTagsToFlags: a database written before delivery flags were
// typed keeps its mail, and the tags that were flags become the flags.
func TestMigrateTagsToFlags(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn, _ := freshSchema(t)
	conn := connect(t, dsn)
	for _, sql := range []string{migrations[0],
		`CREATE TABLE outbox_schema_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`,
		`INSERT INTO outbox_schema_migrations (version) VALUES (1)`,
		`INSERT INTO outbox_messages (id, sender, status, created_at, updated_at, next_attempt_at, expires_at, tags)
			VALUES ('01a00000-0000-7000-8000-000000000001', 'a@x.test', 'queued', now(), now(), now(), now() + interval '1 day',
				'{"body":"8bitmime","smtputf8":"1","source":"api","k":"v"}'),
			('01a00000-0000-7000-8000-000000000002', 'a@x.test', 'queued', now(), now(), now(), now() + interval '1 day',
				'{"source":"signup"}')`,
		`INSERT INTO outbox_recipients (message_id, idx, address, status) VALUES
			('01a00000-0000-7000-8000-000000000001', 0, 'b@x.test', 'pending'),
			('01a00000-0000-7000-8000-000000000002', 0, 'b@x.test', 'pending')`,
	} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	s := openStore(t, dsn, Options{})
	m, err := s.Get(ctx, "01a00000-0000-7000-8000-000000000001")
	if err != nil {
		t.Fatal(err)
	}
	if !m.EightBit || !m.SMTPUTF8 || m.Source != queue.SourceAPI || !reflect.DeepEqual(m.Tags, map[string]string{"k": "v"}) {
		t.Errorf("migrated message: 8bit %v utf8 %v source %q tags %v", m.EightBit, m.SMTPUTF8, m.Source, m.Tags)
	}
	m, err = s.Get(ctx, "01a00000-0000-7000-8000-000000000002")
	if err != nil {
		t.Fatal(err)
	}
	if m.Source != queue.SourceLibrary || !reflect.DeepEqual(m.Tags, map[string]string{"source": "signup"}) {
		t.Errorf("migrated message: source %q tags %v", m.Source, m.Tags)
	}
}

package postgres

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

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

// TestMigrateSearchBackfill: mail stored before the search index existed
// is indexed after the upgrade, by the indexer's first scan.
func TestMigrateSearchBackfill(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn, _ := freshSchema(t)
	conn := connect(t, dsn)
	const id = "01a00000-0000-7000-8000-000000000001"
	body := "From: Old Friend <old@x.test>\r\nSubject: archive\r\n\r\nForgotten treasure\r\n"
	before := slices.IndexFunc(migrations, func(m string) bool { return strings.Contains(m, "outbox_search") })
	stmts := append([]string{`CREATE TABLE outbox_schema_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`},
		migrations[:before]...)
	stmts = append(stmts, fmt.Sprintf(`INSERT INTO outbox_schema_migrations (version) SELECT generate_series(1, %d)`, before),
		`INSERT INTO outbox_messages (id, sender, status, created_at, updated_at, expires_at, size)
			VALUES ('`+id+`', 'a@x.test', 'delivered', now(), now(), now() + interval '1 day', `+fmt.Sprint(len(body))+`)`,
		`INSERT INTO outbox_recipients (message_id, idx, address, status) VALUES ('`+id+`', 0, 'b@x.test', 'delivered')`)
	for _, sql := range stmts {
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := conn.Exec(ctx, `INSERT INTO outbox_body_chunks (message_id, seq, data) VALUES ($1, 0, $2)`, id, []byte(body)); err != nil {
		t.Fatal(err)
	}
	s := openStore(t, dsn, Options{})
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		page, err := s.List(ctx, queue.Filter{Search: "treasure"})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Messages) == 1 && page.Messages[0].ID == id && len(page.Messages[0].Mailboxes) == 1 &&
			page.Messages[0].Mailboxes[0].Name == "Old Friend" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the old message was not indexed: %+v", page.Messages)
		}
	}
}

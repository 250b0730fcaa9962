package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
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
	path := filepath.Join(t.TempDir(), "old.db")
	db, err := sql.Open("sqlite", dsn(path, "_pragma=journal_mode(WAL)"))
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range migrations[:2] {
		if _, err := db.Exec(m); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(fmt.Sprintf("PRAGMA user_version = %d", i+1)); err != nil {
			t.Fatal(err)
		}
	}
	for _, row := range [][2]string{
		{"01a00000-0000-7000-8000-000000000001", `{"body":"8bitmime","smtputf8":"1","source":"smtp","user":"app"}`},
		{"01a00000-0000-7000-8000-000000000002", `{"source":"signup"}`},
	} {
		if _, err := db.Exec(`INSERT INTO messages (id, sender, status, created_at, updated_at, expires_at, tags)
			VALUES (?, 'a@x.test', 'queued', 1, 1, 9999999999999, ?)`, row[0], row[1]); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(`INSERT INTO recipients (message_id, idx, address, status) VALUES (?, 0, 'b@x.test', 'pending')`, row[0]); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	s := openTest(t, path)
	ctx := context.Background()
	m, err := s.Get(ctx, "01a00000-0000-7000-8000-000000000001")
	if err != nil {
		t.Fatal(err)
	}
	if !m.EightBit || !m.SMTPUTF8 || m.Source != queue.SourceSMTP || !reflect.DeepEqual(m.Tags, map[string]string{"user": "app"}) {
		t.Errorf("migrated message: 8bit %v utf8 %v source %q tags %v", m.EightBit, m.SMTPUTF8, m.Source, m.Tags)
	}
	m, err = s.Get(ctx, "01a00000-0000-7000-8000-000000000002")
	if err != nil {
		t.Fatal(err)
	}
	// A source outside the closed set was the user's tag: it stays one.
	if m.EightBit || m.Source != queue.SourceLibrary || !reflect.DeepEqual(m.Tags, map[string]string{"source": "signup"}) {
		t.Errorf("migrated message: 8bit %v source %q tags %v", m.EightBit, m.Source, m.Tags)
	}
}

// TestMigrateSearchBackfill: mail stored before the search index existed
// is indexed after the upgrade, by the indexer's first scan.
func TestMigrateSearchBackfill(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	db, err := sql.Open("sqlite", dsn(path, "_pragma=journal_mode(WAL)"))
	if err != nil {
		t.Fatal(err)
	}
	before := slices.IndexFunc(migrations, func(m string) bool { return strings.Contains(m, "search_fts") })
	for i, m := range migrations[:before] {
		if _, err := db.Exec(m); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(fmt.Sprintf("PRAGMA user_version = %d", i+1)); err != nil {
			t.Fatal(err)
		}
	}
	const id = "01a00000-0000-7000-8000-000000000001"
	body := "From: Old Friend <old@x.test>\r\nSubject: archive\r\n\r\nForgotten treasure\r\n"
	for _, q := range []string{
		`INSERT INTO messages (id, sender, status, created_at, updated_at, expires_at, size)
			VALUES ('` + id + `', 'a@x.test', 'delivered', 1, 1, 9999999999999, ` + fmt.Sprint(len(body)) + `)`,
		`INSERT INTO recipients (message_id, idx, address, status) VALUES ('` + id + `', 0, 'b@x.test', 'delivered')`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Exec(`INSERT INTO body_chunks (message_id, seq, data) VALUES (?, 0, ?)`, id, []byte(body)); err != nil {
		t.Fatal(err)
	}
	db.Close()
	s := openTest(t, path)
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		page, err := s.List(context.Background(), queue.Filter{Search: "treasure"})
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

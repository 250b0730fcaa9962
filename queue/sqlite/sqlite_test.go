package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outbox-mail/outbox/queue"
	"github.com/outbox-mail/outbox/queue/queuetest"
)

func openTest(t *testing.T, path string) *Store {
	return openTestWith(t, path, queue.Options{})
}

func openTestWith(t *testing.T, path string, o queue.Options) *Store {
	t.Helper()
	o.ChunkSize = 64 << 10
	s, err := Open(path, Options{Queue: o})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() }) // may already be closed by the test
	return s
}

func TestSuite(t *testing.T) {
	paths := map[queuetest.Backend[*sql.Tx]]string{}
	dbs := map[string]*sql.DB{}
	app := func(t *testing.T, s queuetest.Backend[*sql.Tx]) *sql.DB {
		path := paths[s]
		if dbs[path] == nil {
			dbs[path] = openAppDB(t, path)
		}
		return dbs[path]
	}
	queuetest.Run(t, queuetest.Harness[*sql.Tx]{
		Open: func(t *testing.T) queuetest.Backend[*sql.Tx] {
			path := filepath.Join(t.TempDir(), "queue.db")
			s := openTest(t, path)
			paths[s] = path
			return s
		},
		OpenWith: func(t *testing.T, o queue.Options) queuetest.Backend[*sql.Tx] {
			return openTestWith(t, filepath.Join(t.TempDir(), "queue.db"), o)
		},
		Begin: func(t *testing.T, s queuetest.Backend[*sql.Tx]) *sql.Tx {
			tx, err := app(t, s).Begin()
			if err != nil {
				t.Fatal(err)
			}
			return tx
		},
		Commit:   (*sql.Tx).Commit,
		Rollback: (*sql.Tx).Rollback,
		AppWrite: func(t *testing.T, tx *sql.Tx) {
			if _, err := tx.Exec(`INSERT INTO orders (what) VALUES ('x')`); err != nil {
				t.Fatal(err)
			}
		},
		AppRows: func(t *testing.T, s queuetest.Backend[*sql.Tx]) int {
			var n int
			if err := app(t, s).QueryRow(`SELECT COUNT(*) FROM orders`).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		},
	})
}

func TestOpenEmptyPath(t *testing.T) {
	if _, err := Open("", Options{}); err == nil {
		t.Fatal("Open(\"\") succeeded")
	}
}

func TestDurableAcrossReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "dir", "queue.db")
	s := openTest(t, path)
	body := strings.Repeat("line of text\r\n", 50000) // several chunks
	id, err := s.Enqueue(context.Background(), queue.NewMessage{
		From: "a@x.test", Recipients: []string{"b@x.test"}, Subject: "kept",
		Body: strings.NewReader(body), IdempotencyKey: "k",
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); !errors.Is(err, queue.ErrClosed) {
		t.Errorf("second Close: %v, want ErrClosed", err)
	}
	s2 := openTest(t, path)
	m, err := s2.Get(context.Background(), id)
	if err != nil {
		t.Fatalf("Get after reopen: %v", err)
	}
	if m.Subject != "kept" || m.Size != int64(len(body)) {
		t.Errorf("after reopen: subject %q size %d", m.Subject, m.Size)
	}
	rc, err := s2.OpenBody(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || string(got) != body {
		t.Fatalf("body after reopen: %d bytes, err %v", len(got), err)
	}
	// The idempotency key survived too.
	again, err := s2.Enqueue(context.Background(), queue.NewMessage{
		Recipients: []string{"c@x.test"}, Body: strings.NewReader("x"), IdempotencyKey: "k"})
	if err != nil || again != id {
		t.Errorf("enqueue with a stored key after reopen = %q %v, want %q", again, err, id)
	}
}

// openAppDB opens an application's own database on the store's file, with
// a table of its own; Migrate is idempotent, so running it again is safe.
func openAppDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", dsn(path, "_pragma=journal_mode(WAL)"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Exec(`CREATE TABLE orders (id INTEGER PRIMARY KEY, what TEXT)`); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := Migrate(context.Background(), db); err != nil {
			t.Fatalf("Migrate: %v", err)
		}
	}
	return db
}

func TestSpoolCleaned(t *testing.T) {
	path := filepath.Join(t.TempDir(), "queue.db")
	s := openTest(t, path)
	spool := s.SpoolDir()
	s.Close()
	// A leftover from a crash is removed at Open.
	if err := os.WriteFile(filepath.Join(spool, "body-123"), []byte("junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, path)
	wantSpoolEmpty(t, spool)
	// A large body goes through a spool file, removed after the commit.
	_, err := s.Enqueue(context.Background(), queue.NewMessage{
		Recipients: []string{"b@x.test"}, Body: strings.NewReader(strings.Repeat("x", 1<<20))})
	if err != nil {
		t.Fatal(err)
	}
	wantSpoolEmpty(t, spool)
	// So is the spool file of a body that failed half-way.
	_, err = s.Enqueue(context.Background(), queue.NewMessage{
		Recipients: []string{"b@x.test"}, Body: io.MultiReader(strings.NewReader(strings.Repeat("x", 1<<20)), errReader{})})
	if err == nil {
		t.Fatal("Enqueue with a failing body succeeded")
	}
	wantSpoolEmpty(t, spool)
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("broken") }

func wantSpoolEmpty(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Errorf("spool holds %d files, want none", len(entries))
	}
}

// TestBodyAlwaysWithRow inspects the tables: every chunk belongs to a
// message, every message's chunks add up to its size, and a failed or
// rejected enqueue leaves nothing behind.
func TestBodyAlwaysWithRow(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, filepath.Join(t.TempDir(), "queue.db"))
	sizes := []int{0, 1, 64 << 10, 64<<10 + 1, 300 << 10}
	for _, n := range sizes {
		if _, err := s.Enqueue(ctx, queue.NewMessage{Recipients: []string{"b@x.test"}, Body: strings.NewReader(strings.Repeat("y", n))}); err != nil {
			t.Fatal(err)
		}
	}
	s.Enqueue(ctx, queue.NewMessage{Recipients: []string{"b@x.test"}, Body: io.MultiReader(strings.NewReader(strings.Repeat("x", 200<<10)), errReader{})})
	s.Enqueue(ctx, queue.NewMessage{Recipients: nil, Body: strings.NewReader("x")})
	var orphans, mismatched, messages int
	q := func(query string, dst *int) {
		if err := s.d.rdb.QueryRow(query).Scan(dst); err != nil {
			t.Fatalf("%s: %v", query, err)
		}
	}
	q(`SELECT COUNT(*) FROM body_chunks WHERE message_id NOT IN (SELECT id FROM messages)`, &orphans)
	q(`SELECT COUNT(*) FROM messages m WHERE size != (SELECT COALESCE(SUM(length(data)), 0)
		FROM body_chunks c WHERE c.message_id = m.id)`, &mismatched)
	q(`SELECT COUNT(*) FROM messages`, &messages)
	var biggest int
	q(`SELECT MAX(length(data)) FROM body_chunks`, &biggest)
	if biggest != 64<<10 {
		t.Errorf("largest chunk %d bytes, want the chunk size %d", biggest, 64<<10)
	}
	if orphans != 0 || mismatched != 0 || messages != len(sizes) {
		t.Errorf("orphan chunks %d, size mismatches %d, messages %d (want 0, 0, %d)", orphans, mismatched, messages, len(sizes))
	}
	var fk int
	q(`PRAGMA foreign_keys`, &fk)
	if fk != 1 {
		t.Error("foreign keys are off on the read pool")
	}
}

// TestCloseDuringEnqueues closes the store under 8 busy producers: every
// enqueue either fails with ErrClosed or returned an id that is there after
// reopening. Nothing acknowledged is lost.
func TestCloseDuringEnqueues(t *testing.T) {
	path := filepath.Join(t.TempDir(), "queue.db")
	s := openTest(t, path)
	var mu sync.Mutex
	var acked []string
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for {
				id, err := s.Enqueue(context.Background(), queue.NewMessage{
					Recipients: []string{"b@x.test"}, Body: strings.NewReader("hello")})
				if errors.Is(err, queue.ErrClosed) {
					return
				}
				if err != nil {
					t.Errorf("Enqueue: %v", err)
					return
				}
				mu.Lock()
				acked = append(acked, id)
				mu.Unlock()
			}
		})
	}
	for {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 50 {
			break
		}
		runtime.Gosched()
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	wg.Wait()
	s2 := openTest(t, path)
	for _, id := range acked {
		if _, err := s2.Get(context.Background(), id); err != nil {
			t.Fatalf("acknowledged message %s after reopen: %v", id, err)
		}
	}
	c, err := s2.Counts(context.Background())
	if err != nil || c[queue.StatusQueued] != int64(len(acked)) {
		t.Errorf("reopened store holds %d queued (%v), want the %d acknowledged", c[queue.StatusQueued], err, len(acked))
	}
}

// A claim commits without fsync; the writer must be back to
// synchronous=FULL afterwards, or enqueues would stop being durable.
func TestClaimRestoresFullSync(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "queue.db"))
	ctx := context.Background()
	if _, err := s.Enqueue(ctx, queue.NewMessage{From: "a@x.test", Recipients: []string{"b@x.test"},
		Body: strings.NewReader("Subject: x\r\n\r\nx\r\n")}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := s.Claim(ctx, "w", 10, -time.Second); err != nil {
			t.Fatal(err)
		}
	}
	var mode int
	if err := s.d.wdb.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if mode != 2 {
		t.Fatalf("writer synchronous = %d after claims, want 2 (FULL)", mode)
	}
}

// TestSearchDocIDs: the index's rowids follow message ids; an id whose
// head another already has (two processes in the same instant) is still
// indexed and found.
func TestSearchDocIDs(t *testing.T) {
	if a, b := docID("01a2347d-9211-78bd-aeba-36050c4128a6"), docID("01a2347d-9211-78be-0000-000000000000"); a == 0 || b != a+1 {
		t.Errorf("docID order: %d, %d", a, b)
	}
	for _, bad := range []string{"", "x", "01a2347d-9211-48bd-aeba-36050c4128a6", "zza2347d-9211-78bd-aeba-36050c4128a6"} {
		if docID(bad) != 0 {
			t.Errorf("docID(%q) = %d, want 0", bad, docID(bad))
		}
	}
	s := openTest(t, filepath.Join(t.TempDir(), "outbox.db"))
	ctx := context.Background()
	ids := []string{"01a00000-0000-7001-8000-000000000001", "01a00000-0000-7001-9000-000000000002", "not-a-uuid"}
	for _, id := range ids {
		if _, err := s.d.wdb.Exec(`INSERT INTO messages (id, sender, status, created_at, updated_at, expires_at)
			VALUES (?, 'a@x.test', 'delivered', 1, 1, 9999999999999)`, id); err != nil {
			t.Fatal(err)
		}
	}
	tx, err := s.d.Begin(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	var docs []queue.SearchDoc
	for _, id := range ids {
		docs = append(docs, queue.SearchDoc{MessageID: id, Words: "twin "})
	}
	if err := tx.IndexMessages(ctx, docs); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	page, err := s.List(ctx, queue.Filter{Search: "twin"})
	if err != nil || len(page.Messages) != 3 {
		t.Fatalf("search found %d of 3: %v", len(page.Messages), err)
	}
	var pending int
	s.d.rdb.QueryRow(`SELECT count(*) FROM search_pending`).Scan(&pending)
	if pending != 0 {
		t.Errorf("%d messages still waiting for the index", pending)
	}
}

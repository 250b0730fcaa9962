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
	"github.com/outbox-mail/outbox/queue/internal/pending"
	"github.com/outbox-mail/outbox/queue/queuetest"
)

func openTest(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(path, Options{ChunkSize: 64 << 10})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() }) // may already be closed by the test
	return s
}

func TestSuite(t *testing.T) {
	queuetest.Run(t, func(t *testing.T) queue.Store {
		return openTest(t, filepath.Join(t.TempDir(), "queue.db"))
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

// openAppDB opens an application's own database with a table of its own
// and the outbox schema migrated into it (twice: Migrate is idempotent).
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

// placeOrder writes an order and its mail in one transaction, then commits
// or rolls back.
func placeOrder(t *testing.T, db *sql.DB, body string, commit bool) string {
	t.Helper()
	ctx := context.Background()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(`INSERT INTO orders (what) VALUES ('x')`); err != nil {
		t.Fatal(err)
	}
	id, err := EnqueueTx(ctx, tx, queue.NewMessage{From: "shop@x.test",
		Recipients: []string{"buyer@x.test"}, Body: strings.NewReader(body)})
	if err != nil {
		t.Fatalf("EnqueueTx: %v", err)
	}
	if _, err := EnqueueTx(ctx, tx, queue.NewMessage{Body: strings.NewReader("x")}); !errors.Is(err, queue.ErrInvalid) {
		t.Errorf("EnqueueTx without recipients: %v, want ErrInvalid", err)
	}
	if commit {
		err = tx.Commit()
	} else {
		err = tx.Rollback()
	}
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestEnqueueTx(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "app.db")
	db := openAppDB(t, path)
	lost := placeOrder(t, db, strings.Repeat("r", 600<<10), false)
	body := strings.Repeat("c", 600<<10)
	kept := placeOrder(t, db, body, true)
	var chunks, orders int
	db.QueryRow(`SELECT COUNT(*) FROM body_chunks WHERE message_id = ?`, lost).Scan(&chunks)
	db.QueryRow(`SELECT COUNT(*) FROM orders`).Scan(&orders)
	if chunks != 0 || orders != 1 {
		t.Errorf("after one rollback and one commit: %d chunks of the lost mail, %d orders", chunks, orders)
	}
	// A store opened on the application's database sees the committed mail.
	s := openTest(t, path)
	if _, err := s.Get(ctx, lost); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("rolled-back message: Get = %v, want ErrNotFound", err)
	}
	m, err := s.Get(ctx, kept)
	if err != nil {
		t.Fatalf("committed message: %v", err)
	}
	if m.Size != int64(len(body)) || m.Status != queue.StatusQueued {
		t.Errorf("committed message size %d status %s", m.Size, m.Status)
	}
	c, err := s.Claim(ctx, "w", 10, time.Minute)
	if err != nil || len(c) != 1 || c[0].ID != kept {
		t.Fatalf("Claim = %v %v, want the committed message", c, err)
	}
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
		if err := s.rdb.QueryRow(query).Scan(dst); err != nil {
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

// TestBatchFailureIsolated gives the writer's commit a batch in which one
// message cannot be inserted (its id collides with a stored message): the
// batch transaction fails and leaves nothing, and the others commit alone,
// as the writer's one-by-one retry (tested in groupcommit) commits them.
func TestBatchFailureIsolated(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, filepath.Join(t.TempDir(), "queue.db"))
	existing, err := s.Enqueue(ctx, queue.NewMessage{Recipients: []string{"a@x.test"}, Body: strings.NewReader("first")})
	if err != nil {
		t.Fatal(err)
	}
	msg := func(body string) *pending.Message {
		p, err := s.intake.Prepare(queue.NewMessage{Recipients: []string{"b@x.test"}, Body: strings.NewReader(body)}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.intake.Spool(p, strings.NewReader(body)); err != nil {
			t.Fatal(err)
		}
		return p
	}
	bad, good := msg("bad"), msg("good")
	bad.ID = existing
	if ids, err := s.insertBatch(ctx, []*pending.Message{bad, good}); err == nil {
		t.Fatalf("batch with a colliding message was accepted as %v", ids)
	}
	if _, err := s.Get(ctx, good.ID); !errors.Is(err, queue.ErrNotFound) {
		t.Fatalf("Get of a message from a failed batch = %v, want ErrNotFound", err)
	}
	if ids, err := s.insertBatch(ctx, []*pending.Message{bad}); err == nil {
		t.Errorf("colliding message was accepted as %v", ids)
	}
	ids, err := s.insertBatch(ctx, []*pending.Message{good})
	if err != nil {
		t.Fatalf("good message of a failed batch: %v", err)
	}
	for id, want := range map[string]string{existing: "first", ids[0]: "good"} {
		rc, err := s.OpenBody(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(rc)
		rc.Close()
		if string(got) != want {
			t.Errorf("body of %s = %q, want %q", id, got, want)
		}
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
	if err := s.wdb.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if mode != 2 {
		t.Fatalf("writer synchronous = %d after claims, want 2 (FULL)", mode)
	}
}

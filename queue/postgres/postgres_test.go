package postgres

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/outbox-mail/outbox/queue"
	"github.com/outbox-mail/outbox/queue/queuetest"
)

func TestStore(t *testing.T) {
	queuetest.Run(t, queuetest.Harness[pgx.Tx]{
		Open: func(t *testing.T) queuetest.Backend[pgx.Tx] {
			dsn, _ := freshSchema(t)
			s := openStore(t, dsn, Options{})
			if _, err := s.Pool().Exec(context.Background(), `CREATE TABLE app_orders (n int)`); err != nil {
				t.Fatal(err)
			}
			return s
		},
		OpenWith: func(t *testing.T, o queue.Options) queuetest.Backend[pgx.Tx] {
			dsn, _ := freshSchema(t)
			return openStore(t, dsn, Options{Queue: o})
		},
		Begin: func(t *testing.T, s queuetest.Backend[pgx.Tx]) pgx.Tx {
			tx, err := s.(*Store).Pool().Begin(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			return tx
		},
		Commit:   func(tx pgx.Tx) error { return tx.Commit(context.Background()) },
		Rollback: func(tx pgx.Tx) error { return tx.Rollback(context.Background()) },
		AppWrite: func(t *testing.T, tx pgx.Tx) {
			if _, err := tx.Exec(context.Background(), `INSERT INTO app_orders VALUES (1)`); err != nil {
				t.Fatal(err)
			}
		},
		AppRows: func(t *testing.T, s queuetest.Backend[pgx.Tx]) int {
			var n int
			if err := s.(*Store).Pool().QueryRow(context.Background(), `SELECT count(*) FROM app_orders`).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		},
	})
}

func newMsg(to ...string) queue.NewMessage {
	return queue.NewMessage{From: "a@example.com", Recipients: to, Subject: "hi",
		Body: strings.NewReader("Subject: hi\r\n\r\nhello\r\n")}
}

func TestConcurrentMigrations(t *testing.T) {
	t.Parallel()
	dsn, _ := freshSchema(t)
	const n = 4
	var wg sync.WaitGroup
	errs := make([]error, n)
	stores := make([]*Store, n)
	for i := range n {
		wg.Go(func() {
			stores[i], errs[i] = Open(context.Background(), dsn, Options{})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Open %d: %v", i, err)
		}
		defer stores[i].Close()
	}
	conn := connect(t, dsn)
	var versions, max int
	err := conn.QueryRow(context.Background(),
		`SELECT count(*), coalesce(max(version), 0) FROM outbox_schema_migrations`).Scan(&versions, &max)
	if err != nil {
		t.Fatal(err)
	}
	if versions != len(migrations) || max != len(migrations) {
		t.Errorf("schema_migrations has %d rows up to version %d, want %d", versions, max, len(migrations))
	}
	// Every store works on the one schema.
	id, err := stores[0].Enqueue(context.Background(), newMsg("b@x.test"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stores[3].Get(context.Background(), id); err != nil {
		t.Errorf("another store cannot read it: %v", err)
	}
	if err := Migrate(context.Background(), conn); err != nil {
		t.Errorf("Migrate on an up-to-date schema: %v", err)
	}
}

// waitCall reports whether ch receives within d.
func waitCall(ch <-chan struct{}, d time.Duration) bool {
	select {
	case <-ch:
		return true
	case <-time.After(d):
		return false
	}
}

func TestWatchAcrossNodes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn, _ := freshSchema(t)
	a := openStore(t, dsn, Options{})
	b := openStore(t, dsn, Options{}) // another node

	// A store in another schema of the same database must not wake b.
	otherDSN, _ := freshSchema(t)
	other := openStore(t, otherDSN, Options{})

	woke := make(chan struct{}, 16)
	stop := b.Watch(func() { woke <- struct{}{} })
	if _, err := other.Enqueue(ctx, newMsg("x@other.test")); err != nil {
		t.Fatal(err)
	}
	if waitCall(woke, 300*time.Millisecond) {
		t.Fatal("an enqueue in another schema woke the watcher")
	}
	if _, err := a.Enqueue(ctx, newMsg("b@x.test")); err != nil {
		t.Fatal(err)
	}
	if !waitCall(woke, 5*time.Second) {
		t.Fatal("Enqueue on node a did not wake node b's watcher")
	}
	for _, commit := range []bool{false, true} {
		tx, err := a.Pool().Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.EnqueueTx(ctx, tx, newMsg("c@x.test")); err != nil {
			t.Fatal(err)
		}
		if commit {
			err = tx.Commit(ctx)
		} else {
			err = tx.Rollback(ctx)
		}
		if err != nil {
			t.Fatal(err)
		}
		if got := waitCall(woke, 500*time.Millisecond); got != commit {
			t.Errorf("EnqueueTx with commit=%v: watcher woke = %v", commit, got)
		}
	}
	stop()
	if _, err := a.Enqueue(ctx, newMsg("d@x.test")); err != nil {
		t.Fatal(err)
	}
	if waitCall(woke, 300*time.Millisecond) {
		t.Error("watcher called after stop")
	}
}

// A callback that blocks must not hold up the listener or other watchers.
func TestWatchSlowCallback(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn, _ := freshSchema(t)
	s := openStore(t, dsn, Options{})
	block := make(chan struct{})
	defer close(block)
	entered := make(chan struct{}, 1)
	stopSlow := s.Watch(func() {
		select {
		case entered <- struct{}{}:
		default:
		}
		<-block
	})
	defer stopSlow()
	woke := make(chan struct{}, 16)
	defer s.Watch(func() { woke <- struct{}{} })()
	for i := range 3 {
		if _, err := s.Enqueue(ctx, newMsg("b@x.test")); err != nil {
			t.Fatal(err)
		}
		if !waitCall(woke, 5*time.Second) {
			t.Fatalf("enqueue %d: fast watcher not woken while another callback blocks", i)
		}
	}
	if !waitCall(entered, time.Second) {
		t.Error("the slow watcher was never called")
	}
}

func TestWatchReconnects(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn, schema := freshSchema(t)
	a := openStore(t, dsn, Options{})
	b := openStore(t, dsn, Options{})
	woke := make(chan struct{}, 16)
	defer b.Watch(func() { woke <- struct{}{} })()
	// Kill b's listening backend, as a server restart or network cut would.
	conn := connect(t, dsn)
	var killed int
	err := conn.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE application_name = $1 AND query = 'LISTEN `+notifyChannel+`'`, schema).Scan(&killed)
	if err != nil || killed != 1 {
		t.Fatalf("terminated %d listeners (%v), want 1", killed, err)
	}
	// The reconnect itself wakes the watcher: notifications may have been
	// missed while it was away.
	if !waitCall(woke, 5*time.Second) {
		t.Fatal("no wake-up after the listener reconnected")
	}
	if _, err := a.Enqueue(ctx, newMsg("b@x.test")); err != nil {
		t.Fatal(err)
	}
	if !waitCall(woke, 5*time.Second) {
		t.Fatal("Enqueue after the reconnect did not wake the watcher")
	}
}

func TestTwoNodesClaimDisjoint(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn, _ := freshSchema(t)
	nodes := []*Store{openStore(t, dsn, Options{}), openStore(t, dsn, Options{})}
	const n = 300
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if _, err := nodes[i%2].Enqueue(ctx, newMsg(fmt.Sprintf("r%d@x.test", i))); err != nil {
				t.Errorf("Enqueue: %v", err)
			}
		})
	}
	wg.Wait()
	claimers := make(map[string]queue.Store)
	for ni, s := range nodes {
		for w := range 3 {
			claimers[fmt.Sprintf("node%d-w%d", ni, w)] = s
		}
	}
	seen := queuetest.ClaimAll(t, claimers, 4)
	if len(seen) != n {
		t.Fatalf("%d distinct messages claimed, want %d", len(seen), n)
	}
	owners := map[string]bool{}
	for _, o := range seen {
		owners[o[:5]] = true
	}
	if !owners["node0"] || !owners["node1"] {
		t.Logf("only nodes %v claimed anything; the race was one-sided", owners)
	}
}

func TestStreamLargeBody(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn, _ := freshSchema(t)
	s := openStore(t, dsn, Options{})
	const size = 20 << 20
	src := io.LimitReader(&counter{}, size)
	h := sha256.New()
	id, err := s.Enqueue(ctx, queue.NewMessage{From: "a@x.test", Recipients: []string{"b@x.test"},
		Body: io.TeeReader(src, h)})
	if err != nil {
		t.Fatal(err)
	}
	want := h.Sum(nil)
	var chunks int
	var biggest int
	err = s.Pool().QueryRow(ctx, `SELECT count(*), max(length(data)) FROM outbox_body_chunks
		WHERE message_id = $1`, id).Scan(&chunks, &biggest)
	if err != nil {
		t.Fatal(err)
	}
	if chunks != size/queue.DefaultChunkSize || biggest != queue.DefaultChunkSize {
		t.Errorf("body stored as %d chunks of at most %d bytes, want %d of %d",
			chunks, biggest, size/queue.DefaultChunkSize, queue.DefaultChunkSize)
	}
	rc, err := s.OpenBody(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	h.Reset()
	n, err := io.Copy(h, rc)
	if err != nil || n != size {
		t.Fatalf("read %d bytes (%v), want %d", n, err, size)
	}
	if got := h.Sum(nil); string(got) != string(want) {
		t.Fatalf("sha256 of the body read back %x, want %x", got, want)
	}
}

// counter yields an endless non-repeating-looking byte stream.
type counter struct{ n uint64 }

func (c *counter) Read(p []byte) (int, error) {
	for i := range p {
		c.n++
		p[i] = byte(c.n*2654435761>>13) ^ byte(c.n)
	}
	return len(p), nil
}

func TestHousekeepOneNodeAtATime(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn, _ := freshSchema(t)
	a := openStore(t, dsn, Options{})
	b := openStore(t, dsn, Options{})
	const n = 3
	for i := range n {
		id, err := a.Enqueue(ctx, newMsg(fmt.Sprintf("r%d@x.test", i)))
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Cancel(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	live, err := a.Enqueue(ctx, newMsg("live@x.test"))
	if err != nil {
		t.Fatal(err)
	}
	inside, release := make(chan struct{}), make(chan struct{})
	a.purgeHook = func() { close(inside); <-release }
	type result struct {
		n   int
		err error
	}
	done := make(chan result, 1)
	go func() {
		n, err := a.Housekeep(ctx, -time.Minute) // cutoff in the future: all final mail
		done <- result{n, err}
	}()
	<-inside
	if n, err := b.Housekeep(ctx, -time.Minute); !errors.Is(err, ErrHousekeepBusy) || n != 0 {
		t.Errorf("Housekeep on b while a runs = %d, %v; want 0, ErrHousekeepBusy", n, err)
	}
	close(release)
	if r := <-done; r.err != nil || r.n != n {
		t.Fatalf("Housekeep on a = %d, %v; want %d", r.n, r.err, n)
	}
	// a released the lock: b may run now, and finds nothing left.
	if n, err := b.Housekeep(ctx, -time.Minute); err != nil || n != 0 {
		t.Errorf("Housekeep on b afterwards = %d, %v; want 0, nil", n, err)
	}
	if _, err := b.Get(ctx, live); err != nil {
		t.Errorf("housekeeping removed a waiting message: %v", err)
	}
}

// TestReferenceLocksDoNotHideMessages: a transaction that holds only the
// key-share lock an insert referencing a message takes (as the search
// indexer's does) neither hides the message from a claim nor from a
// retry of everything deferred.
func TestReferenceLocksDoNotHideMessages(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn, _ := freshSchema(t)
	s := openStore(t, dsn, Options{})
	ids := make([]string, 3)
	for i := range ids {
		id, err := s.Enqueue(ctx, newMsg(fmt.Sprintf("r%d@x.test", i)))
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = id
	}
	conn := connect(t, dsn)
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT id FROM outbox_messages FOR KEY SHARE`); err != nil {
		t.Fatal(err)
	}
	if n, err := s.RetryMessages(ctx, queue.Selection{}); err != nil || n != len(ids) {
		t.Errorf("RetryMessages under key-share locks = %d, %v; want %d", n, err, len(ids))
	}
	claimed, err := s.Claim(ctx, "w1", 10, time.Minute)
	if err != nil || len(claimed) != len(ids) {
		t.Errorf("Claim under key-share locks = %d messages, %v; want %d", len(claimed), err, len(ids))
	}
}

package outbox_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/outbox-mail/outbox"
	"github.com/outbox-mail/outbox/delivery"
	"github.com/outbox-mail/outbox/internal/pgtest"
	"github.com/outbox-mail/outbox/internal/smtpsink"
	"github.com/outbox-mail/outbox/queue"
	"github.com/outbox-mail/outbox/queue/postgres"
	"github.com/outbox-mail/outbox/smtp"
)

// TestEnqueueTxPostgres: with PostgreSQL, mail is sent if and only if the
// application's own pgx transaction commits, and the commit itself wakes
// the workers (LISTEN/NOTIFY) without a Notify call.
func TestEnqueueTxPostgres(t *testing.T) {
	dsn, _ := pgtest.FreshSchema(t)
	ctx := context.Background()
	st, err := postgres.Open(ctx, dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	sink, err := smtpsink.Start(smtpsink.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Stop()
	relay, _ := smtp.ParseRelayURL("smtp://" + sink.Addr() + "?starttls=off")
	tr := delivery.NewSMTPRelay(relay, nil, smtp.PoolOptions{})
	defer tr.Close()
	c, err := outbox.NewTx(st, outbox.Config{Transport: tr, PollInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	c.Start()
	defer c.Shutdown(ctx)
	if _, err := st.Pool().Exec(ctx, `CREATE TABLE orders (id serial PRIMARY KEY, item text)`); err != nil {
		t.Fatal(err)
	}
	order := func(item string, commit bool) string {
		tx, err := st.Pool().Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		if _, err := tx.Exec(ctx, `INSERT INTO orders (item) VALUES ($1)`, item); err != nil {
			t.Fatal(err)
		}
		id, err := c.EnqueueTx(ctx, tx, newMessage("order "+item), nil)
		if err != nil {
			t.Fatal(err)
		}
		if commit {
			if err := tx.Commit(ctx); err != nil {
				t.Fatal(err)
			}
		}
		return id
	}
	rolledBack := order("rolled-back", false)
	committed := order("committed", true)
	if n := sink.WaitFor(1, 10*time.Second); n != 1 {
		t.Fatalf("sink received %d messages after the commit, want 1 (woken by NOTIFY)", n)
	}
	waitDelivered(t, c.Client, committed)
	if _, err := c.Get(ctx, rolledBack); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("rolled-back message: %v, want ErrNotFound", err)
	}
	time.Sleep(100 * time.Millisecond)
	got := sink.Received()
	if len(got) != 1 || !bytes.Contains(got[0].Data, []byte("Subject: order committed")) {
		t.Fatalf("sink received %d messages; want exactly the committed one", len(got))
	}
	// A *sql.Tx cannot even be passed to c.EnqueueTx: the compiler checks
	// the transaction type. A nil pgx.Tx is refused.
	if _, err := c.EnqueueTx(ctx, nil, newMessage("x"), nil); !errors.Is(err, queue.ErrInvalid) {
		t.Errorf("EnqueueTx with a nil transaction: %v, want ErrInvalid", err)
	}
}

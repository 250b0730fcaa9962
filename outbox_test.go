package outbox_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outbox-mail/outbox"
	"github.com/outbox-mail/outbox/delivery"
	"github.com/outbox-mail/outbox/internal/smtpsink"
	"github.com/outbox-mail/outbox/message"
	"github.com/outbox-mail/outbox/queue"
	"github.com/outbox-mail/outbox/queue/sqlite"
	"github.com/outbox-mail/outbox/smtp"
)

type fixture struct {
	sink   *smtpsink.Sink
	store  *sqlite.Store
	client *outbox.TxClient[*sql.Tx]
	dbPath string
}

func setup(t *testing.T) *fixture {
	t.Helper()
	sink, err := smtpsink.Start(smtpsink.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sink.Stop() })
	dbPath := filepath.Join(t.TempDir(), "outbox.db")
	st, err := sqlite.Open(dbPath, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	relay, err := smtp.ParseRelayURL("smtp://" + sink.Addr() + "?starttls=off")
	if err != nil {
		t.Fatal(err)
	}
	tr := delivery.NewSMTPRelay(relay, nil, smtp.PoolOptions{})
	t.Cleanup(func() { tr.Close() })
	c, err := outbox.NewTx(st, outbox.Config{Transport: tr, PollInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c.Shutdown(ctx)
	})
	return &fixture{sink: sink, store: st, client: c, dbPath: dbPath}
}

func waitDelivered(t *testing.T, c *outbox.Client, id string) *queue.Message {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		m, err := c.Get(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if m.Status == queue.StatusDelivered {
			return m
		}
		if m.Status.Final() || time.Now().After(deadline) {
			t.Fatalf("message %s is %s: %+v", id, m.Status, m.Recipients)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func newMessage(subject string) *message.Message {
	return &message.Message{
		From:    message.Address{Name: "Shop", Email: "shop@app.test"},
		To:      []message.Address{{Email: "ann@x.test"}},
		Bcc:     []message.Address{{Email: "audit@x.test"}},
		Subject: subject,
		Text:    "Your order has shipped.",
		Attachments: []message.Attachment{{Filename: "invoice.pdf", ContentType: "application/pdf",
			Content: bytes.NewReader([]byte("%PDF-1.4 fake"))}},
	}
}

func TestEnqueueDeliversWhatWasStored(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	id, err := f.client.Enqueue(ctx, newMessage("Shipped 🚚"), &outbox.EnqueueOptions{Tags: map[string]string{"source": "test"}})
	if err != nil {
		t.Fatal(err)
	}
	m := waitDelivered(t, f.client.Client, id)
	if len(m.Recipients) != 2 || m.Subject != "Shipped 🚚" || m.Tags["source"] != "test" {
		t.Fatalf("stored message: %+v", m)
	}
	for _, r := range m.Recipients {
		if r.Code != 250 || r.Status != queue.RecipientDelivered {
			t.Errorf("recipient %+v", r)
		}
	}
	body, err := f.store.OpenBody(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	stored, _ := io.ReadAll(body)
	body.Close()
	got := f.sink.Received()
	if len(got) != 1 {
		t.Fatalf("sink received %d messages", len(got))
	}
	if !bytes.Equal(got[0].Data, stored) {
		t.Error("the relay received different bytes from those stored")
	}
	if bytes.Contains(stored, []byte("audit@x.test")) {
		t.Error("Bcc recipient leaked into the message")
	}
	if strings.Join(got[0].To, ",") != "ann@x.test,audit@x.test" {
		t.Errorf("envelope recipients %v", got[0].To)
	}
}

func TestEnqueueInvalidStoresNothing(t *testing.T) {
	f := setup(t)
	m := newMessage("hi")
	m.To = []message.Address{{Email: "ann@x.test\r\nBcc: victim@x.test"}}
	_, err := f.client.Enqueue(context.Background(), m, nil)
	var fe *message.FieldError
	if !errors.As(err, &fe) || fe.Field != "to[0]" {
		t.Fatalf("Enqueue with injection: %v, want a FieldError for to[0]", err)
	}
	counts, _ := f.store.Counts(context.Background())
	for s, n := range counts {
		if n != 0 {
			t.Errorf("%d %s messages stored after a rejected enqueue", n, s)
		}
	}
}

func TestEnqueueAttachmentErrorStoresNothing(t *testing.T) {
	f := setup(t)
	m := newMessage("hi")
	m.Attachments[0].Content = io.MultiReader(strings.NewReader("start"), failingReader{})
	if _, err := f.client.Enqueue(context.Background(), m, nil); err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Fatalf("Enqueue with a failing attachment: %v", err)
	}
	page, _ := f.store.List(context.Background(), queue.Filter{})
	if len(page.Messages) != 0 {
		t.Errorf("%d messages stored after a failed composition", len(page.Messages))
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }

func TestIdempotentEnqueue(t *testing.T) {
	f := setup(t)
	opts := &outbox.EnqueueOptions{IdempotencyKey: "order-42", SendAt: time.Now().Add(time.Hour)}
	a, err := f.client.Enqueue(context.Background(), newMessage("one"), opts)
	if err != nil {
		t.Fatal(err)
	}
	b, err := f.client.Enqueue(context.Background(), newMessage("two"), opts)
	if err != nil || a != b {
		t.Fatalf("second enqueue: %q %v, want %q", b, err, a)
	}
	if err := f.client.Cancel(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	if m, _ := f.client.Get(context.Background(), a); m.Status != queue.StatusCancelled || m.Subject != "one" {
		t.Errorf("after cancel: %s %q", m.Status, m.Subject)
	}
}

// TestEnqueueTx: mail is sent if and only if the application's own
// transaction commits.
func TestEnqueueTx(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	app, err := sql.Open("sqlite", "file:"+f.dbPath+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	if _, err := app.Exec(`CREATE TABLE orders (id INTEGER PRIMARY KEY, item TEXT)`); err != nil {
		t.Fatal(err)
	}
	order := func(item string, commit bool) string {
		tx, err := app.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		if _, err := tx.Exec(`INSERT INTO orders (item) VALUES (?)`, item); err != nil {
			t.Fatal(err)
		}
		id, err := f.client.EnqueueTx(ctx, tx, newMessage("order "+item), nil)
		if err != nil {
			t.Fatal(err)
		}
		if commit {
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
			f.client.Notify()
		}
		return id
	}
	rolledBack := order("rolled-back", false)
	committed := order("committed", true)
	waitDelivered(t, f.client.Client, committed)
	if _, err := f.client.Get(ctx, rolledBack); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("rolled-back message: %v, want ErrNotFound", err)
	}
	got := f.sink.Received()
	if len(got) != 1 || !bytes.Contains(got[0].Data, []byte("Subject: order committed")) {
		t.Fatalf("sink received %d messages; want exactly the committed one", len(got))
	}
}

// A store failure reaches the caller as the store's error, so callers (and
// the API's 503) can tell a closed store from bad input.
func TestEnqueueReportsStoreError(t *testing.T) {
	f := setup(t)
	f.store.Close()
	m := newMessage("hi")
	m.Attachments[0].Content = bytes.NewReader(bytes.Repeat([]byte("x"), 1<<20))
	_, err := f.client.Enqueue(context.Background(), m, nil)
	if !errors.Is(err, queue.ErrClosed) {
		t.Fatalf("Enqueue on a closed store: %v, want ErrClosed", err)
	}
}

// The README's `defer ob.Shutdown(ctx)` beside an explicit Shutdown must
// not panic.
func TestShutdownTwice(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	if err := f.client.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := f.client.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
}

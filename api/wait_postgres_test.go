package api

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/outbox-mail/outbox"
	"github.com/outbox-mail/outbox/internal/pgtest"
	"github.com/outbox-mail/outbox/queue"
	"github.com/outbox-mail/outbox/queue/postgres"
)

// TestWaitWakesAcrossNodes: two daemons share a PostgreSQL store; a long
// poll on one is answered by mail enqueued on the other, through the
// store's LISTEN/NOTIFY (queue.Watcher). Its wait is shorter than the
// backstop re-query, so only that wake-up can find the message in time.
func TestWaitWakesAcrossNodes(t *testing.T) {
	dsn, _ := pgtest.FreshSchema(t)
	open := func() *postgres.Store {
		st, err := postgres.Open(context.Background(), dsn, postgres.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	a, b := open(), open()
	ob, err := outbox.New(outbox.Config{Store: a, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	h, err := New(Config{Client: ob, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	e := &env{t: t, srv: srv, h: h, client: ob, store: a}

	done := e.poll("to=far%40example.org&wait=" + (waitBackstop - time.Second).String())
	e.untilWaiting()
	id, err := b.Enqueue(context.Background(), queue.NewMessage{From: "a@example.com", Recipients: []string{"far@example.org"},
		Subject: "from the other node", Body: strings.NewReader("Subject: x\r\n\r\nhi\r\n")})
	if err != nil {
		t.Fatal(err)
	}
	res := <-done
	var page ListPage
	res.r.decode(t, &page)
	if res.r.Status != 200 || len(page.Messages) != 1 || page.Messages[0].ID != id {
		t.Fatalf("long poll on node a: %d %s after %v, want message %s enqueued on node b", res.r.Status, res.r.Body, res.took, id)
	}
}

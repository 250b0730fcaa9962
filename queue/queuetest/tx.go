package queuetest

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/outbox-mail/outbox/queue"
)

func enqueueTx[TTx any](t *testing.T, h Harness[TTx], s Backend[TTx], commit bool, body string) string {
	t.Helper()
	ctx := context.Background()
	tx := h.Begin(t, s)
	h.AppWrite(t, tx)
	m := newMsg("buyer@x.test")
	m.Body = strings.NewReader(body)
	id, err := s.EnqueueTx(ctx, tx, m)
	if err != nil {
		h.Rollback(tx)
		t.Fatalf("EnqueueTx: %v", err)
	}
	if commit {
		err = h.Commit(tx)
	} else {
		err = h.Rollback(tx)
	}
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// runEnqueueTx: the mail exists if and only if the application's
// transaction commits, with its body, on either driver.
func runEnqueueTx[TTx any](t *testing.T, h Harness[TTx]) {
	ctx := context.Background()
	s := h.Open(t)
	lost := enqueueTx(t, h, s, false, strings.Repeat("r", 600<<10))
	body := strings.Repeat("c", 600<<10) // several chunks
	kept := enqueueTx(t, h, s, true, body)
	if _, err := s.Get(ctx, lost); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("rolled-back message: Get = %v, want ErrNotFound", err)
	}
	if _, err := s.OpenBody(ctx, lost); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("rolled-back message: OpenBody = %v, want ErrNotFound", err)
	}
	m := get(t, s, kept)
	if m.Size != int64(len(body)) || m.Status != queue.StatusQueued || m.Source != queue.SourceLibrary {
		t.Errorf("committed message size %d status %s source %q", m.Size, m.Status, m.Source)
	}
	if life := m.ExpiresAt.Sub(m.CreatedAt); life < queue.DefaultLifetime-time.Second || life > queue.DefaultLifetime+time.Second {
		t.Errorf("lifetime %v, want the default %v", life, queue.DefaultLifetime)
	}
	if got := readBody(t, s, kept); string(got) != body {
		t.Errorf("committed body: %d bytes, want %d", len(got), len(body))
	}
	if n := h.AppRows(t, s); n != 1 {
		t.Errorf("application rows %d, want the committed one", n)
	}
	// The same key through the group-commit path finds the EnqueueTx one.
	tx := h.Begin(t, s)
	km := newMsg("k@x.test")
	km.IdempotencyKey = "tx-key"
	id, err := s.EnqueueTx(ctx, tx, km)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Commit(tx); err != nil {
		t.Fatal(err)
	}
	km.Body = strings.NewReader("again")
	if again, err := s.Enqueue(ctx, km); err != nil || again != id {
		t.Errorf("Enqueue with the EnqueueTx key = %s, %v; want %s", again, err, id)
	}
	c := claim(t, s, "w", 10, time.Minute)
	if len(c) != 2 {
		t.Fatalf("claimed %v, want the two committed messages", ids(c))
	}
}

// runEnqueueTxSavepoint: a failed EnqueueTx (invalid input, a body that
// fails half-way) leaves nothing of the message in the transaction, which
// stays usable: the application's own work still commits.
func runEnqueueTxSavepoint[TTx any](t *testing.T, h Harness[TTx]) {
	ctx := context.Background()
	s := h.Open(t)
	tx := h.Begin(t, s)
	h.AppWrite(t, tx)
	bad := newMsg("x@y.test")
	bad.Subject = "nul\x00byte"
	if _, err := s.EnqueueTx(ctx, tx, bad); !errors.Is(err, queue.ErrInvalid) || !strings.Contains(err.Error(), "Subject") {
		t.Errorf("EnqueueTx with a NUL in Subject: %v, want ErrInvalid naming Subject", err)
	}
	failing := newMsg("b@x.test")
	failing.Body = io.MultiReader(strings.NewReader(strings.Repeat("x", 700<<10)), &failingReader{})
	if _, err := s.EnqueueTx(ctx, tx, failing); err == nil {
		t.Fatal("EnqueueTx with a failing body succeeded")
	}
	h.AppWrite(t, tx)
	if err := h.Commit(tx); err != nil {
		t.Fatalf("the application's transaction is unusable after a failed EnqueueTx: %v", err)
	}
	if n := h.AppRows(t, s); n != 2 {
		t.Errorf("application rows %d, want 2", n)
	}
	wantEmpty(t, s)
}

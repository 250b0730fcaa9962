package postgres

import (
	"context"
	"errors"
	"testing"

	"github.com/outbox-mail/outbox/queue"
)

// The write probe commits on a live server and reports a closed store.
func TestProbeWrite(t *testing.T) {
	dsn, _ := freshSchema(t)
	s := openStore(t, dsn, Options{})
	ctx := context.Background()
	if err := s.ProbeWrite(ctx); err != nil {
		t.Fatalf("ProbeWrite: %v", err)
	}
	s.Close()
	if err := s.ProbeWrite(ctx); !errors.Is(err, queue.ErrClosed) {
		t.Fatalf("ProbeWrite on a closed store: %v", err)
	}
}

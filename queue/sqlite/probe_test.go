package sqlite

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/outbox-mail/outbox/queue"
)

// The write probe commits and leaves the schema version as it was.
func TestProbeWrite(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "outbox.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for range 3 {
		if err := s.ProbeWrite(ctx); err != nil {
			t.Fatalf("ProbeWrite: %v", err)
		}
	}
	var v int
	if err := s.rdb.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil || v != len(migrations) {
		t.Fatalf("user_version %d (%v), want %d", v, err, len(migrations))
	}
	s.Close()
	if err := s.ProbeWrite(ctx); !errors.Is(err, queue.ErrClosed) {
		t.Fatalf("ProbeWrite on a closed store: %v", err)
	}
}

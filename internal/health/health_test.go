package health

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/outbox-mail/outbox/queue"
	"github.com/outbox-mail/outbox/queue/sqlite"
)

func reason(err error) string {
	var nr *NotReady
	if errors.As(err, &nr) {
		return nr.Reason()
	}
	return ""
}

func TestReadiness(t *testing.T) {
	dir := t.TempDir()
	st, err := sqlite.Open(filepath.Join(dir, "outbox.db"), sqlite.Options{Queue: queue.Options{Logger: slog.New(slog.DiscardHandler)}})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	c := New(Config{Probe: st, DiskPath: dir, MinFree: 1, Logger: slog.New(slog.DiscardHandler)})
	c.probe()
	ctx := context.Background()
	if err := c.Ready(ctx); err != nil {
		t.Fatalf("fresh store not ready: %v", err)
	}

	// A failed commit is unready until the store commits again.
	c.StoreFailed(errors.New("sqlite: database or disk is full"))
	if r := reason(c.Ready(ctx)); r != "store_commit_failed" {
		t.Fatalf("after a failed commit: %q", r)
	}
	if msg := c.Ready(ctx).Error(); msg == "" || strings.Contains(msg, "sqlite") {
		t.Fatalf("the reason shows the store's error: %q", msg)
	}
	c.probe()
	if err := c.Ready(ctx); err != nil {
		t.Fatalf("a successful probe did not clear the failed commit: %v", err)
	}
	c.StoreFailed(errors.New("x"))
	c.StoreSucceeded()
	if err := c.Ready(ctx); err != nil {
		t.Fatalf("a successful commit did not clear the failed one: %v", err)
	}

	// The free-space floor, read from the disk; then a disk that fills and
	// empties again.
	c.cfg.MinFree = 1 << 62
	if r := reason(c.Ready(ctx)); r != "disk_full" {
		t.Fatalf("below the floor: %q", r)
	}
	c.cfg.MinFree = 100 << 20
	free := int64(10 << 20)
	c.statfs = func(string) (int64, error) { return free, nil }
	if r := reason(c.Ready(ctx)); r != "disk_full" {
		t.Fatalf("10 MiB free, floor 100 MiB: %q", r)
	}
	free = 200 << 20
	if err := c.Ready(ctx); err != nil {
		t.Fatalf("space returned: %v", err)
	}

	c.ShuttingDown()
	if r := reason(c.Ready(ctx)); r != "shutting_down" {
		t.Fatalf("shutting down: %q", r)
	}
}

// A store that cannot write fails the probe.
func TestProbeOfAClosedStore(t *testing.T) {
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "outbox.db"), sqlite.Options{Queue: queue.Options{Logger: slog.New(slog.DiscardHandler)}})
	if err != nil {
		t.Fatal(err)
	}
	c := New(Config{Probe: st, Logger: slog.New(slog.DiscardHandler)})
	c.Start()
	defer c.Stop()
	if err := c.Ready(context.Background()); err != nil {
		t.Fatal(err)
	}
	st.Close()
	c.probe()
	if r := reason(c.Ready(context.Background())); r != "store_write_failed" {
		t.Fatalf("closed store: %q", r)
	}
}

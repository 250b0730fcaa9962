package main

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/outbox-mail/outbox/queue"
	"github.com/outbox-mail/outbox/queue/sqlite"
)

// openStore opens the store a --db value names: sqlite:PATH (the embedded
// default) or postgres://… (shared by several nodes).
func openStore(ctx context.Context, db string, lifetime time.Duration, log *slog.Logger) (queue.Store, error) {
	switch {
	case strings.HasPrefix(db, "sqlite:"):
		path := strings.TrimPrefix(db, "sqlite:")
		if path == "" {
			return nil, usagef("--db sqlite: needs a path, e.g. sqlite:outbox-data/outbox.db")
		}
		return sqlite.Open(path, sqlite.Options{DefaultLifetime: lifetime, Logger: log})
	}
	return nil, usagef("--db %q: want sqlite:PATH or postgres://…", redactDSN(db))
}

package main

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/outbox-mail/outbox/queue"
	"github.com/outbox-mail/outbox/queue/postgres"
	"github.com/outbox-mail/outbox/queue/sqlite"
)

// openStore opens the store a --db value names: sqlite:PATH (the embedded
// default) or postgres://… (shared by several nodes), with the queue's
// options qo.
func openStore(ctx context.Context, db string, qo queue.Options) (queue.Store, error) {
	if _, err := queue.ParseTranscriptPolicy(string(qo.Transcripts)); err != nil {
		return nil, usagef("--transcripts %q: want all, failures or off", qo.Transcripts)
	}
	if _, err := queue.ParseSearchMode(string(qo.Search)); err != nil {
		return nil, usagef("--search %q: want full, headers or off", qo.Search)
	}
	switch {
	case strings.HasPrefix(db, "sqlite:"):
		path := strings.TrimPrefix(db, "sqlite:")
		if path == "" {
			return nil, usagef("--db sqlite: needs a path, e.g. sqlite:outbox-data/outbox.db")
		}
		return sqlite.Open(path, sqlite.Options{Queue: qo})
	case strings.HasPrefix(db, "postgres://"), strings.HasPrefix(db, "postgresql://"):
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		return postgres.Open(ctx, db, postgres.Options{Queue: qo})
	}
	return nil, usagef("--db %q: want sqlite:PATH or postgres://…", redactDSN(db))
}

// housekeeper is a store whose housekeeping must run on one node at a time
// (PostgreSQL takes an advisory lock for it).
type housekeeper interface {
	Housekeep(ctx context.Context, retention time.Duration) (int, error)
}

// purgeOld deletes finished messages older than retention, on one node at
// a time when the store is shared.
func purgeOld(ctx context.Context, st queue.Store, retention time.Duration) (int, error) {
	if h, ok := st.(housekeeper); ok {
		n, err := h.Housekeep(ctx, retention)
		if errors.Is(err, postgres.ErrHousekeepBusy) {
			return 0, nil
		}
		return n, err
	}
	return st.Purge(ctx, time.Now().Add(-retention))
}
